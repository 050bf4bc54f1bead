import type { GatewayStatus } from '../telemetry/mcp-status.js';
import type { PoolsReport } from '../config/pools.js';
import type { BudgetSource, CacheDisabledBy } from '../config/resolve.js';
import { CACHE_DISABLED_TEXT } from '../config/resolved.js';
import type { Priority } from '../config/schema.js';
import type { MemorySource } from '../system/probe.js';
import type { GovernorAction } from '../governor/governor.js';
import type { PressureLevel } from '../governor/levels.js';
import type { AlertRule, KpiReport } from '../telemetry/state.js';
import type { SelfHealth } from '../telemetry/self-monitor.js';
import { longestChain } from '../util/dag.js';

/** Final states of a task. `cached`: its stored result was restored; no process ran. */
export type TaskStatus = 'succeeded' | 'cached' | 'failed' | 'skipped' | 'cancelled';

/** A task and the cache. */
export interface TaskCacheReport {
  /** hit: served from the cache; miss: looked up, ran, stored; off: not cacheable (see reason). */
  status: 'hit' | 'miss' | 'off';
  /** Why a task was not cacheable or not stored (e.g. "no inputs declared"); null otherwise. */
  reason: string | null;
  /** sha256 of command, agent profile, env, input contents, format version and upstream fingerprints. */
  fingerprint: string | null;
  /** For a hit: the stored run time minus the time serving it took. */
  saved_ms: number;
  /** For a hit: hashing inputs, looking up, restoring outputs and log. */
  serve_ms: number | null;
  /** For a hit: what the stored run reported spending (tokens, cost…), which this hit did not spend again. Absent in reports stored before it existed. */
  saved_metrics?: Record<string, number>;
}

// Why memoization is off, and how each reason reads: defined with the cache's configuration.
export { CACHE_DISABLED_TEXT, type CacheDisabledBy };

/** Task memoization over the run. */
export interface CacheReport {
  enabled: boolean;
  /** Why it is off; null when on. */
  disabled_by: CacheDisabledBy | null;
  hits: number;
  /** Cacheable tasks that were looked up, not found, and ran. */
  misses: number;
  /** hits / (hits + misses); null when no task was looked up. */
  hit_rate: number | null;
  /** Σ over hits of (stored run time − serve time). */
  saved_ms: number;
  /** Σ over hits of what the stored runs reported spending (`tokens_in`, `cost_usd`, …). Absent in reports stored before it existed. */
  saved_metrics?: Record<string, number>;
  /** Tasks that were not looked up (no inputs, cache: false, an uncached dependency…). */
  not_cacheable: number;
  /** The tiers in use, fastest first. */
  tiers: string[];
  /** The context preset in force (cache.context or the git branch), or null. */
  context: string | null;
}

/** Guild killed an attempt: for pressure (the governor's emergency) or over the agent's hard limit. */
export interface TaskKill {
  reason: 'pressure' | 'limit';
  /** The pressure level for a pressure kill. */
  level: PressureLevel | null;
  attempt: number;
  at_ms: number;
  rss_bytes: number | null;
  message: string;
}

/** The pools of the budget; defined with them in config/pools.ts. */
export type { PoolsReport };

/** A governor response, as it happened. */
export type ResponseRecord = { at_ms: number } & GovernorAction;

export interface Alert {
  at_ms: number;
  severity: 'warning' | 'critical';
  message: string;
  /** What raised it: memory-pressure, memory-limit, cache; with telemetry also slow-execution, high-memory, low-cache-hit-rate, agent-failure. */
  rule: AlertRule;
  /** Repeats within the cooldown that were counted, not sent (telemetry on). */
  repeats?: number;
}

/** One task in the `--json` document. Times are ms from the run's start. */
export interface TaskReport {
  id: string;
  agent: string;
  priority: Priority;
  status: TaskStatus;
  exit_code: number | null;
  signal: string | null;
  /** Start of the first attempt; null if it never started. */
  started_ms: number | null;
  /** End of the last attempt; null if it never started. */
  ended_ms: number | null;
  /** Time spent running, summed over attempts (backoff waits excluded). */
  duration_ms: number;
  /** Highest measured RSS of the task's whole process tree; null when never sampled (functions, very short tasks). */
  peak_rss_bytes: number | null;
  attempts: number;
  error: string | null;
  log_file: string | null;
  /** The memory estimate admission used last: declared, learned, or raised to what was observed. */
  memory_estimate_bytes: number;
  /** Time spent stopped (SIGSTOP) by the governor. */
  paused_ms: number;
  /** Kills by Guild, with reasons. */
  kills: TaskKill[];
  cache: TaskCacheReport;
  /** What the task reported spending over its attempts (GUILD_METRICS lines, `usage: claude-json`): `tokens_in`, `tokens_out`, `tokens_cache_read`, `cost_usd`, any other. */
  metrics: Record<string, number>;
  /** Lines of its metrics that could not be read (counted, skipped). */
  metrics_malformed: number;
  /** Distributed mode: the worker that ran its last attempt (absent when it ran on this machine). */
  worker?: string;
}

/** What the run's tasks spent, and what the cache saved, in time, tokens and money. */
export interface SpendReport {
  /** Σ of the tasks' metrics. */
  totals: Record<string, number>;
  /** The same, per agent type. */
  by_agent: Record<string, Record<string, number>>;
  /** Metric lines that could not be read, over all tasks. */
  malformed_lines: number;
  /** `limits:` and where the run stands against them; `exceeded` names the limit that stopped admission. */
  limits: { cost_usd: number | null; tokens: number | null; exceeded: 'cost_usd' | 'tokens' | null };
}

/** The three terms of the lower bound, each from measured figures. */
export interface LowerBound {
  /** The longest dependency chain of measured durations. */
  chain_ms: number;
  /** Σ(peak × duration) / budget: the time the budget needs to hold all measured memory. */
  memory_ms: number;
  /** Σ(cpu × duration) / cores. */
  cpu_ms: number;
}

/** The document `guild run --json` prints, and what `runWorkflow` resolves to. */
export interface RunReport {
  ok: boolean;
  run_id: string;
  workflow: string;
  /** True when the run was stopped by a signal or an abort. */
  interrupted: boolean;
  makespan_ms: number;
  lower_bound_ms: number;
  lower_bound: LowerBound;
  budget_bytes: number;
  budget_source: BudgetSource;
  effective_limit_bytes: number;
  memory_source: MemorySource;
  /** Highest measured sum of all agents' tree RSS at one sampling instant. */
  peak_rss_bytes: number;
  /** Highest measured RSS of Guild's own process. */
  guild_peak_rss_bytes: number;
  /** Guild's own health: RSS, event-loop delay, GC pauses (seed targets: idle < 50 MB, active < 200 MB). */
  guild_health: { rss_peak_bytes: number } & SelfHealth;
  cores: number;
  cpu_cap: number;
  max_parallel: number | null;
  sample_interval_ms: number;
  samples: number;
  /** Sampling instants at which a read failed (EMFILE, a vanished file, an owner's error): their figures are the last good ones. */
  failed_samples: number;
  admissions: { admitted: number; backfilled: number; denied: { memory: number; cpu: number } };
  /** The budget's pools: shares, sizes, and the peak reserved by critical and other tasks. */
  pools: PoolsReport;
  counts: Record<TaskStatus, number>;
  /** Memory pressure over the run: the highest level and the time spent at each. */
  pressure: { highest: PressureLevel; time_ms: Record<PressureLevel, number> };
  /** Agents Guild killed (pressure and hard limits). */
  guild_kills: number;
  /** Kernel OOM kills in Guild's cgroup during the run (memory.events / memory.oom_control); null where unreadable. */
  oom_kills: number | null;
  /** Per agent type: what was declared, what history says, and which admission used (before this run's results). */
  profiles: Record<string, { declared_bytes: number; learned_p90_bytes: number | null; samples: number; estimate_bytes: number; source: 'declared' | 'learned' }>;
  /** What the governor did, in order (the first 1000). */
  responses: ResponseRecord[];
  /** Task memoization: hits, misses, hit rate, time saved. */
  cache: CacheReport;
  /** Run totals of what tasks reported spending (tokens, cost, any metric). */
  metrics: Record<string, number>;
  /** The same per agent type, malformed lines, and the run's limits. */
  spend: SpendReport;
  /** What cache hits saved: task time, tokens (in + out) and money (US dollars). */
  saved: { time_ms: number; tokens: number; cost_usd: number };
  alerts: Alert[];
  /** KPI scores, the overall score and recommendations; null when telemetry is off. */
  kpis: KpiReport | null;
  /** Things worth knowing that did not stop the run (e.g. a budget above the machine's limit). */
  warnings: string[];
  log_dir: string | null;
  tasks: TaskReport[];
  /** The run's MCP gateway (`mcp:`): its servers and backends (pid, project, peak RSS, calls, cache hits, restarts, recycles). Absent without one. */
  mcp?: GatewayStatus;
  /** Distributed mode: the workers that served the run (or were live during it). */
  workers?: WorkerReport[];
  /** Distributed runs: jobs Redis lost (it came back empty) that the submitter enqueued again. */
  jobs_reenqueued?: number;
}

/**
 * No schedule can finish faster than the longest chain, than the budget allows for the measured
 * memory-time, or than the cores allow for the declared CPU-time.
 */
export function lowerBound(
  tasks: readonly { id: string; needs: readonly string[]; durationMs: number; peakRssBytes: number | null; cpu: number }[],
  budgetBytes: number,
  cores: number,
): LowerBound {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const chain_ms = longestChain(tasks, (id) => byId.get(id)?.durationMs ?? 0);
  let memTime = 0;
  let cpuTime = 0;
  for (const t of tasks) {
    memTime += (t.peakRssBytes ?? 0) * t.durationMs;
    cpuTime += t.cpu * t.durationMs;
  }
  return { chain_ms, memory_ms: memTime / budgetBytes, cpu_ms: cpuTime / cores };
}

/** A distributed worker as a run's report shows it. */
export interface WorkerReport {
  name: string;
  host: string | null;
  budget_bytes: number;
  /** Highest Σ of its jobs' measured memory at one instant, since the worker started (from its heartbeats and results). */
  peak_bytes: number;
  /** Attempts of this run it ran. */
  tasks: number;
  /** Its governor's level at its last heartbeat; null when none was read. */
  pressure: string | null;
  /** Unsigned or altered jobs it rejected since it started. */
  rejected: number;
  /**
   * Attempts of this run it took that went back to the queue without a result: it died or lost
   * Redis (BullMQ's stall check moved them back) or handed them back as it stopped. They ran
   * again elsewhere, not counted against the task's retries.
   */
  returned: number;
}
