/** One early look after a start, so a task shorter than the sampling interval still gets a measured peak. */
export const EARLY_SAMPLE_MS = 30;
/** Sampling near the limits; between this and the configured interval otherwise. */
export const FAST_SAMPLE_MS = 100;
/** Within this much of the first pressure line (moderate), sampling goes fast. */
export const NEAR_MARGIN = 0.15;
/** Nothing running and nothing waiting to start (e.g. a retry backoff): look less often. */
export const IDLE_SAMPLE_MS = 1000;

/** What the next sampling interval depends on. */
export interface SamplingState {
  /** Executions watched now. */
  watched: number;
  /** The owner has work waiting to start (queued tasks). */
  waiting: boolean;
  /** The governor's level is above optimal. */
  pressured: boolean;
  /** Where the governor's fraction is heading. */
  projected: number;
  /** The moderate line (fraction). */
  moderate: number;
  /** Some execution is above 80 % of its hard limit. */
  nearLimit: boolean;
  /** The configured interval (≤ 250 ms by validation). */
  intervalMs: number;
}

/**
 * About every 100 ms near the limits (any pressure, within 15 points of the moderate line or
 * heading there, or an execution above 80 % of its hard limit); the configured interval while
 * executions run with headroom; 1 s when idle.
 */
export function nextInterval(s: SamplingState): number {
  if (s.watched === 0 && !s.waiting) return IDLE_SAMPLE_MS;
  if (s.pressured || s.projected >= s.moderate - NEAR_MARGIN || s.nearLimit) return Math.min(FAST_SAMPLE_MS, s.intervalMs);
  return s.intervalMs;
}
