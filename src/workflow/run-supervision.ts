import type { ResolvedConfig } from '../config/resolve.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { Clock } from '../supervisor/clock.js';
import { Supervisor, type Measurement } from '../supervisor/supervisor.js';
import type { ExecuteOptions } from './execute-options.js';
import type { RunAlerts } from './run-alerts.js';
import type { TaskCache } from './task-cache.js';
import type { TaskState } from './task-state.js';

/** The run's side of supervision. */
export interface SupervisedRun {
  scheduler: Scheduler<TaskState>;
  cache: TaskCache;
  alerts: RunAlerts;
  /** Each sampling instant, before the governor reads it, and after it responded. */
  measured(m: Measurement): void;
  sampled(m: Measurement): void;
}

/**
 * The supervisor of one run: the run's executors and clock, the configured sampling interval
 * and governor; the governor's admission responses go to the scheduler, its caching responses to
 * the task cache, every response to the run's alerts. Sampling stays fast while tasks wait to start.
 */
export function runSupervisor(config: ResolvedConfig, options: ExecuteOptions, clock: Clock, run: SupervisedRun): Supervisor {
  const g = config.governor;
  const supervisor: Supervisor = new Supervisor({
    probe: options.probe,
    ...(options.executors ? { executors: options.executors } : {}),
    clock,
    sampleIntervalMs: config.sampleIntervalMs,
    waiting: () => run.scheduler.queued > 0,
    governance: {
      options: {
        thresholds: g.thresholds,
        margin: g.margin,
        holdMs: g.holdMs,
        cooldownMs: g.cooldownMs,
        onAction: (a, at) => run.alerts.response(a, at, supervisor.governor!.projected),
      },
      admission: {
        // Placed elsewhere (distributed): this machine's pressure does not hold back work the
        // workers admit under their own governors.
        setCap: (cap) => options.remoteAdmission !== true && run.scheduler.setCap(cap),
        setAdmission: (rule) => options.remoteAdmission !== true && run.scheduler.setAdmission(rule),
        // Caches shrink, evict or switch off with pressure.
        setCaching: (mode) => run.cache.layered?.onCacheMode(mode),
      },
      budgetBytes: config.budgetBytes,
    },
    onMeasure: (m) => run.measured(m),
    onSampled: (m) => run.sampled(m),
  });
  return supervisor;
}
