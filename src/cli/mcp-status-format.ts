import { DEFAULTS } from '../config/defaults.js';
import type { GatewayStatus, McpLatencyStatus } from '../telemetry/mcp-status.js';
import { formatBytes, formatDuration } from '../util/units.js';

/** Marks a latency over its server's response target. */
const OVER = '!';

/**
 * `guild mcp status`: the gateway, its servers, its backends and latency per tool against the
 * response targets, for a terminal. Every figure is one the gateway measured or counted.
 */
export function formatGatewayStatus(s: GatewayStatus): string {
  const out: string[] = [];
  out.push(`gateway ${s.url} (pid ${s.pid}), up ${formatDuration(s.uptimeMs)}, ${plural(s.sessions, 'session')}; default project ${s.defaultProject}`);
  const share = s.budgetBytes > 0 ? ` (${Math.round((100 * s.reservedBytes) / s.budgetBytes)}%)` : '';
  out.push(`  memory: level ${s.level}; backends reserve ${formatBytes(s.reservedBytes)} of budget ${formatBytes(s.budgetBytes)}${share}`);
  const c = s.cache;
  const lookups = c.hits + c.misses;
  out.push(
    `  cache: ${c.hits} hits, ${c.misses} misses${lookups > 0 ? ` (hit rate ${pct(c.hits / lookups)})` : ''}, ${c.stores} stored, ${c.invalidations} invalidations, ${c.skipped} not stored`,
  );

  out.push('', ...table(
    ['SERVER', 'KIND', 'ISOLATION', 'INSTANCES', 'TOOLS', 'CALLS', 'CACHE HITS', 'WORST P95', 'TARGET'],
    s.servers.map((v) => {
      const backends = s.backends.filter((b) => b.server === v.name);
      const live = backends.reduce((n, b) => n + b.instances, 0);
      const calls = backends.reduce((n, b) => n + b.calls, 0);
      const hits = backends.reduce((n, b) => n + b.cacheHits, 0);
      const worst = worstP95(s.latency.filter((l) => l.server === v.name));
      return [
        v.name,
        v.kind ?? '—',
        v.isolation,
        `${live} (${v.instances.min}–${v.instances.max})`,
        `${v.tools}${v.cacheableTools.length > 0 ? ` (${v.cacheableTools.length} cacheable)` : ''}`,
        String(calls),
        calls + hits > 0 ? `${hits} (${pct(hits / (calls + hits))})` : '0',
        worst === null ? '—' : `${ms(worst.p95Ms, worst.targetMs)} ${worst.name ?? worst.method}`,
        targetOf(s.latency, v),
      ];
    }),
  ));

  out.push('', '  BACKENDS');
  if (s.backends.length === 0) out.push('  none started yet');
  else {
    out.push(...table(
      ['SERVER', 'PROJECT', 'PIDS', 'RSS', 'PEAK', 'CALLS', 'CACHE HITS', 'RESTARTS', 'RECYCLES', 'NOW'],
      s.backends.map((b) => [
        b.server,
        b.session === null ? b.project : `${b.project} (session ${b.session.slice(0, 8)})`,
        b.pids.length > 0 ? b.pids.join(',') : '—',
        formatBytes(b.rssBytes),
        formatBytes(b.peakRssBytes),
        String(b.calls),
        String(b.cacheHits),
        String(b.restarts),
        b.recycles === 0 ? '0' : `${b.recycles} (${Object.entries(b.recyclesBy).map(([why, n]) => `${why} ${n}`).join(', ')})`,
        backendNow(b),
      ]),
    ));
  }

  if (s.latency.length > 0) {
    out.push('', `  LATENCY (${OVER}: over the server's response target)`);
    out.push(...table(
      ['SERVER', 'METHOD', 'NAME', 'CALLS', 'CACHE HITS', 'ERRORS', 'P50', 'P95', 'TARGET'],
      s.latency.map((l) => [
        l.server,
        l.method,
        l.name ?? '—',
        String(l.calls),
        String(l.cacheHits),
        String(l.errors),
        ms(l.p50Ms, l.targetMs),
        ms(l.p95Ms, l.targetMs),
        l.targetMs === null ? '—' : ms(l.targetMs),
      ]),
    ));
  }
  return out.join('\n');
}

/** What a backend slot is doing now: its instances' states, calls in flight and waiting, and why it cannot start one. */
function backendNow(b: GatewayStatus['backends'][number]): string {
  const parts = [plural(b.instances, 'instance')];
  if (b.starting > 0) parts.push(`${b.starting} starting`);
  if (b.draining > 0) parts.push(`${b.draining} draining`);
  if (b.inFlight > 0) parts.push(`${b.inFlight} in flight`);
  if (b.waiting > 0) parts.push(`${b.waiting} waiting`);
  if (b.admissionTimeouts > 0) parts.push(`${b.admissionTimeouts} timed out waiting for memory`);
  if (b.admissionDenied !== null) parts.push(`held back: ${b.admissionDenied}`);
  return parts.join(', ');
}

/** A server's slowest series by p95: its latency rows are per tool, and the slowest is what breaks a target first. */
function worstP95(rows: readonly McpLatencyStatus[]): McpLatencyStatus | null {
  let worst: McpLatencyStatus | null = null;
  for (const l of rows) if (worst === null || l.p95Ms > worst.p95Ms) worst = l;
  return worst;
}

/** A server's target as its latency rows carry it, else its kind's (before any call); — when it has none. */
function targetOf(latency: readonly McpLatencyStatus[], v: GatewayStatus['servers'][number]): string {
  const kinds: Readonly<Record<string, number>> = DEFAULTS.kindTargetsMs;
  const t = latency.find((l) => l.server === v.name && l.targetMs !== null)?.targetMs ?? (v.kind !== null && Object.hasOwn(kinds, v.kind) ? kinds[v.kind] : null);
  return t == null ? '—' : ms(t);
}

/** `0.42ms`, `3.1ms`, `212ms`, `1.5s`; with the over-target mark when a target is given and exceeded. */
function ms(value: number, target: number | null = null): string {
  const text = value < 1 ? `${value.toFixed(2)}ms` : value < 10 ? `${value.toFixed(1)}ms` : formatDuration(value);
  return target !== null && value > target ? `${text}${OVER}` : text;
}

const pct = (ratio: number): string => `${Math.round(ratio * 100)}%`;

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Left-aligned columns, two spaces apart, indented like the rest of Guild's tables. */
function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (cells: string[]): string => `  ${cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd();
  return [fmt(header), ...rows.map(fmt)];
}
