import { DEFAULTS } from '../config/defaults.js';
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

/** The seed's 70 / 80 / 90 / 95 / 98 % (from DEFAULTS, where every default lives). */
export const DEFAULT_THRESHOLDS: Readonly<Thresholds> = Object.freeze({ ...DEFAULTS.thresholds });

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
