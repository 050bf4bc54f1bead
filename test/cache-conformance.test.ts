/**
 * One suite, every tier: memory (lru-cache), SQLite (the embedded store) and Redis (the real
 * server at 127.0.0.1:6379, under a unique key prefix removed afterwards).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { MemoryTier } from '../src/cache/memory-tier.js';
import { RedisTier } from '../src/cache/redis-tier.js';
import { SqliteTier } from '../src/cache/sqlite-tier.js';
import type { CacheTier } from '../src/cache/tier.js';

interface Made {
  tier: CacheTier;
  clock: { t: number };
}
type Factory = (opts: { realClock?: boolean }) => Promise<Made>;

const dirs: string[] = [];
const redisClients: Redis[] = [];
const prefixes: string[] = [];

async function redisClient(): Promise<Redis | null> {
  const client = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
  try {
    await client.connect();
    await client.ping();
    redisClients.push(client);
    return client;
  } catch {
    client.disconnect();
    return null;
  }
}

after(async () => {
  for (const c of redisClients) {
    for (const p of prefixes) {
      let cursor = '0';
      do {
        const [next, keys] = await c.scan(cursor, 'MATCH', `${p}*`, 'COUNT', 500);
        cursor = next;
        if (keys.length > 0) await c.unlink(...keys);
      } while (cursor !== '0');
    }
    c.disconnect();
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const clockFn = (clock: { t: number }, real?: boolean) => (real ? Date.now : () => clock.t);

const factories: Record<string, Factory> = {
  memory: async ({ realClock }) => {
    const clock = { t: 1_000_000 };
    return { tier: new MemoryTier({ maxBytes: 64 * 1024 ** 2, now: clockFn(clock, realClock) }), clock };
  },
  sqlite: async ({ realClock }) => {
    const dir = mkdtempSync(join(tmpdir(), 'guild-conf-'));
    dirs.push(dir);
    const clock = { t: 1_000_000 };
    return { tier: new SqliteTier({ db: join(dir, 'guild.db'), maxBytes: 256 * 1024 ** 2, now: clockFn(clock, realClock) }), clock };
  },
  redis: async ({ realClock }) => {
    const client = await redisClient();
    if (!client) throw new SkipError('Redis not reachable at 127.0.0.1:6379');
    const prefix = `guild-test:${process.pid}:${Date.now()}:${Math.random().toString(36).slice(2)}:`;
    prefixes.push(prefix);
    const clock = { t: Date.now() };
    return { tier: new RedisTier({ client, prefix, now: clockFn(clock, realClock) }), clock };
  },
};

class SkipError extends Error {}

const b = (s: string): Buffer => Buffer.from(s);

for (const [name, make] of Object.entries(factories)) {
  describe(`cache tier conformance: ${name}`, () => {
    const withTier = (title: string, body: (m: Made) => Promise<void>, opts: { realClock?: boolean } = {}) =>
      test(title, async (t) => {
        let m: Made;
        try {
          m = await make(opts);
        } catch (e) {
          if (e instanceof SkipError) return t.skip(e.message);
          throw e;
        }
        try {
          await body(m);
        } finally {
          await m.tier.close();
        }
      });

    withTier('a missing key is a miss', async ({ tier }) => {
      assert.equal(await tier.get('ns', 'nope'), undefined);
    });

    withTier('bytes come back exactly, including zeros, empty values and large values', async ({ tier }) => {
      const binary = Buffer.from([0, 1, 2, 255, 0, 10, 13, 0]);
      const big = Buffer.alloc(2 * 1024 * 1024);
      for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
      await tier.set('ns', 'bin', binary, 0);
      await tier.set('ns', 'empty', Buffer.alloc(0), 0);
      await tier.set('ns', 'big', big, 0);
      await tier.set('ns', 'ключ/🔑 with spaces:and*glob?', b('unicode key'), 0);
      await tier.flush();
      assert.deepEqual((await tier.get('ns', 'bin'))?.value, binary);
      assert.equal((await tier.get('ns', 'empty'))?.value.length, 0);
      assert.ok((await tier.get('ns', 'big'))?.value.equals(big));
      assert.equal((await tier.get('ns', 'ключ/🔑 with spaces:and*glob?'))?.value.toString(), 'unicode key');
    });

    withTier('a set replaces; delete says whether something was there', async ({ tier }) => {
      await tier.set('ns', 'k', b('one'), 0);
      await tier.set('ns', 'k', b('two'), 0);
      assert.equal((await tier.get('ns', 'k'))?.value.toString(), 'two');
      assert.equal(await tier.delete('ns', 'k'), true);
      assert.equal(await tier.delete('ns', 'k'), false);
      assert.equal(await tier.get('ns', 'k'), undefined);
    });

    withTier('expiry follows the injected clock, and expiresAt survives the round trip', async ({ tier, clock }) => {
      const at = clock.t + 60_000;
      await tier.set('ns', 'short', b('v'), at);
      await tier.set('ns', 'forever', b('w'), 0);
      await tier.flush();
      assert.equal((await tier.get('ns', 'short'))?.expiresAt, at);
      assert.equal((await tier.get('ns', 'forever'))?.expiresAt, 0);
      clock.t += 60_001;
      assert.equal(await tier.get('ns', 'short'), undefined);
      assert.equal((await tier.get('ns', 'forever'))?.value.toString(), 'w');
      assert.deepEqual(await tier.keys('ns'), ['forever']);
    });

    withTier(
      'entries expire for real',
      async ({ tier }) => {
        await tier.set('ns', 'k', b('v'), Date.now() + 150);
        await tier.flush();
        assert.equal((await tier.get('ns', 'k'))?.value.toString(), 'v');
        await sleep(300);
        assert.equal(await tier.get('ns', 'k'), undefined);
      },
      { realClock: true },
    );

    withTier('namespaces are separate: keys, clear(namespace), clear()', async ({ tier }) => {
      await tier.set('a', 'k', b('in a'), 0);
      await tier.set('a', 'k2', b('in a'), 0);
      await tier.set('b', 'k', b('in b'), 0);
      await tier.flush();
      assert.equal((await tier.get('b', 'k'))?.value.toString(), 'in b');
      assert.deepEqual((await tier.keys('a')).sort(), ['k', 'k2']);
      assert.equal(await tier.clear('a'), 2);
      assert.equal(await tier.get('a', 'k'), undefined);
      assert.equal((await tier.get('b', 'k'))?.value.toString(), 'in b');
      assert.equal(await tier.clear(), 1);
      assert.equal(await tier.get('b', 'k'), undefined);
    });

    withTier('stats count hits, misses and entries per namespace', async ({ tier }) => {
      await tier.set('s', 'k', b('12345'), 0);
      await tier.flush();
      await tier.get('s', 'k');
      await tier.get('s', 'k');
      await tier.get('s', 'missing');
      const st = await tier.stats();
      assert.equal(st.tier, tier.name);
      const ns = st.namespaces.s!;
      assert.equal(ns.hits, 2);
      assert.equal(ns.misses, 1);
      assert.equal(ns.entries, 1);
      assert.ok(ns.bytes !== null && ns.bytes >= 5, `bytes ${ns.bytes}`);
    });

    withTier('prune leaves no expired entry behind', async ({ tier, clock }) => {
      await tier.set('p', 'old', b('x'), clock.t + 10);
      await tier.set('p', 'new', b('y'), clock.t + 1_000_000);
      await tier.flush();
      clock.t += 20;
      const r = await tier.prune();
      assert.ok(r.expired >= 0 && r.evicted >= 0);
      assert.deepEqual(await tier.keys('p'), ['new']);
    });
  });
}
