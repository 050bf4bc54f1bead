import type { Priority } from '../config/schema.js';

const RANK: Record<Priority, number> = { critical: 0, high: 1, medium: 2, low: 3 };

/** 0 for critical … 3 for low. */
export const priorityRank = (p: Priority): number => RANK[p];

/**
 * The queue key of a task: its enqueue time plus `agingMs` per priority level below critical.
 *
 * A task that has waited `agingMs` therefore ranks with a task one level more urgent that was
 * queued just now: aging without ever re-sorting the queue. Within one instant, priority order
 * is strict; across time, nothing waits forever behind a stream of more urgent work.
 */
export function queueKey(enqueuedAt: number, priority: Priority, agingMs: number): number {
  return enqueuedAt + RANK[priority] * agingMs;
}
