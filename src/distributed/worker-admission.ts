import { DEFAULTS } from '../config/defaults.js';
import { denyReason, type Capacity } from '../scheduler/admission.js';

/** A job a worker runs, as its admission counts it. */
export interface HeldJob {
  readonly payload: { readonly memoryBytes: number };
  /** Its last measured memory. */
  readonly observedBytes: number;
}

/** What a worker's jobs account for: each its estimate or, above it, what it measured. */
export function heldBytes(jobs: Iterable<HeldJob>): number {
  let n = 0;
  for (const j of jobs) n += Math.max(j.payload.memoryBytes, j.observedBytes);
  return n;
}

/**
 * A worker's capacity now, in the terms of a local run's admission: its budget, what its jobs and
 * other holders (its MCP backends) account for, the machine's available memory less what running
 * jobs expect but have not touched yet, and its CPU shares.
 */
export function workerCapacity(o: { budgetBytes: number; jobs: readonly HeldJob[]; otherBytes: number; availableBytes: number; cores: number; cpuUsed: number }): Capacity {
  let untouched = 0;
  for (const j of o.jobs) untouched += Math.max(0, j.payload.memoryBytes - j.observedBytes);
  return {
    budgetBytes: o.budgetBytes,
    accountedBytes: heldBytes(o.jobs) + o.otherBytes,
    systemFreeBytes: o.availableBytes - untouched,
    cpuCap: o.cores * DEFAULTS.cpuShare,
    cpuUsed: o.cpuUsed,
    running: o.jobs.length,
    headroom: DEFAULTS.headroom,
  };
}

/**
 * Whether one more job of `demand` is admitted: the local rule (headroom, CPU). Alone on an idle
 * worker, a job needs only its expected memory within the budget and free on the machine: headroom
 * is for jobs growing beside others, and the worker's governor still watches it (else a job above
 * budget ÷ 1.2 could run on no worker at all).
 */
export function admits(demand: { memoryBytes: number; cpu: number }, c: Capacity): boolean {
  if (c.running === 0 && c.accountedBytes === 0) return demand.memoryBytes <= Math.min(c.budgetBytes, c.systemFreeBytes ?? Infinity);
  return denyReason({ memoryBytes: demand.memoryBytes, cpu: demand.cpu, expectedDurationMs: 0 }, c) === null;
}
