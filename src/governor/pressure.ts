import { levelOf, levelRank, levelStart, LEVELS, type PressureLevel, type Thresholds } from './levels.js';

export interface HysteresisOptions {
  thresholds: Thresholds;
  /** A level is left only below its start minus this margin. @default 0.05 */
  margin: number;
  /** …and only after staying there this long (ms). @default 2000 */
  holdMs: number;
}

/**
 * Turns a stream of fractions into a level without flapping: a rise takes effect at once, a fall
 * only after the fraction has stayed below the current level's start minus a margin for a hold
 * time, and then one level at a time.
 */
export class PressureTracker {
  readonly #o: HysteresisOptions;
  #level: PressureLevel = 'optimal';
  #belowSince: number | null = null;
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
    const raw = levelOf(fraction, this.#o.thresholds);
    if (levelRank(raw) > levelRank(this.#level)) {
      this.#level = raw;
      this.#belowSince = null;
    } else if (this.#level !== 'optimal' && fraction < levelStart(this.#level, this.#o.thresholds) - this.#o.margin) {
      this.#belowSince ??= now;
      if (now - this.#belowSince >= this.#o.holdMs) {
        this.#level = LEVELS[levelRank(this.#level) - 1]!;
        // The next step down needs its own hold time.
        this.#belowSince = fraction < levelStart(this.#level, this.#o.thresholds) - this.#o.margin ? now : null;
      }
    } else {
      this.#belowSince = null;
    }
    if (levelRank(this.#level) > levelRank(this.#highest)) this.#highest = this.#level;
    return this.#level;
  }
}
