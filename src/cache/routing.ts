import { describeValue } from '../util/describe.js';
import { createHash } from 'node:crypto';
import { GuildError } from '../errors.js';
import type { LayeredCache } from './layered-cache.js';
import { normalize, similarity, trigrams } from './trigram.js';

/** How one agent type is recognised in a task description. */
export interface RouteRule {
  /** Words or phrases found as whole words in the normalized description; 1 point each. */
  keywords?: readonly string[];
  /** Tested against the raw description; strings are compiled with the `i` flag; 2 points each. */
  patterns?: readonly (string | RegExp)[];
}

/**
 * Rules by agent type. Declaration order breaks ties between equal scores (JavaScript puts
 * integer-like keys such as "42" first whatever their place, so name agent types with letters).
 */
export type RoutingRules = Readonly<Record<string /* agent type */, RouteRule>>;

/** Options of a routing cache. */
export interface RoutingOptions {
  /** Where decisions are kept (the `routing` namespace's policy gives TTL and entry cap). */
  cache: LayeredCache;
  /** The agent configuration: rules by agent type. */
  rules: RoutingRules;
  /**
   * A description whose trigram similarity (Jaccard, see `trigram.ts`) to a cached one is at
   * least this reuses that one's route.
   *
   * Why 0.7: a wrong reuse sends a task to the wrong agent, while a missed reuse only costs one
   * evaluation of the rules, so the threshold leans high. Measured pairs: "fix the login bug in
   * auth.ts" / "… auth.js" = 0.83 (reused); "write docs for the parser" / "fix the login bug" =
   * 0.13 (not). Swapping the one word that carries the intent in a short sentence lands just under
   * it: "write docs for the parser" / "write tests for the parser" = 0.68 (not reused, correctly),
   * which 0.6 would have sent to the docs writer.
   * @default 0.7
   */
  similarity?: number;
  /** The agent when no rule matches; null: no agent. @default null */
  fallback?: string | null;
  /** The cache namespace. @default 'routing' */
  namespace?: string;
  /** Epoch ms; give the cache's clock, since decision times and remaining lifetimes are set on it. @default Date.now */
  now?: () => number;
}

/** Where a route came from and why. */
export interface RouteDecision {
  /** The agent type, or null when no rule matched and there is no fallback. */
  agent: string | null;
  /** `cache`: same normalized description; `similar`: a similar one's route; else computed now. */
  source: 'cache' | 'similar' | 'rules' | 'fallback';
  /** Trigram similarity to `matchedDescription`, for `similar`; else null. */
  similarity: number | null;
  /** The cached description whose decision was reused (`cache`, `similar`); else null. */
  matchedDescription: string | null;
  /** Which keywords and patterns decided, in words. */
  reason: string;
}

/** Lookups this routing cache answered during the process's life. */
export interface RoutingStats {
  /** Reused decisions, exact and similar. */
  hits: number;
  /** The part of `hits` that came from a similar description. */
  similar_hits: number;
  misses: number;
  /** hits / (hits + misses); null before the first lookup. */
  hit_rate: number | null;
}

/** What is stored under a description's key (JSON). */
interface StoredRoute {
  /** The description as given. */
  description: string;
  agent: string | null;
  /** The rule reason of the decision (of `via` when this route was reused from it). */
  reason: string;
  /** The description the rules were evaluated on, when this one reused its route; else null. */
  via: string | null;
  /** The config hash the decision was made under. */
  hash: string;
  /** When the rules decided (epoch ms); a reused route keeps its origin's time and expiry. */
  at: number;
}

interface Indexed {
  readonly description: string;
  readonly grams: ReadonlySet<string>;
}

interface CompiledRule {
  readonly agent: string;
  /** Normalized keywords, each padded with spaces for a whole-word `includes`. */
  readonly keywords: readonly { readonly text: string; readonly padded: string }[];
  readonly patterns: readonly RegExp[];
}

const DEFAULT_SIMILARITY = 0.7;
/** Bound of the similarity index when the namespace has no entry cap. */
const INDEX_CAP = 10_000;

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/**
 * Routes task descriptions to agent types by configured rules and remembers the decisions.
 *
 * A description is looked up by the hash of its normalized text (an exact repeat is one `get`);
 * otherwise the most similar remembered description at or above the threshold lends its route
 * (a hit), and only then are the rules evaluated (a miss). Decisions expire with the namespace's
 * TTL, are ignored and deleted once the agent configuration changes (each carries the config
 * hash), and go with `clear()` or `guild cache clear routing`.
 *
 * The similarity index lives in this process: it is loaded once from the cache's keys and then
 * kept up to date with this process's decisions. Decisions other processes make later are found
 * by exact lookup (and then indexed), not by similarity.
 */
export class RoutingCache {
  /** sha256 of the canonical rules and fallback, first 16 hex characters. */
  readonly configHash: string;
  readonly #cache: LayeredCache;
  readonly #rules: readonly CompiledRule[];
  readonly #threshold: number;
  readonly #fallback: string | null;
  readonly #ns: string;
  readonly #indexCap: number;
  readonly #now: () => number;
  /** key → description and grams; insertion order is age, oldest dropped first past the cap. */
  #index: Map<string, Indexed> | null = null;
  #indexLoading: Promise<Map<string, Indexed>> | null = null;
  /** Bumped by clear(): an index load begun before it must not install its result. */
  #generation = 0;
  /** One decision per key at a time: concurrent callers of one description share it. */
  readonly #flights = new Map<string, { readonly description: string; readonly decision: Promise<RouteDecision> }>();
  #hits = 0;
  #similarHits = 0;
  #misses = 0;

  constructor(options: RoutingOptions) {
    const { cache, rules } = options;
    if (cache === null || typeof cache !== 'object' || typeof cache.get !== 'function') {
      throw new GuildError('INVALID_OPTION', `Expected a LayeredCache as cache, got ${describeValue(cache)}`);
    }
    if (rules === null || typeof rules !== 'object' || Array.isArray(rules)) {
      throw new GuildError('INVALID_OPTION', `Expected routing rules as an object of agent types, got ${describeValue(rules)}`);
    }
    const threshold = options.similarity ?? DEFAULT_SIMILARITY;
    if (typeof threshold !== 'number' || !(threshold > 0 && threshold <= 1)) {
      throw new GuildError('INVALID_OPTION', `Expected similarity to be a number in (0, 1], got ${describeValue(threshold)}`);
    }
    const fallback = options.fallback ?? null;
    if (fallback !== null && (typeof fallback !== 'string' || fallback === '')) {
      throw new GuildError('INVALID_OPTION', `Expected fallback to be an agent type or null, got ${describeValue(fallback)}`);
    }
    const now = options.now ?? Date.now;
    if (typeof now !== 'function') throw new GuildError('INVALID_OPTION', `Expected now to be a function returning epoch ms, got ${describeValue(now)}`);
    const ns = options.namespace ?? 'routing';
    if (typeof ns !== 'string' || ns === '') throw new GuildError('INVALID_OPTION', `Expected namespace to be a non-empty string, got ${describeValue(ns)}`);

    this.#cache = cache;
    this.#rules = compileRules(rules);
    this.#threshold = threshold;
    this.#fallback = fallback;
    this.#ns = ns;
    this.#now = now;
    this.#indexCap = cache.policy(ns).maxEntries ?? INDEX_CAP;
    this.configHash = sha256(canonicalConfig(rules, fallback)).slice(0, 16);
  }

  /**
   * The agent for a task description: from the cache when this or a similar enough description was
   * routed under the same configuration and has not expired, else from the rules (then
   * remembered). Counts exactly one lookup in the cache's namespace stats.
   */
  async route(description: string): Promise<RouteDecision> {
    const normalized = typeof description === 'string' ? normalize(description) : '';
    if (normalized === '') {
      if (typeof description !== 'string' || description.trim() === '') {
        throw new GuildError('INVALID_OPTION', 'Expected a task description, got an empty string');
      }
      throw new GuildError('INVALID_OPTION', `Expected a task description with letters or digits, got ${JSON.stringify(description)}`);
    }
    const key = sha256(normalized).slice(0, 32);
    const flight = this.#flights.get(key);
    if (flight !== undefined) {
      // A joiner computes nothing: it reuses the leader's decision, so it is a hit (an exact one
      // when the leader evaluated the rules), counted as the source it returns.
      const d = await flight.decision;
      const shared: RouteDecision =
        d.source === 'cache' || d.source === 'similar' ? d : { ...d, source: 'cache', matchedDescription: flight.description, reason: `cached: ${d.reason}` };
      this.#count(shared.source);
      return shared;
    }
    const decision = this.#decide(description, normalized, key).finally(() => this.#flights.delete(key));
    this.#flights.set(key, { description, decision });
    const d = await decision;
    this.#count(d.source);
    return d;
  }

  /** Lookups answered so far by this instance. */
  stats(): RoutingStats {
    const n = this.#hits + this.#misses;
    return { hits: this.#hits, similar_hits: this.#similarHits, misses: this.#misses, hit_rate: n === 0 ? null : this.#hits / n };
  }

  /** Forgets every routing decision, in every tier; returns the entries removed per tier. */
  async clear(): Promise<Record<string, number>> {
    const removed = await this.#cache.clear(this.#ns);
    this.#generation++;
    this.#index = null;
    this.#indexLoading = null;
    return removed;
  }

  #count(source: RouteDecision['source']): void {
    const hit = source === 'cache' || source === 'similar';
    if (hit) {
      this.#hits++;
      if (source === 'similar') this.#similarHits++;
    } else this.#misses++;
    this.#cache.recordLookup(this.#ns, hit);
  }

  async #decide(description: string, normalized: string, key: string): Promise<RouteDecision> {
    const exact = await this.#read(key);
    if (exact !== undefined) {
      this.#remember(key, exact.description);
      return {
        agent: exact.agent,
        source: 'cache',
        similarity: null,
        matchedDescription: exact.description,
        reason: exact.via === null ? `cached: ${exact.reason}` : `cached (route of ${JSON.stringify(exact.via)}): ${exact.reason}`,
      };
    }

    const index = await this.#loadIndex();
    const grams = trigrams(normalized);
    const candidates: { key: string; score: number }[] = [];
    for (const [k, e] of index) {
      if (k === key) continue;
      const score = similarity(grams, e.grams);
      if (score >= this.#threshold) candidates.push({ key: k, score });
    }
    // Best first; equal scores keep index order (stable sort), so the outcome is deterministic.
    candidates.sort((a, b) => b.score - a.score);
    for (const c of candidates) {
      const found = await this.#read(c.key);
      if (found === undefined) continue; // expired or evicted: #read dropped it from the index
      const origin = found.via ?? found.description;
      await this.#store(key, { description, agent: found.agent, reason: found.reason, via: origin, hash: this.configHash, at: found.at });
      return {
        agent: found.agent,
        source: 'similar',
        similarity: c.score,
        matchedDescription: found.description,
        reason: `similar to ${JSON.stringify(found.description)} (${c.score.toFixed(2)}): ${found.reason}`,
      };
    }

    const { agent, reason, source } = this.#evaluate(description, normalized);
    await this.#store(key, { description, agent, reason, via: null, hash: this.configHash, at: this.#now() });
    return { agent, source, similarity: null, matchedDescription: null, reason };
  }

  /**
   * The stored route under `key` if it is there and was decided under this configuration. One made
   * under another configuration is deleted (the agents changed); either way a miss leaves the index.
   * Uncounted: `route()` records the one lookup it decides on.
   */
  async #read(key: string): Promise<StoredRoute | undefined> {
    const buf = await this.#cache.get(this.#ns, key, { count: false });
    const stored = buf === undefined ? undefined : parse(buf);
    if (stored !== undefined && stored.hash === this.configHash) return stored;
    this.#index?.delete(key);
    if (buf !== undefined) await this.#cache.delete(this.#ns, key);
    return undefined;
  }

  async #store(key: string, route: StoredRoute): Promise<void> {
    const ttl = this.#cache.policy(this.#ns).ttlMs;
    // A reused route expires with the decision it came from, so time-based invalidation is not
    // defeated by a chain of similar descriptions each renewing the lifetime.
    const remaining = ttl === null ? null : route.at + ttl - this.#now();
    if (remaining !== null && remaining <= 0) return;
    await this.#cache.set(this.#ns, key, Buffer.from(JSON.stringify(route)), remaining === null ? {} : { ttlMs: remaining });
    this.#remember(key, route.description);
  }

  /** Adds to the index once it is loaded (before that, loading will find the entry). */
  #remember(key: string, description: string): void {
    const index = this.#index;
    if (index === null || index.has(key)) return;
    index.set(key, { description, grams: trigrams(description) });
    // Map order is insertion order: the first key is the oldest.
    while (index.size > this.#indexCap) index.delete(index.keys().next().value!);
  }

  #loadIndex(): Promise<Map<string, Indexed>> {
    if (this.#index !== null) return Promise.resolve(this.#index);
    this.#indexLoading ??= this.#readIndex();
    return this.#indexLoading;
  }

  async #readIndex(): Promise<Map<string, Indexed>> {
    const generation = this.#generation;
    const index = new Map<string, Indexed>();
    for (const key of await this.#cache.keys(this.#ns)) {
      const buf = await this.#cache.get(this.#ns, key, { count: false });
      const stored = buf === undefined ? undefined : parse(buf);
      // Gone since listed, damaged, or of another configuration: not indexed (an exact probe of
      // one of the latter deletes it).
      if (stored === undefined || stored.hash !== this.configHash) continue;
      index.set(key, { description: stored.description, grams: trigrams(stored.description) });
    }
    while (index.size > this.#indexCap) index.delete(index.keys().next().value!);
    if (generation === this.#generation) this.#index = index;
    return index;
  }

  /** Rules in declaration order; the highest score wins, the first on ties; none → fallback. */
  #evaluate(description: string, normalized: string): { agent: string | null; reason: string; source: 'rules' | 'fallback' } {
    const padded = ` ${normalized} `;
    let best: { agent: string; score: number; matched: string[] } | null = null;
    for (const rule of this.#rules) {
      const matched: string[] = [];
      let score = 0;
      for (const k of rule.keywords) {
        if (padded.includes(k.padded)) {
          score += 1;
          matched.push(`keyword ${JSON.stringify(k.text)}`);
        }
      }
      for (const p of rule.patterns) {
        if (p.test(description)) {
          score += 2;
          matched.push(`pattern ${String(p)}`);
        }
      }
      if (score > 0 && (best === null || score > best.score)) best = { agent: rule.agent, score, matched };
    }
    if (best !== null) return { agent: best.agent, source: 'rules', reason: `${best.agent}: matched ${best.matched.join(', ')} (score ${best.score})` };
    const reason = this.#fallback === null ? 'no rule matched and no fallback is configured' : `no rule matched; fallback ${JSON.stringify(this.#fallback)}`;
    return { agent: this.#fallback, source: 'fallback', reason };
  }
}

function compileRules(rules: RoutingRules): CompiledRule[] {
  const out: CompiledRule[] = [];
  for (const [agent, rule] of Object.entries(rules)) {
    const where = `routing rule ${JSON.stringify(agent)}`;
    if (rule === null || typeof rule !== 'object') throw new GuildError('INVALID_OPTION', `Expected ${where} to be an object with keywords or patterns, got ${describeValue(rule)}`);
    const keywords = (rule.keywords ?? []).map((k, i) => {
      const text = typeof k === 'string' ? normalize(k) : '';
      if (text === '') throw new GuildError('INVALID_OPTION', `Expected ${where}.keywords[${i}] to be a word with letters or digits, got ${describeValue(k)}`);
      return { text, padded: ` ${text} ` };
    });
    const patterns = (rule.patterns ?? []).map((p, i) => {
      if (p instanceof RegExp) return new RegExp(p.source, p.flags.replace(/[gy]/g, '')); // g/y make test() stateful
      if (typeof p !== 'string' || p === '') throw new GuildError('INVALID_OPTION', `Expected ${where}.patterns[${i}] to be a regular expression, got ${describeValue(p)}`);
      try {
        return new RegExp(p, 'i');
      } catch (cause) {
        throw new GuildError('INVALID_OPTION', `Expected ${where}.patterns[${i}] to be a valid regular expression, got ${JSON.stringify(p)}`, { cause });
      }
    });
    out.push({ agent, keywords, patterns });
  }
  return out;
}

/**
 * The configuration as stable JSON: agents in declaration order (it breaks ties, so it matters),
 * fields in a fixed order, missing lists as empty ones, every pattern as its source and flags (a
 * string pattern is the same as a RegExp with the `i` flag).
 */
function canonicalConfig(rules: RoutingRules, fallback: string | null): string {
  const agents = Object.entries(rules).map(([agent, rule]) => [
    agent,
    (rule.keywords ?? []).map((k) => normalize(k)),
    (rule.patterns ?? []).map((p) => (p instanceof RegExp ? [p.source, p.flags] : [p, 'i'])),
  ]);
  return JSON.stringify({ agents, fallback });
}

function parse(buf: Buffer): StoredRoute | undefined {
  try {
    const v = JSON.parse(buf.toString('utf8')) as Partial<StoredRoute> | null;
    if (v === null || typeof v !== 'object' || typeof v.description !== 'string' || typeof v.hash !== 'string' || typeof v.reason !== 'string') return undefined;
    if (v.agent !== null && typeof v.agent !== 'string') return undefined;
    if (typeof v.at !== 'number') return undefined;
    return { description: v.description, agent: v.agent ?? null, reason: v.reason, via: typeof v.via === 'string' ? v.via : null, hash: v.hash, at: v.at };
  } catch {
    return undefined; // not ours or damaged: a miss
  }
}
