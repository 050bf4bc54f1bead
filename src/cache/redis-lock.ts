import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { GuildError } from '../errors.js';
import { redisError } from './redis-tier.js';

/** Options of {@link RedisLock}. */
export interface RedisLockOptions {
  /** The client; owned by the caller. */
  client: Redis;
  /** Prefix of every lock key; a lock named `n` is the key `${prefix}${n}`. @default 'guild:lock:' */
  prefix?: string;
}

/**
 * Deletes the key only while it still holds the caller's token. GET then DEL from the client
 * would not do: between the two, the lock could expire and be taken by someone else, whose lock
 * the DEL would then remove. A script runs atomically in Redis.
 */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/** Renews the key's expiry only while it still holds the caller's token (same reasoning as RELEASE). */
const EXTEND = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;

/**
 * A lock across processes for single-flight: one process computes a missing entry while the
 * others wait for it to appear. Not a mutex for correctness: a holder that outlives its TTL
 * loses the lock without knowing (the single-instance pattern from the Redis docs, not Redlock).
 */
export class RedisLock {
  readonly #client: Redis;
  readonly #prefix: string;

  constructor(options: RedisLockOptions) {
    this.#client = options.client;
    this.#prefix = options.prefix ?? 'guild:lock:';
  }

  /**
   * Takes the lock for `ttlMs`; the token to release it with, or null when someone holds it.
   * NX makes taking it atomic (only one SET succeeds); PX makes a crashed holder's lock expire
   * by itself instead of blocking everyone forever.
   */
  async acquire(name: string, ttlMs: number): Promise<string | null> {
    if (!(ttlMs >= 1) || !Number.isFinite(ttlMs)) throw new GuildError('CACHE', `Expected a lock TTL of at least 1 ms, got ${ttlMs}`);
    const token = randomBytes(16).toString('hex');
    try {
      return (await this.#client.set(this.#prefix + name, token, 'PX', Math.ceil(ttlMs), 'NX')) === 'OK' ? token : null;
    } catch (err) {
      throw redisError('SET NX', this.#client, err);
    }
  }

  /** Releases the lock if `token` still holds it; false when it had expired or was taken by another. */
  async release(name: string, token: string): Promise<boolean> {
    try {
      return (await this.#client.eval(RELEASE, 1, this.#prefix + name, token)) === 1;
    } catch (err) {
      throw redisError('EVAL', this.#client, err);
    }
  }

  /** Renews the lock for `ttlMs` if `token` still holds it; false when it had expired or was taken by another. */
  async extend(name: string, token: string, ttlMs: number): Promise<boolean> {
    try {
      return (await this.#client.eval(EXTEND, 1, this.#prefix + name, token, String(Math.ceil(ttlMs)))) === 1;
    } catch (err) {
      throw redisError('EVAL', this.#client, err);
    }
  }

  /** Whether anyone holds the lock now. */
  async held(name: string): Promise<boolean> {
    try {
      return (await this.#client.exists(this.#prefix + name)) === 1;
    } catch (err) {
      throw redisError('EXISTS', this.#client, err);
    }
  }
}
