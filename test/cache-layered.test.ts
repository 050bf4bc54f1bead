/**
 * The layered cache over real tiers: memory (lru-cache), SQLite (a temporary file) and Redis (the
 * server at 127.0.0.1:6379, under a key prefix unique to this run and removed afterwards; the
 * Redis tests are skipped when it is not reachable). Clocks are injected wherever time matters,
 * except in the one test about real expiry.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { LayeredCache } from '../src/cache/layered-cache.js';
import { MemoryTier } from '../src/cache/memory-tier.js';
import { DEFAULT_NAMESPACES, type NamespacePolicy } from '../src/config/cache-policy.js';
import { escapeGlob, RedisTier } from '../src/cache/redis-tier.js';
import { SqliteTier } from '../src/cache/sqlite-tier.js';
import type { CacheCounters, CacheTier, LimitsOf } from '../src/cache/tier.js';
import type { CacheMode } from '../src/governor/governor.js';
import { ROOT } from './helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const HOUR = 3_600_000;
const STAMPEDE = join(ROOT, 'test', 'fixtures', 'cache-stampede.mjs');
const BASE = `guild-test:${process.pid}:${Date.now()}:`;

const dirs: string[] = [];
let redis: Redis | undefined;
let unreachable = '';
{
  const c = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
  let lastError = '';
  c.on('error', (err: Error) => (lastError = err.message));
  try {
    await c.connect();
    await c.ping();
    redis = c;
  } catch (err) {
    unreachable = lastError || (err instanceof Error ? err.message : String(err));
    c.disconnect();
  }
}

after(async () => {
  if (redis) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${escapeGlob(BASE)}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
    await redis.quit();
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The Redis client, or undefined after marking the test skipped. */
function needRedis(t: TestContext): Redis | undefined {
  if (!redis) t.skip(`Redis not reachable at 127.0.0.1:6379 (${unreachable}): Redis test skipped`);
  return redis;
}

let prefixes = 0;
const freshPrefix = (): string => `${BASE}${++prefixes}:`;

/** A database file in a fresh temporary folder (removed after the run). */
function dbFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'guild-layered-'));
  dirs.push(dir);
  return join(dir, 'cache.db');
}

const b = (s: string): Buffer => Buffer.from(s);
const policy = (p: Partial<NamespacePolicy>): NamespacePolicy => ({ ttlMs: null, maxEntries: null, staleWhileRevalidateMs: null, tiers: ['memory', 'sqlite', 'redis'], ...p });
const capOf =
  (caps: Record<string, number>): LimitsOf =>
  (ns) => ({ maxEntries: caps[ns] ?? null });

interface Clock {
  t: number;
}

/** Memory + SQLite (+ Redis when given) on one injected clock, closed after the test. */
function layered(
  t: TestContext,
  opts: { clock?: Clock; namespaces?: Record<string, NamespacePolicy>; memoryBytes?: number; file?: string; redis?: Redis; limits?: LimitsOf } = {},
) {
  const now = opts.clock ? () => opts.clock!.t : Date.now;
  const memory = new MemoryTier({ maxBytes: opts.memoryBytes ?? 16 * MiB, now, ...(opts.limits ? { limits: opts.limits } : {}) });
  const sqlite = new SqliteTier({ db: opts.file ?? dbFile(), maxBytes: 256 * MiB, now, ...(opts.limits ? { limits: opts.limits } : {}) });
  const redisPrefix = freshPrefix();
  const redisTier = opts.redis ? new RedisTier({ client: opts.redis, prefix: redisPrefix, now }) : undefined;
  const cache = new LayeredCache({
    tiers: redisTier ? [memory, sqlite, redisTier] : [memory, sqlite],
    ...(opts.namespaces ? { namespaces: opts.namespaces } : {}),
    now,
  });
  t.after(() => cache.close());
  return { cache, memory, sqlite, redisTier, redisPrefix };
}

/** Polls `check` until it holds (or fails after `ms`). */
async function eventually(check: () => Promise<boolean> | boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`${what} did not hold within ${ms} ms`);
    await sleep(5);
  }
}

describe('promotion', () => {
  test('a value only in SQLite is served, counted as a SQLite hit, and promoted to memory with its remaining lifetime', async (t) => {
    const clock = { t: Date.now() };
    const { cache, memory, sqlite } = layered(t, { clock });
    const expiresAt = clock.t + 60_000;
    sqlite.set('ns', 'k', b('from sqlite'), expiresAt);
    sqlite.set('ns', 'forever', b('no expiry'), 0);
    sqlite.flush();
    assert.equal(memory.get('ns', 'k'), undefined);

    clock.t += 10_000; // 50 s of life left
    assert.equal((await cache.get('ns', 'k'))?.toString(), 'from sqlite');
    let s = (await cache.stats()).namespaces.ns!;
    assert.deepEqual(s.hits_by_tier, { memory: 0, sqlite: 1, redis: 0 });
    assert.equal(s.hits, 1);
    assert.equal(s.misses, 0);

    const promoted = memory.get('ns', 'k');
    assert.ok(promoted, 'promoted to memory');
    assert.equal(promoted.value.toString(), 'from sqlite');
    assert.equal(promoted.expiresAt, expiresAt, 'same absolute expiry: the remaining lifetime, not a fresh one');

    // The next read is served by memory.
    assert.equal((await cache.get('ns', 'k'))?.toString(), 'from sqlite');
    s = (await cache.stats()).namespaces.ns!;
    assert.deepEqual(s.hits_by_tier, { memory: 1, sqlite: 1, redis: 0 });

    // An entry without expiry is promoted without one.
    assert.equal((await cache.get('ns', 'forever'))?.toString(), 'no expiry');
    assert.equal(memory.get('ns', 'forever')?.expiresAt, 0);

    // The promoted copy dies when the original would have.
    clock.t = expiresAt;
    assert.equal(memory.get('ns', 'k'), undefined);
    assert.equal(await cache.get('ns', 'k'), undefined);
  });

  test('with Redis as L3, a value only in Redis is promoted to memory and SQLite', async (t) => {
    const client = needRedis(t);
    if (!client) return;
    const clock = { t: Date.now() };
    const { cache, memory, sqlite, redisTier } = layered(t, { clock, redis: client });
    const expiresAt = clock.t + 120_000;
    await redisTier!.set('ns', 'k', b('from redis'), expiresAt);
    assert.equal(memory.get('ns', 'k'), undefined);
    assert.equal(sqlite.get('ns', 'k'), undefined);

    clock.t += 1_000;
    assert.equal((await cache.get('ns', 'k'))?.toString(), 'from redis');
    assert.deepEqual((await cache.stats()).namespaces.ns!.hits_by_tier, { memory: 0, sqlite: 0, redis: 1 });

    const inMemory = memory.get('ns', 'k');
    assert.equal(inMemory?.value.toString(), 'from redis');
    assert.equal(inMemory?.expiresAt, expiresAt);
    sqlite.flush();
    const onDisk = sqlite.get('ns', 'k');
    assert.equal(onDisk?.value.toString(), 'from redis');
    assert.equal(onDisk?.expiresAt, expiresAt);

    // Served from memory now, and from SQLite once memory forgets it.
    await cache.get('ns', 'k');
    memory.delete('ns', 'k');
    await cache.get('ns', 'k');
    assert.deepEqual((await cache.stats()).namespaces.ns!.hits_by_tier, { memory: 1, sqlite: 1, redis: 1 });
  });
});

describe('write-through', () => {
  const namespaces = { diskonly: policy({ tiers: ['sqlite'] }), tasks: DEFAULT_NAMESPACES.tasks!, process: DEFAULT_NAMESPACES.process! };

  test('a set reaches exactly the tiers of its namespace (memory + SQLite)', async (t) => {
    const { cache, memory, sqlite } = layered(t, { namespaces });
    for (const ns of ['diskonly', 'tasks', 'process', 'unlisted']) await cache.set(ns, 'k', b(`value of ${ns}`));
    sqlite.flush();

    const where = (ns: string) => ({ memory: memory.get(ns, 'k')?.value.toString(), sqlite: sqlite.get(ns, 'k')?.value.toString() });
    assert.deepEqual(where('diskonly'), { memory: undefined, sqlite: 'value of diskonly' });
    assert.deepEqual(where('tasks'), { memory: undefined, sqlite: 'value of tasks' });
    assert.deepEqual(where('process'), { memory: 'value of process', sqlite: undefined });
    assert.deepEqual(where('unlisted'), { memory: 'value of unlisted', sqlite: 'value of unlisted' });

    // Reading through the cache does not promote into a tier the namespace does not use.
    assert.equal((await cache.get('diskonly', 'k'))?.toString(), 'value of diskonly');
    assert.equal((await cache.get('tasks', 'k'))?.toString(), 'value of tasks');
    assert.deepEqual(memory.keys('diskonly'), []);
    assert.deepEqual(memory.keys('tasks'), []);
    assert.equal(memory.stats().namespaces.diskonly, undefined, 'the memory tier never even saw the namespace');
    assert.deepEqual(sqlite.keys('process'), []);

    // delete goes through the same tiers.
    assert.equal(await cache.delete('unlisted', 'k'), true);
    assert.equal(memory.get('unlisted', 'k'), undefined);
    assert.equal(sqlite.get('unlisted', 'k'), undefined);
  });

  test('with Redis: tasks go to SQLite and Redis only, process to memory only', async (t) => {
    const client = needRedis(t);
    if (!client) return;
    const { cache, memory, sqlite, redisTier } = layered(t, { namespaces, redis: client });
    assert.deepEqual(DEFAULT_NAMESPACES.tasks!.tiers, ['sqlite', 'redis']);
    for (const ns of ['diskonly', 'tasks', 'process', 'unlisted']) await cache.set(ns, 'k', b(`value of ${ns}`));
    sqlite.flush();

    const where = async (ns: string) => ({
      memory: memory.get(ns, 'k')?.value.toString(),
      sqlite: sqlite.get(ns, 'k')?.value.toString(),
      redis: (await redisTier!.get(ns, 'k'))?.value.toString(),
    });
    assert.deepEqual(await where('diskonly'), { memory: undefined, sqlite: 'value of diskonly', redis: undefined });
    assert.deepEqual(await where('tasks'), { memory: undefined, sqlite: 'value of tasks', redis: 'value of tasks' });
    assert.deepEqual(await where('process'), { memory: 'value of process', sqlite: undefined, redis: undefined });
    assert.deepEqual(await where('unlisted'), { memory: 'value of unlisted', sqlite: 'value of unlisted', redis: 'value of unlisted' });
    assert.deepEqual((await redisTier!.keys('diskonly')).length, 0);

    // A task result only in Redis is promoted to SQLite, never to memory.
    await redisTier!.set('tasks', 'remote', b('from another machine'), 0);
    assert.equal((await cache.get('tasks', 'remote'))?.toString(), 'from another machine');
    assert.equal(memory.get('tasks', 'remote'), undefined);
    assert.equal(sqlite.get('tasks', 'remote')?.value.toString(), 'from another machine');
  });
});

describe('TTL by namespace', () => {
  test('research entries live one hour on the injected clock, in every tier', async (t) => {
    const clock = { t: Date.now() };
    const { cache, memory, sqlite } = layered(t, { clock, namespaces: { ...DEFAULT_NAMESPACES } });
    const t0 = clock.t;
    await cache.set('research', 'q', b('answer'));
    await cache.set('agent', 'a', b('kept'));
    assert.equal(memory.get('research', 'q')?.expiresAt, t0 + HOUR);
    assert.equal(sqlite.get('research', 'q')?.expiresAt, t0 + HOUR);

    clock.t = t0 + HOUR - 1;
    assert.equal((await cache.get('research', 'q'))?.toString(), 'answer');
    clock.t = t0 + HOUR + 1;
    assert.equal(await cache.get('research', 'q'), undefined);
    assert.equal(memory.get('research', 'q'), undefined);
    assert.equal(sqlite.get('research', 'q'), undefined);
    // agent has no TTL.
    clock.t = t0 + 1000 * HOUR;
    assert.equal((await cache.get('agent', 'a'))?.toString(), 'kept');
  });

  test('a per-call ttlMs overrides the namespace TTL, for set and getOrCompute', async (t) => {
    const clock = { t: Date.now() };
    const { cache, memory } = layered(t, { clock, namespaces: { ...DEFAULT_NAMESPACES } });
    const t0 = clock.t;
    await cache.set('research', 'default', b('1 h'));
    await cache.set('research', 'short', b('5 s'), { ttlMs: 5000 });
    await cache.set('research', 'forever', b('never'), { ttlMs: null });
    await cache.set('agent', 'longer-than-none', b('10 s'), { ttlMs: 10_000 });
    let computes = 0;
    const v = await cache.getOrCompute('research', 'computed', () => (computes++, b('2 s')), { ttlMs: 2000 });
    assert.equal(v.toString(), '2 s');
    assert.equal(memory.get('research', 'computed')?.expiresAt, t0 + 2000);
    assert.equal(memory.get('research', 'short')?.expiresAt, t0 + 5000);

    clock.t = t0 + 2001;
    assert.equal(await cache.get('research', 'computed'), undefined);
    assert.equal((await cache.getOrCompute('research', 'computed', () => (computes++, b('again')), { ttlMs: 2000 })).toString(), 'again');
    assert.equal(computes, 2);
    assert.equal((await cache.get('research', 'short'))?.toString(), '5 s');

    clock.t = t0 + 5001;
    assert.equal(await cache.get('research', 'short'), undefined);
    assert.equal((await cache.get('research', 'default'))?.toString(), '1 h');

    clock.t = t0 + 10_001;
    assert.equal(await cache.get('agent', 'longer-than-none'), undefined);

    clock.t = t0 + 2 * HOUR;
    assert.equal(await cache.get('research', 'default'), undefined);
    assert.equal((await cache.get('research', 'forever'))?.toString(), 'never');
  });

  test('entries expire in real time with a short configured TTL', async (t) => {
    const { cache, memory, sqlite } = layered(t, { namespaces: { quick: policy({ ttlMs: 200 }) } });
    const t0 = Date.now();
    await cache.set('quick', 'k', b('brief'));
    const early = await cache.get('quick', 'k');
    // Only meaningful if this process was not descheduled for the whole TTL in between.
    if (Date.now() - t0 < 150) assert.equal(early?.toString(), 'brief');
    const stored = memory.get('quick', 'k') ?? sqlite.get('quick', 'k');
    if (stored) assert.ok(stored.expiresAt >= t0 + 200 && stored.expiresAt <= Date.now() + 200, `expiresAt ${stored.expiresAt - t0} ms after the set`);
    await sleep(400);
    assert.equal(await cache.get('quick', 'k'), undefined);
    assert.equal(memory.get('quick', 'k'), undefined);
    assert.equal(sqlite.get('quick', 'k'), undefined);
  });

  test('with Redis: a short TTL also expires the Redis copy (PX)', async (t) => {
    const client = needRedis(t);
    if (!client) return;
    const { cache, redisTier, redisPrefix } = layered(t, { redis: client, namespaces: { quick: policy({ ttlMs: 300 }) } });
    const t0 = Date.now();
    await cache.set('quick', 'k', b('brief'));
    const early = await redisTier!.keys('quick');
    if (Date.now() - t0 < 250) assert.deepEqual(early, ['k']);
    const pttl = await client.pttl(`${redisPrefix}quick:k`);
    assert.ok(pttl <= 300 && (pttl > 0 || Date.now() - t0 >= 250), `PX set from the namespace TTL (PTTL ${pttl})`);
    await sleep(700);
    assert.equal(await cache.get('quick', 'k'), undefined);
    assert.deepEqual(await redisTier!.keys('quick'), []);
  });
});

describe('eviction', () => {
  test('memory: a 64 KiB byte cap holds; the oldest entries go, the newest stay', async (t) => {
    const memory = new MemoryTier({ maxBytes: 64 * KiB });
    const cache = new LayeredCache({ tiers: [memory] });
    t.after(() => cache.close());
    const value = Buffer.alloc(4 * KiB, 7);
    for (let i = 0; i < 100; i++) {
      await cache.set('ns', `k${i}`, value);
      assert.ok(memory.bytes() <= 64 * KiB, `after ${i + 1} sets: ${memory.bytes()} bytes`);
    }
    assert.equal(memory.get('ns', 'k0'), undefined);
    assert.equal(memory.get('ns', 'k50'), undefined);
    assert.ok(memory.get('ns', 'k99'), 'newest present');
    assert.ok(memory.get('ns', 'k98'), 'second newest present');
    const s = memory.stats().namespaces.ns!;
    assert.ok(s.evictions > 0);
    assert.equal(s.evictions + s.entries!, 100, 'every entry is either held or counted as evicted');
    assert.ok(s.entries! >= 10, `${s.entries} entries of ~4 KiB fit in 64 KiB`);
    assert.equal(s.bytes, memory.bytes());
    assert.equal(cache.bytes(), memory.bytes());
  });

  test('memory: under the shared byte cap the namespace holding the most gives back first', async (t) => {
    const memory = new MemoryTier({ maxBytes: 64 * KiB });
    t.after(() => memory.close());
    const value = Buffer.alloc(4 * KiB, 1);
    for (let i = 0; i < 40; i++) memory.set('big', `b${i}`, value, 0);
    const bigBefore = memory.stats().namespaces.big!.entries!;
    for (let i = 0; i < 3; i++) memory.set('small', `s${i}`, value, 0);
    const after = memory.stats().namespaces;
    assert.equal(after.small!.entries, 3, 'the small namespace keeps all it wrote');
    assert.equal(after.small!.evictions, 0);
    assert.equal(after.big!.entries, bigBefore - 3);
    assert.ok(memory.bytes() <= 64 * KiB);
  });

  test('memory: a namespace entry cap drops the least recently accessed', async (t) => {
    const memory = new MemoryTier({ maxBytes: 16 * MiB, limits: capOf({ capped: 10 }) });
    const cache = new LayeredCache({ tiers: [memory] });
    t.after(() => cache.close());
    for (let i = 0; i < 50; i++) {
      await cache.set('capped', `k${i}`, b(`v${i}`));
      await cache.set('free', `k${i}`, b(`v${i}`));
      // k0 is read after every write: always the most recently used, never evicted.
      assert.equal((await cache.get('capped', 'k0'))?.toString(), 'v0', `k0 evicted after k${i}`);
    }
    const expected = ['k0', ...Array.from({ length: 9 }, (_, j) => `k${41 + j}`)];
    assert.deepEqual(memory.keys('capped').sort(), expected.sort());
    assert.equal(memory.stats().namespaces.capped!.evictions, 40);
    assert.equal(memory.keys('free').length, 50, 'other namespaces are not capped');
  });

  test('SQLite: a namespace entry cap keeps the 10 most recently read or written', async (t) => {
    const clock = { t: Date.now() };
    const sqlite = new SqliteTier({ db: dbFile(), maxBytes: 256 * MiB, limits: capOf({ capped: 10, lru: 10 }), now: () => clock.t });
    t.after(() => sqlite.close());

    // All 50 in one batch: the cap holds once the batch is committed.
    for (let i = 0; i < 50; i++) sqlite.set('capped', `k${i}`, b(`v${i}`), 0);
    sqlite.flush();
    assert.equal(sqlite.keys('capped').length, 10);

    // Access times are committed at flush: flush between steps, on a clock that moves.
    for (let i = 0; i < 50; i++) {
      clock.t += 1000;
      sqlite.set('lru', `k${i}`, b(`v${i}`), 0);
      sqlite.flush();
      clock.t += 1000;
      assert.equal(sqlite.get('lru', 'k0')?.value.toString(), 'v0', `k0 evicted after k${i}`);
      sqlite.flush();
    }
    const expected = ['k0', ...Array.from({ length: 9 }, (_, j) => `k${41 + j}`)];
    assert.deepEqual(sqlite.keys('lru').sort(), expected.sort());
    const s = sqlite.stats().namespaces;
    assert.equal(s.lru!.evictions, 40);
    assert.equal(s.capped!.evictions, 40);
    assert.equal(s.lru!.entries, 10);
  });

  test('SQLite: a 100 KiB byte cap holds after 50 writes of 10 KiB', async (t) => {
    const clock = { t: Date.now() };
    const file = dbFile();
    const sqlite = new SqliteTier({ db: file, maxBytes: 100 * KiB, now: () => clock.t });
    t.after(() => sqlite.close());
    const value = Buffer.alloc(10 * KiB, 3);
    const raw = new Database(file, { readonly: true });
    t.after(() => raw.close());
    const total = () => (raw.prepare('SELECT COALESCE(SUM(size), 0) AS n, COUNT(*) AS c FROM cache_entries').get() as { n: number; c: number });

    // One batch.
    for (let i = 0; i < 50; i++) sqlite.set('batch', `k${i}`, value, 0);
    sqlite.flush();
    assert.ok(total().n <= 100 * KiB, `${total().n} bytes stored`);
    assert.ok(total().c > 0);

    // One commit per write, on a moving clock: the least recently written go first.
    for (let i = 0; i < 50; i++) {
      clock.t += 1000;
      sqlite.set('ordered', `k${i}`, value, 0);
      sqlite.flush();
      assert.ok(total().n <= 100 * KiB, `${total().n} bytes stored after k${i}`);
    }
    assert.equal(total().n, 10 * 10 * KiB, 'exactly ten 10 KiB values fit');
    assert.deepEqual(sqlite.keys('ordered').sort(), Array.from({ length: 10 }, (_, j) => `k${40 + j}`).sort());
    assert.deepEqual(sqlite.keys('batch'), [], 'the older namespace gave way');
    const s = sqlite.stats().namespaces;
    assert.equal(s.ordered!.evictions, 40);
    assert.equal(s.ordered!.bytes, 100 * KiB);
  });
});

describe('corruption', () => {
  test('a stored entry that fails its checksum, or is truncated, is a miss and is removed', async (t) => {
    const file = dbFile();
    const payload = (tag: string) => Buffer.from(`${tag}:`.padEnd(256, 'x'));
    const first = new SqliteTier({ db: file, maxBytes: 256 * MiB });
    for (const k of ['good', 'flipped', 'truncated', 'recompute']) first.set('ns', k, payload(k), 0);
    first.flush();
    first.close();

    const raw = new Database(file);
    const read = raw.prepare('SELECT value FROM cache_entries WHERE ns = ? AND key = ?');
    const write = raw.prepare('UPDATE cache_entries SET value = ? WHERE ns = ? AND key = ?');
    const flipped = Buffer.from((read.get('ns', 'flipped') as { value: Buffer }).value);
    flipped[100]! ^= 0x01;
    assert.equal(flipped.length, 256);
    assert.equal(write.run(flipped, 'ns', 'flipped').changes, 1);
    const truncated = (read.get('ns', 'truncated') as { value: Buffer }).value.subarray(0, 128);
    assert.equal(write.run(truncated, 'ns', 'truncated').changes, 1);
    const recompute = Buffer.from((read.get('ns', 'recompute') as { value: Buffer }).value);
    recompute[0]! ^= 0x80;
    assert.equal(write.run(recompute, 'ns', 'recompute').changes, 1);
    raw.close();

    const sqlite = new SqliteTier({ db: file, maxBytes: 256 * MiB });
    const memory = new MemoryTier({ maxBytes: MiB });
    const cache = new LayeredCache({ tiers: [memory, sqlite] });
    t.after(() => cache.close());
    assert.equal(sqlite.get('ns', 'flipped'), undefined, 'one byte flipped, same length: checksum mismatch');
    assert.equal(sqlite.get('ns', 'truncated'), undefined, 'truncated value');
    assert.deepEqual(sqlite.get('ns', 'good')?.value, payload('good'));

    // Through the layered cache, a corrupt entry is a miss that computes again.
    let computes = 0;
    const v = await cache.getOrCompute('ns', 'recompute', () => (computes++, b('fresh')));
    assert.equal(v.toString(), 'fresh');
    assert.equal(computes, 1);

    const s = sqlite.stats().namespaces.ns!; // stats() flushes: the deletes are committed
    assert.equal(s.corrupt, 3);
    assert.ok(s.misses >= 3);

    const check = new Database(file, { readonly: true });
    t.after(() => check.close());
    const keys = (check.prepare("SELECT key FROM cache_entries WHERE ns = 'ns' ORDER BY key").all() as { key: string }[]).map((r) => r.key);
    assert.deepEqual(keys, ['good', 'recompute']);
    assert.deepEqual((check.prepare("SELECT value FROM cache_entries WHERE ns = 'ns' AND key = 'recompute'").get() as { value: Buffer }).value, b('fresh'));
    assert.equal((check.prepare("SELECT corrupt FROM cache_stats WHERE ns = 'ns' AND tier = 'sqlite'").get() as { corrupt: number }).corrupt, 3);
  });
});

describe('single flight', () => {
  test('1,000 concurrent misses of one key compute once; another key computes separately', async (t) => {
    const { cache } = layered(t);
    const calls = { hot: 0, other: 0 };
    const fn = (key: 'hot' | 'other') => async () => {
      const n = ++calls[key];
      await sleep(50);
      return b(`${key} #${n}`);
    };
    const hot: Promise<Buffer>[] = [];
    const other: Promise<Buffer>[] = [];
    for (let i = 0; i < 1000; i++) {
      hot.push(cache.getOrCompute('ns', 'hot', fn('hot')));
      other.push(cache.getOrCompute('ns', 'other', fn('other')));
    }
    const [hotResults, otherResults] = await Promise.all([Promise.all(hot), Promise.all(other)]);
    assert.deepEqual(calls, { hot: 1, other: 1 });
    assert.equal(hotResults.length, 1000);
    assert.ok(hotResults.every((r) => r.toString() === 'hot #1'));
    assert.ok(otherResults.every((r) => r.toString() === 'other #1'));

    const s = (await cache.stats()).namespaces.ns!;
    assert.equal(s.computes, 2);
    assert.equal(s.misses, 2000);
    // Stored: the next caller is a hit and computes nothing.
    assert.equal((await cache.getOrCompute('ns', 'hot', fn('hot'))).toString(), 'hot #1');
    assert.equal(calls.hot, 1);
  });

  test('a failing computation rejects every waiter, stores nothing, and the next call computes again', async (t) => {
    const { cache } = layered(t);
    let failing = 0;
    const settled = await Promise.allSettled(
      Array.from({ length: 200 }, () =>
        cache.getOrCompute('ns', 'bad', async () => {
          failing++;
          await sleep(30);
          throw new Error('boom');
        }),
      ),
    );
    assert.equal(failing, 1);
    assert.ok(settled.every((r) => r.status === 'rejected' && (r.reason as Error).message === 'boom'));
    assert.equal(await cache.get('ns', 'bad'), undefined);

    let ok = 0;
    const again = await Promise.all(Array.from({ length: 10 }, () => cache.getOrCompute('ns', 'bad', async () => (ok++, b('ok')))));
    assert.equal(ok, 1, 'no poisoned flight: computed again, once');
    assert.ok(again.every((r) => r.toString() === 'ok'));
  });

  test('across two processes with Redis: 1,000 misses, one computation, one value', async (t) => {
    const client = needRedis(t);
    if (!client) return;
    const prefix = freshPrefix();
    const start = () => {
      const child = spawn(process.execPath, [STAMPEDE, prefix, 'the-key', '500', '--barrier'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const ready = (async () => {
        while (!stdout.includes('ready\n')) {
          if (child.exitCode !== null) throw new Error(`stampede fixture exited early (${child.exitCode}): ${stderr}`);
          await sleep(10);
        }
      })();
      const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
        child.on('close', (code) => resolve({ code, stdout, stderr })),
      );
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      t.after(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      });
      done.finally(() => clearTimeout(timer));
      return { child, ready, done };
    };
    const a = start();
    const bb = start();
    await Promise.all([a.ready, bb.ready]);
    // Both are connected and waiting: release them together.
    a.child.stdin.end('go\n');
    bb.child.stdin.end('go\n');
    const [ra, rb] = await Promise.all([a.done, bb.done]);
    assert.equal(ra.code, 0, ra.stderr);
    assert.equal(rb.code, 0, rb.stderr);
    type Out = { pid: number; results: string[]; count: number; computed: number };
    const oa = JSON.parse(ra.stdout.split('\n').find((l) => l.startsWith('{'))!) as Out;
    const ob = JSON.parse(rb.stdout.split('\n').find((l) => l.startsWith('{'))!) as Out;

    assert.equal(await client.get(`${prefix}computations`), '1', 'computed exactly once across both processes');
    assert.equal(oa.count, 500);
    assert.equal(ob.count, 500);
    assert.equal(oa.results.length, 1, `process A saw ${JSON.stringify(oa.results)}`);
    assert.equal(ob.results.length, 1, `process B saw ${JSON.stringify(ob.results)}`);
    assert.equal(oa.results[0], ob.results[0]);
    assert.equal(oa.computed + ob.computed, 1);
    const computer = oa.computed === 1 ? oa : ob;
    assert.equal(oa.results[0], `computed by pid ${computer.pid}`);
    assert.equal(await client.exists(`${prefix}lock:stampede:the-key`), 0, 'the lock was released');
  });
});

describe('stale-while-revalidate', () => {
  const namespaces = { swr: policy({ ttlMs: 1000, staleWhileRevalidateMs: 10_000, tiers: ['memory', 'sqlite'] }) };

  test('a stale value is served at once while exactly one refresh runs; then the new value; gone after ttl + swr', async (t) => {
    const clock = { t: Date.now() };
    const { cache } = layered(t, { clock, namespaces });
    const t0 = clock.t;
    assert.equal((await cache.getOrCompute('swr', 'k', () => b('v1'))).toString(), 'v1');

    clock.t = t0 + 500; // fresh: no refresh
    let refreshes = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const refresh = async () => {
      refreshes++;
      await gate;
      return b('v2');
    };
    assert.equal((await cache.getOrCompute('swr', 'k', refresh)).toString(), 'v1');
    assert.equal(refreshes, 0);

    clock.t = t0 + 1500; // stale, within the 10 s window
    const results = await Promise.all(Array.from({ length: 10 }, () => cache.getOrCompute('swr', 'k', refresh)));
    assert.ok(
      results.every((r) => r.toString() === 'v1'),
      'the old value, at once (the refresh is still held at its gate)',
    );
    assert.equal(refreshes, 1);
    assert.equal((await cache.getOrCompute('swr', 'k', refresh)).toString(), 'v1');
    assert.equal(refreshes, 1, 'no second refresh while the first runs');

    release();
    await eventually(async () => (await cache.get('swr', 'k', { count: false }))?.toString() === 'v2', 10_000, 'the refresh stored v2');
    const next = await cache.getOrCompute('swr', 'k', () => assert.fail('a fresh value must not compute'));
    assert.equal(next.toString(), 'v2');
    assert.equal(refreshes, 1);
    const s = (await cache.stats()).namespaces.swr!;
    assert.equal(s.stale, 11);
    assert.equal(s.computes, 2, 'the first computation and the one refresh');

    // v2 was stored at t0 + 1500: fresh for 1 s, then stale for 10 s, then gone.
    clock.t = t0 + 1500 + 11_000 + 1;
    assert.equal(await cache.get('swr', 'k'), undefined);
    let computes = 0;
    assert.equal((await cache.getOrCompute('swr', 'k', () => (computes++, b('v3')))).toString(), 'v3');
    assert.equal(computes, 1, 'past ttl + swr it is a plain miss');
  });

  test('a failing refresh keeps serving the stale value until its hard expiry', async (t) => {
    const clock = { t: Date.now() };
    const { cache } = layered(t, { clock, namespaces });
    const t0 = clock.t;
    await cache.set('swr', 'k', b('old'));
    clock.t = t0 + 2000;
    let attempts = 0;
    const failing = async () => {
      attempts++;
      throw new Error('backend down');
    };
    assert.equal((await cache.getOrCompute('swr', 'k', failing)).toString(), 'old');
    await eventually(() => attempts === 1, 5000, 'refresh attempted');
    await sleep(20);
    assert.equal((await cache.getOrCompute('swr', 'k', failing)).toString(), 'old');
    await eventually(() => attempts === 2, 5000, 'refresh attempted again');
    clock.t = t0 + 11_001;
    await assert.rejects(cache.getOrCompute('swr', 'k', failing), /backend down/);
  });

  test(
    'a value stored without a TTL in a stale-while-revalidate namespace reads back whole',
    async (t) => {
      const { cache } = layered(t, { namespaces });
      await cache.set('swr', 'k', b('hello world, a value longer than eight bytes'), { ttlMs: null });
      assert.equal((await cache.get('swr', 'k'))?.toString(), 'hello world, a value longer than eight bytes');
    },
  );
});

describe('governor hooks (MemoryConsumer)', () => {
  test('shrink, evict, off and normal move the memory budget; reclaim gives back to half; SQLite carries on', async (t) => {
    const budget = MiB;
    const { cache, memory, sqlite } = layered(t, { memoryBytes: budget });
    const value = Buffer.alloc(4 * KiB, 9);
    let n = 0;
    const fill = async (count: number) => {
      for (let i = 0; i < count; i++) await cache.set('gov', `k${n++}`, value);
    };

    await fill(300);
    assert.ok(cache.bytes() > 0.9 * budget && cache.bytes() <= budget, `filled to ${cache.bytes()}`);
    assert.equal(cache.bytes(), memory.bytes());

    cache.onCacheMode('shrink');
    assert.ok(cache.bytes() <= 0.5 * budget, `shrink: ${cache.bytes()}`);
    assert.ok(cache.bytes() > 0.4 * budget, 'shrink keeps what fits');
    assert.ok(memory.get('gov', `k${n - 1}`), 'the most recent entry survives');
    await fill(100);
    assert.ok(cache.bytes() <= 0.5 * budget, `sets under shrink stay within half: ${cache.bytes()}`);

    cache.onCacheMode('evict');
    assert.ok(cache.bytes() <= 0.25 * budget, `evict: ${cache.bytes()}`);
    assert.ok(cache.bytes() > 0);

    cache.onCacheMode('off');
    assert.equal(cache.bytes(), 0);
    await cache.set('gov', 'while-off', b('disk only'));
    assert.equal(memory.get('gov', 'while-off'), undefined);
    assert.equal(cache.bytes(), 0);
    assert.equal(sqlite.get('gov', 'while-off')?.value.toString(), 'disk only');
    // Reading it back is a SQLite hit that is not promoted into memory.
    assert.equal((await cache.get('gov', 'while-off'))?.toString(), 'disk only');
    assert.equal(cache.bytes(), 0);

    cache.onCacheMode('normal');
    await cache.set('gov', 'after', b('kept again'));
    assert.equal(memory.get('gov', 'after')?.value.toString(), 'kept again');
    await fill(300);
    assert.ok(cache.bytes() > 0.9 * budget, `full again: ${cache.bytes()}`);

    cache.reclaim();
    assert.ok(cache.bytes() <= 0.5 * budget, `reclaim: ${cache.bytes()}`);
    assert.ok(cache.bytes() > 0);
    // Every set also reached SQLite, whatever memory did.
    assert.equal(sqlite.keys('gov').length, 700 + 2);
  });
});

/**
 * A metering wrapper, as a user would write one: it forwards every method and offers a capability
 * exactly when the tier it wraps does. It is not an instance of MemoryTier or SqliteTier.
 */
class MeteredTier implements CacheTier {
  readonly calls = new Map<string, number>();
  readonly name: CacheTier['name'];
  bytes?: () => number;
  onCacheMode?: (mode: CacheMode) => void;
  reclaim?: () => void;
  addCacheCounters?: (namespace: string, counters: Partial<CacheCounters>) => void;
  cacheCounters?: () => Record<string, CacheCounters>;
  constructor(private readonly inner: CacheTier) {
    this.name = inner.name;
    if (inner.bytes) this.bytes = () => this.#count('bytes', () => inner.bytes!());
    if (inner.onCacheMode) this.onCacheMode = (mode) => this.#count('onCacheMode', () => inner.onCacheMode!(mode));
    if (inner.reclaim) this.reclaim = () => this.#count('reclaim', () => inner.reclaim!());
    if (inner.addCacheCounters) this.addCacheCounters = (ns, c) => this.#count('addCacheCounters', () => inner.addCacheCounters!(ns, c));
    if (inner.cacheCounters) this.cacheCounters = () => this.#count('cacheCounters', () => inner.cacheCounters!());
  }
  #count<T>(what: string, f: () => T): T {
    this.calls.set(what, (this.calls.get(what) ?? 0) + 1);
    return f();
  }
  get(ns: string, key: string) {
    return this.#count('get', () => this.inner.get(ns, key));
  }
  set(ns: string, key: string, value: Buffer, expiresAt: number) {
    return this.#count('set', () => this.inner.set(ns, key, value, expiresAt));
  }
  delete(ns: string, key: string) {
    return this.inner.delete(ns, key);
  }
  keys(ns: string) {
    return this.inner.keys(ns);
  }
  clear(ns?: string) {
    return this.inner.clear(ns);
  }
  prune() {
    return this.inner.prune();
  }
  stats() {
    return this.inner.stats();
  }
  flush() {
    return this.inner.flush();
  }
  close() {
    return this.inner.close();
  }
}

describe('tiers by what they can do, not their class', () => {
  test('wrapped memory and SQLite tiers keep the governor hooks and the persisted counters', async (t) => {
    const budget = MiB;
    const file = dbFile();
    const memory = new MemoryTier({ maxBytes: budget });
    const sqlite = new SqliteTier({ db: file, maxBytes: 256 * MiB });
    const [wm, ws] = [new MeteredTier(memory), new MeteredTier(sqlite)];
    assert.ok(!(wm instanceof MemoryTier) && !(ws instanceof SqliteTier));
    assert.equal(ws.bytes, undefined, 'SQLite holds none of Guild\'s memory: the wrapper offers no bytes()');
    const cache = new LayeredCache({ tiers: [wm, ws] });
    t.after(() => cache.close());

    const value = Buffer.alloc(4 * KiB, 7);
    for (let i = 0; i < 300; i++) await cache.set('gov', `k${i}`, value);
    assert.ok(cache.bytes() > 0.9 * budget && cache.bytes() <= budget, `filled to ${cache.bytes()}`);
    assert.equal(cache.bytes(), memory.bytes());

    cache.onCacheMode('shrink');
    assert.ok(cache.bytes() <= 0.5 * budget && cache.bytes() > 0, `shrink: ${cache.bytes()}`);
    cache.onCacheMode('off');
    assert.equal(cache.bytes(), 0);
    await cache.set('gov', 'while-off', b('disk only'));
    assert.equal(memory.get('gov', 'while-off'), undefined, 'off reached the wrapped memory tier');
    cache.onCacheMode('normal');
    for (let i = 0; i < 300; i++) await cache.set('gov', `n${i}`, value);
    cache.reclaim();
    assert.ok(cache.bytes() <= 0.5 * budget && cache.bytes() > 0, `reclaim: ${cache.bytes()}`);
    assert.deepEqual([wm.calls.get('onCacheMode'), wm.calls.get('reclaim')], [3, 1]);

    await cache.get('gov', 'k0'); // a SQLite hit (memory gave it back)
    await cache.get('gov', 'absent'); // a miss
    await cache.flush();
    assert.deepEqual({ hits: sqlite.cacheCounters().gov?.hits, misses: sqlite.cacheCounters().gov?.misses }, { hits: 1, misses: 1 }, 'counters reached SQLite through the wrapper');
    assert.equal(cache.persistedCounters().gov?.hits, 1);
    assert.ok((ws.calls.get('addCacheCounters') ?? 0) >= 1);
  });

  test('a tier that offers no capability takes no part in them, and the cache still works over it', async (t) => {
    const map = new Map<string, { value: Buffer; expiresAt: number }>();
    // A fourth kind of tier, reduced to the required methods (it stores under the name `redis`).
    const bare: CacheTier = {
      name: 'redis',
      get: (ns, key) => map.get(`${ns}:${key}`),
      set: (ns, key, value, expiresAt) => void map.set(`${ns}:${key}`, { value, expiresAt }),
      delete: (ns, key) => map.delete(`${ns}:${key}`),
      keys: () => [...map.keys()],
      clear: () => map.size,
      prune: () => ({ expired: 0, evicted: 0 }),
      stats: () => ({ tier: 'redis', capBytes: null, namespaces: {} }),
      flush: () => undefined,
      close: () => undefined,
    };
    const cache = new LayeredCache({ tiers: [bare] });
    t.after(() => cache.close());
    await cache.set('x', 'k', b('v'));
    cache.onCacheMode('off');
    cache.reclaim();
    assert.equal(cache.bytes(), 0);
    assert.deepEqual(cache.persistedCounters(), {});
    assert.equal((await cache.get('x', 'k'))?.toString(), 'v', 'off concerns memory holders only');
  });
});

describe('stats', () => {
  test('per-namespace counters are exactly what happened', async (t) => {
    const { cache, sqlite } = layered(t);
    const slow = async () => {
      await sleep(30);
      return b('computed');
    };
    assert.equal(await cache.get('st', 'a'), undefined); // miss
    assert.equal((await cache.getOrCompute('st', 'a', slow)).toString(), 'computed'); // miss + compute
    assert.equal((await cache.get('st', 'a'))?.toString(), 'computed'); // memory hit
    sqlite.set('st', 'b', b('disk'), 0);
    assert.equal((await cache.get('st', 'b'))?.toString(), 'disk'); // sqlite hit, promoted
    assert.equal((await cache.get('st', 'b'))?.toString(), 'disk'); // memory hit
    assert.equal((await cache.getOrCompute('st', 'a', () => assert.fail('cached'))).toString(), 'computed'); // memory hit
    await cache.get('st', 'a', { count: false }); // not counted
    await cache.get('other', 'x'); // another namespace's miss

    const s = (await cache.stats()).namespaces;
    const st = s.st!;
    assert.equal(st.hits, 4);
    assert.equal(st.misses, 2);
    assert.equal(st.hit_rate, 4 / 6);
    assert.deepEqual(st.hits_by_tier, { memory: 3, sqlite: 1, redis: 0 });
    assert.equal(st.computes, 1);
    assert.equal(st.stale, 0);
    assert.ok(st.mean_miss_penalty_ms !== null && st.mean_miss_penalty_ms >= 25 && st.mean_miss_penalty_ms < 30_000, `penalty ${st.mean_miss_penalty_ms}`);
    assert.deepEqual(
      { hits: s.other!.hits, misses: s.other!.misses, hit_rate: s.other!.hit_rate, computes: s.other!.computes, penalty: s.other!.mean_miss_penalty_ms },
      { hits: 0, misses: 1, hit_rate: 0, computes: 0, penalty: null },
    );
  });

  test('counters persisted in SQLite add up across two caches over the same file', async (t) => {
    const file = dbFile();
    const compute = async () => {
      await sleep(20);
      return b('v');
    };

    const one = layered(t, { file });
    await one.cache.get('st', 'x'); // miss
    await one.cache.getOrCompute('st', 'x', compute); // miss + compute
    await one.cache.get('st', 'x'); // memory hit
    await one.cache.close();

    const two = layered(t, { file });
    await two.cache.get('st', 'x'); // SQLite hit (memory is new)
    await two.cache.get('st', 'y'); // miss
    await two.cache.getOrCompute('st', 'y', compute); // miss + compute
    await two.cache.flush();

    const c = two.sqlite.cacheCounters().st!;
    assert.equal(c.hits, 2);
    assert.equal(c.misses, 4);
    assert.equal(c.computes, 2);
    assert.ok(c.compute_ms >= 35, `compute_ms ${c.compute_ms}`);
    // The SQLite tier's own counters add up too: one reaches it only on a memory miss.
    const tier = two.sqlite.stats().namespaces.st!;
    assert.equal(tier.hits, 1);
    assert.equal(tier.misses, 4);
    // This process's view is its own.
    assert.equal((await two.cache.stats()).namespaces.st!.hits, 1);
  });
});

describe('writes that memory cannot hold', () => {
  test(
    'a write-through too large for memory must not leave the older value readable in memory',
    async (t) => {
      const { cache, sqlite } = layered(t, { memoryBytes: 64 * KiB });
      await cache.set('ns', 'k', b('old'));
      const big = Buffer.alloc(100 * KiB, 2);
      await cache.set('ns', 'k', big);
      assert.ok(sqlite.get('ns', 'k')?.value.equals(big), 'SQLite has the new value');
      assert.ok((await cache.get('ns', 'k'))?.equals(big), 'the cache must not serve the old value');
    },
  );
});
