import { createRequire } from 'node:module';
import type { Redis, RedisOptions } from 'ioredis';
import { GuildError } from '../errors.js';
import { FRAME_HEADER, originalLength } from './compression.js';
import { emptyStats, statsFor, type CacheEntry, type CacheTier, type NamespaceStats, type PruneResult, type TierStats } from './tier.js';

/** Options of the Redis tier. */
export interface RedisTierOptions {
  /** An ioredis client, owned by the caller (not closed by `close()`); it must not set `keyPrefix`. @default a client for `url`, owned by the tier */
  client?: Redis;
  /** Where to connect when no `client` is given; ignored otherwise. @default 'redis://127.0.0.1:6379' */
  url?: string;
  /** Prefix of every key the tier reads, lists and clears; keys are `${prefix}${namespace}:${key}`. @default 'guild:cache:' */
  prefix?: string;
  /** Clock for expiry, epoch ms. @default Date.now */
  now?: () => number;
}

/** Options of {@link connectRedis}. */
export interface ConnectRedisOptions {
  /** Give up when the client is not ready after this long. @default 2000 */
  timeoutMs?: number;
  /** Further ioredis options, merged over Guild's (see {@link REDIS_CLIENT_DEFAULTS}). @default {} */
  redis?: RedisOptions;
}

/**
 * How Guild's own clients behave: a Redis that is down fails each command after two reconnect
 * attempts (a few hundred ms) instead of queueing it forever; commands issued while connecting
 * wait in the offline queue for those attempts. `disconnectTimeout`: after a failed connection,
 * ioredis's disconnect() waits for a 'close' the dead socket already emitted, holding the process
 * open for this long (2 s by default); a live socket closes well within it.
 */
export const REDIS_CLIENT_DEFAULTS: Readonly<RedisOptions> = { lazyConnect: false, maxRetriesPerRequest: 2, enableOfflineQueue: true, disconnectTimeout: 200 };

const DEFAULT_URL = 'redis://127.0.0.1:6379';
/** Bytes before the value: expiresAt as a float64, big-endian; 0 never expires. */
const HEADER = 8;
/** Keys per SCAN step and per UNLINK or pipeline. */
const BATCH = 500;

/**
 * L3: entries in Redis, shared by every process that uses the same prefix. One key per entry
 * holds an 8-byte expiry header and the value, so a read is one GET. Entries with an expiry are
 * stored with PX and Redis drops them itself; the header is still checked on read, against the
 * injected clock, since it is the tier's own notion of time. Hit, miss and expiry counters are
 * local to this process; entries and bytes are counted in Redis when stats are asked for.
 */
export class RedisTier implements CacheTier {
  readonly name = 'redis' as const;
  readonly #client: Redis;
  readonly #owns: boolean;
  readonly #prefix: string;
  /** `#prefix` with SCAN's glob characters escaped. */
  readonly #pattern: string;
  readonly #now: () => number;
  readonly #stats = new Map<string, NamespaceStats>();
  #closed = false;

  constructor(options: RedisTierOptions = {}) {
    const prefix = options.prefix ?? 'guild:cache:';
    // With an empty prefix, clear() would unlink every key in the database, Guild's or not.
    if (typeof prefix !== 'string' || prefix === '') throw new GuildError('CACHE', `Expected a non-empty string for the Redis key prefix, got ${JSON.stringify(prefix)}`);
    if (options.client?.options.keyPrefix) {
      // ioredis adds keyPrefix to keys but not to SCAN patterns, so keys() and clear() would see nothing.
      throw new GuildError('CACHE', `Expected a Redis client without keyPrefix (use the tier's prefix), got keyPrefix ${JSON.stringify(options.client.options.keyPrefix)}`);
    }
    this.#owns = options.client === undefined;
    this.#client = options.client ?? ownClient(options.url ?? DEFAULT_URL);
    this.#prefix = prefix;
    this.#pattern = escapeGlob(prefix);
    this.#now = options.now ?? Date.now;
  }

  async get(namespace: string, key: string): Promise<CacheEntry | undefined> {
    let buf: Buffer | null;
    try {
      buf = await this.#client.getBuffer(this.#prefix + namespace + ':' + key);
    } catch (err) {
      throw redisError('GET', this.#client, err);
    }
    const stats = statsFor(this.#stats, namespace);
    if (buf === null) {
      stats.misses++;
      return undefined;
    }
    // `!(x >= 0)` also catches NaN: bytes under our prefix that this tier did not write.
    const expiresAt = buf.length >= HEADER ? buf.readDoubleBE(0) : NaN;
    if (!(expiresAt >= 0)) {
      stats.corrupt++;
      stats.misses++;
      // Best effort: no entry can be read from it anyway, and the next set would overwrite it.
      this.#client.unlink(this.#prefix + namespace + ':' + key).catch(() => {});
      return undefined;
    }
    if (expiresAt !== 0 && expiresAt <= this.#now()) {
      // Not deleted here: Redis drops it at its PX, and a DEL could race with another process's fresh SET.
      stats.expired++;
      stats.misses++;
      return undefined;
    }
    stats.hits++;
    // A view into ioredis's reply buffer, which nothing else holds: no copy.
    return { value: buf.subarray(HEADER), expiresAt };
  }

  async set(namespace: string, key: string, value: Buffer, expiresAt: number): Promise<void> {
    const k = this.#prefix + namespace + ':' + key;
    try {
      if (expiresAt === 0) {
        await this.#client.set(k, frame(value, 0));
        return;
      }
      // PX takes whole ms; rounding up keeps the entry at least until its header says it expires.
      const ttl = Math.ceil(expiresAt - this.#now());
      // Already expired: store nothing, but an older value must not stay readable under the key.
      if (ttl <= 0) await this.#client.unlink(k);
      else await this.#client.set(k, frame(value, expiresAt), 'PX', ttl);
    } catch (err) {
      throw redisError('SET', this.#client, err);
    }
  }

  async delete(namespace: string, key: string): Promise<boolean> {
    try {
      return (await this.#client.del(this.#prefix + namespace + ':' + key)) > 0;
    } catch (err) {
      throw redisError('DEL', this.#client, err);
    }
  }

  /** SCAN, then each entry's header: entries expired by our clock (or deleted meanwhile) are left out. */
  async keys(namespace: string): Promise<string[]> {
    const strip = this.#prefix.length + namespace.length + 1;
    const now = this.#now();
    const out: string[] = [];
    try {
      for await (const batch of this.#scan(`${this.#pattern}${escapeGlob(namespace)}:*`)) {
        const pipe = this.#client.pipeline();
        for (const k of batch) pipe.getrangeBuffer(k, 0, HEADER - 1);
        const heads = (await pipe.exec()) ?? [];
        for (let i = 0; i < batch.length; i++) {
          const [err, head] = heads[i] ?? [null, null];
          if (err || !Buffer.isBuffer(head) || head.length < HEADER) continue;
          const expiresAt = head.readDoubleBE(0);
          if (expiresAt === 0 || expiresAt > now) out.push(batch[i]!.slice(strip));
        }
      }
    } catch (err) {
      throw redisError('SCAN', this.#client, err);
    }
    return out;
  }

  async clear(namespace?: string): Promise<number> {
    const pattern = namespace === undefined ? `${this.#pattern}*` : `${this.#pattern}${escapeGlob(namespace)}:*`;
    let n = 0;
    try {
      // Deleting while scanning is safe: SCAN still returns every key that exists throughout.
      for await (const batch of this.#scan(pattern)) n += await this.#client.unlink(...batch);
    } catch (err) {
      throw redisError('UNLINK', this.#client, err);
    }
    return n;
  }

  /**
   * Nothing to do: entries carry PX, so Redis expires them itself, and its `maxmemory` policy
   * evicts; neither is visible from here to count.
   */
  prune(): PruneResult {
    return { expired: 0, evicted: 0 };
  }

  /**
   * This process's counters, plus entries, value bytes and original bytes of every namespace under
   * the prefix (SCAN, then STRLEN and the value's first bytes, where a compressed value's frame
   * says its original length).
   */
  async stats(): Promise<TierStats> {
    const namespaces: Record<string, NamespaceStats> = {};
    for (const [ns, s] of this.#stats) namespaces[ns] = { ...s, entries: 0, bytes: 0, original_bytes: 0 };
    const from = this.#prefix.length;
    try {
      for await (const batch of this.#scan(`${this.#pattern}*`)) {
        const pipe = this.#client.pipeline();
        for (const k of batch) pipe.strlen(k).getrangeBuffer(k, HEADER, HEADER + FRAME_HEADER - 1);
        const replies = (await pipe.exec()) ?? [];
        for (let i = 0; i < batch.length; i++) {
          const [err, len] = replies[2 * i] ?? [null, 0];
          const [, head] = replies[2 * i + 1] ?? [null, null];
          const k = batch[i]!;
          const colon = k.indexOf(':', from);
          // Gone since the SCAN (0), or not an entry of ours.
          if (err || typeof len !== 'number' || len < HEADER || colon < 0) continue;
          const s = (namespaces[k.slice(from, colon)] ??= emptyStats());
          s.entries! += 1;
          s.bytes! += len - HEADER;
          s.original_bytes! += Buffer.isBuffer(head) ? originalLength(head, len - HEADER) : len - HEADER;
        }
      }
    } catch (err) {
      throw redisError('SCAN', this.#client, err);
    }
    return { tier: this.name, capBytes: null, namespaces };
  }

  flush(): void {}

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#owns) return;
    // QUIT lets pending replies arrive; without a connection it would leave the reconnect timer
    // (up to 2 s) holding the process open, which disconnect() clears.
    if (this.#client.status === 'ready') await this.#client.quit().catch(() => this.#client.disconnect());
    else this.#client.disconnect();
  }

  /**
   * Batches of distinct keys matching `pattern`, at most {@link BATCH} each. SCAN may return a key
   * more than once (while Redis rehashes), so keys already seen are skipped.
   */
  async *#scan(pattern: string): AsyncGenerator<string[]> {
    const seen = new Set<string>();
    let cursor = '0';
    do {
      const [next, found] = await this.#client.scan(cursor, 'MATCH', pattern, 'COUNT', BATCH);
      cursor = next;
      const batch: string[] = [];
      for (const k of found) {
        if (seen.has(k)) continue;
        seen.add(k);
        batch.push(k);
      }
      for (let i = 0; i < batch.length; i += BATCH) yield batch.slice(i, i + BATCH);
    } while (cursor !== '0');
  }
}

/**
 * A client for `url` that is ready, or a `GuildError` with code `CACHE` naming the URL (its
 * password masked) once `timeoutMs` passes or the first connection attempt fails. The caller
 * owns the client and quits it.
 */
export async function connectRedis(url: string, options: ConnectRedisOptions = {}): Promise<Redis> {
  const timeoutMs = options.timeoutMs ?? 2000;
  const client = ownClient(url, options.redis);
  await new Promise<void>((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('error', onError);
    };
    const fail = (reason: string, cause?: unknown): void => {
      done();
      client.disconnect(); // stops the reconnect loop, which would keep the process alive
      reject(new GuildError('CACHE', `Redis not reachable at ${maskPassword(url)}: ${reason}`, { cause }));
    };
    const onReady = (): void => {
      done();
      resolve();
    };
    const onError = (err: Error): void => fail(err.message || String(err), err);
    const timer = setTimeout(() => fail(`not ready after ${timeoutMs} ms`), timeoutMs);
    client.once('ready', onReady);
    client.on('error', onError);
  });
  return client;
}

/** Escapes the glob characters of SCAN MATCH (`*`, `?`, `[`, `]`, `\`). */
export function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

/** A `GuildError` (code `CACHE`) for a failed command, naming the server; the ioredis error is the cause. */
export function redisError(command: string, client: Redis, cause: unknown): GuildError {
  const o = client.options;
  const where = o.path ?? `${o.host ?? '127.0.0.1'}:${o.port ?? 6379}`;
  const why = cause instanceof Error ? cause.message : String(cause);
  return new GuildError('CACHE', `Redis ${command} failed at ${where}: ${why}`, { cause });
}

let ioredis: typeof import('ioredis') | undefined;

function ownClient(url: string, extra?: RedisOptions): Redis {
  // ioredis loads with the first client Guild makes: importing Guild, or a run without an L3
  // tier, never loads it (7 MB after the rest of a run; `bench/startup.ts`). It is CommonJS, so
  // `require` loads it synchronously and the tier's constructor stays synchronous.
  ioredis ??= createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
  const client = new ioredis.Redis(url, { ...REDIS_CLIENT_DEFAULTS, ...extra });
  // Failures reach callers as rejected commands; without a listener ioredis prints each one to the console.
  client.on('error', () => {});
  return client;
}

function frame(value: Buffer, expiresAt: number): Buffer {
  const buf = Buffer.allocUnsafe(HEADER + value.length);
  buf.writeDoubleBE(expiresAt, 0);
  value.copy(buf, HEADER);
  return buf;
}

export function maskPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password === '') return url;
    u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
