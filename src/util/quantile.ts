/**
 * The q-quantile (0..1) of sorted numbers, nearest-rank; NaN for none. One definition for the
 * learned profiles (store) and the KPI windows (telemetry), so their figures agree.
 */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}
