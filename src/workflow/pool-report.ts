import type { PoolShares } from '../config/resolve.js';
import { poolLimitShare } from '../scheduler/pools.js';
import type { PoolsReport } from './report.js';

/** Pool shares and sizes for a budget, with the peaks the run reserved. */
export function poolReport(p: PoolShares, budgetBytes: number, peak: { critical: number; other: number }): PoolsReport {
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
