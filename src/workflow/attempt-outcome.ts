import type { ExecOutcome } from '../executors/executor.js';
import type { RunEvent } from './events.js';
import type { TaskStatus } from './report.js';
import type { TaskState } from './task-state.js';

/** A task's state after an attempt: a final status, `retrying`, or `requeued` after a pressure kill. */
export type AttemptStatus = TaskStatus | 'retrying' | 'requeued';

/** Retries wait twice as long each time, at most this long. */
const MAX_BACKOFF_MS = 30_000;

/**
 * What an ended attempt means for its task. A cancellation or interruption cancels; a pressure
 * kill is requeued (unless the run is stopping, or `requeue` says it can never fit) and does not
 * count against `retries`; any other failure retries while retries are left and the run is not
 * stopping.
 */
export function attemptStatus(s: TaskState, o: ExecOutcome, stopping: 'failure' | 'interrupted' | null, requeue: () => 'requeued' | 'failed'): AttemptStatus {
  if (o.error === null) return 'succeeded';
  if (o.killedBy === 'cancelled' || stopping === 'interrupted') return 'cancelled';
  if (o.killedBy === 'pressure') return stopping ? 'cancelled' : requeue();
  if (!stopping && s.attempts - s.requeues <= s.spec.retries) return 'retrying';
  return 'failed';
}

/** The wait before attempt `attempts + 1`: the base doubled per attempt so far. */
export function retryBackoffMs(baseMs: number, attempts: number): number {
  return Math.min(baseMs * 2 ** (attempts - 1), MAX_BACKOFF_MS);
}

/** The `task-end` event of an attempt (`s` already holds its end). */
export function taskEndEvent(s: TaskState, o: ExecOutcome, status: AttemptStatus, metrics: Record<string, number> = {}): RunEvent {
  return {
    type: 'task-end',
    t: s.endedMs!,
    id: s.id,
    agent: s.type,
    attempt: s.attempts,
    status,
    exitCode: o.exitCode,
    signal: o.signal,
    durationMs: o.durationMs,
    peakRssBytes: s.peakRss,
    error: s.error,
    killedBy: o.killedBy,
    ...(o.ranOn !== undefined && { worker: o.ranOn }),
    metrics,
  };
}
