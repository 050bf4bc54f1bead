import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test, type TestContext } from 'node:test';
import type { Redis } from 'ioredis';
import { RedisLock } from '../src/cache/redis-lock.js';
import { connectRedis, escapeGlob, RedisTier } from '../src/cache/redis-tier.js';
import { GuildError } from '../src/errors.js';

// Redis-specific behaviour against the real server; the behaviour every tier shares is in
// cache-conformance.test.ts. Every key lives under BASE and is removed afterwards.
const URL = 'redis://127.0.0.1:6379';
const BASE = `guild-test:${process.pid}:${Date.now()}:`;
/** Nothing listens there: connections are refused at once. */
const CLOSED = 'redis://127.0.0.1:1';

let client: Redis | undefined;
let unreachable = '';
try {
  client = await connectRedis(URL);
} catch (err) {
  // connectRedis's message names the URL already; keep only the reason (e.g. ECONNREFUSED).
  const cause = err instanceof Error ? (err.cause ?? err) : err;
  unreachable = cause instanceof Error ? cause.message : String(cause);
}

after(async () => {
  if (!client) return;
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${escapeGlob(BASE)}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await client.unlink(...keys);
  } while (cursor !== '0');
  await client.quit();
});

/** The shared client, or undefined after marking the test skipped. */
function redis(t: TestContext): Redis | undefined {
  if (!client) t.skip(`Redis not reachable at 127.0.0.1:6379: ${unreachable}`);
  return client;
}

let prefixes = 0;
/** A tier on the shared client under a fresh prefix below BASE. */
function tierOn(c: Redis, options: { prefix?: string; now?: () => number } = {}): RedisTier {
  return new RedisTier({ client: c, prefix: options.prefix ?? `${BASE}${++prefixes}:`, ...(options.now ? { now: options.now } : {}) });
}

test('an entry round-trips with its expiry in an 8-byte header', async (t) => {
  const c = redis(t);
  if (!c) return;
  const prefix = `${BASE}header:`;
  const tier = tierOn(c, { prefix });
  const value = Buffer.from([0, 1, 2, 255, 254, 0x0a, 0x0d]);
  const expiresAt = Date.now() + 60_000;
  await tier.set('ns', 'k', value, expiresAt);
  const got = await tier.get('ns', 'k');
  assert.ok(got);
  assert.deepEqual(got.value, value);
  assert.equal(got.expiresAt, expiresAt);

  const raw = await c.getBuffer(`${prefix}ns:k`);
  assert.ok(raw);
  assert.equal(raw.length, 8 + value.length);
  assert.equal(raw.readDoubleBE(0), expiresAt);
  const pttl = await c.pttl(`${prefix}ns:k`);
  assert.ok(pttl > 55_000 && pttl <= 60_000, `PTTL ${pttl}`);

  await tier.set('ns', 'forever', Buffer.from('x'), 0);
  assert.equal((await tier.get('ns', 'forever'))?.expiresAt, 0);
  assert.equal(await c.pttl(`${prefix}ns:forever`), -1, 'no expiry set in Redis');
});

test('Redis drops an entry at its PX', async (t) => {
  const c = redis(t);
  if (!c) return;
  const tier = tierOn(c);
  await tier.set('ns', 'k', Buffer.from('v'), Date.now() + 150);
  assert.ok(await tier.get('ns', 'k'));
  await sleep(300);
  assert.equal(await tier.get('ns', 'k'), undefined);
  assert.deepEqual(await tier.keys('ns'), []);
});

test('entries expire by the injected clock', async (t) => {
  const c = redis(t);
  if (!c) return;
  let now = 1_000_000;
  const tier = tierOn(c, { now: () => now });
  await tier.set('ns', 'k', Buffer.from('v'), now + 10_000);
  await tier.set('ns', 'live', Buffer.from('v'), 0);
  assert.ok(await tier.get('ns', 'k'));
  now += 20_000;
  assert.equal(await tier.get('ns', 'k'), undefined);
  assert.deepEqual(await tier.keys('ns'), ['live']);
  const s = (await tier.stats()).namespaces.ns;
  assert.equal(s?.hits, 1);
  assert.equal(s?.misses, 1);
  assert.equal(s?.expired, 1);

  // Setting an already expired entry stores nothing and hides the older value.
  await tier.set('ns', 'live', Buffer.from('new'), now - 1);
  assert.equal(await tier.get('ns', 'live'), undefined);
});

test('keys and clear are scoped to a namespace', async (t) => {
  const c = redis(t);
  if (!c) return;
  const tier = tierOn(c);
  await tier.set('a', 'k1', Buffer.from('1'), 0);
  await tier.set('a', 'k:with:colons', Buffer.from('2'), 0);
  await tier.set('b', 'k3', Buffer.from('3'), 0);
  assert.deepEqual((await tier.keys('a')).sort(), ['k1', 'k:with:colons'].sort());
  assert.equal(await tier.clear('a'), 2);
  assert.deepEqual(await tier.keys('a'), []);
  assert.deepEqual(await tier.keys('b'), ['k3']);
  assert.equal(await tier.delete('b', 'k3'), true);
  assert.equal(await tier.delete('b', 'k3'), false);
});

test('keys and clear are scoped to the prefix, glob characters included', async (t) => {
  const c = redis(t);
  if (!c) return;
  // Unescaped, the pattern of `g[1]*:` would match `g1x:` too.
  const globby = tierOn(c, { prefix: `${BASE}g[1]*:` });
  const other = tierOn(c, { prefix: `${BASE}g1x:` });
  await globby.set('n', 'mine', Buffer.from('1'), 0);
  await other.set('n', 'theirs', Buffer.from('2'), 0);
  await other.set('m', 'theirs too', Buffer.from('3'), 0);
  assert.deepEqual(await globby.keys('n'), ['mine']);
  assert.equal(await globby.clear(), 1);
  assert.deepEqual(await other.keys('n'), ['theirs']);
  assert.equal(await other.clear(), 2);
});

test('many keys are cleared in batches and all counted', async (t) => {
  const c = redis(t);
  if (!c) return;
  const prefix = `${BASE}bulk:`;
  const tier = tierOn(c, { prefix });
  const pipe = c.pipeline();
  for (let i = 0; i < 1_234; i++) pipe.set(`${prefix}bulk:k${i}`, Buffer.alloc(9));
  await pipe.exec();
  assert.equal((await tier.keys('bulk')).length, 1_234);
  assert.equal(await tier.clear('bulk'), 1_234);
});

test('stats count entries and value bytes in Redis and hits and misses in this process', async (t) => {
  const c = redis(t);
  if (!c) return;
  const tier = tierOn(c);
  await tier.set('a', 'k1', Buffer.alloc(10), 0);
  await tier.set('a', 'k2', Buffer.alloc(5), Date.now() + 60_000);
  await tier.set('b', 'k', Buffer.alloc(1), 0);
  await tier.get('a', 'k1');
  await tier.get('a', 'nope');
  const stats = await tier.stats();
  assert.equal(stats.tier, 'redis');
  assert.equal(stats.capBytes, null);
  assert.deepEqual(stats.namespaces.a, { hits: 1, misses: 1, evictions: 0, expired: 0, corrupt: 0, entries: 2, bytes: 15, original_bytes: 15 });
  assert.deepEqual(stats.namespaces.b, { hits: 0, misses: 0, evictions: 0, expired: 0, corrupt: 0, entries: 1, bytes: 1, original_bytes: 1 });
  assert.deepEqual(tier.prune(), { expired: 0, evicted: 0 });
});

test('bytes this tier did not write are a corrupt miss', async (t) => {
  const c = redis(t);
  if (!c) return;
  const prefix = `${BASE}corrupt:`;
  const tier = tierOn(c, { prefix });
  await c.set(`${prefix}ns:short`, 'abc');
  assert.equal(await tier.get('ns', 'short'), undefined);
  assert.equal((await tier.stats()).namespaces.ns?.corrupt, 1);
});

test('an empty prefix or a client with keyPrefix is refused', async (t) => {
  assert.throws(() => new RedisTier({ prefix: '' }), (e: unknown) => e instanceof GuildError && e.code === 'CACHE');
  const c = redis(t);
  if (!c) return;
  const prefixed = c.duplicate({ keyPrefix: 'x:', lazyConnect: true });
  assert.throws(() => new RedisTier({ client: prefixed }), /keyPrefix/);
  prefixed.disconnect();
});

test('of two acquires of a lock, one gets the token and the other null', async (t) => {
  const c = redis(t);
  if (!c) return;
  const lock = new RedisLock({ client: c, prefix: `${BASE}lock:` });
  const [a, b] = await Promise.all([lock.acquire('one', 10_000), lock.acquire('one', 10_000)]);
  assert.equal([a, b].filter((x) => x === null).length, 1);
  assert.match((a ?? b)!, /^[0-9a-f]{32}$/);
  assert.equal(await lock.held('one'), true);
});

test('a lock is released only with its token', async (t) => {
  const c = redis(t);
  if (!c) return;
  const lock = new RedisLock({ client: c, prefix: `${BASE}lock:` });
  const token = await lock.acquire('two', 10_000);
  assert.ok(token);
  assert.equal(await lock.release('two', 'not-the-token'), false);
  assert.equal(await lock.held('two'), true);
  assert.equal(await lock.release('two', token), true);
  assert.equal(await lock.held('two'), false);
  assert.ok(await lock.acquire('two', 10_000), 'free again');
});

test('a lock expires by itself after its TTL', async (t) => {
  const c = redis(t);
  if (!c) return;
  const lock = new RedisLock({ client: c, prefix: `${BASE}lock:` });
  const token = await lock.acquire('three', 150);
  assert.ok(token);
  assert.equal(await lock.acquire('three', 150), null);
  await sleep(300);
  assert.equal(await lock.held('three'), false);
  const next = await lock.acquire('three', 10_000);
  assert.ok(next);
  // The first holder's late release must not free the new holder's lock.
  assert.equal(await lock.release('three', token), false);
  assert.equal(await lock.held('three'), true);
});

test('connectRedis to a closed port rejects quickly, naming the URL', async () => {
  const start = Date.now();
  await assert.rejects(connectRedis(CLOSED), (e: unknown) => {
    assert.ok(e instanceof GuildError);
    assert.equal(e.code, 'CACHE');
    assert.match(e.message, /redis:\/\/127\.0\.0\.1:1\b/);
    return true;
  });
  assert.ok(Date.now() - start < 3_000, `took ${Date.now() - start} ms`);
});

test('connectRedis masks the password in its error', async () => {
  await assert.rejects(connectRedis('redis://:hunter2@127.0.0.1:1'), (e: unknown) => {
    assert.ok(e instanceof GuildError);
    assert.doesNotMatch(e.message, /hunter2/);
    return true;
  });
});

test('a tier whose Redis is down fails fast with a CACHE error', async () => {
  const tier = new RedisTier({ url: CLOSED });
  const start = Date.now();
  try {
    await assert.rejects(tier.get('ns', 'k'), (e: unknown) => e instanceof GuildError && e.code === 'CACHE' && /127\.0\.0\.1:1\b/.test(e.message));
    assert.ok(Date.now() - start < 3_000, `took ${Date.now() - start} ms`);
  } finally {
    await tier.close();
  }
});
