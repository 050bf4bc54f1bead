import { createRequire } from 'node:module';
import type { LRUCache } from 'lru-cache';
import type { CacheMode } from '../governor/governor.js';
import { originalLength } from './compression.js';
import { emptyStats, type CacheEntry, type CacheTier, type LimitsOf, type NamespaceStats, type PruneResult, type TierStats } from './tier.js';

/**
 * lru-cache, loaded at the first namespace this tier holds (its CommonJS build, so that the
 * synchronous tier can require it then): a run whose tasks cache nothing never loads it, ~0.4 MB
 * of its RSS (bench/startup.ts).
 */
let lruClass: typeof LRUCache | undefined;
const lruCache = (): typeof LRUCache => (lruClass ??= (createRequire(import.meta.url)('lru-cache') as typeof import('lru-cache')).LRUCache);

/** Options of the memory tier. */
export interface MemoryTierOptions {
  /** Byte budget over every namespace (keys and values). @default 256 MiB (DEFAULTS.cache.memoryBytes) */
  maxBytes: number;
  /** Per-namespace entry caps. @default none */
  limits?: LimitsOf;
  /** Clock for expiry, epoch ms. @default Date.now */
  now?: () => number;
}

/** Share of the byte budget kept under each governor cache mode. */
const MODE_SHARE: Record<CacheMode, number> = { normal: 1, shrink: 0.5, evict: 0.25, off: 0 };
/** Bookkeeping per entry beyond key and value bytes (lru-cache's slots, the entry object). */
const ENTRY_OVERHEAD = 64;

interface Space {
  readonly lru: LRUCache<string, CacheEntry>;
  readonly stats: NamespaceStats;
}

/**
 * L1: lru-cache, one instance per namespace (so a namespace's entry cap is lru-cache's own `max`
 * and a hit is two map lookups). Under the shared byte budget the namespace holding the most
 * bytes gives back first. Expiry is checked here rather than with lru-cache's `ttl`, which would
 * track a timestamp per entry on its own clock; ours is the entry's absolute `expiresAt`, which
 * survives promotion from the tiers below.
 *
 * Implements the governor's side of the memory interface: shrink keeps half the budget, evict a
 * quarter, off drops everything and stores nothing until pressure falls.
 */
export class MemoryTier implements CacheTier {
  readonly name = 'memory' as const;
  readonly #spaces = new Map<string, Space>();
  readonly #maxBytes: number;
  readonly #limits: LimitsOf;
  readonly #now: () => number;
  #budget: number;
  #mode: CacheMode = 'normal';

  constructor(options: MemoryTierOptions) {
    this.#maxBytes = options.maxBytes;
    this.#budget = options.maxBytes;
    this.#limits = options.limits ?? (() => ({ maxEntries: null }));
    this.#now = options.now ?? Date.now;
  }

  get(namespace: string, key: string): CacheEntry | undefined {
    const space = this.#spaces.get(namespace);
    const e = space?.lru.get(key);
    if (e === undefined) {
      if (space) space.stats.misses++;
      return undefined;
    }
    if (e.expiresAt !== 0 && e.expiresAt <= this.#now()) {
      space!.lru.delete(key);
      space!.stats.expired++;
      space!.stats.misses++;
      return undefined;
    }
    space!.stats.hits++;
    return e;
  }

  set(namespace: string, key: string, value: Buffer, expiresAt: number): void {
    const size = value.length + key.length + ENTRY_OVERHEAD;
    // Off, or larger than the whole (current) budget: not kept here, and an older value of the
    // key must not stay readable while the tiers below get the new one.
    if (this.#mode === 'off' || size > this.#budget) {
      this.#spaces.get(namespace)?.lru.delete(key);
      return;
    }
    this.#space(namespace).lru.set(key, { value, expiresAt }, { size });
    this.#fit(this.#budget);
  }

  delete(namespace: string, key: string): boolean {
    return this.#spaces.get(namespace)?.lru.delete(key) ?? false;
  }

  keys(namespace: string): string[] {
    const space = this.#spaces.get(namespace);
    if (!space) return [];
    const now = this.#now();
    const out: string[] = [];
    for (const [k, e] of space.lru.entries()) if (e.expiresAt === 0 || e.expiresAt > now) out.push(k);
    return out;
  }

  clear(namespace?: string): number {
    let n = 0;
    for (const [ns, space] of this.#spaces) {
      if (namespace !== undefined && ns !== namespace) continue;
      n += space.lru.size;
      space.lru.clear();
    }
    return n;
  }

  prune(): PruneResult {
    const expired = this.#dropExpired();
    return { expired, evicted: this.#fit(this.#budget) };
  }

  stats(): TierStats {
    const namespaces: Record<string, NamespaceStats> = {};
    for (const [ns, space] of this.#spaces) {
      // Values are held as stored (compressed once by the layered cache): the original is what
      // each frame declares. A walk over the entries, but stats are asked for, not on a hot path.
      let saved = 0;
      for (const e of space.lru.values()) saved += originalLength(e.value, e.value.length) - e.value.length;
      namespaces[ns] = { ...space.stats, entries: space.lru.size, bytes: space.lru.calculatedSize, original_bytes: space.lru.calculatedSize + saved };
    }
    return { tier: this.name, capBytes: this.#maxBytes, namespaces };
  }

  flush(): void {}

  close(): void {
    this.clear();
  }

  /** Bytes held now (keys, values and per-entry bookkeeping). */
  bytes(): number {
    let n = 0;
    for (const space of this.#spaces.values()) n += space.lru.calculatedSize;
    return n;
  }

  /** The governor's cache mode: the budget shrinks at once and grows back when pressure falls. */
  onCacheMode(mode: CacheMode): void {
    this.#mode = mode;
    this.#budget = Math.floor(this.#maxBytes * MODE_SHARE[mode]);
    if (mode === 'off') this.clear();
    else {
      if (mode !== 'normal') this.#dropExpired();
      this.#fit(this.#budget);
    }
  }

  /** A task waits for memory: give back down to the shrunken budget. */
  reclaim(): void {
    this.#dropExpired();
    this.#fit(Math.min(this.#budget, Math.floor(this.#maxBytes * MODE_SHARE.shrink)));
  }

  get mode(): CacheMode {
    return this.#mode;
  }

  #space(ns: string): Space {
    let space = this.#spaces.get(ns);
    if (space === undefined) {
      const stats = emptyStats();
      const max = this.#limits(ns).maxEntries;
      const Lru = lruCache();
      const lru: LRUCache<string, CacheEntry> = new Lru<string, CacheEntry>({
        // lru-cache needs a bound: the entry cap, else the byte budget (which #fit enforces across namespaces).
        ...(max !== null ? { max } : {}),
        maxSize: this.#maxBytes,
        dispose: (_v, _k, reason) => {
          if (reason === 'evict') stats.evictions++;
        },
      });
      this.#spaces.set(ns, (space = { lru, stats }));
    }
    return space;
  }

  /** Evicts least recently used entries, from the namespace holding the most bytes, until `budget` holds. */
  #fit(budget: number): number {
    let total = this.bytes();
    let evicted = 0;
    while (total > budget) {
      let largest: Space | undefined;
      for (const space of this.#spaces.values()) if (!largest || space.lru.calculatedSize > largest.lru.calculatedSize) largest = space;
      if (!largest || largest.lru.size === 0) break;
      const before = largest.lru.calculatedSize;
      largest.lru.pop();
      total -= before - largest.lru.calculatedSize;
      evicted++;
    }
    return evicted;
  }

  #dropExpired(): number {
    const now = this.#now();
    let n = 0;
    for (const space of this.#spaces.values()) {
      for (const [k, e] of space.lru.entries()) {
        if (e.expiresAt !== 0 && e.expiresAt <= now) {
          space.lru.delete(k);
          space.stats.expired++;
          n++;
        }
      }
    }
    return n;
  }
}
