import type { ResolvedConfig } from '../config/resolve.js';
import type { Governor } from '../governor/governor.js';
import type { PressureLevel } from '../governor/levels.js';
import type { SchedulerStats } from '../scheduler/scheduler.js';
import type { MemorySnapshot } from '../system/probe.js';
import type { SelfHealth } from '../telemetry/self-monitor.js';
import type { TaskEstimates } from './estimates.js';
import { poolReport } from '../config/pools.js';
import { lowerBound, type Alert, type CacheReport, type ResponseRecord, type RunReport, type TaskReport, type TaskStatus } from './report.js';
import type { TaskCache } from './task-cache.js';
import { addMetrics, tokensOf } from '../util/spend.js';
import type { TaskState } from './task-state.js';

/** Rounds to 0.1 ms, as every time in the report is. */
export const round = (v: number | null): number | null => (v === null ? null : Math.round(v * 10) / 10);

/** What the run measured and counted, besides its tasks: the inputs of its report. */
export interface RunTotals {
  runId: string;
  /** What the run's lease found at its start (leftovers of crashed runs it ended). */
  notes: readonly string[];
  interrupted: boolean;
  makespanMs: number;
  /** The machine at the end. */
  memory: MemorySnapshot;
  oomAtStart: number | null;
  peakTotal: number;
  guildPeak: number;
  health: SelfHealth;
  samples: number;
  /** Samples with a failed read, and the first error seen (for the warning). */
  failedSamples: { count: number; first: string | null };
  guildKills: number;
  scheduler: SchedulerStats;
  governor: Governor;
  responses: ResponseRecord[];
  alerts: Alert[];
  logDir: string | null;
  logFile: (s: TaskState) => string | null;
}

/** Task memoization over the run. */
export function cacheReport(config: ResolvedConfig, states: Iterable<TaskState>, cache: TaskCache): CacheReport {
  let hits = 0;
  let misses = 0;
  let savedMs = 0;
  let savedMetrics: Record<string, number> = {};
  let notCacheable = 0;
  for (const { cache: c } of states) {
    if (c.status === 'hit') {
      hits++;
      savedMs += c.saved_ms;
      savedMetrics = addMetrics(savedMetrics, c.saved_metrics ?? {});
    } else if (c.status === 'miss') misses++;
    else if (c.reason !== null) notCacheable++;
  }
  return {
    enabled: cache.enabled,
    disabled_by: cache.disabledBy(),
    hits,
    misses,
    hit_rate: hits + misses === 0 ? null : Math.round((hits / (hits + misses)) * 1000) / 1000,
    saved_ms: round(savedMs)!,
    saved_metrics: savedMetrics,
    not_cacheable: notCacheable,
    tiers: [...cache.tiers],
    context: config.cache.context.preset,
  };
}

/** Which of the run's `limits:` its tasks' spending has reached, if any. */
export function limitExceeded(config: ResolvedConfig, totals: Readonly<Record<string, number>>): 'cost_usd' | 'tokens' | null {
  const { costUsd, tokens } = config.limits;
  if (costUsd !== null && (totals.cost_usd ?? 0) >= costUsd) return 'cost_usd';
  if (tokens !== null && tokensOf(totals) >= tokens) return 'tokens';
  return null;
}

/** Σ of what the tasks spent: the run's totals, per agent type, and unreadable lines. */
export function spendTotals(states: Iterable<TaskState>): { totals: Record<string, number>; byAgent: Record<string, Record<string, number>>; malformed: number } {
  let totals: Record<string, number> = {};
  const byAgent: Record<string, Record<string, number>> = {};
  let malformed = 0;
  for (const s of states) {
    totals = addMetrics(totals, s.metrics);
    byAgent[s.type] = addMetrics(byAgent[s.type] ?? {}, s.metrics);
    malformed += s.metricsMalformed;
  }
  return { totals, byAgent, malformed };
}

/** Spent (from the tasks) and saved (from the cache report's sums over hits). */
function spendReport(config: ResolvedConfig, states: ReadonlyMap<string, TaskState>, cache: CacheReport): Pick<RunReport, 'metrics' | 'spend' | 'saved'> {
  const { totals, byAgent, malformed } = spendTotals(states.values());
  const saved = cache.saved_metrics ?? {};
  return {
    metrics: totals,
    spend: { totals, by_agent: byAgent, malformed_lines: malformed, limits: { cost_usd: config.limits.costUsd, tokens: config.limits.tokens, exceeded: limitExceeded(config, totals) } },
    saved: { time_ms: cache.saved_ms, tokens: tokensOf(saved), cost_usd: saved.cost_usd ?? 0 },
  };
}

/** The run's report (the `--json` contract: every field as documented in report.ts). */
export function runReport(config: ResolvedConfig, states: ReadonlyMap<string, TaskState>, t: RunTotals, estimates: TaskEstimates, cache: TaskCache): RunReport {
  const tasks: TaskReport[] = [];
  const counts: Record<TaskStatus, number> = { succeeded: 0, cached: 0, failed: 0, skipped: 0, cancelled: 0 };
  for (const s of states.values()) {
    const status = s.phase as TaskStatus;
    counts[status]++;
    tasks.push({
      id: s.id,
      agent: s.type,
      priority: s.priority,
      status,
      exit_code: s.exitCode,
      signal: s.signal,
      started_ms: round(s.startedMs),
      ended_ms: round(s.endedMs),
      duration_ms: round(s.busyMs)!,
      peak_rss_bytes: s.peakRss,
      attempts: s.attempts,
      error: s.error,
      log_file: s.attempts > 0 || s.cache.status === 'hit' ? t.logFile(s) : null,
      memory_estimate_bytes: s.memoryBytes,
      ...(s.worker !== null && { worker: s.worker }),
      paused_ms: round(s.pausedMs)!,
      kills: s.kills,
      cache: s.cache,
      metrics: s.metrics,
      metrics_malformed: s.metricsMalformed,
    });
  }
  const lb = lowerBound(
    [...states.values()].map((s) => ({ id: s.id, needs: s.spec.needs, durationMs: s.busyMs, peakRssBytes: s.peakRss, cpu: s.cpu })),
    config.budgetBytes,
    config.cores,
  );
  const mem = t.memory;
  const g = t.governor;
  const cacheTotals = cacheReport(config, states.values(), cache);
  const spend = spendReport(config, states, cacheTotals);
  const exceeded = spend.spend.limits.exceeded;
  return {
    // A run that reached a limit of `limits:` failed, even if every task it had started succeeded.
    ok: counts.succeeded + counts.cached === tasks.length && exceeded === null,
    run_id: t.runId,
    workflow: config.file,
    interrupted: t.interrupted,
    makespan_ms: round(t.makespanMs)!,
    lower_bound_ms: round(Math.max(lb.chain_ms, lb.memory_ms, lb.cpu_ms))!,
    lower_bound: { chain_ms: round(lb.chain_ms)!, memory_ms: round(lb.memory_ms)!, cpu_ms: round(lb.cpu_ms)! },
    budget_bytes: config.budgetBytes,
    budget_source: config.budgetSource,
    effective_limit_bytes: config.effectiveLimitBytes,
    memory_source: mem.source,
    peak_rss_bytes: t.peakTotal,
    guild_peak_rss_bytes: t.guildPeak,
    guild_health: { rss_peak_bytes: t.guildPeak, ...t.health },
    cores: config.cores,
    cpu_cap: config.cpuCap,
    max_parallel: config.maxParallel,
    sample_interval_ms: config.sampleIntervalMs,
    samples: t.samples,
    failed_samples: t.failedSamples.count,
    admissions: { admitted: t.scheduler.admitted, backfilled: t.scheduler.backfilled, denied: { ...t.scheduler.denied } },
    pools: poolReport(config.pools, config.budgetBytes, t.scheduler.peakReserved),
    counts,
    pressure: { highest: g.highest, time_ms: Object.fromEntries(Object.entries(g.timeAtMs).map(([k, v]) => [k, round(v)])) as Record<PressureLevel, number> },
    guild_kills: t.guildKills,
    oom_kills: mem.oomKills === null || t.oomAtStart === null ? null : mem.oomKills - t.oomAtStart,
    responses: t.responses,
    profiles: Object.fromEntries(
      Object.values(config.agents).map((a) => {
        const e = estimates.of(a);
        return [a.name, { declared_bytes: a.memoryBytes, learned_p90_bytes: e.learned?.peakP90Bytes ?? null, samples: e.learned?.samples ?? 0, estimate_bytes: e.memoryBytes, source: e.source }];
      }),
    ),
    cache: cacheTotals,
    ...spend,
    alerts: t.alerts,
    kpis: null,
    warnings: [
      ...config.warnings,
      ...t.notes,
      ...(exceeded === 'cost_usd' ? [`the cost limit of $${config.limits.costUsd} was reached ($${(spend.metrics.cost_usd ?? 0).toFixed(4)} spent): no task was started after it`] : []),
      ...(exceeded === 'tokens' ? [`the token limit of ${config.limits.tokens} was reached (${tokensOf(spend.metrics)} spent): no task was started after it`] : []),
      ...(t.failedSamples.count > 0
        ? [`${t.failedSamples.count} of ${t.samples} samples failed${t.failedSamples.first ? ` (first: ${t.failedSamples.first})` : ''}; their figures are the last good ones`]
        : []),
    ],
    log_dir: t.logDir,
    tasks,
  };
}
