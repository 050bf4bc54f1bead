/**
 * The headline figures of each benchmark, read from its result file: what `npm run bench` prints
 * in its one table and what it stores through `guild bench` (each benchmark appends them to
 * GUILD_METRICS when it runs as a Guild task, so they become the scenario's `metric.*` figures).
 *
 * A metric's name ends in its kind (regression/metrics.ts): `_speedup` a ratio where more is
 * better (Guild over its peer), `_ratio` one where less is better, `_ms` a time, `_bytes` memory,
 * `_per_s` a throughput, anything else a count. Not a benchmark itself.
 */
import type { McpGatewayResult } from './mcp-gateway.js';

export interface Headline {
  /** `<benchmark>.<figure>`: letters, digits, `_`, `.`, `-`; at most 64 characters. */
  metric: string;
  value: number;
  /** What the figure is, and against which peer. */
  label: string;
  /** The goal, as text ('>= 1.0'); empty when none is set. */
  goal: string;
}

type Json = Record<string, unknown>;
type Row = [key: string, value: number | null | undefined, label: string, goal?: string];

const rows = (bench: string, rs: readonly Row[]): Headline[] =>
  rs.filter((r): r is [string, number, string, string?] => typeof r[1] === 'number' && Number.isFinite(r[1])).map(([k, v, label, goal]) => ({ metric: `${bench}.${k}`, value: v, label, goal: goal ?? '' }));

const EXTRACT: Record<string, (r: Json) => Row[]> = {
  'scheduler-throughput': (r) => {
    const x = r as { results?: { concurrency: number; ratio: number }[]; guildInversions?: number; allRan?: boolean };
    return [
      ...(x.results ?? []).map((c): Row => [`c${c.concurrency}_speedup`, c.ratio, `tasks/s Guild / p-queue, concurrency ${c.concurrency}`, '>= 1.0']),
      ['priority_inversions', x.guildInversions, 'priority inversions in Guild', '0'],
      ['tasks_lost', x.allRan === undefined ? null : x.allRan ? 0 : 1, 'a task did not run (1) or all ran (0)', '0'],
    ];
  },
  'memory-bound': (r) => {
    const x = r as { summary?: { runner: string; makespanOverLowerBound: number; peakOverBudget: number; makespanOverGuild: number }[]; cgroup?: { makespanOverLowerBound: number; peakOverBudget: number; kernelOomKills: number } | null };
    const g = x.summary?.find((s) => s.runner === 'Guild');
    const peers = (x.summary ?? []).filter((s) => s.runner !== 'Guild');
    const best = peers.length > 0 ? Math.min(...peers.map((p) => p.makespanOverGuild)) : null;
    return [
      ['makespan_lb_ratio', g?.makespanOverLowerBound, 'Guild makespan / lower bound, host', '<= 1.25'],
      ['peak_budget_ratio', g?.peakOverBudget, 'Guild peak / budget, host', '<= 1.0'],
      ['best_peer_speedup', best, 'fastest peer makespan / Guild makespan', ''],
      ['cgroup_makespan_lb_ratio', x.cgroup?.makespanOverLowerBound, 'Guild makespan / lower bound, 1.4 GB cgroup', '<= 1.25'],
      ['cgroup_peak_budget_ratio', x.cgroup?.peakOverBudget, 'Guild peak / budget, 1.4 GB cgroup', '<= 1.0'],
      ['cgroup_oom_kills', x.cgroup?.kernelOomKills, 'kernel OOM kills, 1.4 GB cgroup', '0'],
    ];
  },
  'many-small': (r) => {
    const x = r as { summary?: { runner: string; makespanOverLowerBound: number; peakOverBudget: number }[] };
    const host = x.summary?.find((s) => s.runner === 'Guild on the host');
    const cg = x.summary?.find((s) => s.runner.startsWith('Guild in'));
    return [
      ['makespan_lb_ratio', host?.makespanOverLowerBound, '200 × 50 MB: Guild makespan / lower bound, host', ''],
      ['peak_budget_ratio', host?.peakOverBudget, '200 × 50 MB: Guild peak / budget, host', '<= 1.0'],
      ['cgroup_makespan_lb_ratio', cg?.makespanOverLowerBound, '200 × 50 MB: makespan / lower bound, 800 MB cgroup', ''],
      ['cgroup_peak_budget_ratio', cg?.peakOverBudget, '200 × 50 MB: peak / budget, 800 MB cgroup', '<= 1.0'],
    ];
  },
  startup: (r) => {
    const x = r as { cold?: { guildMedianMs: number; ratio: number }; idle?: { guildMidRunBytes: number; guildSettledBytes?: number; ratio: number } };
    return [
      ['version_ratio', x.cold?.ratio, 'guild --version / node -e 0', '<= 1.5'],
      ['idle_rss_bytes', x.idle?.guildMidRunBytes, 'Guild RSS while waiting, first 3 s', '< 50 MB'],
      ['idle_settled_rss_bytes', x.idle?.guildSettledBytes, 'Guild RSS while waiting, settled', '< 50 MB'],
      ['idle_rss_ratio', x.idle?.ratio, 'Guild RSS while waiting / bare node', ''],
    ];
  },
  'under-declared': (r) => {
    const x = r as { skipped?: string | null; summary?: { runner: string; completed: number; attempted: number; kernelOomKills: number; makespanOverGuild: number }[] };
    const g = x.summary?.find((s) => s.runner === 'Guild');
    const peers = (x.summary ?? []).filter((s) => s.runner !== 'Guild');
    return [
      ['not_completed', g ? g.attempted - g.completed : null, 'tasks Guild did not complete', '0'],
      ['oom_kills', g?.kernelOomKills, 'kernel OOM kills under Guild', '0'],
      ['best_peer_speedup', peers.length > 0 ? Math.min(...peers.map((p) => p.makespanOverGuild)) : null, 'fastest peer makespan / Guild makespan', ''],
    ];
  },
  reaction: (r) => {
    const x = r as { kill?: { p50: number; p99: number }; pause?: { p50: number; p99: number } };
    return [
      ['kill_p99_ms', x.kill?.p99, 'kill over hard limit, p99', '<= 250 ms'],
      ['pause_p99_ms', x.pause?.p99, 'pause at high pressure, p99', ''],
    ];
  },
  'sampling-cost': (r) => {
    const x = r as { guildUs?: number; naiveUs?: number; psUs?: number };
    const sp = (peer: number | undefined): number | null => (peer !== undefined && x.guildUs ? peer / x.guildUs : null);
    return [
      ['sample_us', x.guildUs, 'µs per sample of the agents’ trees', '< 1000'],
      ['reopen_peer_speedup', sp(x.naiveUs), 're-open-every-file peer / Guild, per sample', ''],
      ['ps_peer_speedup', sp(x.psUs), 'ps peer / Guild, per sample', ''],
    ];
  },
  'cache-tiers': (r) => {
    const x = r as { l1?: { ratio: number }; l2?: { medians: { guildGets: number; guildSets: number }; ratios: { getsVsRaw: number; setsVsRaw: number } }; l3?: { ratios: { sequential: number; concurrent: number } } | null };
    return [
      ['l1_get_speedup', x.l1?.ratio, 'L1 MemoryTier.get / lru-cache', '>= 0.7'],
      ['l2_gets_per_s', x.l2?.medians.guildGets, 'L2 SqliteTier gets/s', '>= 100,000'],
      ['l2_sets_per_s', x.l2?.medians.guildSets, 'L2 SqliteTier sets/s', '>= 50,000'],
      ['l2_get_speedup', x.l2?.ratios.getsVsRaw, 'L2 gets / raw better-sqlite3', ''],
      ['l3_get_speedup', x.l3?.ratios.sequential, 'L3 RedisTier.get / ioredis, sequential', ''],
      ['l3_get_100_speedup', x.l3?.ratios.concurrent, 'L3 RedisTier.get / ioredis, 100 in flight', ''],
    ];
  },
  'cache-compression': (r) => {
    type X = { tier: string; content: string; size: number; storedOn: number; storedOff: number; setsOn: number; setsOff: number; getsOn: number; getsOff: number };
    const x = r as { sqlite?: X[] };
    const row = (content: string): X | undefined => x.sqlite?.find((s) => s.content === content && s.size === 16 * 1024);
    const out: Row[] = [];
    for (const content of ['source', 'log']) {
      const s = row(content);
      if (s === undefined) continue;
      out.push([`sqlite_${content}_16k_stored_ratio`, s.storedOn / s.storedOff, `SQLite 16 KiB ${content}: stored bytes compressed / plain`, '']);
      out.push([`sqlite_${content}_16k_get_speedup`, s.getsOn / s.getsOff, `SQLite 16 KiB ${content}: gets/s compressed / plain`, '']);
    }
    return out;
  },
  'memo-quickstart': (r) => {
    const x = r as { summary?: { warmOverCold: number; warmHitRate: number; serveMedianMs: number; changedOverCold: number } };
    return [
      ['again_cold_ratio', x.summary?.warmOverCold, 'run again / cold makespan', '<= 0.3'],
      ['serve_ms', x.summary?.serveMedianMs, 'median serve of a cached task', '< 20 ms'],
      ['changed_cold_ratio', x.summary?.changedOverCold, 'after a 1-byte change / cold makespan', ''],
    ];
  },
  'dashboard-overhead': (r) => {
    const x = r as { headline?: { dashboardOverOff: number; telemetryOverOff: number; guildRssWithClientsWorstBytes: number } };
    return [
      ['sse_off_ratio', x.headline?.dashboardOverOff, 'makespan dashboard + 50 SSE / off', '<= 1.03'],
      ['telemetry_off_ratio', x.headline?.telemetryOverOff, 'makespan telemetry / off', ''],
      ['rss_bytes', x.headline?.guildRssWithClientsWorstBytes, 'Guild peak RSS with 50 SSE clients', '< 200 MB'],
    ];
  },
  'mcp-gateway': (r) => {
    const x = r as unknown as McpGatewayResult;
    const five = x.memory?.find((m) => m.where === 'host' && m.clients === 5);
    const l = x.latency;
    return [
      ['pss_5_clients_ratio', five?.pssRatio, 'memory gateway / direct at 5 clients (PSS)', '<= 0.3'],
      ['echo_overhead_ms', l?.overheadUncachedP50Ms, 'echo p50 gateway − direct HTTP', '<= 2 ms'],
      ['cached_over_ping_ms', l?.cachedOverPingP50Ms, 'cached echo p50 beyond the gateway ping', '<= 1 ms'],
      ['uncached_calls_speedup', x.throughput?.uncachedOverStdio, 'calls/s gateway uncached / direct stdio', ''],
      ['failures', x.gatewayFailures?.length, 'gateway failures', '0'],
    ];
  },
  'bench-verdicts': (r) => {
    const x = r as { rounds?: number; falseAlarms?: { guild: number }; detection?: { guild: number } };
    return [
      ['false_alarms', x.falseAlarms?.guild, `false alarms of ${x.rounds ?? '?'} same-commit --against runs`, '0'],
      ['missed', x.rounds !== undefined && x.detection ? x.rounds - x.detection.guild : null, `~20 % slowdowns missed of ${x.rounds ?? '?'}`, ''],
    ];
  },
  'task-metrics': (r) => {
    const x = r as { ratio?: number };
    return [['on_off_ratio', x.ratio, 'makespan with task metrics on / off', '<= 1.02']];
  },
  'spawn-cost': (r) => {
    type Side = { parentMs: number; childrenMs: number; wallMs: number };
    const x = r as { results?: { heapMb: number; native: Side; node: Side }[] };
    const at = (heap: number) => x.results?.find((y) => y.heapMb === heap);
    return [0, 200].flatMap((heap): Row[] => {
      const y = at(heap);
      return [
        [`parent_cpu_ratio_${heap}mb`, y ? y.native.parentMs / y.node.parentMs : null, `Guild's CPU per process started, its addon / Node's spawn, ${heap} MB of heap`, '< 1'],
        [`wall_ratio_${heap}mb`, y ? y.native.wallMs / y.node.wallMs : null, `wall time per task started, addon / Node's spawn, ${heap} MB of heap`, ''],
      ];
    });
  },
  'distributed-throughput': (r) => {
    const x = r as { tasks?: number; summary?: { workers: number; ratio: number; guildTps: number; guildCpuMsPerTask?: number; rawCpuMsPerTask?: number; allRan: boolean }[] };
    const s = x.summary ?? [];
    return [
      ...s.map((c): Row => [`w${c.workers}_speedup`, c.ratio, `tasks/s of \`true\` Guild / raw BullMQ, ${c.workers} worker(s)`, '>= 0.85']),
      ...s.map((c): Row => [`w${c.workers}_cpu_ratio`, c.guildCpuMsPerTask !== undefined && c.rawCpuMsPerTask ? c.guildCpuMsPerTask / c.rawCpuMsPerTask : null, `workers' CPU per task Guild / raw BullMQ, ${c.workers} worker(s)`, '']),
      ...s.map((c): Row => [`w${c.workers}_tasks_per_s`, c.guildTps, `tasks/s of \`true\` through Guild, ${c.workers} worker(s)`, '']),
      ['tasks_lost', s.length === 0 ? null : s.every((c) => c.allRan) ? 0 : 1, 'a task did not run (1) or all ran (0)', '0'],
    ];
  },
  'distributed-memory': (r) => {
    type S = { case: string; where: string; makespanOverOne: number; failed: number; worstPeakOverBudget: number; spread: number; oomKills: number };
    const x = r as { summary?: S[] };
    const s = (where: string, c: string): S | undefined => x.summary?.find((y) => y.where === where && y.case === c);
    const host = (x.summary ?? []).filter((y) => y.where === 'host');
    const cg = (x.summary ?? []).filter((y) => y.where === 'cgroup');
    const local = s('host', 'local run (no Redis)');
    return [
      // The local row's ratio is local / one worker; this figure is the other way round.
      ['one_local_ratio', local ? 1 / local.makespanOverOne : null, 'makespan 1 worker × 1.0 / local run, host', ''],
      ['two60_makespan_ratio', s('host', '2 workers × 0.6')?.failed === 0 ? s('host', '2 workers × 0.6')?.makespanOverOne : null, 'makespan 2 workers × 0.6 budget / 1 worker × 1.0, host', '<= 1.1'],
      ['two60_tasks_failed', s('host', '2 workers × 0.6')?.failed, 'tasks no worker could take, 2 workers × 0.6 budget', ''],
      ['two70_makespan_ratio', s('host', '2 workers × 0.7')?.makespanOverOne, 'makespan 2 workers × 0.7 budget / 1 worker × 1.0, host', '<= 1.1'],
      ['two70_spread_ratio', s('host', '2 workers × 0.7')?.spread, 'task-seconds max/min worker, 2 workers × 0.7, host', ''],
      ['peak_budget_ratio', host.length > 0 ? Math.max(...host.map((y) => y.worstPeakOverBudget)) : null, 'worst worker peak / its budget, host', '<= 1.0'],
      ['cgroup_two70_makespan_ratio', s('cgroup', '2 workers × 0.7')?.makespanOverOne, 'makespan 2 × 0.7 / 1 × 1.0, each worker in a cgroup', '<= 1.1'],
      ['cgroup_peak_budget_ratio', cg.length > 0 ? Math.max(...cg.map((y) => y.worstPeakOverBudget)) : null, 'worst worker peak / its budget, cgroups', '<= 1.0'],
      ['cgroup_oom_kills', cg.length > 0 ? cg.reduce((n, y) => n + y.oomKills, 0) : null, 'kernel OOM kills in the workers’ cgroups', '0'],
    ];
  },
};

/** Every benchmark of Guild's suite, in the order `npm run bench` runs them. */
export const BENCHMARKS = Object.keys(EXTRACT);

/** The headline figures in benchmark `name`'s result (none for a benchmark without a table entry). */
export function headlines(name: string, result: unknown): Headline[] {
  const extract = EXTRACT[name];
  return extract && result !== null && typeof result === 'object' ? rows(name, extract(result as Json)) : [];
}
