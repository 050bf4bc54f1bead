/** Pressure levels, calmest first. */
export const LEVELS = ['optimal', 'moderate', 'high', 'critical', 'emergency'] as const;
export type PressureLevel = (typeof LEVELS)[number];

/**
 * Where each level begins, as a fraction of the limit (the seed's 70 / 80 / 90 / 95 / 98 %).
 * `ceiling` is the last line before the kernel's OOM killer: at or above it the cooldown between
 * kills is skipped.
 */
export interface Thresholds {
  moderate: number;
  high: number;
  critical: number;
  emergency: number;
  ceiling: number;
}

export const DEFAULT_THRESHOLDS: Readonly<Thresholds> = Object.freeze({ moderate: 0.7, high: 0.8, critical: 0.9, emergency: 0.95, ceiling: 0.98 });

export const levelRank = (l: PressureLevel): number => LEVELS.indexOf(l);

/** The level a fraction falls in, with no memory of the past. */
export function levelOf(fraction: number, t: Thresholds): PressureLevel {
  if (fraction >= t.emergency) return 'emergency';
  if (fraction >= t.critical) return 'critical';
  if (fraction >= t.high) return 'high';
  if (fraction >= t.moderate) return 'moderate';
  return 'optimal';
}

/** The fraction at which `level` begins (0 for optimal). */
export function levelStart(level: PressureLevel, t: Thresholds): number {
  return level === 'optimal' ? 0 : t[level];
}
