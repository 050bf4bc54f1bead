import type { LayeredCache } from '../cache/layered-cache.js';
import type { Executor } from '../executors/executor.js';
import type { FunctionRequest, TaskFunction } from '../executors/function-executor.js';
import type { ProcessRequest } from '../executors/process-executor.js';
import type { Clock } from '../supervisor/clock.js';
import type { Supervisor } from '../supervisor/supervisor.js';
import type { RunLockHolder } from '../store/lease.js';
import type { SystemProbe } from '../system/probe.js';
import type { RunEvent } from './events.js';

/**
 * The executors a run starts attempts through. Each defaults to Guild's own. (A type, not an
 * interface: it must fit the supervisor's executors-by-kind map.)
 */
export type RunExecutors = {
  /** Shell tasks. @default a ProcessExecutor (process groups, tree RSS) */
  process?: Executor<ProcessRequest>;
  /** In-process functions (library use). @default a FunctionExecutor */
  function?: Executor<FunctionRequest>;
};

/** Options of one run, beyond what the resolved config says. */
export interface ExecuteOptions {
  /** The probe that measures memory and process trees. */
  probe: SystemProbe;
  /** Aborting stops the run: queued tasks are cancelled, running trees are killed and reaped. */
  signal?: AbortSignal;
  /** Every event of the run, synchronously, in order. Keep it cheap. */
  onEvent?: (event: RunEvent) => void;
  /** Record the run in `<workflow dir>/.guild/guild.db`. @default true */
  store?: boolean;
  /** In-process functions for tasks, by id (library use); such tasks ignore `run`. */
  functions?: ReadonlyMap<string, TaskFunction>;
  /** @default a time-sortable id */
  runId?: string;
  /**
   * The cache task results are memoized in; the governor also tells it to shrink, evict or stop
   * caching as pressure rises (it is the run's `MemoryConsumer`). @default the workflow's own (memory, its SQLite store,
   * Redis when configured), opened for the run and closed after it; none when `store` is false.
   */
  cache?: LayeredCache;
  /**
   * While another live run holds the folder's run lock: wait for it to end (true) or reject with
   * `RunLockedError`, code LOCKED (false). Only with `store`. @default true
   */
  wait?: boolean;
  /** Called once when the run has to wait for the folder's run lock. */
  onWait?: (holder: RunLockHolder) => void;
  /** What starts attempts (a remote executor plugs in here). @default Guild's process and function executors */
  executors?: RunExecutors;
  /** Time for sampling, retry backoff and every time the run reports. @default realClock */
  clock?: Clock;
  /**
   * Long-lived services the run's tasks use (the MCP gateway of a workflow with `mcp:`), started
   * under the run's supervisor before any task is admitted and ended after the last. @default none
   */
  services?: RunServices;
  /**
   * Give process tasks GUILD_METRICS and read what they report spending when each attempt ends.
   * Off, tasks report nothing (the `task-metrics` benchmark measures the cost of it being on). @default true
   */
  taskMetrics?: boolean;
  /**
   * Tasks are placed by another admission (distributed workers, each under its own budget and
   * governor): the run hands every ready task to its executor at once, in priority order, and
   * neither its own budget, CPU cap, this machine's free memory nor its governor's admission
   * responses hold them back (`max_parallel` still does). @default false
   */
  remoteAdmission?: boolean;
}

/** What a run gives the services it starts. */
export interface RunServiceContext {
  supervisor: Supervisor;
  runId: string;
  /** Bytes the run's tasks hold on the budget now (Σ max(expected, measured)). */
  tasksBytes(): number;
  /** The run's layered cache (tool results go in their own namespace); null without one. */
  cache: LayeredCache | null;
}

/** Services as a run sees them once started. */
export interface StartedServices {
  /** Added to every task's environment (`GUILD_MCP_URL`). */
  readonly env: Readonly<Record<string, string>>;
  /** Bytes they hold on the run's budget now: tasks are admitted against what is left. */
  bytes(): number;
  /** What the report shows of them, under its key (`mcp`). */
  report(): Record<string, unknown>;
  close(): Promise<void>;
}

export interface RunServices {
  start(context: RunServiceContext): Promise<StartedServices>;
}

/**
 * A time-sortable run id: `20261122-041700-3fa2`. The suffix only tells apart runs started in
 * the same second; it is no secret, so Math.random serves, and a run need not load node:crypto.
 * The time is formatted from `ms` by hand: the first Date object a process makes sets up ICU's
 * time zone data, 0.85 MB of Node's pages a waiting run would hold for nothing (bench/startup.ts).
 */
export function newRunId(ms: number = Date.now()): string {
  const iso = utcStamp(ms);
  return `${iso}-${Math.floor(Math.random() * 0x10000).toString(16).padStart(4, '0')}`;
}

/** `YYYYMMDD-HHMMSS` of an epoch time in UTC (the proleptic Gregorian calendar, as Date's). */
export function utcStamp(ms: number): string {
  const days = Math.floor(ms / 86_400_000);
  const secs = Math.floor((ms - days * 86_400_000) / 1000);
  // Days since 1970-01-01 to a civil date (H. Hinnant's days_from_civil, inverted).
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const p2 = (n: number): string => String(n).padStart(2, '0');
  return `${year}${p2(month)}${p2(day)}-${p2(Math.floor(secs / 3600))}${p2(Math.floor(secs / 60) % 60)}${p2(secs % 60)}`;
}
