/** A least-recently-used cache with a size cap, built on Map's insertion order. */
export class LruCache<K, V> {
  readonly #max: number;
  readonly #map = new Map<K, V>();
  hits = 0;
  misses = 0;

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`Expected max >= 1, got ${max}`);
    this.#max = max;
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: K): V | undefined {
    if (!this.#map.has(key)) {
      this.misses++;
      return undefined;
    }
    const value = this.#map.get(key) as V;
    // Re-insert so the key becomes the most recently used (Map keeps insertion order).
    this.#map.delete(key);
    this.#map.set(key, value);
    this.hits++;
    return value;
  }

  set(key: K, value: V): this {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value as K);
    return this;
  }

  /** Returns the cached value, computing and storing it on a miss. */
  memo(key: K, compute: (key: K) => V): V {
    const hit = this.get(key);
    if (hit !== undefined) return hit;
    const value = compute(key);
    this.set(key, value);
    return value;
  }
}
