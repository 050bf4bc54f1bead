/**
 * One level of the cache. Memory, SQLite and Redis implement it, and one conformance suite
 * (test/cache-conformance.test.ts) runs against each of them.
 *
 * Values are bytes: the layered cache above encodes and decodes. Keys live in namespaces so that
 * a namespace can be listed, counted and cleared without scanning the others. A tier may answer
 * synchronously (memory, SQLite) or with a promise (Redis); callers that `await` work with both,
 * and the hot path of the memory tier never allocates a promise.
 */
import type { CacheMode } from '../governor/governor.js';

export type MaybePromise<T> = T | Promise<T>;

/** What a tier stores under one key. */
export interface CacheEntry {
  readonly value: Buffer;
  /** Absolute expiry in ms on the tier's clock (epoch ms for the persistent tiers); 0 never expires. */
  readonly expiresAt: number;
}

/** Counters and sizes of one namespace in one tier. */
export interface NamespaceStats {
  hits: number;
  misses: number;
  /** Entries dropped for room: the byte cap, a namespace's entry cap, or pressure. */
  evictions: number;
  /** Entries found expired (removed when seen or by prune). */
  expired: number;
  /** Stored entries that failed their checksum: counted as misses and removed. */
  corrupt: number;
  /** Live entries; null where counting would cost a scan the tier will not do here. */
  entries: number | null;
  /** Bytes of stored values; null where unknown. */
  bytes: number | null;
  /**
   * What `bytes` would be if no value were compressed: each frame's declared length, a value
   * stored as is its own (cache/compression.ts). null where unknown.
   */
  original_bytes: number | null;
}

export interface TierStats {
  readonly tier: TierName;
  /** Byte cap of the tier; null when it has none (Redis obeys its own maxmemory). */
  readonly capBytes: number | null;
  readonly namespaces: Record<string, NamespaceStats>;
}

export type TierName = 'memory' | 'sqlite' | 'redis';
export const TIER_NAMES: readonly TierName[] = ['memory', 'sqlite', 'redis'];

/** Per-namespace limits a tier enforces (from the namespace's policy). */
export interface NamespaceLimits {
  /** Keep at most this many entries, dropping the least recently used. null: no cap. */
  readonly maxEntries: number | null;
}

/** Lookup of each namespace's limits; namespaces not configured have none. */
export type LimitsOf = (namespace: string) => NamespaceLimits;

export interface PruneResult {
  expired: number;
  evicted: number;
}

/** The layered cache's own counters of a namespace; a tier that persists them sums them across processes. */
export interface CacheCounters {
  hits: number;
  misses: number;
  evictions: number;
  expired: number;
  corrupt: number;
  computes: number;
  compute_ms: number;
}

/**
 * A tier. Beyond the required methods a tier may offer capabilities, as optional methods: the
 * layered cache finds them by shape, never by class, so a tier wrapped by another (metering,
 * tracing) or a fourth kind of tier keeps its behaviour as long as it offers the methods.
 */
export interface CacheTier {
  readonly name: TierName;
  /** The entry, or undefined when absent, expired or corrupt. Counts a hit or a miss. */
  get(namespace: string, key: string): MaybePromise<CacheEntry | undefined>;
  /** Stores an entry; `expiresAt` 0 keeps it until evicted. */
  set(namespace: string, key: string, value: Buffer, expiresAt: number): MaybePromise<void>;
  /** True when something was removed. */
  delete(namespace: string, key: string): MaybePromise<boolean>;
  /** The live keys of a namespace (for listing and similarity search; namespaces are small). */
  keys(namespace: string): MaybePromise<string[]>;
  /** Removes every entry of a namespace, or of every namespace; returns how many. */
  clear(namespace?: string): MaybePromise<number>;
  /** Drops expired entries, then the least recently used beyond the byte and entry caps. */
  prune(): MaybePromise<PruneResult>;
  stats(): MaybePromise<TierStats>;
  /** Writes anything buffered (batched tiers). */
  flush(): MaybePromise<void>;
  close(): MaybePromise<void>;

  // Capabilities (optional).
  // Holding Guild's own memory (in-process tiers): what the governor measures and shrinks.
  /** Bytes of Guild's memory held now. Absent: the tier holds none (it lives on disk or elsewhere). */
  bytes?(): number;
  /** The governor's cache mode: shrink, evict, or drop everything and store nothing until pressure falls. */
  onCacheMode?(mode: CacheMode): void;
  /** A task waits for memory: give back what can be given now. */
  reclaim?(): void;
  // Persisting the layered cache's counters, so they add up across runs (the first tier that can).
  /** Adds counters; they may be committed with the tier's next write. */
  addCacheCounters?(namespace: string, counters: Partial<CacheCounters>): void;
  /** The cumulative counters persisted, by namespace. */
  cacheCounters?(): Record<string, CacheCounters>;
}

export function emptyStats(): NamespaceStats {
  return { hits: 0, misses: 0, evictions: 0, expired: 0, corrupt: 0, entries: 0, bytes: 0, original_bytes: 0 };
}

/** The stats record of `ns` in `map`, created on first use. */
export function statsFor(map: Map<string, NamespaceStats>, ns: string): NamespaceStats {
  let s = map.get(ns);
  if (s === undefined) map.set(ns, (s = emptyStats()));
  return s;
}

/** A namespace name: letters, digits, `.`, `_`, `-`; it is used as a key prefix and a CLI argument. */
export const NAMESPACE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
