import { createHash, randomBytes } from 'node:crypto';
import type { LayeredCache } from '../cache/layered-cache.js';
import type { ResolvedMcpServer } from '../config/mcp.js';

// The generations of the tool-result cache: a write to a server drops its cached results by
// replacing the generation that every key of its scope includes.

/** Length-prefixed, so that no two different lists of fields make one string. */
export const field = (s: string): string => `${s.length}:${s}`;

/** The server as the cache sees it: its name, and whether its instances serve every project. */
export type CacheServer = Pick<ResolvedMcpServer, 'name' | 'isolation'>;

/** A generation scope: (server, project), or the server for a `shared` one. */
export class Scope {
  /** Random, replaced by each write: part of every key made in the scope. */
  generation: string;
  /** Writes in flight: while any runs, no result of the scope is served or stored. */
  writes = 0;
  constructor(
    readonly id: string,
    generation: string,
  ) {
    this.generation = generation;
  }

  /** A key made under `generation` may still be served and stored. */
  holds(generation: string): boolean {
    return this.generation === generation && this.writes === 0;
  }
}

const newGeneration = (): string => randomBytes(12).toString('base64url');
const GENERATION_RE = /^[A-Za-z0-9_-]{8,64}$/;

/**
 * The scopes' generations, kept in the cache's namespace next to the results (no TTL), so that a
 * restarted gateway finds them and the results made under them. Random rather than counted: a
 * generation lost (evicted, never committed before a crash) can only cost hits, never make old
 * entries reachable again.
 */
export class Generations {
  readonly #scopes = new Map<string, Scope>();
  readonly #loading = new Map<string, Promise<Scope>>();
  readonly #cache: LayeredCache;
  readonly #ns: string;

  constructor(cache: LayeredCache, namespace: string) {
    this.#cache = cache;
    this.#ns = namespace;
  }

  /** The scope if already loaded (the hot path: no promise). */
  known(server: CacheServer, project: string): Scope | undefined {
    return this.#scopes.get(scopeId(server, project));
  }

  /** The scope, its generation read from the cache (another run's, when a tier kept it) or new. */
  scope(server: CacheServer, project: string): Promise<Scope> {
    const id = scopeId(server, project);
    const s = this.#scopes.get(id);
    if (s !== undefined) return Promise.resolve(s);
    let p = this.#loading.get(id);
    if (p === undefined) {
      p = this.#load(id).finally(() => this.#loading.delete(id));
      this.#loading.set(id, p);
    }
    return p;
  }

  /** A new generation, in force at once; `commit`: committed to the tiers before this resolves. */
  async renew(scope: Scope, commit: boolean): Promise<void> {
    scope.generation = newGeneration();
    await this.#persist(scope, commit);
  }

  async #load(id: string): Promise<Scope> {
    let stored: string | undefined;
    try {
      stored = (await this.#cache.get(this.#ns, genKey(id), { count: false }))?.toString('utf8');
    } catch {
      stored = undefined; // a failing cache: a new generation
    }
    const known = stored !== undefined && GENERATION_RE.test(stored);
    const scope = new Scope(id, known ? stored! : newGeneration());
    this.#scopes.set(id, scope);
    if (!known) await this.#persist(scope, false);
    return scope;
  }

  async #persist(scope: Scope, commit: boolean): Promise<void> {
    try {
      // No TTL: the newest generation must outlive every entry made under it.
      await this.#cache.set(this.#ns, genKey(scope.id), Buffer.from(scope.generation, 'utf8'), { ttlMs: null });
      if (commit) await this.#cache.flush();
    } catch {
      // The cache is failing: only hits are lost, the generation in memory is in force.
    }
  }
}

/** A `shared` server's instances serve every project: a write in one is seen by all. */
const scopeId = (server: CacheServer, project: string): string => (server.isolation === 'shared' ? field(server.name) : field(server.name) + field(project));
const genKey = (id: string): string => `g:${createHash('sha256').update(id).digest('base64url')}`;
