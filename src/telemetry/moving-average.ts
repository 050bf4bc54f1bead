import { quantile } from '../util/quantile.js';

/**
 * The last `window` values of a series, in a fixed ring buffer. `push` is O(1) and allocates
 * nothing, because it runs on every task end and every sample; the reads scan the window (at most a
 * few thousand numbers), because they run only when the KPIs are evaluated (every 2 s at most).
 * Scanning also keeps the mean exact: a running sum minus evicted values would drift.
 */
export class MovingAverage {
  /** How many values are kept. */
  readonly window: number;
  readonly #values: Float64Array;
  /** Where the next value goes; once the buffer is full it is also the oldest value. */
  #next = 0;
  #count = 0;

  /** @param window how many of the newest values to keep (a positive integer). */
  constructor(window: number) {
    if (!Number.isInteger(window) || window < 1) throw new RangeError(`Expected window to be a positive integer, got ${String(window)}`);
    this.window = window;
    this.#values = new Float64Array(window);
  }

  /** Adds a value, evicting the oldest once the window is full. Non-finite values are ignored: one NaN would poison every mean. */
  push(value: number): void {
    if (!Number.isFinite(value)) return;
    this.#values[this.#next] = value;
    this.#next = this.#next + 1 === this.window ? 0 : this.#next + 1;
    if (this.#count < this.window) this.#count++;
  }

  /** Values currently in the window (at most `window`). */
  get count(): number {
    return this.#count;
  }

  /** Sum of the values in the window; 0 when empty. */
  sum(): number {
    let s = 0;
    for (let i = 0; i < this.#count; i++) s += this.#values[i]!;
    return s;
  }

  /** Mean of the window; null when empty. */
  mean(): number | null {
    return this.#count === 0 ? null : this.sum() / this.#count;
  }

  /** Largest value in the window; null when empty. */
  max(): number | null {
    if (this.#count === 0) return null;
    let m = -Infinity;
    for (let i = 0; i < this.#count; i++) if (this.#values[i]! > m) m = this.#values[i]!;
    return m;
  }

  /** Smallest value in the window; null when empty. */
  min(): number | null {
    if (this.#count === 0) return null;
    let m = Infinity;
    for (let i = 0; i < this.#count; i++) if (this.#values[i]! < m) m = this.#values[i]!;
    return m;
  }

  /**
   * The q-quantile (0..1) of the window, nearest-rank (as the learned profiles compute theirs);
   * null when empty. Sorts a copy.
   */
  quantile(q: number): number | null {
    if (!(q >= 0 && q <= 1)) throw new RangeError(`Expected q between 0 and 1, got ${String(q)}`);
    if (this.#count === 0) return null;
    // Order inside the buffer does not matter: only the first `count` slots hold values.
    const sorted = Array.from(this.#values.subarray(0, this.#count)).sort((a, b) => a - b);
    return quantile(sorted, q);
  }
}
