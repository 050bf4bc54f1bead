/**
 * Compressed storage of cache entries (cache/compression.ts, through the layered cache) over the
 * real tiers: SQLite on a temporary file and Redis at 127.0.0.1:6379 under a key prefix unique to
 * this run, removed afterwards (the Redis tests are skipped when it is not reachable).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { after, describe, test, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import type { Redis } from 'ioredis';
import { cacheStats } from '../src/cache/admin.js';
import { decodeStored, encodeStored, FRAME_HEADER } from '../src/cache/compression.js';
import { LayeredCache } from '../src/cache/layered-cache.js';
import { MemoryTier } from '../src/cache/memory-tier.js';
import { openCache } from '../src/cache/open.js';
import { connectRedis, escapeGlob, RedisTier } from '../src/cache/redis-tier.js';
import { SqliteTier } from '../src/cache/sqlite-tier.js';
import type { CacheTier } from '../src/cache/tier.js';
import { formatCacheStats } from '../src/cli/cache-format.js';
import { HAS_ZSTD, type CompressionOptions } from '../src/config/compression.js';
import { DEFAULTS } from '../src/config/defaults.js';
import { loadConfig } from '../src/config/load-config.js';
import { GuildError } from '../src/errors.js';
import { openDatabase } from '../src/store/db.js';
import { MIGRATIONS } from '../src/store/migrations.js';
import { ROOT, tempDir, writeWorkflow } from './helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const BASE = `guild-test:${process.pid}:${Date.now()}:compress:`;
const ON: CompressionOptions = DEFAULTS.cache.compression;

let client: Redis | undefined;
let unreachable = '';
try {
  client = await connectRedis('redis://127.0.0.1:6379');
} catch (err) {
  const cause = err instanceof Error ? (err.cause ?? err) : err;
  unreachable = cause instanceof Error ? cause.message : String(cause);
}

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  if (!client) return;
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${escapeGlob(BASE)}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await client.unlink(...keys);
  } while (cursor !== '0');
  await client.quit();
});

function redis(t: TestContext): Redis | undefined {
  if (!client) t.skip(`Redis not reachable at 127.0.0.1:6379: ${unreachable}`);
  return client;
}

const dir = (): string => {
  const d = tempDir('guild-compress-');
  dirs.push(d);
  return d;
};
const sqliteFile = (): string => join(dir(), 'cache.db');

let prefixes = 0;
const redisTier = (c: Redis, prefix = `${BASE}${++prefixes}:`): RedisTier => new RedisTier({ client: c, prefix });

const cacheOf = (tiers: CacheTier[], compression: CompressionOptions | null = ON): LayeredCache => new LayeredCache({ tiers, compression });

/**
 * 5 MiB of what a long build prints: source it echoes and log lines, repeated (a watch loop, a
 * retried step). The block repeats every ~150 KiB, within brotli-1's window; 5 MiB of text that
 * never repeats stores at 0.2–0.26 of its size (bench/cache-compression.ts), about 1.1–1.3 MiB.
 */
const COMPRESSIBLE: Buffer = (() => {
  const files = readdirSync(join(ROOT, 'src', 'cache')).filter((f) => f.endsWith('.ts')).slice(0, 4);
  const source = Buffer.concat(files.map((f) => readFileSync(join(ROOT, 'src', 'cache', f)))).subarray(0, 96 * KiB);
  const lines: string[] = [];
  for (let i = 0; lines.join('').length < 48 * KiB; i++) {
    lines.push(`2025-01-0${(i % 9) + 1}T12:${String(i % 60).padStart(2, '0')}:07.${i % 1000}Z INFO  task=build-${i % 37} pid=${4000 + (i % 211)} rss=${(i * 7919) % 500} MB msg="compiled module ${i}"\n`);
  }
  const unit = Buffer.concat([source, Buffer.from(lines.join(''))]);
  const out = Buffer.allocUnsafe(5 * MiB);
  for (let off = 0; off < out.length; off += unit.length) unit.copy(out, off, 0, Math.min(unit.length, out.length - off));
  return out;
})();

describe('a large compressible output', () => {
  test('5 MiB of source and logs is stored in well under 1 MiB in SQLite and restored byte for byte by another cache', async () => {
    const file = sqliteFile();
    const writer = cacheOf([new SqliteTier({ db: file, maxBytes: 1024 * MiB })]);
    await writer.set('tasks', 'k', COMPRESSIBLE);
    await writer.close();

    const sqlite = new SqliteTier({ db: file, maxBytes: 1024 * MiB });
    const stored = sqlite.get('tasks', 'k')!.value;
    assert.ok(stored.length < MiB / 2, `stored ${stored.length} bytes`);
    const stats = sqlite.stats().namespaces.tasks!;
    assert.equal(stats.bytes, stored.length);
    assert.equal(stats.original_bytes, 5 * MiB);
    // A reader with compression off still reads frames: the codec is in the stored bytes.
    const reader = cacheOf([sqlite], null);
    const got = await reader.get('tasks', 'k');
    assert.ok(got !== undefined && got.equals(COMPRESSIBLE));
    await reader.close();
  });

  test('the same 5 MiB through Redis: well under 1 MiB in Redis, restored byte for byte', async (t) => {
    const c = redis(t);
    if (!c) return;
    const prefix = `${BASE}big:`;
    const writer = cacheOf([redisTier(c, prefix)]);
    await writer.set('tasks', 'k', COMPRESSIBLE);
    assert.ok((await c.strlen(`${prefix}tasks:k`)) < MiB / 2);
    const tier = redisTier(c, prefix);
    const stats = (await tier.stats()).namespaces.tasks!;
    assert.ok(stats.bytes! < MiB / 2);
    assert.equal(stats.original_bytes, 5 * MiB);
    const got = await cacheOf([tier]).get('tasks', 'k');
    assert.ok(got !== undefined && got.equals(COMPRESSIBLE));
  });
});

describe('incompressible values', () => {
  test('random bytes are stored once, as they are: not grown, not framed', async () => {
    const sqlite = new SqliteTier({ db: sqliteFile(), maxBytes: 64 * MiB });
    const cache = cacheOf([sqlite]);
    for (const size of [4 * KiB, 256 * KiB, 5 * MiB]) {
      const value = randomBytes(size);
      value[0] = 0; // not the frame's magic (that case is below)
      await cache.set('ns', `r${size}`, value);
      const stored = sqlite.get('ns', `r${size}`)!.value;
      assert.ok(stored.length <= size + FRAME_HEADER);
      assert.ok(stored.equals(value), 'stored as is');
      assert.ok((await cache.get('ns', `r${size}`))!.equals(value));
    }
    await cache.close();
  });

  test('a value that begins with the magic is escaped (header only), and one below the threshold is stored as is', async () => {
    const memory = new MemoryTier({ maxBytes: 16 * MiB });
    const cache = cacheOf([memory]);
    const magic = Buffer.concat([Buffer.from([0xc7, 0x47, 0x7a, 0x01, 0x03]), randomBytes(64)]);
    await cache.set('ns', 'magic', magic);
    assert.equal(memory.get('ns', 'magic')!.value.length, magic.length + FRAME_HEADER);
    assert.ok((await cache.get('ns', 'magic'))!.equals(magic));
    const small = Buffer.from('x'.repeat(ON.thresholdBytes - 1));
    await cache.set('ns', 'small', small);
    assert.equal(memory.get('ns', 'small')!.value, small, 'the same buffer: nothing was done to it');
  });
});

describe('one tier reads what another wrote', () => {
  test('bytes written compressed through SQLite, copied raw into Redis and into memory, read by caches of one tier each', async (t) => {
    const c = redis(t);
    const sqlite = new SqliteTier({ db: sqliteFile(), maxBytes: 64 * MiB });
    const value = COMPRESSIBLE.subarray(0, 300 * KiB);
    await cacheOf([sqlite], { thresholdBytes: 4 * KiB, codec: 'gzip', level: 1 }).set('ns', 'k', value);
    const stored = sqlite.get('ns', 'k')!.value;
    assert.ok(stored.length < value.length / 2);

    const memory = new MemoryTier({ maxBytes: 16 * MiB });
    memory.set('ns', 'k', stored, 0);
    // The reader's own codec (brotli) does not matter: the frame names gzip.
    assert.ok((await cacheOf([memory]).get('ns', 'k'))!.equals(value));
    if (!c) return;
    const r = redisTier(c);
    await r.set('ns', 'k', stored, 0);
    assert.ok((await cacheOf([r], null).get('ns', 'k'))!.equals(value));
  });

  test('the memory tier holds values uncompressed, written or promoted; the persistent tiers hold the frame', async () => {
    const memory = new MemoryTier({ maxBytes: 16 * MiB });
    const sqlite = new SqliteTier({ db: sqliteFile(), maxBytes: 64 * MiB });
    const value = COMPRESSIBLE.subarray(0, 64 * KiB);
    await cacheOf([sqlite]).set('ns', 'k', value);
    const both = cacheOf([memory, sqlite]);
    assert.ok((await both.get('ns', 'k'))!.equals(value));
    assert.ok(memory.get('ns', 'k')!.value.equals(value), 'promoted decoded');
    assert.ok(sqlite.get('ns', 'k')!.value.length < value.length / 2);
    await both.set('ns', 'k2', value);
    assert.ok(memory.get('ns', 'k2')!.value.equals(value), 'written decoded');
    // A value that looks like a frame stays escaped in memory too.
    const magic = Buffer.concat([Buffer.from([0xc7, 0x47, 0x7a, 0x01, 0x00]), Buffer.alloc(6)]);
    await both.set('ns', 'm', magic);
    assert.ok((await both.get('ns', 'm'))!.equals(magic));
  });
});

describe('corrupt frames', () => {
  test('a truncated or damaged compressed entry is a miss, counted corrupt and removed, never a crash; a good copy below still hits', async () => {
    const memory = new MemoryTier({ maxBytes: 16 * MiB });
    const sqlite = new SqliteTier({ db: sqliteFile(), maxBytes: 64 * MiB });
    const cache = cacheOf([memory, sqlite]);
    const value = COMPRESSIBLE.subarray(0, 64 * KiB);
    await cache.set('ns', 'k', value);
    sqlite.flush();
    const stored = sqlite.get('ns', 'k')!.value;

    // A truncated frame in memory (as a wrapped or future tier might hold), intact in SQLite: memory misses (corrupt), SQLite answers.
    memory.set('ns', 'k', stored.subarray(0, stored.length - 100), 0);
    assert.ok((await cache.get('ns', 'k'))!.equals(value));
    let s = (await cache.stats()).namespaces.ns!;
    assert.equal(s.corrupt, 1);
    assert.equal(s.hits_by_tier.sqlite, 1);

    // Damaged in every tier (the SQLite checksum covers the stored bytes, so it passes there; the
    // frame does not decode): a miss, and gone from both.
    const damaged = Buffer.from(stored);
    damaged[FRAME_HEADER + 10]! ^= 0xff;
    damaged[FRAME_HEADER + 11]! ^= 0xff;
    memory.set('ns', 'k', damaged, 0);
    sqlite.set('ns', 'k', damaged, 0);
    assert.equal(await cache.get('ns', 'k'), undefined);
    s = (await cache.stats()).namespaces.ns!;
    assert.equal(s.corrupt, 3);
    assert.equal(memory.get('ns', 'k'), undefined);
    sqlite.flush();
    assert.equal(sqlite.get('ns', 'k'), undefined);
    // The count adds up across processes with the others.
    assert.equal(cache.persistedCounters().ns!.corrupt, 3);
    await cache.close();
  });

  test('a header claiming a huge original, or one too small for its payload, is a miss without allocating beyond the bound', async () => {
    const value = COMPRESSIBLE.subarray(0, 256 * KiB);
    const stored = await encodeStored(value, ON);
    const huge = Buffer.from(stored);
    huge.writeUIntBE(2 ** 47, 5, 6); // 128 TiB
    const before = process.memoryUsage().arrayBuffers;
    assert.equal(await decodeStored(huge), 'corrupt');
    // Under the bound but far above the truth: the codec stops at the payload's real end.
    const over = Buffer.from(stored);
    over.writeUIntBE(512 * MiB, 5, 6);
    assert.equal(await decodeStored(over), 'corrupt');
    assert.ok(process.memoryUsage().arrayBuffers - before < 64 * MiB);
    // A payload that expands beyond what the header says: stopped at the declared length.
    const under = Buffer.from(stored);
    under.writeUIntBE(1000, 5, 6);
    assert.equal(await decodeStored(under), 'corrupt');
    // A frame too short for its header, an unknown codec, a newer frame version.
    assert.equal(await decodeStored(stored.subarray(0, 7)), 'corrupt');
    const codec = Buffer.from(stored);
    codec[4] = 99;
    assert.equal(await decodeStored(codec), 'corrupt');
    const newer = Buffer.from(stored);
    newer[3] = 2;
    assert.equal(await decodeStored(newer), 'unreadable');
    assert.ok(((await decodeStored(stored)) as Buffer).equals(value));
  });
});

describe('entries written before compression', () => {
  test('a store at schema version 9 migrates; its entries read as they are, and count their size as original', async () => {
    const file = sqliteFile();
    const old = new Database(file);
    for (let v = 0; v < 9; v++) old.exec(MIGRATIONS[v]!);
    old.pragma('user_version = 9');
    const legacy = Buffer.from(JSON.stringify({ route: 'x', text: 'y'.repeat(8 * KiB) })); // JSON, above the threshold
    const swr = Buffer.alloc(8 + 5000, 0x61); // a stale-while-revalidate value: float64 fresh-until, then the value
    swr.writeDoubleBE(Date.now() + 3_600_000, 0);
    const insert = old.prepare('INSERT INTO cache_entries (ns, key, value, size, checksum, created_at, expires_at, accessed_at) VALUES (?, ?, ?, ?, ?, 0, 0, 0)');
    insert.run('routing', 'k', legacy, legacy.length, crc32(legacy));
    insert.run('swr', 'k', swr, swr.length, crc32(swr));
    old.close();

    const db = openDatabase(file);
    assert.equal(db.pragma('user_version', { simple: true }), MIGRATIONS.length);
    const sqlite = new SqliteTier({ db, maxBytes: 64 * MiB });
    const cache = new LayeredCache({
      tiers: [sqlite],
      compression: ON,
      namespaces: { swr: { ttlMs: 60_000, maxEntries: null, staleWhileRevalidateMs: 60_000, tiers: ['sqlite'] } },
    });
    assert.ok((await cache.get('routing', 'k'))!.equals(legacy));
    assert.ok((await cache.get('swr', 'k'))!.equals(swr.subarray(8)));
    const stats = sqlite.stats().namespaces;
    assert.equal(stats.routing!.original_bytes, legacy.length);
    assert.equal(stats.routing!.bytes, legacy.length);
    assert.equal((await cache.stats()).namespaces.routing!.corrupt, 0);
    // Written again, the same key is compressed.
    await cache.set('routing', 'k', legacy);
    sqlite.flush();
    assert.ok(sqlite.get('routing', 'k')!.value.length < legacy.length / 4);
    assert.ok((await cache.get('routing', 'k'))!.equals(legacy));
    await cache.close();
    db.close();
  });

  test('a Redis entry written before (a bare value after the expiry header) reads as it is', async (t) => {
    const c = redis(t);
    if (!c) return;
    const tier = redisTier(c);
    const legacy = Buffer.from('z'.repeat(10 * KiB));
    await tier.set('ns', 'k', legacy, 0);
    assert.ok((await cacheOf([tier]).get('ns', 'k'))!.equals(legacy));
    assert.equal((await tier.stats()).namespaces.ns!.original_bytes, legacy.length);
  });
});

describe('guild cache stats', () => {
  test('reports stored and original bytes per tier and namespace, and the codec in force', async () => {
    const d = dir();
    mkdirSync(join(d, '.guild'), { recursive: true });
    const file = writeWorkflow('agents: { t: {} }\ntasks:\n  - { id: a, agent: t, run: "true" }\ncache: { context: none, compression: { threshold: 8KB, codec: deflate } }\n', d);
    const config = loadConfig(file);
    assert.deepEqual(config.cache.compression, { thresholdBytes: 8 * KiB, codec: 'deflate', level: DEFAULTS.cache.compressionLevels.deflate });
    const cache = await openCache(config.cache, d);
    await cache.set('tasks', 'big', COMPRESSIBLE.subarray(0, MiB));
    await cache.set('tasks', 'small', Buffer.from('tiny'));
    await cache.close();

    const doc = await cacheStats(file);
    const sqlite = doc.tiers.find((t) => t.tier === 'sqlite')!;
    assert.equal(sqlite.original_bytes, MiB + 4);
    assert.ok(sqlite.bytes! < MiB / 2);
    const ns = doc.namespaces.tasks!;
    assert.equal(ns.tiers.sqlite!.original_bytes, MiB + 4);
    assert.equal(ns.tiers.sqlite!.bytes, sqlite.bytes);
    assert.equal(ns.corrupt_frames, 0);
    assert.deepEqual(doc.compression, { codec: 'deflate', level: 1, threshold_bytes: 8 * KiB });
    const text = formatCacheStats(doc);
    assert.match(text, /sqlite: 2 entries, \d+ KB of 1\.00 GB \(1\.0 MB before compression, \d+%\)/);
    assert.match(text, /compression: deflate level 1 from 8 KB/);
    assert.match(text, /ORIGINAL/);
  });
});

describe('configuration', () => {
  const load = (compression: string): ReturnType<typeof loadConfig> =>
    loadConfig(writeWorkflow(`agents: { t: {} }\ntasks:\n  - { id: a, agent: t, run: "true" }\ncache: { context: none, compression: ${compression} }\n`, dir()));

  test('defaults, off, and a codec alone taking its own level', () => {
    assert.deepEqual(loadConfig(writeWorkflow('agents: { t: {} }\ntasks:\n  - { id: a, agent: t, run: "true" }\n', dir())).cache.compression, DEFAULTS.cache.compression);
    assert.equal(load('off').cache.compression, null);
    assert.equal(load('false').cache.compression, null);
    assert.deepEqual(load('{ codec: gzip }').cache.compression, { thresholdBytes: 4096, codec: 'gzip', level: DEFAULTS.cache.compressionLevels.gzip });
    assert.deepEqual(load('{ threshold: 64KiB, level: 3 }').cache.compression, { thresholdBytes: 64 * KiB, codec: 'brotli', level: 3 });
  });

  test('a level out of the codec range, an unknown codec, or zstd where Node lacks it is refused, naming the key', () => {
    const refused = (compression: string, re: RegExp): void =>
      assert.throws(() => load(compression), (e: unknown) => e instanceof GuildError && re.test(e.message), compression);
    refused('{ codec: gzip, level: 12 }', /cache\.compression\.level: Expected a gzip level from 1 to 9, got 12/);
    refused('{ codec: lz4 }', /cache\.compression/);
    refused('{ threshold: lots }', /cache\.compression/);
    if (HAS_ZSTD) assert.equal(load('{ codec: zstd }').cache.compression!.codec, 'zstd');
    else refused('{ codec: zstd }', /cache\.compression\.codec: Expected a codec this Node\.js .* has: brotli, gzip, deflate/);
  });
});
