import { priorityRank } from '../config/priority.js';
import type { Priority } from '../config/schema.js';

export { priorityRank };

/**
 * The queue key of a task: its enqueue time plus `agingMs` per priority level below critical.
 *
 * A task that has waited `agingMs` therefore ranks with a task one level more urgent that was
 * queued just now: aging without ever re-sorting the queue. Within one instant, priority order
 * is strict; across time, nothing waits forever behind a stream of more urgent work.
 */
export function queueKey(enqueuedAt: number, priority: Priority, agingMs: number): number {
  return enqueuedAt + priorityRank(priority) * agingMs;
}
