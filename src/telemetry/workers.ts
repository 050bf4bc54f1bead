/**
 * Distributed workers as the dashboard, `guild status` and `/metrics` show them: each worker's
 * heartbeat (what it measured and counted itself) beside what this run counted of it.
 */
import type { WorkerRow, WorkersSnapshot } from './state.js';

/**
 * One worker's heartbeat as read back from Redis. Telemetry owns this shape (the distributed
 * layer above reads heartbeats into it: its `WorkerBeat` is this, structurally).
 */
export interface WorkerHeartbeat {
  name: string;
  host: string;
  pid: number;
  budgetBytes: number;
  freeBytes: number;
  running: number;
  pressure: string;
  peakBytes: number;
  rejected: number;
  /** Epoch ms the worker wrote it. */
  at: number;
}

/**
 * Rows for the live workers, by name. `tasks` is null when there is no run to count for; a worker
 * that ran none of the run's attempts counts 0. A heartbeat written by a clock ahead of this one
 * is 0 ms old, never negative.
 */
export function workerRows(beats: readonly WorkerHeartbeat[], now: number, tasks: ReadonlyMap<string, number> | null): WorkerRow[] {
  return beats
    .map((b) => ({
      name: b.name,
      host: b.host,
      pid: b.pid,
      budget_bytes: b.budgetBytes,
      used_bytes: Math.max(0, b.budgetBytes - b.freeBytes),
      free_bytes: b.freeBytes,
      running: b.running,
      pressure: b.pressure,
      peak_bytes: b.peakBytes,
      rejected: b.rejected,
      last_heartbeat: b.at,
      heartbeat_age_ms: Math.max(0, now - b.at),
      tasks: tasks === null ? null : (tasks.get(b.name) ?? 0),
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The `workers` feed's snapshot. */
export function workersSnapshot(queue: string, beats: readonly WorkerHeartbeat[], now: number, tasks: ReadonlyMap<string, number> | null): WorkersSnapshot {
  return { queue, at: now, workers: workerRows(beats, now, tasks) };
}
