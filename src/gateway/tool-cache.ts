import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import type { LayeredCache } from '../cache/layered-cache.js';
import { NAMESPACE_RE } from '../cache/tier.js';
import { DEFAULTS } from '../config/defaults.js';
import { GuildError } from '../errors.js';
import { describeValue } from '../util/describe.js';
import { field, Generations, type CacheServer, type Scope } from './tool-cache-generations.js';
import { canonicalJson, FileStamper, type CacheRule, type SkipReason } from './tool-cache-key.js';

export { cacheRuleOf, canonicalJson, writesTo, type CacheRule, type SkipReason } from './tool-cache-key.js';
export type { CacheServer, Scope } from './tool-cache-generations.js';

/** Options of a {@link ToolResultCache}. */
export interface ToolResultCacheOptions {
  /** Where results live; the namespace's policy gives the tiers and the entry cap. */
  cache: LayeredCache;
  /** How long a result is served, ms (config `mcp.tool_ttl`). @default 300_000 (5 min) */
  ttlMs?: number;
  /** The cache namespace; its policy must not serve stale values. @default 'mcp' */
  namespace?: string;
  /** Results larger than this once encoded (JSON, bytes) are not stored. @default 1 MiB */
  maxResultBytes?: number;
  /** A named file whose ctime is younger than this is not keyed (see FileStamper). @default 2000 */
  racyMs?: number;
  /** Wall clock, epoch ms, compared with files' ctimes. @default Date.now */
  now?: () => number;
}

/** What a call is keyed on. */
export interface KeyInput {
  server: CacheServer;
  /** The backend's name of the tool. */
  tool: string;
  args: Readonly<Record<string, unknown>> | undefined;
  /** Absolute folder of the project the call is served for. */
  project: string;
  /** The caller's session; part of the key only for a `per-session` server (which needs one). */
  session: string | null;
  rule: CacheRule;
}

/** A call's key: made before the call, and used for its get and set. */
export interface ToolCacheKey {
  /** The entry's key in the namespace. */
  readonly id: string;
  /** The generation scope of the call's server and project (opaque), and its generation when the key was made. */
  readonly scope: Pick<Scope, 'holds'>;
  readonly generation: string;
}

/** What the cache did over its life (the shape of GatewayStatus.cache). */
export interface ToolCacheCounts {
  hits: number;
  misses: number;
  stores: number;
  /** Writes (and explicit invalidations) that dropped a server's results for a project. */
  invalidations: number;
  /** Calls of cacheable tools not cached: no key, or a result not stored (`skips` says why). */
  skipped: number;
}

const MiB = 1024 * 1024;

/**
 * Results of tools/call, kept in the layered cache under a key of (server, tool, canonical
 * arguments, project, session for per-session servers, the state of the files that path
 * arguments name, and the generation of the server's scope). Each hit is decoded afresh, so the
 * caller owns what it gets. Use, in the gateway:
 *
 * ```ts
 * const rule = cacheRuleOf(server, name, tool);
 * const key = rule && (await cache.key({ server, tool: name, args, project, session, rule }));  // before the call
 * const hit = key && (await cache.get(key));
 * if (hit) return hit;
 * const call = () => backend.callTool(...);
 * const result = writesTo(server, name, tool) ? await cache.write(server, project, call) : await call();
 * if (key) void cache.set(key, result);
 * ```
 *
 * Invalidation is by generation: a random token per scope — (server, project), or the server
 * alone for a `shared` one, whose state every project sees — is part of every key, and a write
 * replaces it, which leaves the scope's older entries unreachable until they expire. The token is
 * kept in the cache itself (the namespace, no TTL), so that results survive a restart of the
 * gateway when a tier persists them, and it is random rather than counted so that a token lost
 * (evicted, or never committed before a crash) can only cost hits, never revive old entries.
 * `write` commits the new token before the call goes out, so a crash during a write cannot leave
 * results from before it reachable. What this cannot see: a backend's state changed by another
 * gateway or outside any gateway, except in files that path arguments name (TTL bounds the rest).
 *
 * Concurrent identical misses both go to the backend: coalescing them would hand one call's
 * progress, cancellation and server-to-client requests to a caller that did not make it.
 */
export class ToolResultCache {
  readonly #cache: LayeredCache;
  readonly #ns: string;
  readonly #ttlMs: number;
  readonly #maxBytes: number;
  readonly #files: FileStamper;
  readonly #gens: Generations;
  readonly #counts: ToolCacheCounts = { hits: 0, misses: 0, stores: 0, invalidations: 0, skipped: 0 };
  readonly #skips: Partial<Record<SkipReason, number>> = {};

  constructor(options: ToolResultCacheOptions) {
    const { cache } = options;
    if (cache === null || typeof cache !== 'object' || typeof cache.get !== 'function') {
      throw new GuildError('INVALID_OPTION', `Expected a LayeredCache as cache, got ${describeValue(cache)}`);
    }
    const ns = options.namespace ?? 'mcp';
    if (typeof ns !== 'string' || !NAMESPACE_RE.test(ns)) throw new GuildError('INVALID_OPTION', `Expected namespace to be a cache namespace name, got ${describeValue(ns)}`);
    const positive = (name: string, v: unknown, dflt: number, zero = false): number => {
      if (v === undefined) return dflt;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (v === 0 && !zero)) {
        throw new GuildError('INVALID_OPTION', `Expected ${name} to be a ${zero ? 'non-negative' : 'positive'} number of ${name.endsWith('Bytes') ? 'bytes' : 'ms'}, got ${describeValue(v)}`);
      }
      return v;
    };
    this.#ttlMs = positive('ttlMs', options.ttlMs, DEFAULTS.mcp.toolTtlMs);
    this.#maxBytes = positive('maxResultBytes', options.maxResultBytes, MiB);
    const racyMs = positive('racyMs', options.racyMs, 2000, true);
    const now = options.now ?? Date.now;
    if (typeof now !== 'function') throw new GuildError('INVALID_OPTION', `Expected now to be a function returning epoch ms, got ${describeValue(now)}`);
    // LayeredCache.get serves a stale-while-revalidate value past its TTL; a tool result never may.
    if (cache.policy(ns).staleWhileRevalidateMs !== null) {
      throw new GuildError('INVALID_OPTION', `Expected the '${ns}' cache namespace without stale_while_revalidate: a tool result must not be served past its TTL`);
    }
    this.#cache = cache;
    this.#ns = ns;
    this.#files = new FileStamper(now, racyMs);
    this.#gens = new Generations(cache, ns);
  }

  /** Counters since this cache was made (live object: read, do not write). */
  get counts(): Readonly<ToolCacheCounts> {
    return this.#counts;
  }

  /** Why calls were skipped, by reason. */
  get skips(): Readonly<Partial<Record<SkipReason, number>>> {
    return this.#skips;
  }

  /**
   * The key of a call, to be made before the call goes to the backend (the files' state must
   * not be newer than what the backend reads); null when it cannot be cached this time (counted
   * in `skipped`): a path argument outside the project, a file changed a moment ago, …
   */
  async key(i: KeyInput): Promise<ToolCacheKey | null> {
    const perSession = i.server.isolation === 'per-session';
    if (perSession && i.session === null) return this.#skip('no-session');
    const project = resolve(i.project);
    let args: string;
    try {
      args = i.args === undefined ? '-' : canonicalJson(i.args);
    } catch {
      return this.#skip('arguments');
    }
    const files = this.#files.stamps(i.rule, i.args, project);
    if (files !== '' && !files.endsWith(';')) return this.#skip(files as SkipReason);
    const scope = this.#gens.known(i.server, project) ?? (await this.#gens.scope(i.server, project));
    const generation = scope.generation;
    // One string, one update: each call into the hash crosses into C++.
    const material = field('v1') + field(i.server.name) + field(i.tool) + field(project) + (perSession ? field(i.session!) : '-') + field(generation) + field(args) + files;
    return { id: `r:${createHash('sha256').update(material).digest('base64url')}`, scope, generation };
  }

  /**
   * A fresh copy of the cached result, or null (a miss). A result whose scope has seen a write
   * begin since its key was made is a miss: it may predate the write.
   */
  async get(key: ToolCacheKey): Promise<Record<string, unknown> | null> {
    if (!key.scope.holds(key.generation)) {
      this.#counts.misses++;
      return null;
    }
    let buf: Buffer | undefined;
    try {
      buf = await this.#cache.get(this.#ns, key.id);
    } catch {
      buf = undefined; // a failing cache is a miss
    }
    if (buf !== undefined) {
      try {
        // Decoding each hit is the copy: JSON.parse of a small result costs less than structuredClone.
        const v: unknown = JSON.parse(buf.toString('utf8'));
        if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
          this.#counts.hits++;
          return v as Record<string, unknown>;
        }
      } catch {
        // not a result of ours: a miss
      }
    }
    this.#counts.misses++;
    return null;
  }

  /**
   * Stores a result (encoded now: the caller may change its object afterwards). False, counted
   * as skipped, when it is an `isError` result, too large, not JSON, or when a write to its
   * scope began after the key was made.
   */
  async set(key: ToolCacheKey, result: Readonly<Record<string, unknown>>): Promise<boolean> {
    if (result.isError === true) return this.#refuse('error-result');
    if (!key.scope.holds(key.generation)) return this.#refuse('stale');
    let json: string;
    try {
      json = JSON.stringify(result);
    } catch {
      return this.#refuse('unserializable');
    }
    const buf = Buffer.from(json, 'utf8');
    if (buf.length > this.#maxBytes) return this.#refuse('too-large');
    try {
      await this.#cache.set(this.#ns, key.id, buf, { ttlMs: this.#ttlMs });
    } catch {
      return this.#refuse('cache-error');
    }
    this.#counts.stores++;
    return true;
  }

  /**
   * Runs a call that may change the server's state (see `writesTo`), dropping the scope's cached
   * results around it: before it goes out (committed to the cache's tiers, so that a crash during
   * the write leaves nothing from before it reachable), and again when it ends whatever its
   * outcome (a failed write may have done part of its work), so that reads that overlapped it are
   * not kept. While it runs no result of the scope is stored. Returns or throws what `call` does.
   */
  async write<T>(server: CacheServer, project: string, call: () => Promise<T>): Promise<T> {
    const scope = await this.#gens.scope(server, resolve(project));
    scope.writes++; // first: no key made from here on may store, whatever generation it carries
    this.#counts.invalidations++;
    try {
      await this.#gens.renew(scope, true);
      return await call();
    } finally {
      scope.writes--;
      // Not committed at once: no result was ever stored under the generation it replaces.
      await this.#gens.renew(scope, false);
    }
  }

  /** Drops the cached results of a server for a project (for a `shared` server: for every project). */
  async invalidate(server: CacheServer, project: string): Promise<void> {
    const scope = await this.#gens.scope(server, resolve(project));
    this.#counts.invalidations++;
    await this.#gens.renew(scope, true);
  }

  #skip(reason: SkipReason): null {
    this.#counts.skipped++;
    this.#skips[reason] = (this.#skips[reason] ?? 0) + 1;
    return null;
  }

  #refuse(reason: SkipReason): false {
    this.#skip(reason);
    return false;
  }
}
