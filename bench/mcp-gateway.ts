/**
 * The MCP gateway (issue 12) against the way agents use MCP servers today, each session spawning
 * its own copy of every server. Published servers from npm, real SDK clients, in one run:
 *
 * 1. Memory: 1, 5 and 10 clients, each configured with the same 3 servers (server-everything,
 *    server-memory with its own MEMORY_FILE_PATH, server-filesystem on a temp dir). Direct: every
 *    client spawns its 3 over stdio. Gateway: `node dist/src/cli/main.js mcp serve CONFIG --port 0
 *    --json`, every client a streamable-HTTP session on its one (default) project. Counted once
 *    every client has initialized and called one tool per server, then 1 s of settling: Σ RSS and
 *    Σ PSS (/proc/<pid>/smaps_rollup) of the servers' trees, or of the gateway and its backends.
 *    The clients (this process) are on neither side. RSS counts Node's shared text once per
 *    process; PSS splits it. Goal: gateway / direct <= 0.3 at 5 clients. Then again with each
 *    configuration alone in a fresh 4 GiB memory cgroup (also reporting what the cgroup is charged,
 *    less inactive page cache), where root and a memory hierarchy allow.
 * 2. Latency of `echo`, p50/p95 over --calls calls after --warmup, paths taking turns: direct stdio;
 *    direct streamable HTTP to server-everything's own HTTP mode (the same client transport as the
 *    gateway: the fair baseline); gateway uncached (a new message per call); gateway cached (one
 *    message); `ping` direct and to the gateway. Goals: p50(gateway uncached) − p50(direct HTTP)
 *    <= 2 ms; a cached call <= 1 ms, read as p50(cached) − p50(ping the gateway) since the SDK's
 *    HTTP round trip alone takes longer than that (the absolute figure is printed too). Then
 *    `trigger-long-running-operation` {duration: 0.3 (seconds), steps: 1}: direct stdio, gateway
 *    uncached, gateway cached.
 * 3. echo calls/s with 10 concurrent clients: each with its own stdio server (direct), over HTTP
 *    to one server-everything, through the gateway uncached and cached; --rounds rounds of
 *    --seconds per path, the order rotated, the median round per path. Ratio gateway / direct
 *    (issue 12 sets no goal for it).
 *
 * Without `guild mcp serve` in this build, every gateway row says "gateway not built" and the
 * benchmark still exits 0; a gateway that exists but fails exits 1.
 *
 * Run: npx tsc -p . && node dist/bench/mcp-gateway.js [--clients=1,5,10] [--where=host|cgroup|both]
 *      [--calls=300] [--warmup=30] [--long-calls=5] [--concurrency=10] [--seconds=1] [--rounds=3]
 *      [--parts=memory,latency,throughput]
 * Writes bench/results/mcp-gateway.json.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { GatewayStatus } from '../src/telemetry/mcp-status.js';
import { argNumber, environment, fmtMB, fmtMs, fmtRatio, isMain, makeMemoryCgroup, printTable, writeResult } from './lib.js';
import { latencyPart, throughputPart, type LatencyResult, type PathName, type Rig, type ThroughputResult } from './mcp-latency.js';
import {
  closeHttp,
  connectHttp,
  connectStdio,
  everythingSpec,
  gatewayConfig,
  gatewayMissing,
  gatewayStatus,
  GUILD_MAIN,
  NOT_BUILT,
  startEverythingHttp,
  startGateway,
  type RunningGateway,
} from './mcp-lib.js';
import { MEMORY_CGROUP_LIMIT, memoryPart, type MemoryRow } from './mcp-memory.js';

export const GOALS = { memoryRatioAt5: 0.3, overheadUncachedP50Ms: 2, cachedP50Ms: 1 } as const;

export interface McpGatewayResult {
  /** null: the gateway ran; else why it did not ("gateway not built: …"). */
  gatewayMissing: string | null;
  /** Failures (the gateway exists but broke, or a part's call failed); the run exits 1 when non-empty. */
  gatewayFailures: string[];
  memory: MemoryRow[];
  cgroupSkipped: string | null;
  latency: LatencyResult | null;
  throughput: ThroughputResult | null;
  /** The gateway's own /status after the latency and throughput parts (cache hits, instances). */
  gatewayAfter: { cache: GatewayStatus['cache']; backends: { server: string; instances: number; pids: number; calls: number; cacheHits: number }[] } | null;
}

const listArg = (name: string, fallback: string): string[] =>
  (process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback).split(',').filter((s) => s !== '');

const met = (ok: boolean): string => (ok ? 'met' : 'MISSED');
const fmtMsFine = (ms: number | null | undefined): string => (ms == null ? '—' : `${ms.toFixed(2)} ms`);

function printMemory(rows: readonly MemoryRow[], where: 'host' | 'cgroup'): void {
  const rs = rows.filter((r) => r.where === where);
  if (rs.length === 0) return;
  const inCg = where === 'cgroup';
  console.log(`\nMemory, ${inCg ? `each configuration alone in a ${fmtMB(MEMORY_CGROUP_LIMIT)} memory cgroup` : 'on the host'} (Σ over process trees; clients excluded):`);
  const g = (r: MemoryRow, f: (x: NonNullable<MemoryRow['gateway']>) => string): string => (r.gateway ? f(r.gateway) : 'n/a');
  printTable(
    ['clients', 'direct procs', 'direct RSS', 'direct PSS', ...(inCg ? ['direct cgroup'] : []), 'gw procs', 'gw RSS', 'gw PSS', ...(inCg ? ['gw cgroup'] : []), 'gateway alone RSS/PSS', 'RSS gw/direct', 'PSS gw/direct', ...(inCg ? ['cgroup gw/direct'] : [])],
    rs.map((r): string[] => [
      String(r.clients),
      String(r.direct.processes),
      fmtMB(r.direct.rssBytes),
      fmtMB(r.direct.pssBytes),
      ...(inCg ? [r.direct.cgroupBytes === null ? 'n/a' : fmtMB(r.direct.cgroupBytes)] : []),
      g(r, (x) => String(x.processes)),
      g(r, (x) => fmtMB(x.rssBytes)),
      g(r, (x) => fmtMB(x.pssBytes)),
      ...(inCg ? [g(r, (x) => (x.cgroupBytes === null ? 'n/a' : fmtMB(x.cgroupBytes)))] : []),
      g(r, (x) => `${fmtMB(x.gatewayRssBytes ?? 0)} / ${fmtMB(x.gatewayPssBytes ?? 0)}`),
      r.rssRatio === null ? '—' : fmtRatio(r.rssRatio),
      r.pssRatio === null ? '—' : fmtRatio(r.pssRatio),
      ...(inCg ? [r.cgroupRatio === null ? '—' : fmtRatio(r.cgroupRatio)] : []),
    ]),
  );
  if (rs.some((r) => r.gatewayNote === NOT_BUILT)) console.log(`  gateway columns: ${NOT_BUILT}`);
  for (const r of rs) if (r.gatewayNote && r.gatewayNote !== NOT_BUILT) console.log(`  ${r.clients} client(s): ${r.gatewayNote}`);
  const at5 = rs.find((r) => r.clients === 5);
  if (at5?.pssRatio != null && at5.rssRatio != null) {
    console.log(
      `  gateway / direct at 5 clients: PSS ${fmtRatio(at5.pssRatio)}, RSS ${fmtRatio(at5.rssRatio)} (goal <= ${GOALS.memoryRatioAt5}: PSS ${met(at5.pssRatio <= GOALS.memoryRatioAt5)}, RSS ${met(at5.rssRatio <= GOALS.memoryRatioAt5)})`,
    );
  } else if (at5) console.log(`  gateway / direct at 5 clients: ${at5.gatewayNote ?? 'n/a'} (goal <= ${GOALS.memoryRatioAt5})`);
}

function printLatency(l: LatencyResult, note: string | null): void {
  console.log(`\nLatency of echo (${l.calls} calls per path after ${l.warmup} warm-up rounds, paths taking turns):`);
  const order: PathName[] = ['direct stdio', 'direct HTTP', 'gateway uncached', 'gateway cached', 'ping direct HTTP', 'ping gateway'];
  printTable(
    ['path', 'p50', 'p95', 'mean'],
    order.map((p) => {
      const s = l.paths[p];
      return s ? [p, fmtMsFine(s.p50Ms), fmtMsFine(s.p95Ms), fmtMsFine(s.meanMs)] : [p, note ?? 'n/a', '', ''];
    }),
  );
  if (l.overheadUncachedP50Ms !== null) {
    console.log(`  gateway overhead p50 uncached (gateway − direct HTTP): ${fmtMsFine(l.overheadUncachedP50Ms)} (goal <= ${GOALS.overheadUncachedP50Ms} ms: ${met(l.overheadUncachedP50Ms <= GOALS.overheadUncachedP50Ms)})`);
    console.log(
      `  cached p50 beyond the gateway's HTTP round trip (cached − ping gateway): ${fmtMsFine(l.cachedOverPingP50Ms)} (goal <= ${GOALS.cachedP50Ms} ms: ${met((l.cachedOverPingP50Ms ?? Infinity) <= GOALS.cachedP50Ms)}); ` +
        `absolute ${fmtMsFine(l.cachedP50Ms)}, of which the SDK's HTTP transport (ping) ${fmtMsFine(l.paths['ping gateway']?.p50Ms)}`,
    );
  } else console.log(`  gateway overhead p50 uncached (goal <= ${GOALS.overheadUncachedP50Ms} ms) and cached (goal <= ${GOALS.cachedP50Ms} ms): ${note ?? 'n/a'}`);
  const lo = l.long;
  console.log(
    `  trigger-long-running-operation {duration: ${lo.durationS} s, steps: 1}, p50 of ${lo.calls}: direct stdio ${fmtMsFine(lo.directStdio.p50Ms)}; ` +
      (lo.gatewayUncached && lo.gatewayCached
        ? `gateway uncached ${fmtMsFine(lo.gatewayUncached.p50Ms)}, cached ${fmtMsFine(lo.gatewayCached.p50Ms)}; cached / uncached ${lo.cachedOverUncached!.toFixed(3)} (a hit skips the ${lo.durationS * 1000} ms)`
        : (note ?? 'gateway n/a')),
  );
}

function printThroughput(t: ThroughputResult, note: string | null): void {
  const f = (x: number | null): string => (x === null ? (note ?? 'n/a') : `${Math.round(x)}/s`);
  console.log(`\nThroughput of echo, ${t.clients} concurrent clients (all in this one process), median of ${t.rounds} round(s) of ${t.seconds} s per path:`);
  console.log(`  direct stdio (a server each) ${f(t.directStdio)}; direct HTTP (one server) ${f(t.directHttp)}; gateway uncached ${f(t.gatewayUncached)}; gateway cached ${f(t.gatewayCached)}`);
  console.log(`  rounds: ${Object.entries(t.perRound).map(([k, xs]) => `${k} ${xs.map((x) => Math.round(x)).join(', ')}`).join('; ')}`);
  if (t.uncachedOverStdio !== null) {
    console.log(
      `  gateway / direct stdio calls/s: uncached ${fmtRatio(t.uncachedOverStdio)}, cached ${fmtRatio(t.cachedOverStdio ?? NaN)}; uncached / direct HTTP ${fmtRatio(t.uncachedOverHttp ?? NaN)} (medians of same-round ratios; issue 12 sets no goal; higher is better)`,
    );
  } else console.log(`  gateway / direct calls/s: ${note ?? 'n/a'}`);
}

/** The rig of the latency and throughput parts; `gatewayNote` non-null: no gateway in it. */
async function openRig(dir: string, gatewayNote: string | null, fail: (m: string) => void): Promise<{ rig: Rig; close: () => Promise<void>; gw: RunningGateway | null }> {
  const stdio = await connectStdio(everythingSpec());
  const closers: (() => Promise<void>)[] = [() => stdio.close()];
  const close = async (): Promise<void> => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  };
  try {
    const http = await startEverythingHttp();
    closers.push(() => http.stop());
    const httpClient = await connectHttp(http.url);
    closers.push(() => closeHttp(httpClient));
    const rig: Rig = { stdio, http: httpClient, httpUrl: http.url, gateway: null };
    let gw: RunningGateway | null = null;
    if (gatewayNote === null) {
      const config = join(dir, 'guild.yaml');
      // One server and names unchanged: `echo` on every path.
      writeFileSync(config, JSON.stringify(gatewayConfig([everythingSpec()], { prefix: false }), null, 2));
      try {
        const g = await startGateway(config, dir);
        gw = g;
        closers.push(async () => {
          await g.stop();
          if (g.orphans.length > 0) fail(`the latency gateway left backends alive after it exited: ${g.orphans.join(', ')}`);
        });
        const uncached = await connectHttp(g.url);
        closers.push(() => closeHttp(uncached));
        const cached = await connectHttp(g.url);
        closers.push(() => closeHttp(cached));
        rig.gateway = { uncached, cached, url: g.url };
      } catch (e) {
        fail(`latency gateway: ${(e as Error).message}${gw ? `\ngateway stderr:\n${gw.stderr()}` : ''}`);
      }
    }
    return { rig, close, gw };
  } catch (e) {
    await close();
    throw e;
  }
}

export async function main(): Promise<McpGatewayResult> {
  const counts = listArg('clients', '1,5,10').map(Number).filter((n) => Number.isInteger(n) && n > 0);
  const where = process.argv.find((a) => a.startsWith('--where='))?.slice('--where='.length) ?? 'both';
  const parts = new Set(listArg('parts', 'memory,latency,throughput'));
  const calls = Math.max(1, argNumber('calls', 300));
  const warmup = Math.max(0, argNumber('warmup', 30));
  const longCalls = Math.max(1, argNumber('long-calls', 5));
  const concurrency = Math.max(1, argNumber('concurrency', 10));
  const seconds = Math.max(0.2, argNumber('seconds', 1));
  const tpRounds = Math.max(1, argNumber('rounds', 3));

  const missing = gatewayMissing();
  const failures: string[] = [];
  const fail = (m: string): void => {
    failures.push(m);
    console.log(`  FAILED: ${m.split('\n')[0]}`);
  };
  /** Why the gateway is not run (now): not built, or it already failed once (a broken one could hang every attempt). */
  const gatewayNote = (): string | null => missing ?? (failures.length > 0 ? 'gateway skipped: it failed earlier in this run' : null);
  const t0 = performance.now();
  console.log(`mcp-gateway: ${missing ?? `gateway: node ${relative(process.cwd(), GUILD_MAIN).startsWith('..') ? GUILD_MAIN : relative(process.cwd(), GUILD_MAIN)} mcp serve CONFIG --port 0 --json`}`);

  const memory: MemoryRow[] = [];
  let cgroupSkipped: string | null = where === 'host' ? 'not asked for (--where=host)' : null;
  if (parts.has('memory')) {
    console.log(`memory: ${counts.join(', ')} client(s) × 3 servers, direct vs gateway`);
    if (where !== 'cgroup') memory.push(...(await memoryPart('host', counts, gatewayNote, fail)));
    if (cgroupSkipped === null) {
      const probe = makeMemoryCgroup('mcp-probe', MEMORY_CGROUP_LIMIT);
      if (typeof probe === 'string') cgroupSkipped = probe;
      else {
        await probe.remove();
        memory.push(...(await memoryPart('cgroup', counts, gatewayNote, fail)));
      }
    }
    printMemory(memory, 'host');
    printMemory(memory, 'cgroup');
    if (cgroupSkipped && where !== 'host') console.log(`\nMemory in a memory cgroup: skipped (${cgroupSkipped})`);
  }

  let latency: LatencyResult | null = null;
  let throughput: ThroughputResult | null = null;
  let gatewayAfter: McpGatewayResult['gatewayAfter'] = null;
  if (parts.has('latency') || parts.has('throughput')) {
    const dir = mkdtempSync(join(tmpdir(), 'guild-bench-mcp-lat-'));
    try {
      const before = gatewayNote();
      const { rig, close, gw } = await openRig(dir, before, fail);
      const note = before?.split(':')[0] ?? (rig.gateway ? null : 'gateway FAILED');
      try {
        // A failing call ends its part only: the figures of the others are still written.
        if (parts.has('latency')) {
          console.log(`latency: echo × ${calls} per path, then the 300 ms tool × ${longCalls} per path …`);
          latency = await latencyPart(rig, calls, warmup, longCalls).catch((e: Error) => {
            fail(`latency part: ${e.message}`);
            return null;
          });
        }
        if (parts.has('throughput')) {
          console.log(`throughput: ${concurrency} concurrent clients, ${tpRounds} round(s) of ${seconds} s per path …`);
          throughput = await throughputPart(rig, concurrency, seconds, tpRounds).catch((e: Error) => {
            fail(`throughput part: ${e.message}`);
            return null;
          });
        }
        if (gw && rig.gateway) {
          const s = await gatewayStatus(gw);
          if (s) {
            gatewayAfter = {
              cache: s.cache,
              backends: s.backends.map((b) => ({ server: b.server, instances: b.instances, pids: b.allPids.length, calls: b.calls, cacheHits: b.cacheHits })),
            };
          }
        }
      } finally {
        await close();
      }
      if (latency) printLatency(latency, note);
      if (throughput) printThroughput(throughput, note);
      if (gatewayAfter) {
        const c = gatewayAfter.cache;
        console.log(
          `  the gateway's /status afterwards: cache hits ${c.hits}, misses ${c.misses}, stores ${c.stores}; ` +
            gatewayAfter.backends.map((b) => `${b.server}: ${b.pids} instance(s) over its life, ${b.calls} calls forwarded, ${b.cacheHits} hits`).join('; '),
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  if (missing) console.log(`\n${missing}: the direct figures above stand alone; the gateway rows come once \`guild mcp serve\` is merged.`);
  if (failures.length > 0) {
    console.log(`\n${failures.length} failure(s):`);
    for (const f of failures) console.log(`- ${f}`);
    process.exitCode = 1;
  }
  console.log(`(${fmtMs(performance.now() - t0)} in all)`);

  const result: McpGatewayResult = { gatewayMissing: missing, gatewayFailures: failures, memory, cgroupSkipped, latency, throughput, gatewayAfter };
  console.log(`wrote ${writeResult('mcp-gateway', { benchmark: 'mcp-gateway', environment: environment(), goals: GOALS, ...result })}`);
  return result;
}

if (isMain(import.meta.url)) await main();
