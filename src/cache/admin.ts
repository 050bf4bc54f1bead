import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { resolveCache, type ResolvedCache } from '../config/resolve.js';
import { GuildError } from '../errors.js';
import { loadConfig } from '../config/load-config.js';
import type { LayeredCache } from './layered-cache.js';
import { storeFile } from '../store/db.js';
import { FolderLock, type RunLockHolder } from '../store/lease.js';
import { didYouMean } from '../util/did-you-mean.js';
import { openCache } from './open.js';
import { FALLBACK_POLICY, type NamespacePolicy } from '../config/cache-policy.js';
import type { NamespaceStats, PruneResult, TierName } from './tier.js';

/** One namespace in `guild cache stats`. */
export interface NamespaceReport {
  policy: { ttl_ms: number | null; max_entries: number | null; stale_while_revalidate_ms: number | null; tiers: readonly TierName[] };
  /** Lookups through the layered cache, summed over every process that used this store. */
  hits: number;
  misses: number;
  hit_rate: number | null;
  /** Results computed after a miss (task runs for `tasks`) and their mean time: the miss penalty. */
  computes: number;
  mean_miss_penalty_ms: number | null;
  /** Stored entries whose compressed frame did not decode (a miss, and removed), summed over every process. */
  corrupt_frames: number;
  /** Per tier: what it holds now and its own counters (the memory tier lives per process and is not listed). */
  tiers: Partial<Record<TierName, NamespaceStats>>;
}

export interface CacheStatsDocument {
  store: string;
  redis: string | null;
  context: ResolvedCache['context'];
  /** `bytes`: what the tier stores; `original_bytes`: the same values before compression. */
  tiers: { tier: TierName; cap_bytes: number | null; entries: number | null; bytes: number | null; original_bytes: number | null }[];
  /** How new entries are compressed (`null`: off). */
  compression: { codec: string; level: number; threshold_bytes: number } | null;
  namespaces: Record<string, NamespaceReport>;
}

/**
 * The cache configuration of a workflow file; without the file, the defaults over the store in
 * the current folder (so `guild cache` works where a run left `.guild/`).
 */
function cacheConfigOf(workflow: string): { config: ResolvedCache; dir: string } {
  if (existsSync(workflow)) {
    const resolved = loadConfig(workflow);
    return { config: resolved.cache, dir: resolved.dir };
  }
  const dir = resolve('.');
  if (!existsSync(storeFile(dir))) {
    throw new GuildError('CONFIG_NOT_FOUND', `no workflow at ${workflow} and no store at ${storeFile(dir)}; pass --workflow <file>`);
  }
  return { dir, config: resolveCache(undefined, undefined, dir) };
}

/** Options of the commands that change the cache: how they take the folder's run lock. */
export interface CacheWriteOptions {
  /** While a run (or another cache command) holds the folder's lock: wait for it (true) or throw `RunLockedError` (false). @default true */
  wait?: boolean;
  /** Called once, when the command first has to wait. */
  onWait?: (holder: RunLockHolder) => void;
  /** Aborting stops a wait. */
  signal?: AbortSignal;
}

/**
 * Opens the cache of `workflow` for `body`. With `lock`, first takes the folder's run lock for
 * that purpose, so no run stores or restores while entries go (`cache clear|prune`); readers
 * (`cache stats`) take none.
 */
async function withCache<T>(
  workflow: string,
  lock: { purpose: string; options: CacheWriteOptions } | null,
  body: (cache: LayeredCache, config: ResolvedCache, dir: string) => Promise<T>,
): Promise<T> {
  const { config, dir } = cacheConfigOf(workflow);
  const held = lock ? await FolderLock.acquire(storeFile(dir), lock.purpose, lock.options) : null;
  try {
    const cache = await openCache(config, dir);
    try {
      return await body(cache, config, dir);
    } finally {
      await cache.close();
    }
  } finally {
    held?.release();
  }
}

/** Every namespace the cache knows: configured ones, ones holding entries in a persistent tier, ones with counters. */
async function knownNamespaces(cache: LayeredCache, config: ResolvedCache): Promise<{ names: Set<string>; report: Awaited<ReturnType<LayeredCache['stats']>> }> {
  const report = await cache.stats();
  const names = new Set([...Object.keys(config.namespaces), ...Object.keys(cache.persistedCounters())]);
  for (const t of report.tiers) if (t.tier !== 'memory') for (const ns of Object.keys(t.namespaces)) names.add(ns);
  return { names, report };
}

const policyOf = (p: NamespacePolicy): NamespaceReport['policy'] => ({
  ttl_ms: p.ttlMs,
  max_entries: p.maxEntries,
  stale_while_revalidate_ms: p.staleWhileRevalidateMs,
  tiers: p.tiers,
});

/** What `guild cache stats` shows. */
export function cacheStats(workflow: string): Promise<CacheStatsDocument> {
  return withCache(workflow, null, async (cache, config, dir) => {
    const { names, report } = await knownNamespaces(cache, config);
    const counters = cache.persistedCounters();
    const persistent = report.tiers.filter((t) => t.tier !== 'memory');
    const namespaces: Record<string, NamespaceReport> = {};
    for (const ns of [...names].sort()) {
      const c = Object.hasOwn(counters, ns) ? counters[ns] : undefined;
      const hits = c?.hits ?? 0;
      const misses = c?.misses ?? 0;
      const tiers: Partial<Record<TierName, NamespaceStats>> = {};
      for (const t of persistent) if (Object.hasOwn(t.namespaces, ns)) tiers[t.tier] = t.namespaces[ns];
      namespaces[ns] = {
        policy: policyOf(Object.hasOwn(config.namespaces, ns) ? config.namespaces[ns]! : FALLBACK_POLICY),
        hits,
        misses,
        hit_rate: hits + misses === 0 ? null : hits / (hits + misses),
        computes: c?.computes ?? 0,
        mean_miss_penalty_ms: c && c.computes > 0 ? c.compute_ms / c.computes : null,
        corrupt_frames: c?.corrupt ?? 0,
        tiers,
      };
    }
    const sum = (vals: (number | null)[]): number | null => (vals.some((v) => v === null) ? null : vals.reduce<number>((a, v) => a + (v ?? 0), 0));
    return {
      store: storeFile(dir),
      redis: config.redisUrl,
      context: config.context,
      tiers: persistent.map((t) => {
        const all = Object.values(t.namespaces);
        return {
          tier: t.tier,
          cap_bytes: t.capBytes,
          entries: sum(all.map((n) => n.entries)),
          bytes: sum(all.map((n) => n.bytes)),
          original_bytes: sum(all.map((n) => n.original_bytes)),
        };
      }),
      compression: config.compression && { codec: config.compression.codec, level: config.compression.level, threshold_bytes: config.compression.thresholdBytes },
      namespaces,
    };
  });
}

/**
 * `guild cache clear [namespace]`: entries removed per tier. Holds the folder's run lock while it
 * clears. A namespace the cache does not know is `NOT_FOUND` (a typo must not read as success).
 */
export function clearCache(workflow: string, namespace?: string, options: CacheWriteOptions = {}): Promise<Record<string, number>> {
  return withCache(workflow, { purpose: 'cache clear', options }, async (cache, config) => {
    if (namespace !== undefined) {
      const { names } = await knownNamespaces(cache, config);
      if (!names.has(namespace)) {
        const hint = didYouMean(namespace, names);
        throw new GuildError('NOT_FOUND', `no cache namespace '${namespace}'${hint ? `; did you mean '${hint}'?` : ''} (known: ${[...names].sort().join(', ')})`);
      }
    }
    const removed = await cache.clear(namespace);
    delete removed.memory; // this process's own, empty memory tier says nothing
    return removed;
  });
}

/** `guild cache prune`: expired entries and entries over the caps, per tier. Holds the folder's run lock while it prunes. */
export function pruneCache(workflow: string, options: CacheWriteOptions = {}): Promise<Record<string, PruneResult>> {
  return withCache(workflow, { purpose: 'cache prune', options }, async (cache) => {
    const r = await cache.prune();
    delete r.memory;
    return r;
  });
}

