/**
 * Guild's SQLite cache tier as a Keyv (v5) storage adapter: `new Keyv({ store: new GuildKeyvStore({ file }) })`.
 *
 * The adapter has the shape of Keyv's `KeyvStoreAdapter` without importing Keyv (Guild does not
 * depend on it at run time or in its published types); test/keyv-suite.vitest.ts checks the shape
 * against Keyv's own type and runs the official `@keyv/test-suite` against it.
 *
 * Keys. Keyv hands the store keys it has already prefixed with its namespace (`users:42`). The
 * adapter stores `42` in the Guild namespace `keyv.users`; a key without `:` goes to the Guild
 * namespace `keyv`. The split is at the first `:` (or after `this.namespace:` when the key starts
 * with it, for a namespace that itself contains `:`), so for ordinary namespaces it depends on the
 * key alone, not on which Keyv last set `store.namespace`: one adapter shared by several Keyv
 * instances (Keyv overwrites `store.namespace` each time one is created) still finds every key
 * where it put it. Keyv
 * namespaces are escaped to the characters `NAMESPACE_RE` allows (letters, digits, `.`, `-`
 * kept; anything else, `_` included, written `_<hex code point>_`), so they can be listed and
 * cleared with Guild's own tools, and one Keyv namespace is one Guild namespace: `clear()` is a
 * single `DELETE … WHERE ns = ?` and never touches another namespace.
 *
 * Values. Keyv serializes to strings by default; with `serialize: undefined` it hands over the
 * raw `{ value, expires }` object. A stored value is one tag byte and a body: `0` and the UTF-8
 * bytes of a string (the usual case: no second encoding, and the bytes stay readable), `1` and
 * `v8.serialize` of anything else. v8 rather than JSON because it round-trips what JSON loses:
 * Buffers, `undefined`, Dates, Maps, Sets, BigInts, typed arrays and cycles.
 */
import { EventEmitter } from 'node:events';
import { resolve } from 'node:path';
import { deserialize as v8Deserialize, serialize as v8Serialize } from 'node:v8';
import { DEFAULTS } from '../config/defaults.js';
import type { Db } from '../store/db.js';
import { SqliteTier } from './sqlite-tier.js';

/** Options of {@link GuildKeyvStore}. Give one of `tier`, `db` or `file`. */
export interface GuildKeyvStoreOptions {
  /**
   * The SQLite file to open (created with Guild's schema when absent). Adapters opened on the same
   * file in one process share one connection and one {@link SqliteTier}, so each sees the others'
   * buffered writes at once.
   */
  file?: string;
  /** An open Guild store (e.g. the one holding the run history); shared like `file`. */
  db?: Db;
  /**
   * A tier the caller owns and closes; `file`, `db` and `maxBytes` are then ignored, and
   * `disconnect()` only commits buffered writes.
   */
  tier?: SqliteTier;
  /**
   * Byte cap of the tier created from `file` or `db` (over every namespace of that store, least
   * recently read dropped first). The first adapter to open a store sets its cap.
   * @default 1 GiB (DEFAULTS.cache.diskBytes)
   */
  maxBytes?: number;
  /** Keyv namespace until a Keyv instance sets its own (Keyv always does). @default undefined */
  namespace?: string;
}

/** `opts` as Keyv reads them: `dialect: 'sqlite'` is what makes Keyv offer `keyv.iterator()`. */
export interface GuildKeyvStoreOpts {
  readonly dialect: 'sqlite';
  readonly url: string;
  readonly maxBytes: number;
  /** Keyv's value tests assign a deserializer here; the adapter does not use it. */
  [option: string]: unknown;
}

/** Guild namespace of keys that carry no Keyv namespace prefix. */
export const KEYV_BASE_NAMESPACE = 'keyv';
const NS_PREFIX = `${KEYV_BASE_NAMESPACE}.`;

const TAG_STRING = 0;
const TAG_V8 = 1;
/** No value: absent, expired, or not written by this adapter (foreign tag, undecodable body), which reads as a miss. */
const ABSENT: unique symbol = Symbol('absent');

/** Guild namespace of a Keyv namespace: `keyv.` + the name with every character outside `[A-Za-z0-9.-]` escaped. */
export function guildNamespaceOf(keyvNamespace: string): string {
  let out = NS_PREFIX;
  for (const ch of keyvNamespace) out += /^[A-Za-z0-9.-]$/.test(ch) ? ch : `_${ch.codePointAt(0)!.toString(16)}_`;
  return out;
}

/** The Keyv namespace of a Guild namespace made by {@link guildNamespaceOf}; undefined for any other. */
function keyvNamespaceOf(guildNamespace: string): string | undefined {
  if (!guildNamespace.startsWith(NS_PREFIX)) return undefined;
  const body = guildNamespace.slice(NS_PREFIX.length);
  if (!/^(?:[A-Za-z0-9.-]|_[0-9a-f]{1,6}_)*$/.test(body)) return undefined;
  try {
    return body.replace(/_([0-9a-f]{1,6})_/g, (_m, hex: string) => String.fromCodePoint(Number.parseInt(hex, 16)));
  } catch {
    return undefined; // a code point beyond U+10FFFF: not ours
  }
}

/**
 * Where a Keyv key lives: under `namespace` when the key carries it as prefix (so a namespace that
 * itself contains `:` stays one Guild namespace), else split at the first `:`.
 */
function locate(key: string, namespace: string | undefined): { ns: string; key: string } {
  if (namespace && key.startsWith(`${namespace}:`)) return { ns: guildNamespaceOf(namespace), key: key.slice(namespace.length + 1) };
  const i = key.indexOf(':');
  return i < 0 ? { ns: KEYV_BASE_NAMESPACE, key } : { ns: guildNamespaceOf(key.slice(0, i)), key: key.slice(i + 1) };
}

function encode(value: unknown): Buffer {
  if (typeof value === 'string') {
    const body = Buffer.from(value, 'utf8');
    const out = Buffer.allocUnsafe(body.length + 1);
    out[0] = TAG_STRING;
    body.copy(out, 1);
    return out;
  }
  return Buffer.concat([Buffer.of(TAG_V8), v8Serialize(value)]);
}

function decode(stored: Buffer): unknown {
  switch (stored[0]) {
    case TAG_STRING:
      return stored.toString('utf8', 1);
    case TAG_V8:
      try {
        return v8Deserialize(stored.subarray(1)) as unknown;
      } catch {
        return ABSENT;
      }
    default:
      return ABSENT;
  }
}

/** Milliseconds to live → the tier's absolute expiry; undefined, 0 or not finite: never. */
function expiresAtOf(ttl: number | undefined): number {
  if (ttl === undefined || ttl === 0 || !Number.isFinite(ttl)) return 0;
  return Math.max(1, Date.now() + ttl); // a negative ttl is already expired, never "0 = forever"
}

interface Shared {
  readonly tier: SqliteTier;
  refs: number;
}

/** Tiers opened by adapters, by resolved file path or by Db, so adapters on one store share one buffer. */
const shared = new Map<string | Db, Shared>();
let exitHook = false;

/** Commits every shared tier's buffered writes on a normal exit (the tier's flush timer is unref'd). */
function flushSharedOnExit(): void {
  for (const s of shared.values()) {
    try {
      s.tier.flush();
    } catch {
      // exiting: nothing better to do than keep flushing the others
    }
  }
}

function acquire(source: string | Db, maxBytes: number): Shared {
  let s = shared.get(source);
  if (s === undefined) {
    // `() => Date.now()` rather than `Date.now`: honour clocks that tests replace (timekeeper, fake timers).
    s = { tier: new SqliteTier({ db: source, maxBytes, now: () => Date.now() }), refs: 0 };
    shared.set(source, s);
    if (!exitHook) {
      process.on('exit', flushSharedOnExit);
      exitHook = true;
    }
  }
  s.refs++;
  return s;
}

function release(source: string | Db): void {
  const s = shared.get(source);
  if (s === undefined || --s.refs > 0) return;
  shared.delete(source);
  s.tier.close();
  if (shared.size === 0 && exitHook) {
    process.off('exit', flushSharedOnExit);
    exitHook = false;
  }
}

/**
 * A Keyv v5 storage adapter over Guild's {@link SqliteTier}: `new Keyv({ store: new GuildKeyvStore({ file }) })`.
 *
 * Every method returns a promise although the tier answers synchronously; writes are buffered by
 * the tier and committed in batches (reads see them at once). Entries share the tier's byte cap
 * and LRU eviction with the rest of Guild's cache, and expire by the `ttl` Keyv passes. Call
 * `keyv.disconnect()` to commit and release the store; tiers the adapter opened itself are also
 * committed on a normal process exit, so a write Keyv reported done is not lost to the batch.
 *
 * No `setMany`: Keyv's fallback calls `set` per entry, which here is a map insert committed with
 * the rest of the batch (the cost of a native one), and it keeps `keyv.setMany()` resolving to
 * `boolean[]`; a native `setMany` must resolve to `void` by Keyv's adapter type, and Keyv returns
 * that as its own result.
 */
export class GuildKeyvStore extends EventEmitter {
  /** Read by Keyv: `dialect: 'sqlite'` enables `keyv.iterator()`. */
  readonly opts: GuildKeyvStoreOpts;
  /** Set by Keyv to its namespace; `clear()` and `iterator()` act on it (all Keyv namespaces when unset). */
  namespace: string | undefined;
  readonly #tier: SqliteTier;
  /** The shared-tier key to release on disconnect; null when the caller owns the tier. */
  readonly #source: string | Db | null;
  #connected = true;

  constructor(options: GuildKeyvStoreOptions = {}) {
    super();
    const maxBytes = options.maxBytes ?? DEFAULTS.cache.diskBytes;
    this.namespace = options.namespace;
    if (options.tier !== undefined) {
      this.#tier = options.tier;
      this.#source = null;
    } else if (options.db !== undefined) {
      this.#source = options.db;
      this.#tier = acquire(options.db, maxBytes).tier;
    } else if (options.file !== undefined) {
      this.#source = resolve(options.file);
      this.#tier = acquire(this.#source, maxBytes).tier;
    } else {
      throw new TypeError('GuildKeyvStore needs one of the options file, db or tier');
    }
    const where = typeof this.#source === 'string' ? this.#source : options.db !== undefined ? options.db.name : 'tier';
    this.opts = { dialect: 'sqlite', url: `sqlite://${where}`, maxBytes };
  }

  /** The tier behind this adapter (for `stats()`, `prune()`, `flush()`). */
  get tier(): SqliteTier {
    return this.#tier;
  }

  /** The stored value (what Keyv gave `set`), or undefined when absent or expired. */
  async get<Value = unknown>(key: string): Promise<Value | undefined> {
    const value = this.#read(key);
    return value === ABSENT ? undefined : (value as Value);
  }

  /** {@link get} for each key, in order. */
  async getMany<Value = unknown>(keys: string[]): Promise<Array<Value | undefined>> {
    return keys.map((k) => {
      const value = this.#read(k);
      return value === ABSENT ? undefined : (value as Value);
    });
  }

  /**
   * Stores `value` (a string as UTF-8, anything else through `v8.serialize`).
   * @param ttl milliseconds to live; undefined or 0 never expires.
   */
  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    this.#write(key, value, ttl);
    return true;
  }

  /** True when the key held a value. */
  async delete(key: string): Promise<boolean> {
    this.#check();
    const at = locate(key, this.namespace);
    return this.#tier.delete(at.ns, at.key);
  }

  /** Deletes every key; true when at least one held a value. */
  async deleteMany(keys: string[]): Promise<boolean> {
    this.#check();
    let deleted = false;
    for (const key of keys) {
      const at = locate(key, this.namespace);
      if (this.#tier.delete(at.ns, at.key)) deleted = true;
    }
    return deleted;
  }

  /** True when the key holds a live value. */
  async has(key: string): Promise<boolean> {
    return this.#read(key) !== ABSENT;
  }

  /** {@link has} for each key, in order. */
  async hasMany(keys: string[]): Promise<boolean[]> {
    return keys.map((k) => this.#read(k) !== ABSENT);
  }

  /**
   * Removes the entries of the current Keyv namespace only (its one Guild namespace). With no
   * namespace, removes every entry any Keyv wrote to this store (`keyv` and every `keyv.*`) and
   * nothing else of Guild's.
   */
  async clear(): Promise<void> {
    this.#check();
    if (this.namespace) {
      this.#tier.clear(guildNamespaceOf(this.namespace));
      return;
    }
    for (const ns of this.#keyvNamespaces()) this.#tier.clear(ns);
  }

  /**
   * Yields `[key, value]` with the key as Keyv wrote it (`namespace:key`) for the live entries of
   * `namespace` (Keyv passes its own), or of every Keyv namespace when none is given.
   */
  async *iterator<Value = unknown>(namespace?: string): AsyncGenerator<Array<string | Awaited<Value> | undefined>, void> {
    this.#check();
    const ns = namespace ?? this.namespace;
    const spaces: Array<{ guild: string; keyv: string | undefined }> = ns
      ? [{ guild: guildNamespaceOf(ns), keyv: ns }]
      : this.#keyvNamespaces().map((g) => ({ guild: g, keyv: keyvNamespaceOf(g) }));
    for (const space of spaces) {
      for (const key of this.#tier.keys(space.guild)) {
        this.#check();
        const entry = this.#tier.get(space.guild, key);
        if (entry === undefined) continue;
        const value = decode(entry.value);
        if (value === ABSENT) continue;
        yield [space.keyv === undefined ? key : `${space.keyv}:${key}`, value as Awaited<Value>];
      }
    }
  }

  /**
   * Commits buffered writes and lets go of the store: the last adapter on a `file` or `db` closes
   * its tier (and the connection it opened). A caller's `tier` is only flushed. Later calls reject.
   */
  async disconnect(): Promise<void> {
    if (!this.#connected) return;
    this.#connected = false;
    if (this.#source === null) this.#tier.flush();
    else release(this.#source);
  }

  #check(): void {
    if (!this.#connected) throw new Error('GuildKeyvStore: used after disconnect()');
  }

  #read(key: string): unknown {
    this.#check();
    const at = locate(key, this.namespace);
    const entry = this.#tier.get(at.ns, at.key);
    return entry === undefined ? ABSENT : decode(entry.value);
  }

  #write(key: string, value: unknown, ttl: number | undefined): void {
    this.#check();
    const at = locate(key, this.namespace);
    this.#tier.set(at.ns, at.key, encode(value), expiresAtOf(ttl));
  }

  /** The Guild namespaces Keyv data can live in: `keyv` and every `keyv.*` the store holds. */
  #keyvNamespaces(): string[] {
    const names = Object.keys(this.#tier.stats().namespaces);
    return names.filter((n) => n === KEYV_BASE_NAMESPACE || keyvNamespaceOf(n) !== undefined);
  }
}
