import type { Redis } from 'ioredis';
import type { ResolvedCache } from '../config/resolve.js';
import { storeFile, type Db } from '../store/db.js';
import { LayeredCache, type DistributedLock } from './layered-cache.js';
import { MemoryTier } from './memory-tier.js';
import { FALLBACK_POLICY } from '../config/cache-policy.js';
import { SqliteTier } from './sqlite-tier.js';
import type { CacheTier, LimitsOf } from './tier.js';

/** Options of {@link openCache}. */
export interface OpenCacheOptions {
  /** An open store to share (the run history's); otherwise `<dir>/.guild/guild.db` is opened. */
  db?: Db;
  /** Epoch ms. @default Date.now */
  now?: () => number;
  /** Key prefix in Redis (tests use their own). @default 'guild:cache:' */
  redisPrefix?: string;
}


/**
 * The layered cache a workflow's config describes: memory (L1), the workflow's SQLite store (L2)
 * and, when `cache.redis` is set, Redis (L3) with a lock so that a key is computed once across
 * machines. Rejects with a `GuildError` (code CACHE) naming the URL when Redis is configured but
 * not reachable: a shared cache that silently is not shared would be worse.
 */
export async function openCache(config: ResolvedCache, dir: string, options: OpenCacheOptions = {}): Promise<LayeredCache> {
  const limits: LimitsOf = (ns) => ({ maxEntries: (Object.hasOwn(config.namespaces, ns) ? config.namespaces[ns]! : FALLBACK_POLICY).maxEntries });
  const now = options.now ?? Date.now;
  const tiers: CacheTier[] = [
    new MemoryTier({ maxBytes: config.memoryBytes, limits, now }),
    new SqliteTier({ db: options.db ?? storeFile(dir), maxBytes: config.diskBytes, limits, now }),
  ];
  let client: Redis | null = null;
  let lock: DistributedLock | null = null;
  if (config.redisUrl !== null) {
    // ioredis loads only where Redis is configured: it is most of what the cache would add to Guild's RSS.
    const [{ connectRedis, RedisTier }, { RedisLock }] = await Promise.all([import('./redis-tier.js'), import('./redis-lock.js')]);
    client = await connectRedis(config.redisUrl);
    lock = new RedisLock({ client, ...(options.redisPrefix !== undefined ? { prefix: `${options.redisPrefix}lock:` } : {}) });
    tiers.push(new RedisTier({ client, ...(options.redisPrefix !== undefined ? { prefix: options.redisPrefix } : {}), now }));
  }
  return new LayeredCache({
    tiers,
    namespaces: config.namespaces,
    defaultPolicy: FALLBACK_POLICY,
    lock,
    now,
    compression: config.compression,
    // The client was made here: it goes when the cache does.
    ...(client ? { onClose: () => client.quit().catch(() => 'OK') } : {}),
  });
}
