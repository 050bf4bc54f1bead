import { levelOf, levelRank, levelStart, type PressureLevel, type Thresholds } from './levels.js';

export interface HysteresisOptions {
  thresholds: Thresholds;
  /** A level is left only below its start minus this margin. @default 0.05 */
  margin: number;
  /** …and only after staying there this long (ms). @default 1000 */
  holdMs: number;
}

/**
 * Turns a stream of fractions into a level without flapping: a rise takes effect at once; a fall
 * only after the fraction has stayed below the current level's start minus a margin for a hold
 * time, and then straight to the level the hold's WORST reading supports (the highest level that
 * reading, plus the margin, reaches).
 *
 * Why the worst reading of the hold and not the last: a signal that oscillated during the hold
 * will do so again. Landing where even its peak stays within the margin means the peak neither
 * lifts the level again (it is below the next level's start, so no flap upward) nor, sitting at
 * least at the landing level's start minus the margin, starts another fall. A calm signal falls
 * in one hold however many levels it drops; the old one-level-per-hold descent kept a run
 * throttled for four holds after memory was already safe.
 */
export class PressureTracker {
  readonly #o: HysteresisOptions;
  #level: PressureLevel = 'optimal';
  #belowSince: number | null = null;
  /** The highest fraction seen since #belowSince (meaningful only while it is set). */
  #holdPeak = 0;
  #lastAt: number | null = null;
  #highest: PressureLevel = 'optimal';
  readonly timeAtMs: Record<PressureLevel, number> = { optimal: 0, moderate: 0, high: 0, critical: 0, emergency: 0 };

  constructor(options: HysteresisOptions) {
    this.#o = options;
  }

  get level(): PressureLevel {
    return this.#level;
  }

  get highest(): PressureLevel {
    return this.#highest;
  }

  /** Feeds one reading taken at `now` (ms); returns the level in force after it. */
  update(fraction: number, now: number): PressureLevel {
    if (this.#lastAt !== null) this.timeAtMs[this.#level] += Math.max(0, now - this.#lastAt);
    this.#lastAt = now;
    const t = this.#o.thresholds;
    const raw = levelOf(fraction, t);
    if (levelRank(raw) > levelRank(this.#level)) {
      this.#level = raw;
      this.#belowSince = null;
    } else if (this.#level !== 'optimal' && fraction < levelStart(this.#level, t) - this.#o.margin) {
      if (this.#belowSince === null) {
        this.#belowSince = now;
        this.#holdPeak = fraction;
      } else if (fraction > this.#holdPeak) {
        this.#holdPeak = fraction;
      }
      if (now - this.#belowSince >= this.#o.holdMs) {
        // #holdPeak + margin < the current level's start, so this is always a fall.
        this.#level = levelOf(this.#holdPeak + this.#o.margin, t);
        // The next fall needs a hold of its own.
        this.#belowSince = null;
      }
    } else {
      this.#belowSince = null;
    }
    if (levelRank(this.#level) > levelRank(this.#highest)) this.#highest = this.#level;
    return this.#level;
  }
}
