/**
 * The shapes telemetry shares with the dashboard, the store and `guild status`: what `/api/state`
 * returns, what the SSE stream sends, what a history snapshot holds. Every figure was measured
 * (or counted) by the run; nothing here is an estimate unless its name says so.
 */
import type { PressureLevel } from '../governor/levels.js';

/** KPI grades, best first (the seed's excellent / good / poor / critical). */
export type Score = 'excellent' | 'good' | 'poor' | 'critical';

/** Where a response-time target applies (the seed's component kinds). */
export type ComponentKind = 'code-analysis' | 'knowledge' | 'coordination' | 'file-ops';

/** One KPI, scored. */
export interface KpiScore {
  /** Stable id: `response_time`, `memory_efficiency`, `throughput`, `cpu`, `error_rate`, `cache_hit_rate`, `token_efficiency`. */
  kpi: string;
  /** For per-subject KPIs (response time): the agent type or the component kind; null otherwise. */
  subject: string | null;
  /** Human label, e.g. "response time · analyzer". */
  label: string;
  /** The measured value (moving average over its window); null when there is no data. */
  value: number | null;
  /** 'ms', 'ratio' (0..1), 'x' (speed-up). */
  unit: 'ms' | 'ratio' | 'x';
  /** null when the KPI could not be scored (no data, too little data, one task, cold cache…); `note` says why. */
  score: Score | null;
  /** The thresholds the value was scored against (after scaling to a target). */
  thresholds: { good: number; acceptable: number; poor: number; higher_is_better: boolean };
  /** How many observations the value rests on. */
  samples: number;
  note: string | null;
}

/** The least evidence a KPI is graded on (`KPI_MINIMUMS` in telemetry/kpi.ts). */
export interface KpiMinimum {
  /** Observations needed. */
  samples: number;
  /** Seconds of run they must cover; 0: any. */
  seconds: number;
  /** What one observation is: `tasks`, `samples`, `finished tasks`, `lookups`… */
  of: string;
}

export interface KpiReport {
  /** Mean of the scored KPIs' points (excellent 100, good 75, poor 40, critical 0); null when none was scored. */
  overall: { score: Score | null; points: number | null };
  scores: KpiScore[];
  /** Derived from the measured values, most important first; none from a KPI that was not scored. */
  recommendations: string[];
  /**
   * The minimums the scores were held to, per KPI id (and `memory_declaration`, advice that is not a
   * KPI). Absent in reports stored before minimums existed.
   */
  minimums?: Readonly<Record<string, Readonly<KpiMinimum>>>;
}

export type AlertRule = 'slow-execution' | 'high-memory' | 'low-cache-hit-rate' | 'agent-failure' | 'memory-pressure' | 'memory-limit' | 'cache';

/** An alert as the log, the dashboard, the webhook and the report see it. */
export interface AlertRecord {
  /** ms from the run's start. */
  at_ms: number;
  /** Wall clock, epoch ms. */
  at: number;
  rule: AlertRule;
  severity: 'warning' | 'critical';
  message: string;
  /** De-duplication key (rule + subject): a repeat within the cooldown only bumps `repeats`. */
  key: string;
  /** Repeats suppressed by the cooldown since this alert was sent. */
  repeats: number;
}

/** One point of the live series and of a history snapshot. `t`: ms from the run's start. */
export interface SeriesPoint {
  t: number;
  /** The machine's (cgroup's) used memory and its effective limit. */
  used_bytes: number;
  limit_bytes: number;
  /** Σ tree RSS of running agents. */
  agents_rss_bytes: number;
  /** What admission counts as taken (Σ max(expected, measured)). */
  reserved_bytes: number;
  budget_bytes: number;
  level: PressureLevel;
  running: number;
  queued: number;
  paused: number;
  done: number;
  /** Machine CPU use since the previous point (0..1); null when unreadable. */
  cpu: number | null;
  guild_rss_bytes: number;
  /** Task-cache hit rate so far; null before the first lookup. */
  cache_hit_rate: number | null;
}

export type TaskPhase = 'pending' | 'queued' | 'running' | 'paused' | 'retrying' | 'succeeded' | 'cached' | 'failed' | 'skipped' | 'cancelled';

export interface TaskRow {
  id: string;
  agent: string;
  status: TaskPhase;
  /** ms from the run's start. */
  started_ms: number | null;
  ended_ms: number | null;
  duration_ms: number | null;
  rss_bytes: number | null;
  peak_rss_bytes: number | null;
  attempts: number;
  error: string | null;
  /** Distributed mode: the worker running it now, else the one that ran its last attempt; absent when it ran here (or has not run). */
  worker?: string;
}

/**
 * A distributed worker as its heartbeat says (every second; it expires after three missed) and
 * as this run counted it. `guild status`, the dashboard's `workers` feed and `/metrics` show these.
 */
export interface WorkerRow {
  name: string;
  host: string;
  pid: number;
  /** Memory it may give to jobs at once. */
  budget_bytes: number;
  /** What its admission counts as taken now: budget − free (Σ max(expected, measured) over its jobs). */
  used_bytes: number;
  free_bytes: number;
  /** Jobs it runs now (of any run). */
  running: number;
  /** Its own governor's pressure level. */
  pressure: string;
  /** Highest Σ of its jobs' measured memory at one instant, since it started. */
  peak_bytes: number;
  /** Jobs it refused for a bad signature, since it started. */
  rejected: number;
  /** Epoch ms of its last heartbeat, and how old that was when this row was read. */
  last_heartbeat: number;
  heartbeat_age_ms: number;
  /** Attempts of this run that ended on it; null when read without a run (`guild status --redis`). */
  tasks: number | null;
}

/** The `workers` feed: the cluster's live workers, read from their heartbeats. */
export interface WorkersSnapshot {
  /** The queue family they serve. */
  queue: string;
  /** Epoch ms of the read. */
  at: number;
  workers: WorkerRow[];
}

export interface AgentRow {
  name: string;
  kind: ComponentKind | null;
  running: number;
  done: number;
  failed: number;
  rss_bytes: number;
  peak_rss_bytes: number | null;
  declared_bytes: number;
  mean_duration_ms: number | null;
  /** Tokens (in + out) and US dollars its tasks reported spending so far (GUILD_METRICS, usage:). */
  tokens: number;
  cost_usd: number;
}

export interface RunInfo {
  id: string;
  workflow: string;
  name: string;
  /** Epoch ms. */
  started_at: number;
  elapsed_ms: number;
  status: 'running' | 'succeeded' | 'failed' | 'interrupted';
  total_tasks: number;
  cores: number;
}

/** `/api/state`. */
export interface DashboardState {
  version: 1;
  /** 'run': a run is (or was) live in this process; 'history': `guild dashboard` serving the store. */
  mode: 'run' | 'history';
  run: RunInfo | null;
  memory: {
    used_bytes: number;
    limit_bytes: number;
    available_bytes: number;
    agents_rss_bytes: number;
    reserved_bytes: number;
    budget_bytes: number;
    level: PressureLevel;
    /** Pressure bands as fractions of the limit: moderate, high, critical, emergency, kill. */
    thresholds: { moderate: number; high: number; critical: number; emergency: number; kill: number };
  } | null;
  /** Memory pressure so far: the level now, the highest, and the time spent at each. null before the first sample. */
  pressure: { level: PressureLevel; highest: PressureLevel; time_ms: Record<PressureLevel, number> } | null;
  queue: { queued: number; running: number; paused: number; done: number; total: number; blocked: { id: string; reason: string; waited_ms: number } | null };
  tasks: TaskRow[];
  agents: AgentRow[];
  /** Bounded: the newest points (the page keeps what it received). */
  series: SeriesPoint[];
  cache: { hits: number; misses: number; hit_rate: number | null; saved_ms: number };
  kpis: KpiReport | null;
  alerts: AlertRecord[];
  guild: { rss_bytes: number; event_loop_delay_p99_ms: number | null; gc_pause_total_ms: number };
}

/**
 * What `/api/events` sends (server-sent events; `event:` is the type, `data:` the JSON):
 * - `state`: a whole DashboardState (on connect, and when a run starts)
 * - `tick`: the newest point and what changed since the last tick (at most every 200 ms)
 * - `alert`: one AlertRecord
 * - `kpis`: a KpiReport (every 2 s while running, and at the end)
 * - `end`: the final DashboardState
 */
export interface TickEvent {
  point: SeriesPoint;
  memory: NonNullable<DashboardState['memory']>;
  pressure: NonNullable<DashboardState['pressure']>;
  queue: DashboardState['queue'];
  /** Tasks whose row changed since the previous tick. */
  tasks: TaskRow[];
  agents: AgentRow[];
  cache: DashboardState['cache'];
  guild: DashboardState['guild'];
  elapsed_ms: number;
}

/** A past run, as `/api/runs` and `guild dashboard` list it. */
export interface RunSummary {
  id: string;
  workflow: string;
  name: string;
  status: string;
  started_at: number;
  ended_at: number | null;
  makespan_ms: number | null;
  peak_rss_bytes: number | null;
  tasks: number | null;
  failed: number | null;
  cache_hit_rate: number | null;
  kpi_overall: Score | null;
  /** Tokens (in + out) and US dollars the run's tasks reported spending; null when the run's report is gone or reported none. */
  tokens: number | null;
  cost_usd: number | null;
}
