// Arithmetic on what tasks report spending (`tokens_in`, `tokens_out`, `cost_usd`, any other
// metric): shared by the run that sums it, the telemetry that counts it and the KPI that grades it.

/** The well-known metrics a task may report; any other `name: number` is kept as given. */
export const WELL_KNOWN_METRICS: ReadonlySet<string> = new Set(['tokens_in', 'tokens_out', 'tokens_cache_read', 'cost_usd']);

/** Sums without binary noise (0.1 + 0.2), to 1e-9: money is summed line after line. */
export const roundSpend = (v: number): number => Math.round(v * 1e9) / 1e9;

/** `a` plus `b`, metric by metric (a new object). */
export function addMetrics(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = roundSpend((out[k] ?? 0) + v);
  return out;
}

/** Tokens that count against `limits.tokens` and for the token KPI: input plus output (reads from a prompt cache are billed apart). */
export const tokensOf = (v: Readonly<Record<string, number>>): number => (v.tokens_in ?? 0) + (v.tokens_out ?? 0);
