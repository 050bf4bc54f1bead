/**
 * The admission rule, as pure functions over a snapshot of what runs. DESIGN.md: start a task only
 * if free budget >= headroom × its expected memory, the CPU shares stay <= the CPU cap, and its
 * type is under its concurrency limit (checked by the scheduler's per-type queues).
 */

/** What admission needs to know about a task. */
export interface Demand {
  memoryBytes: number;
  cpu: number;
  expectedDurationMs: number;
}

/** What admission needs to know about the machine and the running set, at one instant. */
export interface Capacity {
  budgetBytes: number;
  /** Σ over running tasks of max(expected, observed RSS): reservations count until memory shows. */
  accountedBytes: number;
  /** Live available memory from the probe, minus running tasks' untouched reservations; null if unknown. */
  systemFreeBytes: number | null;
  cpuCap: number;
  cpuUsed: number;
  running: number;
  headroom: number;
}

export type DenyReason = 'memory' | 'cpu';

/** Free memory as admission sees it: the smaller of the budget view and the system view. */
export function freeMemory(c: Capacity): number {
  const budgetFree = c.budgetBytes - c.accountedBytes;
  return c.systemFreeBytes === null ? budgetFree : Math.min(budgetFree, c.systemFreeBytes);
}

/** Null when the task may start now, else the first reason it may not. */
export function denyReason(d: Demand, c: Capacity): DenyReason | null {
  if (d.memoryBytes > 0 && freeMemory(c) < d.memoryBytes * c.headroom) return 'memory';
  // A task that asks for more CPU than the cap could never start beside others; it runs alone.
  if (d.cpu > 0 && c.cpuUsed + d.cpu > c.cpuCap + 1e-9 && c.running > 0) return 'cpu';
  return null;
}

/** One running task as the shadow computation sees it. */
export interface RunningShare {
  accountedBytes: number;
  cpu: number;
  /** When it is expected to end (ms, same clock as `now`). */
  expectedEnd: number;
}

/**
 * When the blocked head could start if running tasks end as expected (its "shadow time"), and how
 * much memory and CPU would be left over then. This is EASY backfilling: a smaller task may jump
 * ahead only if it ends before the shadow time or fits in what the head leaves spare, so it never
 * delays the head. Overdue tasks are taken to end now.
 */
export function shadow(head: Demand, c: Capacity, running: readonly RunningShare[], now: number): { at: number; spareBytes: number; spareCpu: number } {
  const need = head.memoryBytes * c.headroom;
  let free = freeMemory(c);
  let cpuFree = c.cpuCap - c.cpuUsed;
  const fitsCpu = (): boolean => head.cpu <= cpuFree + 1e-9;
  if (free >= need && fitsCpu()) return { at: now, spareBytes: free - need, spareCpu: cpuFree - head.cpu };
  const byEnd = [...running].sort((a, b) => a.expectedEnd - b.expectedEnd);
  for (let i = 0; i < byEnd.length; i++) {
    const r = byEnd[i]!;
    free += r.accountedBytes;
    cpuFree += r.cpu;
    // Everything has ended: the head runs alone whatever its CPU share.
    if (free >= need && (fitsCpu() || i === byEnd.length - 1)) {
      return { at: Math.max(now, r.expectedEnd), spareBytes: free - need, spareCpu: Math.max(0, cpuFree - head.cpu) };
    }
  }
  // Even an empty machine cannot take the head now (the system view is short): no deadline.
  return { at: Infinity, spareBytes: 0, spareCpu: 0 };
}

/** True when `candidate` may backfill ahead of a head whose shadow is `s`. */
export function mayBackfill(candidate: Demand, s: { at: number; spareBytes: number; spareCpu: number }, now: number): boolean {
  if (now + candidate.expectedDurationMs <= s.at) return true;
  return candidate.memoryBytes <= s.spareBytes && candidate.cpu <= s.spareCpu + 1e-9;
}
