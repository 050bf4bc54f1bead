// Budget pools: their shares are configuration (validated when the config resolves), and the
// scheduler applies them at admission. Both read the rule below, so it lives in the lower layer.

/** Shares of the budget, 0..1, adding up to 1 (the seed: critical 20, execution 40, caching 25, buffer 15). */
export interface Pools {
  critical: number;
  execution: number;
  caching: number;
  buffer: number;
}

/**
 * The share of the budget that reservations may reach once a task of this class is admitted.
 *
 * - Tasks take from **execution**.
 * - **caching** belongs to the caches, but what they do not hold is lent to tasks; before a task
 *   waits, caches are asked to give memory back (the run loop's `reclaim`).
 * - **critical** is kept for critical-priority tasks, and lent to other tasks only while no
 *   critical task is waiting — so most workflows, which have none, lose nothing to it.
 * - **buffer** absorbs spikes; critical tasks may always borrow it. Other tasks may borrow it only
 *   while the machine is calm (its used memory below the `moderate` line): an empty buffer then
 *   buys nothing, and every task already keeps 1.2 × its estimate free as its own headroom. Once
 *   the machine nears its limit it is held back. (Held back always, the seed's rule costs the
 *   memory-bound benchmark 1.41 × its lower bound instead of 1.20.)
 *
 * Cache bytes held are subtracted by the caller (they are measured, not a share).
 */
export function poolLimitShare(p: Pools, critical: boolean, criticalWaiting: boolean, calm = false): number {
  if (critical) return 1;
  return p.execution + p.caching + (criticalWaiting ? 0 : p.critical) + (calm ? p.buffer : 0);
}

/** The pools of a budget as the run report and `guild doctor` show them. */
export interface PoolsReport {
  critical: { share: number; bytes: number };
  execution: { share: number; bytes: number };
  caching: { share: number; bytes: number };
  buffer: { share: number; bytes: number };
  /** What tasks below critical may reserve while no critical task waits and pressure is above optimal (execution + caching + critical); at optimal the buffer is lent too. */
  non_critical_limit_bytes: number;
  peak_reserved_bytes: { critical: number; other: number };
}

/** Pool shares and sizes for a budget, with the peaks the run reserved. */
export function poolReport(p: Readonly<Pools>, budgetBytes: number, peak: { critical: number; other: number }): PoolsReport {
  const pool = (share: number) => ({ share, bytes: Math.floor(budgetBytes * share) });
  return {
    critical: pool(p.critical),
    execution: pool(p.execution),
    caching: pool(p.caching),
    buffer: pool(p.buffer),
    non_critical_limit_bytes: Math.floor(budgetBytes * poolLimitShare(p, false, false)),
    peak_reserved_bytes: { ...peak },
  };
}
