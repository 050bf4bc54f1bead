import type { CacheMode, MemoryConsumer } from '../governor/governor.js';
import type { NamespacePolicy } from '../config/cache-policy.js';
import type { CompressionOptions } from '../config/compression.js';
import { decodeStored, DEFAULT_MAX_BYTES, encodeStored, escapeBare } from './compression.js';
import { TIER_NAMES, type CacheCounters, type CacheEntry, type CacheTier, type PruneResult, type TierName, type TierStats } from './tier.js';

/** Single flight across processes (the Redis lock implements it). */
export interface DistributedLock {
  /** A token when taken, null when another holder has it. */
  acquire(name: string, ttlMs: number): Promise<string | null>;
  release(name: string, token: string): Promise<boolean>;
  /** Renews a held lock for `ttlMs` more; false when it is no longer the caller's. */
  extend?(name: string, token: string, ttlMs: number): Promise<boolean>;
}

/** What `claim` grants: held (and renewed) until released. */
export interface Claim {
  release(): Promise<void>;
}

/** Options of a layered cache. */
export interface LayeredCacheOptions {
  /** Tiers from fastest to slowest (L1 first); at most one of each kind. */
  tiers: readonly CacheTier[];
  /** Policies by namespace; others get `defaultPolicy`. */
  namespaces?: Readonly<Record<string, NamespacePolicy>>;
  /** For namespaces not listed. @default no TTL, no entry cap, every tier */
  defaultPolicy?: NamespacePolicy;
  /** Makes `getOrCompute` compute once across processes that share it. @default none (once per process) */
  lock?: DistributedLock | null;
  /** Epoch ms. @default Date.now */
  now?: () => number;
  /** How long a computing process holds the lock before others may take over. @default 30 s */
  lockTtlMs?: number;
  /** How long a process waits for another's computation before computing itself. @default 10 s */
  lockWaitMs?: number;
  /** How often a waiting process looks for the other's result. @default 20 ms */
  pollMs?: number;
  /** Runs after the tiers close (e.g. quits a Redis client the cache was given to own). */
  onClose?: () => Promise<unknown> | unknown;
  /**
   * Values from `thresholdBytes` up are compressed once, here, and every tier stores the same
   * frame (cache/compression.ts); null stores every value as it is. Reading works either way:
   * frames and bare values are told apart by the stored bytes, so a cache without compression
   * still reads what one with it wrote. A workflow's cache (`openCache`) compresses by default
   * (DEFAULTS.cache.compression: brotli quality 1 from 4 KiB); a cache built directly stores bytes
   * as given unless asked, as it always did.
   * @default null
   */
  compression?: CompressionOptions | null;
}

export interface GetOrComputeOptions {
  /** Overrides the namespace's TTL for this entry. */
  ttlMs?: number | null;
}

/** What the layered cache saw in one namespace during this process's life. */
export interface LayerStats {
  hits: number;
  misses: number;
  /** hits / (hits + misses); null before the first lookup. */
  hit_rate: number | null;
  /** Which tier answered each hit. */
  hits_by_tier: Record<TierName, number>;
  /** Hits served past their fresh time while a refresh ran (stale-while-revalidate). */
  stale: number;
  /** Computations by getOrCompute (misses that one caller computed). */
  computes: number;
  /** Mean time of those computations: what a miss costs. null when none. */
  mean_miss_penalty_ms: number | null;
  /** Stored entries whose frame did not decode (truncated, damaged): each was a miss there and was removed. */
  corrupt: number;
}

/** Lookups that reached one tier of one namespace, and how they ended there. */
export interface CacheRequests {
  namespace: string;
  tier: TierName;
  hit: number;
  miss: number;
}

export interface CacheStatsReport {
  namespaces: Record<string, LayerStats>;
  tiers: TierStats[];
}

interface Layer {
  hits: number;
  misses: number;
  byTier: Record<TierName, number>;
  stale: number;
  computes: number;
  computeMs: number;
  corrupt: number;
  /** Counters not yet added to the store's cumulative `cache_stats`. */
  unsaved: Unsaved;
}

type Unsaved = { hits: number; misses: number; computes: number; compute_ms: number; corrupt: number };
const noneUnsaved = (): Unsaved => ({ hits: 0, misses: 0, computes: 0, compute_ms: 0, corrupt: 0 });

/** A hit: the value its stored bytes hold (decompressed). */
interface Found {
  readonly value: Buffer;
}

const ALL_TIERS: NamespacePolicy = { ttlMs: null, maxEntries: null, staleWhileRevalidateMs: null, tiers: TIER_NAMES };
/** Stale-while-revalidate values carry their fresh-until time (float64) in front. */
const SWR_HEADER = 8;

const isPromise = <T>(v: T | Promise<T>): v is Promise<T> => typeof (v as Promise<T> | undefined)?.then === 'function';

/**
 * L1 → L2 → L3. A hit in a lower tier is promoted to the tiers above it with its remaining
 * lifetime; a set writes through to every tier the namespace uses. `getOrCompute` computes once
 * per key however many callers miss together: once per process through a map of flights, and
 * once across processes when a lock is given (Redis SET NX PX), with a bounded wait after which a
 * waiter computes itself rather than hang on a dead holder.
 *
 * It is the memory consumer the governor talks to: the memory tier shrinks, evicts, or switches
 * off; the persistent tiers hold no memory of Guild's and carry on.
 */
export class LayeredCache implements MemoryConsumer {
  readonly #tiers: readonly CacheTier[];
  readonly #policies: Readonly<Record<string, NamespacePolicy>>;
  readonly #default: NamespacePolicy;
  readonly #route = new Map<string, readonly CacheTier[]>();
  readonly #layers = new Map<string, Layer>();
  readonly #flights = new Map<string, Promise<Buffer>>();
  readonly #refreshing = new Set<string>();
  readonly #lock: DistributedLock | null;
  readonly #now: () => number;
  readonly #lockTtl: number;
  readonly #lockWait: number;
  readonly #poll: number;
  readonly #onClose: (() => Promise<unknown> | unknown) | null;
  readonly #compression: CompressionOptions | null;
  readonly #maxBytes: number;
  /**
   * Found by what the tiers can do (optional methods of CacheTier), never by class, so a wrapped
   * or new tier keeps its part: those holding Guild's memory (the governor's concern), and the
   * first that persists counters.
   */
  readonly #holders: readonly CacheTier[];
  readonly #counterStore: CacheTier | undefined;

  constructor(options: LayeredCacheOptions) {
    this.#tiers = options.tiers;
    this.#policies = options.namespaces ?? {};
    this.#default = options.defaultPolicy ?? ALL_TIERS;
    this.#lock = options.lock ?? null;
    this.#now = options.now ?? Date.now;
    this.#lockTtl = options.lockTtlMs ?? 30_000;
    this.#lockWait = options.lockWaitMs ?? 10_000;
    this.#poll = options.pollMs ?? 20;
    this.#onClose = options.onClose ?? null;
    this.#compression = options.compression ?? null;
    this.#maxBytes = this.#compression?.maxBytes ?? DEFAULT_MAX_BYTES;
    this.#holders = this.#tiers.filter((t) => t.bytes !== undefined || t.onCacheMode !== undefined || t.reclaim !== undefined);
    this.#counterStore = this.#tiers.find((t) => t.addCacheCounters !== undefined);
  }

  /** The tiers, fastest first. */
  get tiers(): readonly CacheTier[] {
    return this.#tiers;
  }

  policy(namespace: string): NamespacePolicy {
    // Own keys only: a namespace called `constructor` must not find Object's.
    return Object.hasOwn(this.#policies, namespace) ? this.#policies[namespace]! : this.#default;
  }

  /**
   * The value, from the fastest tier that has it; promoted to the faster ones. `count: false`
   * leaves the hit/miss counters alone, for callers that decide what counts (`recordLookup`).
   */
  async get(namespace: string, key: string, options: { count?: boolean } = {}): Promise<Buffer | undefined> {
    const found = await this.#lookup(namespace, key, options.count !== false);
    return found === undefined ? undefined : this.#unwrap(namespace, found.value).value;
  }

  /** Counts a hit or a miss decided by the caller (the routing cache's similar-description hits). */
  recordLookup(namespace: string, hit: boolean): void {
    this.#count(this.#layer(namespace), hit ? 'hits' : 'misses');
  }

  #count(l: Layer, what: 'hits' | 'misses'): void {
    l[what]++;
    l.unsaved[what]++;
  }

  /** Writes through to every tier the namespace uses. `ttlMs` overrides the namespace's TTL. */
  async set(namespace: string, key: string, value: Buffer, options: GetOrComputeOptions = {}): Promise<void> {
    const policy = this.policy(namespace);
    const ttl = options.ttlMs !== undefined ? options.ttlMs : policy.ttlMs;
    const now = this.#now();
    const swr = policy.staleWhileRevalidateMs;
    let stored = value;
    let expiresAt = ttl === null ? 0 : now + ttl;
    // Every value of a stale-while-revalidate namespace carries the header (fresh-until 0: never stale).
    if (swr !== null) {
      stored = Buffer.allocUnsafe(SWR_HEADER + value.length);
      stored.writeDoubleBE(expiresAt, 0);
      value.copy(stored, SWR_HEADER);
      if (expiresAt !== 0) expiresAt += swr;
    }
    // Once, before the tiers: the persistent ones all hold the same frame. Tiers holding Guild's
    // memory get the value itself (escaped only if it begins with the magic): see #inMemory.
    const packed = await encodeStored(stored, this.#compression);
    const bare = packed === stored ? stored : escapeBare(stored);
    const pending: Promise<void>[] = [];
    for (const t of this.#tiersOf(namespace)) {
      const r = t.set(namespace, key, this.#inMemory(t) ? bare : packed, expiresAt);
      if (isPromise(r)) pending.push(r);
    }
    await Promise.all(pending);
  }

  async delete(namespace: string, key: string): Promise<boolean> {
    const results = await Promise.all(this.#tiersOf(namespace).map((t) => t.delete(namespace, key)));
    return results.some(Boolean);
  }

  /**
   * The cached value, or `compute()`'s result stored for the next caller. Concurrent misses of one
   * key share one computation (in this process always; across processes with a lock). In a
   * stale-while-revalidate namespace a stale value is returned at once and refreshed once in the
   * background.
   */
  async getOrCompute(namespace: string, key: string, compute: () => Buffer | Promise<Buffer>, options: GetOrComputeOptions = {}): Promise<Buffer> {
    const found = await this.#lookup(namespace, key);
    if (found !== undefined) {
      const { value, stale } = this.#unwrap(namespace, found.value);
      if (stale) {
        this.#layer(namespace).stale++;
        this.#refresh(namespace, key, compute, options);
      }
      return value;
    }
    const id = `${namespace}\u0000${key}`;
    let flight = this.#flights.get(id);
    if (flight === undefined) {
      flight = this.#computeOnce(namespace, key, compute, options).finally(() => this.#flights.delete(id));
      this.#flights.set(id, flight);
    }
    return flight;
  }

  /**
   * Claims computing `key` across the processes that share this cache's Redis tier, for work
   * done outside `getOrCompute` (a memoized task runs as a process, then its result is stored).
   * Null while another process holds the claim: look for its result, then claim again. The claim
   * is renewed until released, so it outlives a long computation, and lapses within the lock TTL
   * when its holder dies. Without a shared tier or a lock there is no one to share with: granted.
   */
  async claim(namespace: string, key: string): Promise<Claim | null> {
    const lock = this.#lock;
    if (lock === null || !this.#tiersOf(namespace).some((t) => t.name === 'redis')) return { release: async () => undefined };
    const name = `${namespace}:${key}`;
    const token = await lock.acquire(name, this.#lockTtl);
    if (token === null) return null;
    const renew = lock.extend ? setInterval(() => void lock.extend!(name, token, this.#lockTtl).catch(() => false), this.#lockTtl / 3) : null;
    renew?.unref();
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        if (renew) clearInterval(renew);
        await lock.release(name, token).catch(() => false);
      },
    };
  }

  /** Keys of a namespace across its tiers. */
  async keys(namespace: string): Promise<string[]> {
    const all = await Promise.all(this.#tiersOf(namespace).map((t) => t.keys(namespace)));
    return [...new Set(all.flat())];
  }

  /** Empties a namespace (or everything) in every tier; returns the entries removed per tier. */
  async clear(namespace?: string): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const t of this.#tiers) out[t.name] = await t.clear(namespace);
    return out;
  }

  /** Expired entries and what is over the caps, per tier. */
  async prune(): Promise<Record<string, PruneResult>> {
    const out: Record<string, PruneResult> = {};
    for (const t of this.#tiers) out[t.name] = await t.prune();
    return out;
  }

  /** Counts a computation done outside getOrCompute (task memoization runs the task itself). */
  recordCompute(namespace: string, ms: number): void {
    const l = this.#layer(namespace);
    l.computes++;
    l.computeMs += ms;
    l.unsaved.computes++;
    l.unsaved.compute_ms += ms;
  }

  async stats(): Promise<CacheStatsReport> {
    const namespaces: Record<string, LayerStats> = {};
    for (const [ns, l] of this.#layers) {
      const n = l.hits + l.misses;
      namespaces[ns] = {
        hits: l.hits,
        misses: l.misses,
        hit_rate: n === 0 ? null : l.hits / n,
        hits_by_tier: { ...l.byTier },
        stale: l.stale,
        computes: l.computes,
        mean_miss_penalty_ms: l.computes === 0 ? null : l.computeMs / l.computes,
        corrupt: l.corrupt,
      };
    }
    this.#save();
    return { namespaces, tiers: await Promise.all(this.#tiers.map((t) => t.stats())) };
  }

  /**
   * Lookups per namespace and tier since this cache opened: a lookup reaches a tier when every
   * faster tier of its namespace missed. Synchronous and allocation-light (metrics read it at scrape).
   */
  requests(): CacheRequests[] {
    const out: CacheRequests[] = [];
    for (const [namespace, l] of this.#layers) {
      let reaching = l.hits + l.misses;
      for (const t of this.#tiersOf(namespace)) {
        const hit = l.byTier[t.name];
        out.push({ namespace, tier: t.name, hit, miss: reaching - hit });
        reaching -= hit;
      }
    }
    return out;
  }

  async flush(): Promise<void> {
    this.#save();
    for (const t of this.#tiers) await t.flush();
  }

  async close(): Promise<void> {
    this.#save();
    for (const t of this.#tiers) await t.close();
    await this.#onClose?.();
  }

  // The governor's side (MemoryConsumer): only tiers that hold Guild's memory take part.
  onCacheMode(mode: CacheMode): void {
    for (const t of this.#holders) t.onCacheMode?.(mode);
  }

  bytes(): number {
    let n = 0;
    for (const t of this.#holders) n += t.bytes?.() ?? 0;
    return n;
  }

  reclaim(): void {
    for (const t of this.#holders) t.reclaim?.();
  }

  /** The counters persisted across runs, by namespace (empty when no tier persists them). */
  persistedCounters(): Record<string, CacheCounters> {
    this.#save();
    return this.#counterStore?.cacheCounters?.() ?? {};
  }

  #tiersOf(namespace: string): readonly CacheTier[] {
    let tiers = this.#route.get(namespace);
    if (tiers === undefined) {
      const wanted = this.policy(namespace).tiers;
      tiers = this.#tiers.filter((t) => wanted.includes(t.name));
      this.#route.set(namespace, tiers);
    }
    return tiers;
  }

  #layer(namespace: string): Layer {
    let l = this.#layers.get(namespace);
    if (l === undefined) {
      l = { hits: 0, misses: 0, byTier: { memory: 0, sqlite: 0, redis: 0 }, stale: 0, computes: 0, computeMs: 0, corrupt: 0, unsaved: noneUnsaved() };
      this.#layers.set(namespace, l);
    }
    return l;
  }

  async #lookup(namespace: string, key: string, count = true): Promise<Found | undefined> {
    const tiers = this.#tiersOf(namespace);
    const layer = this.#layer(namespace);
    for (let i = 0; i < tiers.length; i++) {
      const found = await this.#read(tiers, i, namespace, key);
      if (found === undefined) continue;
      if (count) {
        this.#count(layer, 'hits');
        layer.byTier[tiers[i]!.name]++;
      }
      return found;
    }
    if (count) this.#count(layer, 'misses');
    return undefined;
  }

  /**
   * `tiers[i]`'s entry, decoded and promoted. An entry whose frame does not decode is a miss of
   * that tier (the next one may hold a good copy): counted corrupt and removed, as a tier does
   * with a failed checksum. One this Node cannot read (a newer frame, zstd) is left for those that can.
   */
  async #read(tiers: readonly CacheTier[], i: number, namespace: string, key: string): Promise<Found | undefined> {
    const r = tiers[i]!.get(namespace, key);
    const e = isPromise(r) ? await r : r;
    if (e === undefined) return undefined;
    const value = await decodeStored(e.value, this.#maxBytes);
    if (value === 'unreadable') return undefined;
    if (value === 'corrupt') {
      const l = this.#layer(namespace);
      l.corrupt++;
      l.unsaved.corrupt++;
      const d = tiers[i]!.delete(namespace, key);
      if (isPromise(d)) d.catch(() => false);
      return undefined;
    }
    this.#promote(tiers, i, namespace, key, e, value);
    return { value };
  }

  /**
   * True for tiers that hold Guild's own memory (the memory tier): they keep values uncompressed.
   * Measured (bench/cache-compression.ts, L1): an L1 hit on a brotli-1 frame runs at 37,000/s for
   * 4 KiB and 1,600/s for 256 KiB against 1.7–2.1 million/s uncompressed, 50 to 1,000 times
   * slower, for 4× the entries only from 256 KiB; L1 exists to answer in a microsecond.
   */
  #inMemory(t: CacheTier): boolean {
    return t.bytes !== undefined;
  }

  /**
   * Copies a hit in `tiers[i]` to the faster tiers with its remaining lifetime: the stored bytes
   * as they are, or to a tier in Guild's memory the decoded value (escaped if it looks like a
   * frame). A failed copy is only a slower next read.
   */
  #promote(tiers: readonly CacheTier[], i: number, namespace: string, key: string, e: CacheEntry, decoded: Buffer): void {
    let bare: Buffer | undefined;
    for (let j = 0; j < i; j++) {
      const inMemory = this.#inMemory(tiers[j]!);
      if (inMemory && bare === undefined) bare = decoded === e.value ? decoded : escapeBare(decoded);
      const p = tiers[j]!.set(namespace, key, inMemory ? bare! : e.value, e.expiresAt);
      if (isPromise(p)) p.catch(() => undefined);
    }
  }

  #unwrap(namespace: string, stored: Buffer): { value: Buffer; stale: boolean } {
    if (this.policy(namespace).staleWhileRevalidateMs === null) return { value: stored, stale: false };
    if (stored.length < SWR_HEADER) return { value: stored, stale: false };
    const freshUntil = stored.readDoubleBE(0);
    return { value: stored.subarray(SWR_HEADER), stale: freshUntil !== 0 && freshUntil <= this.#now() };
  }

  async #computeOnce(namespace: string, key: string, compute: () => Buffer | Promise<Buffer>, options: GetOrComputeOptions): Promise<Buffer> {
    const shared = this.#lock !== null && this.#tiersOf(namespace).some((t) => t.name === 'redis');
    if (!shared) return this.#computeAndStore(namespace, key, compute, options);
    const lockName = `${namespace}:${key}`;
    // Waiting is real time whatever clock entries expire on.
    const wallNow = (): number => performance.now();
    const deadline = wallNow() + this.#lockWait;
    for (;;) {
      const token = await this.#lock!.acquire(lockName, this.#lockTtl);
      if (token !== null) {
        try {
          // Another process may have finished between our miss and our lock.
          const found = await this.#peekShared(namespace, key);
          if (found !== undefined) return found;
          return await this.#computeAndStore(namespace, key, compute, options);
        } finally {
          await this.#lock!.release(lockName, token).catch(() => false);
        }
      }
      // Someone else computes: wait for their result, within bounds.
      while (wallNow() < deadline) {
        await new Promise((r) => setTimeout(r, this.#poll));
        const found = await this.#peekShared(namespace, key);
        if (found !== undefined) return found;
        const again = await this.#lock!.acquire(lockName, this.#lockTtl);
        if (again !== null) {
          await this.#lock!.release(lockName, again);
          break; // the holder is gone without a result: try to take the lock properly
        }
      }
      if (wallNow() >= deadline) return this.#computeAndStore(namespace, key, compute, options);
    }
  }

  /** Looks in the shared tier only (the local ones missed a moment ago), promoting a hit. */
  async #peekShared(namespace: string, key: string): Promise<Buffer | undefined> {
    const tiers = this.#tiersOf(namespace);
    const found = await this.#read(tiers, tiers.findIndex((t) => t.name === 'redis'), namespace, key);
    return found === undefined ? undefined : this.#unwrap(namespace, found.value).value;
  }

  async #computeAndStore(namespace: string, key: string, compute: () => Buffer | Promise<Buffer>, options: GetOrComputeOptions): Promise<Buffer> {
    const t0 = performance.now();
    const value = await compute();
    this.recordCompute(namespace, performance.now() - t0);
    await this.set(namespace, key, value, options);
    return value;
  }

  #refresh(namespace: string, key: string, compute: () => Buffer | Promise<Buffer>, options: GetOrComputeOptions): void {
    const id = `${namespace}\u0000${key}`;
    if (this.#refreshing.has(id)) return;
    this.#refreshing.add(id);
    this.#computeAndStore(namespace, key, compute, options)
      .catch(() => undefined) // the stale value stays until its hard expiry
      .finally(() => this.#refreshing.delete(id));
  }

  /** Adds this process's counters to the store's cumulative ones (when a tier persists them). */
  #save(): void {
    const store = this.#counterStore;
    if (!store) return;
    for (const [ns, l] of this.#layers) {
      const u = l.unsaved;
      if (u.hits + u.misses + u.computes + u.corrupt === 0) continue;
      store.addCacheCounters!(ns, u);
      l.unsaved = noneUnsaved();
    }
  }
}
