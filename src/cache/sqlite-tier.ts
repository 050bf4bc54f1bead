import { createRequire } from 'node:module';
import type { Statement } from 'better-sqlite3';
import { openDatabase, type Db } from '../store/db.js';
import { originalLength } from './compression.js';
import { emptyStats, statsFor, type CacheCounters, type CacheEntry, type CacheTier, type LimitsOf, type NamespaceStats, type PruneResult, type TierStats } from './tier.js';

/** zlib's crc32, zlib loaded at the first value written or read (a run that caches nothing never loads it). */
let zlibCrc32: ((data: Buffer) => number) | undefined;
const crc32 = (data: Buffer): number => (zlibCrc32 ??= (createRequire(import.meta.url)('node:zlib') as typeof import('node:zlib')).crc32)(data);

/** Options of the SQLite tier. */
export interface SqliteTierOptions {
  /** An open store (shared with the run history), or the file to open. */
  db: Db | string;
  /** Byte cap over every namespace; the least recently read go first. @default 1 GiB (DEFAULTS.cache.diskBytes) */
  maxBytes: number;
  limits?: LimitsOf;
  /** Epoch ms. @default Date.now */
  now?: () => number;
  /** Buffered writes are committed after this long… @default 10 ms */
  flushDelayMs?: number;
  /** …or as soon as this many are buffered. @default 1000 */
  batchSize?: number;
}

/** Counters that are summed across processes in `cache_stats`. */
export type PersistedCounters = CacheCounters;

const COUNTERS: readonly (keyof PersistedCounters)[] = ['hits', 'misses', 'evictions', 'expired', 'corrupt', 'computes', 'compute_ms'];

type Pending = { ns: string; key: string; value: Buffer; expiresAt: number } | { ns: string; key: string; value: null };

const rowKey = (ns: string, key: string): string => `${ns}\u0000${key}`;

/**
 * L2: entries in the embedded SQLite store. Reads are synchronous prepared statements; writes
 * (sets, deletes and the last-access times reads produce) are buffered and committed together
 * in one transaction, so a crash leaves each entry whole or absent and a set costs a map insert.
 * Reads see buffered writes first. Every value carries a crc32: a mismatch is a miss and the row
 * is deleted. The byte cap and entry caps are enforced after each commit, least recently read
 * first. Hit, miss and eviction counters are added to `cache_stats`, so they add up across runs.
 */
export class SqliteTier implements CacheTier {
  readonly name = 'sqlite' as const;
  readonly #db: Db;
  readonly #ownsDb: boolean;
  readonly #maxBytes: number;
  readonly #limits: LimitsOf;
  readonly #now: () => number;
  readonly #flushDelay: number;
  readonly #batchSize: number;
  readonly #pending = new Map<string, Pending>();
  readonly #touched = new Map<string, { ns: string; key: string; at: number }>();
  /** Counter deltas not yet added to `cache_stats`. */
  readonly #delta = new Map<string, NamespaceStats>();
  /** Extra counters recorded by the layered cache (`tier = 'cache'`). */
  readonly #cacheDelta = new Map<string, PersistedCounters>();
  #timer: NodeJS.Timeout | null = null;
  #bytes: number;
  #closed = false;
  readonly #q: {
    get: Statement<[string, string], { value: Buffer; size: number; checksum: number; expires_at: number }>;
    upsert: Statement<[string, string, Buffer, number, number, number, number, number, number]>;
    sizeOf: Statement<[string, string], { size: number }>;
    del: Statement<[string, string]>;
    touch: Statement<[number, string, string]>;
    keys: Statement<[string, number], { key: string }>;
    count: Statement<[string], { n: number }>;
    oldestOf: Statement<[string, number], { rowid: number; ns: string; size: number }>;
    oldest: Statement<[number], { rowid: number; ns: string; size: number }>;
    delRow: Statement<[number]>;
    total: Statement<[], { bytes: number | null }>;
    addStats: Statement<[string, string, number, number, number, number, number, number, number]>;
  };

  constructor(options: SqliteTierOptions) {
    this.#ownsDb = typeof options.db === 'string';
    this.#db = typeof options.db === 'string' ? openDatabase(options.db) : options.db;
    this.#maxBytes = options.maxBytes;
    this.#limits = options.limits ?? (() => ({ maxEntries: null }));
    this.#now = options.now ?? Date.now;
    this.#flushDelay = options.flushDelayMs ?? 10;
    this.#batchSize = options.batchSize ?? 1000;
    const db = this.#db;
    this.#q = {
      get: db.prepare('SELECT value, size, checksum, expires_at FROM cache_entries WHERE ns = ? AND key = ?'),
      upsert: db.prepare(
        `INSERT INTO cache_entries (ns, key, value, size, checksum, created_at, expires_at, accessed_at, original_size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, size = excluded.size, checksum = excluded.checksum,
         created_at = excluded.created_at, expires_at = excluded.expires_at, accessed_at = excluded.accessed_at, original_size = excluded.original_size`,
      ),
      sizeOf: db.prepare('SELECT size FROM cache_entries WHERE ns = ? AND key = ?'),
      del: db.prepare('DELETE FROM cache_entries WHERE ns = ? AND key = ?'),
      touch: db.prepare('UPDATE cache_entries SET accessed_at = ? WHERE ns = ? AND key = ?'),
      keys: db.prepare('SELECT key FROM cache_entries WHERE ns = ? AND (expires_at = 0 OR expires_at > ?)'),
      count: db.prepare('SELECT COUNT(*) AS n FROM cache_entries WHERE ns = ?'),
      oldestOf: db.prepare('SELECT rowid, ns, size FROM cache_entries WHERE ns = ? ORDER BY accessed_at LIMIT ?'),
      oldest: db.prepare('SELECT rowid, ns, size FROM cache_entries ORDER BY accessed_at LIMIT ?'),
      delRow: db.prepare('DELETE FROM cache_entries WHERE rowid = ?'),
      total: db.prepare('SELECT SUM(size) AS bytes FROM cache_entries'),
      addStats: db.prepare(
        `INSERT INTO cache_stats (ns, tier, hits, misses, evictions, expired, corrupt, computes, compute_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (ns, tier) DO UPDATE SET hits = hits + excluded.hits, misses = misses + excluded.misses,
         evictions = evictions + excluded.evictions, expired = expired + excluded.expired, corrupt = corrupt + excluded.corrupt,
         computes = computes + excluded.computes, compute_ms = compute_ms + excluded.compute_ms`,
      ),
    };
    this.#bytes = this.#q.total.get()?.bytes ?? 0;
  }

  get(namespace: string, key: string): CacheEntry | undefined {
    const stats = statsFor(this.#delta, namespace);
    const rk = rowKey(namespace, key);
    const now = this.#now();
    const p = this.#pending.get(rk);
    if (p !== undefined) {
      if (p.value === null || (p.expiresAt !== 0 && p.expiresAt <= now)) {
        stats.misses++;
        return undefined;
      }
      stats.hits++;
      return { value: p.value, expiresAt: p.expiresAt };
    }
    const row = this.#q.get.get(namespace, key);
    if (row === undefined) {
      stats.misses++;
      return undefined;
    }
    if (row.expires_at !== 0 && row.expires_at <= now) {
      stats.expired++;
      stats.misses++;
      this.#queue({ ns: namespace, key, value: null });
      return undefined;
    }
    if (row.value.length !== row.size || crc32(row.value) !== row.checksum) {
      stats.corrupt++;
      stats.misses++;
      this.#queue({ ns: namespace, key, value: null });
      return undefined;
    }
    stats.hits++;
    this.#touched.set(rk, { ns: namespace, key, at: now });
    this.#schedule();
    return { value: row.value, expiresAt: row.expires_at };
  }

  set(namespace: string, key: string, value: Buffer, expiresAt: number): void {
    this.#queue({ ns: namespace, key, value, expiresAt });
  }

  delete(namespace: string, key: string): boolean {
    const p = this.#pending.get(rowKey(namespace, key));
    const existed = p !== undefined ? p.value !== null : this.#q.sizeOf.get(namespace, key) !== undefined;
    this.#queue({ ns: namespace, key, value: null });
    return existed;
  }

  keys(namespace: string): string[] {
    this.flush();
    return this.#q.keys.all(namespace, this.#now()).map((r) => r.key);
  }

  clear(namespace?: string): number {
    this.flush();
    const r =
      namespace === undefined ? this.#db.prepare('DELETE FROM cache_entries').run() : this.#db.prepare('DELETE FROM cache_entries WHERE ns = ?').run(namespace);
    this.#bytes = this.#q.total.get()?.bytes ?? 0;
    return r.changes;
  }

  prune(): PruneResult {
    this.flush();
    const now = this.#now();
    let expired = 0;
    let evicted = 0;
    this.#db.transaction(() => {
      const gone = this.#db.prepare('DELETE FROM cache_entries WHERE expires_at > 0 AND expires_at <= ? RETURNING ns').all(now) as { ns: string }[];
      for (const { ns } of gone) statsFor(this.#delta, ns).expired++;
      expired = gone.length;
      // Other processes write the same file: count the bytes again rather than trust the running total.
      this.#bytes = this.#q.total.get()?.bytes ?? 0;
      const namespaces = (this.#db.prepare('SELECT DISTINCT ns FROM cache_entries').all() as { ns: string }[]).map((r) => r.ns);
      evicted = this.#enforceCaps(namespaces);
      this.#persistCounters();
    })();
    return { expired, evicted };
  }

  stats(): TierStats {
    this.flush();
    const namespaces: Record<string, NamespaceStats> = Object.create(null) as Record<string, NamespaceStats>; // keyed by names read from the store
    const rows = this.#db.prepare('SELECT ns, hits, misses, evictions, expired, corrupt FROM cache_stats WHERE tier = ?').all(this.name) as (NamespaceStats & { ns: string })[];
    for (const r of rows) namespaces[r.ns] = { hits: r.hits, misses: r.misses, evictions: r.evictions, expired: r.expired, corrupt: r.corrupt, entries: 0, bytes: 0, original_bytes: 0 };
    // Rows from before migration 10 have no original_size: they were stored as they are.
    const sizes = this.#db.prepare('SELECT ns, COUNT(*) AS n, SUM(size) AS bytes, SUM(COALESCE(original_size, size)) AS original FROM cache_entries GROUP BY ns').all() as {
      ns: string;
      n: number;
      bytes: number;
      original: number;
    }[];
    for (const r of sizes) {
      const s = (namespaces[r.ns] ??= emptyStats());
      s.entries = r.n;
      s.bytes = r.bytes;
      s.original_bytes = r.original;
    }
    return { tier: this.name, capBytes: this.#maxBytes, namespaces };
  }

  /** Cumulative counters the layered cache recorded here (`tier = 'cache'`), by namespace. */
  cacheCounters(): Record<string, PersistedCounters> {
    this.flush();
    const rows = this.#db.prepare(`SELECT ns, ${COUNTERS.join(', ')} FROM cache_stats WHERE tier = 'cache'`).all() as (PersistedCounters & { ns: string })[];
    return Object.fromEntries(rows.map(({ ns, ...c }) => [ns, c]));
  }

  /** Adds the layered cache's counters; committed with the next batch. */
  addCacheCounters(namespace: string, counters: Partial<PersistedCounters>): void {
    let c = this.#cacheDelta.get(namespace);
    if (c === undefined) this.#cacheDelta.set(namespace, (c = { hits: 0, misses: 0, evictions: 0, expired: 0, corrupt: 0, computes: 0, compute_ms: 0 }));
    for (const k of COUNTERS) c[k] += counters[k] ?? 0;
    this.#schedule();
  }

  /** Commits buffered writes and access times in one transaction, then enforces the caps. */
  flush(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#closed || (this.#pending.size === 0 && this.#touched.size === 0 && this.#delta.size === 0 && this.#cacheDelta.size === 0)) return;
    const writes = [...this.#pending.values()];
    const touches = [...this.#touched.values()];
    this.#pending.clear();
    this.#touched.clear();
    const now = this.#now();
    this.#db.transaction(() => {
      const grown = new Set<string>();
      for (const w of writes) {
        const old = this.#q.sizeOf.get(w.ns, w.key)?.size ?? 0;
        if (w.value === null) {
          this.#q.del.run(w.ns, w.key);
          this.#bytes -= old;
        } else {
          // The checksum covers the stored bytes (compressed or not): what a read gets back.
          this.#q.upsert.run(w.ns, w.key, w.value, w.value.length, crc32(w.value), now, w.expiresAt, now, originalLength(w.value, w.value.length));
          this.#bytes += w.value.length - old;
          grown.add(w.ns);
        }
      }
      for (const t of touches) this.#q.touch.run(t.at, t.ns, t.key);
      this.#enforceCaps(grown);
      this.#persistCounters();
    })();
  }

  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    if (this.#ownsDb) this.#db.close();
  }

  #queue(p: Pending): void {
    if (this.#closed) return;
    const rk = rowKey(p.ns, p.key);
    this.#pending.delete(rk); // keep insertion order = order of the last write
    this.#pending.set(rk, p);
    this.#touched.delete(rk);
    if (this.#pending.size >= this.#batchSize) this.flush();
    else this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== null || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.flush();
    }, this.#flushDelay);
    this.#timer.unref();
  }

  /** Inside a transaction: entry caps of `namespaces`, then the byte cap; least recently read first. */
  #enforceCaps(namespaces: Iterable<string>): number {
    let evicted = 0;
    const drop = (r: { rowid: number; ns: string; size: number }): void => {
      this.#q.delRow.run(r.rowid);
      this.#bytes -= r.size;
      evicted++;
      statsFor(this.#delta, r.ns).evictions++;
    };
    for (const ns of namespaces) {
      const max = this.#limits(ns).maxEntries;
      if (max === null) continue;
      const over = this.#q.count.get(ns)!.n - max;
      if (over > 0) for (const r of this.#q.oldestOf.all(ns, over)) drop(r);
    }
    while (this.#bytes > this.#maxBytes) {
      const rows = this.#q.oldest.all(64);
      if (rows.length === 0) {
        this.#bytes = 0;
        break;
      }
      for (const r of rows) {
        if (this.#bytes <= this.#maxBytes) break;
        drop(r);
      }
    }
    return evicted;
  }

  /** Inside a transaction. */
  #persistCounters(): void {
    for (const [ns, s] of this.#delta) this.#q.addStats.run(ns, this.name, s.hits, s.misses, s.evictions, s.expired, s.corrupt, 0, 0);
    for (const [ns, c] of this.#cacheDelta) this.#q.addStats.run(ns, 'cache', c.hits, c.misses, c.evictions, c.expired, c.corrupt, c.computes, c.compute_ms);
    this.#delta.clear();
    this.#cacheDelta.clear();
  }
}
