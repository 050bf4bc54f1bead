import { CACHE_DISABLED_TEXT, type RunReport, type TaskReport } from '../workflow/report.js';
import { formatBytes, formatDuration } from '../util/units.js';
import { alertText } from '../telemetry/alerts.js';
import type { KpiReport, KpiScore } from '../telemetry/state.js';
import { WELL_KNOWN_METRICS } from '../util/spend.js';

/** The human summary of a run: every figure is one the run measured. */
export function formatSummary(r: RunReport): string {
  const counts = Object.entries(r.counts)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${n} ${k}`)
    .join(', ');
  const lbTerm =
    r.lower_bound_ms === r.lower_bound.chain_ms ? 'dependency chain' : r.lower_bound_ms === r.lower_bound.memory_ms ? 'memory × time / budget' : 'cpu × time / cores';
  const ratio = r.lower_bound_ms > 0 ? (r.makespan_ms / r.lower_bound_ms).toFixed(2) : '—';
  const pct = r.budget_bytes > 0 ? Math.round((100 * r.peak_rss_bytes) / r.budget_bytes) : 0;
  const out: string[] = [];
  out.push('');
  out.push(`${r.ok ? 'OK' : r.interrupted ? 'INTERRUPTED' : 'FAILED'}: ${r.tasks.length} tasks: ${counts}   (run ${r.run_id})`);
  out.push(
    `  makespan ${formatDuration(r.makespan_ms)}   lower bound ${formatDuration(r.lower_bound_ms)} (${lbTerm})   makespan / lower bound ${ratio}`,
  );
  if (r.workers) out.push(`  agents ran on ${r.workers.length} worker${r.workers.length === 1 ? '' : 's'}, each under its own budget (below); this machine's figures:`);
  out.push(
    `  peak agents' RSS ${formatBytes(r.peak_rss_bytes)} of budget ${formatBytes(r.budget_bytes)} (${pct}%, budget from ${r.budget_source}, limit ${formatBytes(
      r.effective_limit_bytes,
    )} via ${r.memory_source})`,
  );
  out.push(
    `  admissions ${r.admissions.admitted} (${r.admissions.backfilled} backfilled); waits for memory ${r.admissions.denied.memory}, for CPU ${r.admissions.denied.cpu}; ${r.samples} samples (every 100–${r.sample_interval_ms} ms, faster under pressure)`,
  );
  const pl = r.pools;
  out.push(
    `  pools: execution ${formatBytes(pl.execution.bytes)}, caching ${formatBytes(pl.caching.bytes)}, critical ${formatBytes(pl.critical.bytes)}, buffer ${formatBytes(pl.buffer.bytes)}; peak reserved: ${formatBytes(pl.peak_reserved_bytes.other)} by tasks below critical (they may take ${formatBytes(pl.non_critical_limit_bytes)}, all ${formatBytes(r.budget_bytes)} while the machine is calm), ${formatBytes(pl.peak_reserved_bytes.critical)} by critical tasks`,
  );
  const p = r.pressure;
  const at = Object.entries(p.time_ms)
    .filter(([, ms]) => ms > 0)
    .map(([lvl, ms]) => `${lvl} ${formatDuration(ms)}`)
    .join(', ');
  const count = (type: string) => r.responses.filter((x) => x.type === type).length;
  out.push(
    `  memory pressure: highest ${p.highest}${at ? ` (${at})` : ''}; ${count('pause')} pauses, ${r.guild_kills} kills by Guild, kernel OOM kills ${r.oom_kills ?? 'not readable'}`,
  );
  const h = r.guild_health;
  out.push(
    `  Guild itself: peak RSS ${formatBytes(h.rss_peak_bytes)} (target < 200 MB active), event-loop delay p99 ${h.event_loop_delay_p99_ms} ms, ${h.gc_count} GC pauses totalling ${h.gc_pause_total_ms} ms (max ${h.gc_pause_max_ms} ms)`,
  );
  out.push(`  ${cacheLine(r)}`);
  out.push(...spendLines(r));
  if (r.kpis) out.push(...kpiLines(r.kpis));
  for (const a of r.alerts) out.push(`  alert at ${formatDuration(a.at_ms)} (${a.severity}): ${alertText(a)}`);
  out.push('');
  // SPENT only when some task reported spending: most workflows run no model.
  const spentColumn = r.tasks.some((t) => Object.keys(t.metrics ?? {}).length > 0 || Object.keys(t.cache.saved_metrics ?? {}).length > 0);
  const header = ['TASK', 'AGENT', 'STATUS', 'START', 'END', 'RUN TIME', 'PEAK RSS', 'TRIES', ...(spentColumn ? ['SPENT'] : []), 'NOTE'];
  const rows = r.tasks.map((t) => [
    t.id,
    t.agent,
    t.status,
    formatDuration(t.started_ms),
    formatDuration(t.ended_ms),
    t.attempts > 0 ? formatDuration(t.duration_ms) : '—',
    formatBytes(t.peak_rss_bytes),
    String(t.attempts),
    ...(spentColumn ? [formatSpend(t.metrics ?? {}) || '—'] : []),
    [t.error ?? '', t.worker !== undefined ? `on ${t.worker}` : '', cacheNote(t, r.cache.enabled), t.paused_ms > 0 ? `paused ${formatDuration(t.paused_ms)}` : '', ...t.kills.map((k) => `${k.reason === 'limit' ? 'limit kill' : 'pressure kill'} at ${formatDuration(k.at_ms)}`)]
      .filter(Boolean)
      .join('; '),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const fmt = (cells: string[]): string => `  ${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}`.trimEnd();
  out.push(fmt(header));
  for (const row of rows) out.push(fmt(row));
  if (r.mcp) out.push('', ...mcpLines(r.mcp));
  if (r.workers) out.push('', ...workerLines(r.workers));
  if (r.log_dir) out.push('', `  logs: ${r.log_dir}`);
  return out.join('\n');
}

/** Distributed mode: each worker's budget, measured peak and share of the run. */
function workerLines(workers: NonNullable<RunReport['workers']>): string[] {
  if (workers.length === 0) return ['  workers: none took a task'];
  return [
    `  workers (peak: highest Σ measured at one instant since the worker started):`,
    ...workers.map((w) => `    ${w.name}${w.host ? ` on ${w.host}` : ''}: ${w.tasks} task${w.tasks === 1 ? '' : 's'}, peak ${formatBytes(w.peak_bytes)} of budget ${formatBytes(w.budget_bytes)}${w.pressure ? `, pressure ${w.pressure}` : ''}${w.rejected > 0 ? `, ${w.rejected} unsigned job(s) rejected` : ''}`),
  ];
}

/** The run's MCP gateway: each backend (server × project) with its memory and what it served. */
function mcpLines(m: NonNullable<RunReport['mcp']>): string[] {
  const c = m.cache;
  const out = [`  MCP gateway ${m.url}: ${m.servers.length} server${m.servers.length === 1 ? '' : 's'}; tool cache ${c.hits} hit${c.hits === 1 ? '' : 's'}, ${c.misses} miss${c.misses === 1 ? '' : 'es'}`];
  for (const b of m.backends) {
    const where = b.project === '*' ? 'shared' : b.project === m.defaultProject ? 'project' : b.project;
    const recycles = b.recycles > 0 ? `, ${b.recycles} recycle${b.recycles === 1 ? '' : 's'}` : '';
    const restarts = b.restarts > 0 ? `, ${b.restarts} restart${b.restarts === 1 ? '' : 's'}` : '';
    out.push(`    ${b.server} (${where}): pid ${b.allPids.join(', ') || '—'}, peak RSS ${formatBytes(b.peakRssBytes)}, ${b.calls} call${b.calls === 1 ? '' : 's'}, ${b.cacheHits} from cache${restarts}${recycles}`);
  }
  return out;
}

/** The overall KPI score, each scored KPI on one line, and the recommendations. */
function kpiLines(k: KpiReport): string[] {
  const scored = k.scores.filter((s) => s.score !== null);
  if (scored.length === 0) return ['  KPIs: nothing to score yet (see guild report for why)'];
  const parts = scored.map((s) => `${s.label} ${kpiValue(s)} ${s.score}`);
  const out = [`  KPIs: overall ${k.overall.score} (${k.overall.points}/100): ${parts.join('; ')}`];
  for (const rec of k.recommendations) out.push(`  recommendation: ${rec}`);
  return out;
}

export function kpiValue(s: KpiScore): string {
  if (s.value === null) return '—';
  if (s.unit === 'ms') return formatDuration(s.value);
  if (s.unit === 'x') return `${s.value.toFixed(2)}×`;
  return `${Math.round(s.value * 1000) / 10}%`;
}

function cacheLine(r: RunReport): string {
  const c = r.cache;
  if (c.disabled_by !== null) return `cache: off (${CACHE_DISABLED_TEXT[c.disabled_by]})`;
  const rate = c.hit_rate === null ? 'no task looked up' : `hit rate ${Math.round(c.hit_rate * 100)}%`;
  const off = c.not_cacheable > 0 ? `; ${c.not_cacheable} task${c.not_cacheable === 1 ? '' : 's'} not cacheable (see NOTE)` : '';
  const ctx = c.context ? `, context ${c.context}` : '';
  const spend = formatSpend(c.saved_metrics ?? {});
  return `cache: ${c.hits} hit${c.hits === 1 ? '' : 's'}, ${c.misses} miss${c.misses === 1 ? '' : 'es'} (${rate}), saved ${formatDuration(c.saved_ms)}${spend ? `, ${spend}` : ''}${off}; tiers ${c.tiers.join(' → ')}${ctx}`;
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
/** Dollars with the precision a small spend needs: $0.0123, $1.25, $120. */
export const formatUsd = (v: number): string => `$${v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toFixed(4)}`;

/** Tokens and money of a metrics record, as people read them ('' when it has neither). */
export function formatSpend(m: Readonly<Record<string, number>>): string {
  const parts: string[] = [];
  const tokens = (m.tokens_in ?? 0) + (m.tokens_out ?? 0);
  if (tokens > 0) parts.push(`${int(tokens)} tokens`);
  if (m.cost_usd !== undefined && m.cost_usd > 0) parts.push(formatUsd(m.cost_usd));
  return parts.join(', ');
}

/** What the tasks reported spending, per agent type, and against the run's limits; nothing when no task reported any. */
function spendLines(r: RunReport): string[] {
  const s = r.spend;
  if (s === undefined || (Object.keys(s.totals).length === 0 && s.malformed_lines === 0)) return [];
  const t = s.totals;
  const detail = [
    t.tokens_in !== undefined ? `in ${int(t.tokens_in)}` : '',
    t.tokens_out !== undefined ? `out ${int(t.tokens_out)}` : '',
    t.tokens_cache_read !== undefined ? `cache read ${int(t.tokens_cache_read)}` : '',
  ].filter(Boolean);
  const others = Object.entries(t)
    .filter(([k]) => !WELL_KNOWN_METRICS.has(k))
    .map(([k, v]) => `${k} ${Math.round(v * 1000) / 1000}`);
  const head = [formatSpend(t) || 'no tokens or cost', ...(detail.length > 0 ? [`(${detail.join(', ')})`] : [])].join(' ');
  const lim = s.limits;
  const limits = [lim.cost_usd !== null ? `limit ${formatUsd(lim.cost_usd)}` : '', lim.tokens !== null ? `limit ${int(lim.tokens)} tokens` : ''].filter(Boolean).join(', ');
  const out = [`  spent: ${head}${others.length > 0 ? `; ${others.join(', ')}` : ''}${limits ? ` (${limits}${lim.exceeded ? ': REACHED' : ''})` : ''}`];
  const agents = Object.entries(s.by_agent).filter(([, m]) => formatSpend(m) !== '');
  if (agents.length > 1) out.push(`    by agent: ${agents.map(([a, m]) => `${a} ${formatSpend(m)}`).join('; ')}`);
  if (s.malformed_lines > 0) out.push(`    ${s.malformed_lines} metric line${s.malformed_lines === 1 ? '' : 's'} could not be read (skipped; see each task's .metrics.jsonl)`);
  return out;
}

/** Per task; nothing when caching is off for the whole run (the cache line says why). */
function cacheNote(t: TaskReport, cachingOn: boolean): string {
  const c = t.cache;
  if (c.status === 'hit') {
    const spend = formatSpend(c.saved_metrics ?? {});
    return `from cache in ${formatDuration(c.serve_ms)}, saved ${formatDuration(c.saved_ms)}${spend ? ` and ${spend}` : ''}`;
  }
  if (c.reason === null || !cachingOn) return '';
  return c.status === 'off' ? `not cached: ${c.reason}` : c.reason;
}
