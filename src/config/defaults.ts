/**
 * Every default in one place (the seed documents' numbers, see DESIGN.md). Nothing else in the
 * code base invents a default.
 */
export const DEFAULTS = {
  /** Share of the effective memory limit given to agents when no budget is set. */
  budgetShare: 0.75,
  /** Admission needs free budget >= headroom × expected memory. */
  headroom: 1.2,
  /** Admission keeps the sum of CPU shares <= cpuShare × cores. */
  cpuShare: 0.8,
  /** Per agent type when not declared: the seed's per-agent limit. */
  agentMemoryBytes: 100 * 1024 ** 2,
  agentCpu: 0.25,
  timeoutMs: 30_000,
  retries: 0,
  retryBackoffMs: 1000,
  retryBackoffMaxMs: 30_000,
  sampleIntervalMs: 200,
  killGraceMs: 3000,
  agingMs: 60_000,
  starvationLimitMs: 30_000,
} as const;
