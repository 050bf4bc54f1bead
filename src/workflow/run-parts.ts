import type { ResolvedConfig } from '../config/resolve.js';
import { Scheduler } from '../scheduler/scheduler.js';
import type { Clock } from '../supervisor/clock.js';
import type { Measurement, Supervisor } from '../supervisor/supervisor.js';
import type { SelfMonitor } from '../telemetry/self-monitor.js';
import { TaskEstimates } from './estimates.js';
import type { RunEvent } from './events.js';
import type { ExecuteOptions } from './execute-options.js';
import { RunAlerts } from './run-alerts.js';
import { RunGauges } from './run-gauges.js';
import type { RunLease } from '../store/lease.js';
import { RunRecord } from './run-record.js';
import { runSupervisor } from './run-supervision.js';
import { TaskCache, type CacheLoop } from './task-cache.js';
import type { TaskState } from './task-state.js';
import { TaskWatches } from './task-watch.js';

/** What the run loop is to its parts: where they call back into it. */
export interface RunLoop extends CacheLoop {
  now(): number;
  logFile(s: TaskState): string | null;
  /** The scheduler admitted a task. */
  startAttempt(s: TaskState): void;
  /** Each sampling instant, before the governor reads it, and after it responded. */
  measured(m: Measurement): void;
  sampled(m: Measurement): void;
  /** Bytes the run's services (the MCP gateway) hold on the budget now. */
  servicesBytes(): number;
}

/** What every part shares: the run's identity, clock, events and task states. */
export interface RunShared {
  runId: string;
  /** The folder's run lock, which inserted the run's row; null without a store. */
  lease: RunLease | null;
  clock: Clock;
  emit: (e: RunEvent) => void;
  self: SelfMonitor;
  states: ReadonlyMap<string, TaskState>;
  running: ReadonlySet<TaskState>;
}

/** The parts a run delegates to. */
export interface RunParts {
  alerts: RunAlerts;
  gauges: RunGauges;
  record: RunRecord;
  estimates: TaskEstimates;
  cache: TaskCache;
  scheduler: Scheduler<TaskState>;
  supervisor: Supervisor;
  watches: TaskWatches;
}

/**
 * Builds a run's parts and wires them to each other and to the loop. The store opens first:
 * learned profiles decide the estimates.
 */
export function runParts(config: ResolvedConfig, options: ExecuteOptions, shared: RunShared, loop: RunLoop): RunParts {
  const alerts = new RunAlerts(shared.emit, () => loop.now());
  const gauges = new RunGauges(options.probe, shared.self);
  const record = RunRecord.open(config, shared.runId, options.store !== false, shared.lease);
  const estimates = new TaskEstimates(config, record.learned());
  const cache = new TaskCache({
    config,
    given: options.cache,
    isFunction: (id) => options.functions?.has(id) ?? false,
    states: shared.states,
    logFile: (s) => loop.logFile(s),
    now: () => loop.now(),
    alert: (...a) => alerts.raise(...a),
    loop,
    lock: shared.lease,
  });
  const remote = options.remoteAdmission === true;
  const scheduler = new Scheduler<TaskState>({
    // Placed elsewhere: the workers' admission decides; here only order and max_parallel hold.
    budgetBytes: remote ? Infinity : config.budgetBytes,
    cpuCap: remote ? Infinity : config.cpuCap,
    maxParallel: config.maxParallel,
    headroom: config.headroom,
    agingMs: config.agingMs,
    starvationLimitMs: config.starvationLimitMs,
    concurrency: (type) => config.agents[type]?.concurrency ?? null,
    now: () => loop.now(),
    start: (s) => loop.startAttempt(s),
    pools: config.pools,
    cacheBytes: () => cache.layered?.bytes() ?? 0,
    otherBytes: () => loop.servicesBytes(),
    reclaim: () => cache.layered?.reclaim(),
  });
  const supervisor = runSupervisor(config, options, shared.clock, { scheduler, cache, alerts, measured: (m) => loop.measured(m), sampled: (m) => loop.sampled(m) });
  const watches = new TaskWatches({
    scheduler,
    estimates,
    states: shared.states,
    running: shared.running,
    alerts,
    record,
    fraction: () => supervisor.governor!.fraction,
    now: () => loop.now(),
  });
  return { alerts, gauges, record, estimates, cache, scheduler, supervisor, watches };
}
