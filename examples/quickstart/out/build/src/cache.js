/** A least-recently-used cache with a size cap, built on Map's insertion order. */
export class LruCache {
    #max;
    #map = new Map();
    hits = 0;
    misses = 0;
    constructor(max) {
        if (!Number.isInteger(max) || max < 1)
            throw new RangeError(`Expected max >= 1, got ${max}`);
        this.#max = max;
    }
    get size() {
        return this.#map.size;
    }
    get(key) {
        if (!this.#map.has(key)) {
            this.misses++;
            return undefined;
        }
        const value = this.#map.get(key);
        // Re-insert so the key becomes the most recently used (Map keeps insertion order).
        this.#map.delete(key);
        this.#map.set(key, value);
        this.hits++;
        return value;
    }
    set(key, value) {
        this.#map.delete(key);
        this.#map.set(key, value);
        if (this.#map.size > this.#max)
            this.#map.delete(this.#map.keys().next().value);
        return this;
    }
    /** Returns the cached value, computing and storing it on a miss. */
    memo(key, compute) {
        const hit = this.get(key);
        if (hit !== undefined)
            return hit;
        const value = compute(key);
        this.set(key, value);
        return value;
    }
}
