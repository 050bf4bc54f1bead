import type { Scheduler } from '../scheduler/scheduler.js';
import type { KillNotice, WatchOptions } from '../supervisor/watch.js';
import { formatBytes } from '../util/units.js';
import type { TaskEstimates } from './estimates.js';
import type { RunAlerts } from './run-alerts.js';
import type { RunRecord } from './run-record.js';
import { round } from './run-report.js';
import type { TaskState } from './task-state.js';

/** What a task's watch reaches in its run. */
export interface TaskWatchContext {
  scheduler: Scheduler<TaskState>;
  estimates: TaskEstimates;
  states: ReadonlyMap<string, TaskState>;
  running: ReadonlySet<TaskState>;
  alerts: RunAlerts;
  record: RunRecord;
  /** The governor's last fraction, for the alert text. */
  fraction: () => number;
  now: () => number;
}

/**
 * How the run's tasks are watched by the supervisor, and what the run learns from it: each
 * measurement raises estimates and feeds admission; each kill is recorded on the task, counted
 * and alerted (at an emergency the queue is saved too).
 */
export class TaskWatches {
  /** Attempts Guild killed (limit and pressure): the report's `guild_kills`. */
  kills = 0;
  readonly #c: TaskWatchContext;

  constructor(context: TaskWatchContext) {
    this.#c = context;
  }

  /** A task attempt: paused or killed and requeued under pressure, killed over its limit. */
  of<R>(s: TaskState): WatchOptions<R> {
    return {
      id: s.id,
      priority: s.priority,
      reservationBytes: s.memoryBytes,
      limitBytes: s.profile.limitBytes,
      onPressure: 'pause',
      onSample: (bytes, sample) => {
        s.lastRss = bytes;
        if (bytes >= (s.peakRss ?? 0)) [s.peakRss, s.memorySource] = [bytes, sample.source];
        s.attemptPeak = Math.max(s.attemptPeak ?? 0, bytes);
        this.#c.scheduler.observe(s, bytes);
        // An agent above its type's estimate: tasks of that type not yet started now expect as much.
        if (bytes > s.memoryBytes) this.#c.estimates.raise(s.type, bytes, this.#c.states.values());
      },
      onKill: (n) => this.#killed(s, n),
    };
  }

  #killed(s: TaskState, n: KillNotice): void {
    const c = this.#c;
    const at = round(c.now())!;
    if (n.reason === 'limit') {
      const message = `memory limit exceeded: ${formatBytes(n.bytes!)} > ${formatBytes(s.profile.limitBytes!)}`;
      s.kills.push({ reason: 'limit', level: null, attempt: s.attempts, at_ms: at, rss_bytes: n.bytes, message });
      this.kills++;
      c.alerts.raise('warning', `${s.id}: ${message}; killed`, 'memory-limit', `memory-limit:${s.type}`);
    } else if (n.reason === 'pressure') {
      const rss = s.lastRss;
      const message = `killed under memory pressure (${n.level}) at ${formatBytes(rss)}`;
      s.kills.push({ reason: 'pressure', level: n.level, attempt: s.attempts, at_ms: at, rss_bytes: rss, message });
      this.kills++;
      c.record.saveQueueState(c.now(), `${n.level}: killed ${s.id}`, c.states.values(), c.running);
      c.alerts.raise('critical', `memory ${n.level} (${Math.round(c.fraction() * 100)}%): killed ${s.id} at ${formatBytes(rss)}; it will be requeued`, 'memory-pressure', `memory-kill:${s.id}`);
    }
  }
}
