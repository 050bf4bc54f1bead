/** What the queue orders by: a key (lower first) and an insertion sequence for ties. */
export interface Keyed {
  key: number;
  seq: number;
}

const before = (a: Keyed, b: Keyed): boolean => a.key < b.key || (a.key === b.key && a.seq < b.seq);

/**
 * A binary min-heap on (key, seq): O(log n) push and pop, O(1) peek.
 *
 * Why not a sorted array with binary-search insertion (what p-queue does): insertion there is an
 * O(n) splice, which with 100,000 queued tasks dominates; a heap stays logarithmic.
 * Aging costs nothing here: it is folded into the key when the task is queued (see queue-key.ts),
 * so no element ever has to move because time passed.
 */
export class PriorityHeap<T extends Keyed> {
  #items: T[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): T | undefined {
    return this.#items[0];
  }

  push(item: T): void {
    const a = this.#items;
    a.push(item);
    let i = a.length - 1;
    // Sift up, moving the hole instead of swapping: one write per level.
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = a[parent]!;
      if (!before(item, p)) break;
      a[i] = p;
      i = parent;
    }
    a[i] = item;
  }

  pop(): T | undefined {
    const a = this.#items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      let i = 0;
      const n = a.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && before(a[r]!, a[l]!) ? r : l;
        if (!before(a[c]!, last)) break;
        a[i] = a[c]!;
        i = c;
      }
      a[i] = last;
    }
    return top;
  }

  /** Removes and returns every item, in no particular order. */
  drain(): T[] {
    const out = this.#items;
    this.#items = [];
    return out;
  }

  /** A copy of the items, in no particular order. */
  toArray(): T[] {
    return this.#items.slice();
  }
}
