/**
 * Cache tiers against the libraries they are built on, in the same run (the machine is shared
 * and noisy, so only ratios within one run mean much):
 *
 *   1. L1 hit: `MemoryTier.get(ns, key)` on 10,000 present keys (256-byte Buffer values) against
 *      raw lru-cache `.get(key)` on the same keys. The fair peer is lru-cache configured as
 *      MemoryTier configures it internally (`maxSize` 256 MiB + a `sizeCalculation` of
 *      value + key + 64 bytes, no `max`) holding the Buffers directly; lru-cache with
 *      `{ max: 20000 }` (preallocated slots) is shown too. Interleaved rounds of 1,000,000 gets,
 *      the order rotated each round. Goal: Guild / lru-cache (maxSize) >= 0.7.
 *      For information: `LayeredCache.get` (async, awaited) on L1-resident keys, against an
 *      awaited async wrapper of `lru.get`.
 *   2. L2: `SqliteTier` on a temp file. Gets/s on present, committed keys (timed: the gets plus
 *      the flush() that commits the access times they buffered; the figure without that flush is
 *      shown too). Goal >= 100,000/s. Sets/s (timed: N new-key sets + the final flush()).
 *      Goal >= 50,000/s. Peers: raw better-sqlite3 with the same pragmas (WAL, synchronous=NORMAL)
 *      on (a) a minimal table `t (k TEXT PRIMARY KEY, value BLOB)` — `SELECT value FROM t WHERE
 *      k = ?`, `INSERT OR REPLACE` in one transaction — and (b) a copy of Guild's cache_entries
 *      schema (same columns, primary key and indexes), so schema cost and tier cost separate.
 *   3. L3: `RedisTier.get` against `client.getBuffer(key)` on the same client and the same present
 *      keys (values as the tier frames them), sequential (each awaited: latency-bound) and with
 *      100 in flight (100 concurrent workers on one connection). Unique key prefix, removed after.
 *      Skipped with a message when Redis is not reachable (REDIS_URL, default redis://127.0.0.1:6379).
 *
 * Run: npx tsc -p . && node dist/bench/cache-tiers.js [--rounds=7] [--gets=1000000] [--keys=10000]
 * Writes bench/results/cache-tiers.json.
 */
import Database from 'better-sqlite3';
import { LRUCache } from 'lru-cache';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Redis } from 'ioredis';
import { LayeredCache } from '../src/cache/layered-cache.js';
import { MemoryTier } from '../src/cache/memory-tier.js';
import { connectRedis, RedisTier } from '../src/cache/redis-tier.js';
import { SqliteTier } from '../src/cache/sqlite-tier.js';
import { argNumber, environment, fmtRatio, isMain, median, printTable, prng, shuffle, writeResult, gc } from './lib.js';
import { DEFAULTS } from '../src/config/defaults.js';
import { MIGRATIONS } from '../src/store/migrations.js';

const NS = 'bench';
const VALUE_BYTES = 256;
const MEMORY_BYTES = DEFAULTS.cache.memoryBytes;
const DISK_BYTES = DEFAULTS.cache.diskBytes;
/** MemoryTier's per-entry bookkeeping allowance (ENTRY_OVERHEAD in src/cache/memory-tier.ts). */
const ENTRY_OVERHEAD = 64;

const GOALS = { l1Ratio: 0.7, l2Gets: 100_000, l2Sets: 50_000 } as const;

const fmtOps = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '—');
const opsPerSec = (n: number, ms: number): number => (n / ms) * 1000;
/** Values read are summed here so the loops cannot be optimised away. */
let sink = 0;

/** Runs `fns` `rounds` times, rotating which goes first; returns each one's per-round ops/s. */
async function interleave(rounds: number, fns: Record<string, () => number | Promise<number>>): Promise<Record<string, number[]>> {
  const names = Object.keys(fns);
  const out: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (const n of names) await fns[n]!(); // warm-up (JIT), untimed
  for (let r = 0; r < rounds; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length]!);
    if (r % 2 === 1) order.reverse();
    for (const n of order) {
      gc?.();
      out[n]!.push(await fns[n]!());
    }
  }
  return out;
}

function makeKeys(n: number, prefix: string, seed: number): string[] {
  const keys: string[] = [];
  for (let i = 0; i < n; i++) keys.push(`${prefix}${i.toString(36).padStart(4, '0')}-${(i * 2654435761) >>> 0}`);
  return shuffle(keys, prng(seed));
}

// ---------------------------------------------------------------------------------------------
// L1

interface L1Result {
  gets: number;
  guild: number[];
  lruMaxSize: number[];
  lruMax: number[];
  guildMedian: number;
  lruMaxSizeMedian: number;
  lruMaxMedian: number;
  /** Guild / lru-cache configured like MemoryTier's own (maxSize + sizeCalculation): the goal's ratio. */
  ratio: number;
  /** Guild / lru-cache { max: 20000 }. */
  ratioMax: number;
  layered: { gets: number; guild: number[]; asyncLru: number[]; guildMedian: number; asyncLruMedian: number; ratio: number };
}

async function benchL1(keys: string[], values: Buffer[], gets: number, rounds: number): Promise<L1Result> {
  const k = keys.length;
  const tier = new MemoryTier({ maxBytes: MEMORY_BYTES });
  const lruSized = new LRUCache<string, Buffer>({ maxSize: MEMORY_BYTES, sizeCalculation: (v, key) => v.length + key.length + ENTRY_OVERHEAD });
  const lruMax = new LRUCache<string, Buffer>({ max: 20_000 });
  for (let i = 0; i < k; i++) {
    tier.set(NS, keys[i]!, values[i]!, 0);
    lruSized.set(keys[i]!, values[i]!);
    lruMax.set(keys[i]!, values[i]!);
  }
  // Read in a different (seeded) order than inserted.
  const order = shuffle([...keys], prng(7));

  // One function per runner keeps each call site monomorphic.
  const runGuild = (): number => {
    let s = 0;
    const t0 = performance.now();
    for (let i = 0; i < gets; i++) {
      const e = tier.get(NS, order[i % k]!);
      if (e !== undefined) s += e.value.length;
    }
    const ms = performance.now() - t0;
    if (s !== gets * VALUE_BYTES) throw new Error(`MemoryTier: ${s / VALUE_BYTES} of ${gets} gets hit`);
    sink += s;
    return opsPerSec(gets, ms);
  };
  const runLruSized = (): number => {
    let s = 0;
    const t0 = performance.now();
    for (let i = 0; i < gets; i++) {
      const v = lruSized.get(order[i % k]!);
      if (v !== undefined) s += v.length;
    }
    const ms = performance.now() - t0;
    if (s !== gets * VALUE_BYTES) throw new Error('lru-cache (maxSize): a get missed');
    sink += s;
    return opsPerSec(gets, ms);
  };
  const runLruMax = (): number => {
    let s = 0;
    const t0 = performance.now();
    for (let i = 0; i < gets; i++) {
      const v = lruMax.get(order[i % k]!);
      if (v !== undefined) s += v.length;
    }
    const ms = performance.now() - t0;
    if (s !== gets * VALUE_BYTES) throw new Error('lru-cache (max): a get missed');
    sink += s;
    return opsPerSec(gets, ms);
  };
  const r = await interleave(rounds, { guild: runGuild, lruMaxSize: runLruSized, lruMax: runLruMax });

  // LayeredCache.get on L1-resident keys (memory + SQLite tiers, as openCache builds them; the
  // SQLite tier is never reached on a hit). Peer: an awaited async function around lru.get.
  const dir = mkdtempSync(join(tmpdir(), 'guild-bench-l1-'));
  const memory = new MemoryTier({ maxBytes: MEMORY_BYTES });
  const sqlite = new SqliteTier({ db: join(dir, 'cache.db'), maxBytes: DISK_BYTES });
  const cache = new LayeredCache({ tiers: [memory, sqlite] });
  for (let i = 0; i < k; i++) memory.set(NS, keys[i]!, values[i]!, 0);
  const asyncGet = async (key: string): Promise<Buffer | undefined> => lruSized.get(key);
  const layeredGets = Math.max(k, Math.floor(gets / 5));
  const runLayered = async (): Promise<number> => {
    let s = 0;
    const t0 = performance.now();
    for (let i = 0; i < layeredGets; i++) {
      const v = await cache.get(NS, order[i % k]!);
      if (v !== undefined) s += v.length;
    }
    const ms = performance.now() - t0;
    if (s !== layeredGets * VALUE_BYTES) throw new Error('LayeredCache: a get missed L1');
    sink += s;
    return opsPerSec(layeredGets, ms);
  };
  const runAsyncLru = async (): Promise<number> => {
    let s = 0;
    const t0 = performance.now();
    for (let i = 0; i < layeredGets; i++) {
      const v = await asyncGet(order[i % k]!);
      if (v !== undefined) s += v.length;
    }
    const ms = performance.now() - t0;
    sink += s;
    return opsPerSec(layeredGets, ms);
  };
  const lr = await interleave(rounds, { layered: runLayered, asyncLru: runAsyncLru });
  await cache.close();
  rmSync(dir, { recursive: true, force: true });

  const gm = median(r.guild!);
  const sm = median(r.lruMaxSize!);
  const mm = median(r.lruMax!);
  const lm = median(lr.layered!);
  const am = median(lr.asyncLru!);
  return {
    gets,
    guild: r.guild!,
    lruMaxSize: r.lruMaxSize!,
    lruMax: r.lruMax!,
    guildMedian: gm,
    lruMaxSizeMedian: sm,
    lruMaxMedian: mm,
    ratio: gm / sm,
    ratioMax: gm / mm,
    layered: { gets: layeredGets, guild: lr.layered!, asyncLru: lr.asyncLru!, guildMedian: lm, asyncLruMedian: am, ratio: lm / am },
  };
}

// ---------------------------------------------------------------------------------------------
// L2

interface L2Result {
  getsPerRound: number;
  setsPerRound: number;
  /** Gets + the flush of the access times they buffered. */
  guildGets: number[];
  /** The get loop alone (access-time writes left pending). */
  guildGetsNoFlush: number[];
  rawGets: number[];
  schemaGets: number[];
  guildSets: number[];
  rawSets: number[];
  schemaSets: number[];
  medians: { guildGets: number; guildGetsNoFlush: number; rawGets: number; schemaGets: number; guildSets: number; rawSets: number; schemaSets: number };
  ratios: { getsVsRaw: number; getsVsSchema: number; setsVsRaw: number; setsVsSchema: number };
}

/** The cache table exactly as the store creates it (migration 3; its counters table comes along). */
const SCHEMA = MIGRATIONS[2]!;

function openRaw(file: string): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  return db;
}

async function benchL2(keys: string[], values: Buffer[], rounds: number, passes: number): Promise<L2Result> {
  const k = keys.length;
  const dir = mkdtempSync(join(tmpdir(), 'guild-bench-l2-'));
  try {
    const tier = new SqliteTier({ db: join(dir, 'guild.db'), maxBytes: DISK_BYTES });
    const raw = openRaw(join(dir, 'raw.db'));
    raw.exec('CREATE TABLE t (k TEXT PRIMARY KEY, value BLOB NOT NULL)');
    const rawGet = raw.prepare<[string], { value: Buffer }>('SELECT value FROM t WHERE k = ?');
    const rawPut = raw.prepare<[string, Buffer]>('INSERT OR REPLACE INTO t (k, value) VALUES (?, ?)');
    const rawBatch = raw.transaction((ks: readonly string[], vs: readonly Buffer[]) => {
      for (let i = 0; i < ks.length; i++) rawPut.run(ks[i]!, vs[i]!);
    });
    const same = openRaw(join(dir, 'schema.db'));
    same.exec(SCHEMA);
    const sameGet = same.prepare<[string, string], { value: Buffer; size: number; checksum: number; expires_at: number }>(
      'SELECT value, size, checksum, expires_at FROM cache_entries WHERE ns = ? AND key = ?',
    );
    const samePut = same.prepare<[string, string, Buffer, number, number, number, number, number]>(
      'INSERT OR REPLACE INTO cache_entries (ns, key, value, size, checksum, created_at, expires_at, accessed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const sameBatch = same.transaction((ks: readonly string[], vs: readonly Buffer[]) => {
      const now = Date.now();
      for (let i = 0; i < ks.length; i++) samePut.run(NS, ks[i]!, vs[i]!, vs[i]!.length, crc32(vs[i]!), now, 0, now);
    });

    // Present, committed keys.
    for (let i = 0; i < k; i++) tier.set(NS, keys[i]!, values[i]!, 0);
    tier.flush();
    rawBatch(keys, values);
    sameBatch(keys, values);

    const order = shuffle([...keys], prng(11));
    const getsN = k * passes;
    const noFlush: number[] = [];
    const runGuildGets = (): number => {
      let s = 0;
      const t0 = performance.now();
      for (let i = 0; i < getsN; i++) {
        const e = tier.get(NS, order[i % k]!);
        if (e !== undefined) s += e.value.length;
      }
      const t1 = performance.now();
      tier.flush(); // the accessed_at updates these reads buffered
      const t2 = performance.now();
      if (s !== getsN * VALUE_BYTES) throw new Error('SqliteTier: a get missed');
      sink += s;
      noFlush.push(opsPerSec(getsN, t1 - t0));
      return opsPerSec(getsN, t2 - t0);
    };
    const runRawGets = (): number => {
      let s = 0;
      const t0 = performance.now();
      for (let i = 0; i < getsN; i++) {
        const row = rawGet.get(order[i % k]!);
        if (row !== undefined) s += row.value.length;
      }
      const ms = performance.now() - t0;
      if (s !== getsN * VALUE_BYTES) throw new Error('raw SQLite: a get missed');
      sink += s;
      return opsPerSec(getsN, ms);
    };
    const runSchemaGets = (): number => {
      let s = 0;
      const t0 = performance.now();
      for (let i = 0; i < getsN; i++) {
        const row = sameGet.get(NS, order[i % k]!);
        if (row !== undefined) s += row.value.length;
      }
      const ms = performance.now() - t0;
      if (s !== getsN * VALUE_BYTES) throw new Error('raw SQLite (schema): a get missed');
      sink += s;
      return opsPerSec(getsN, ms);
    };
    const gets = await interleave(rounds, { guild: runGuildGets, raw: runRawGets, schema: runSchemaGets });
    noFlush.shift(); // the warm-up's

    // Sets of new keys (a set usually follows a miss): N sets + the final flush.
    let batchNo = 0;
    const freshKeys = (): string[] => keys.map((key) => `s${batchNo}-${key}`);
    const runGuildSets = (): number => {
      const ks = freshKeys();
      batchNo++;
      const t0 = performance.now();
      for (let i = 0; i < k; i++) tier.set(NS, ks[i]!, values[i]!, 0);
      tier.flush();
      return opsPerSec(k, performance.now() - t0);
    };
    const runRawSets = (): number => {
      const ks = freshKeys();
      batchNo++;
      const t0 = performance.now();
      rawBatch(ks, values);
      return opsPerSec(k, performance.now() - t0);
    };
    const runSchemaSets = (): number => {
      const ks = freshKeys();
      batchNo++;
      const t0 = performance.now();
      sameBatch(ks, values);
      return opsPerSec(k, performance.now() - t0);
    };
    const sets = await interleave(rounds, { guild: runGuildSets, raw: runRawSets, schema: runSchemaSets });

    tier.close();
    raw.close();
    same.close();

    const m = {
      guildGets: median(gets.guild!),
      guildGetsNoFlush: median(noFlush),
      rawGets: median(gets.raw!),
      schemaGets: median(gets.schema!),
      guildSets: median(sets.guild!),
      rawSets: median(sets.raw!),
      schemaSets: median(sets.schema!),
    };
    return {
      getsPerRound: getsN,
      setsPerRound: k,
      guildGets: gets.guild!,
      guildGetsNoFlush: noFlush,
      rawGets: gets.raw!,
      schemaGets: gets.schema!,
      guildSets: sets.guild!,
      rawSets: sets.raw!,
      schemaSets: sets.schema!,
      medians: m,
      ratios: { getsVsRaw: m.guildGets / m.rawGets, getsVsSchema: m.guildGets / m.schemaGets, setsVsRaw: m.guildSets / m.rawSets, setsVsSchema: m.guildSets / m.schemaSets },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// L3

interface L3Result {
  url: string;
  sequentialGets: number;
  concurrentGets: number;
  inFlight: number;
  guildSeq: number[];
  rawSeq: number[];
  guildConc: number[];
  rawConc: number[];
  medians: { guildSeq: number; rawSeq: number; guildConc: number; rawConc: number };
  ratios: { sequential: number; concurrent: number };
  keysRemoved: number;
}

async function benchL3(url: string, keys: string[], values: Buffer[], rounds: number, seqN: number, concN: number, inFlight: number): Promise<L3Result | string> {
  let client: Redis;
  try {
    client = await connectRedis(url, { timeoutMs: 1500 });
  } catch (e) {
    return (e as Error).message;
  }
  const prefix = `guild:bench:${process.pid}-${randomBytes(4).toString('hex')}:`;
  const tier = new RedisTier({ client, prefix });
  let result: L3Result | undefined;
  try {
    const k = keys.length;
    // Populate through the tier (framed values), 100 at a time.
    for (let i = 0; i < k; i += 100) await Promise.all(keys.slice(i, i + 100).map((key, j) => tier.set(NS, key, values[i + j]!, 0)));
    const order = shuffle([...keys], prng(13));
    const full = order.map((key) => `${prefix}${NS}:${key}`);

    const runGuildSeq = async (): Promise<number> => {
      let s = 0;
      const t0 = performance.now();
      for (let i = 0; i < seqN; i++) {
        const e = await tier.get(NS, order[i % k]!);
        if (e !== undefined) s += e.value.length;
      }
      const ms = performance.now() - t0;
      if (s !== seqN * VALUE_BYTES) throw new Error('RedisTier: a get missed');
      sink += s;
      return opsPerSec(seqN, ms);
    };
    const runRawSeq = async (): Promise<number> => {
      let s = 0;
      const t0 = performance.now();
      for (let i = 0; i < seqN; i++) {
        const b = await client.getBuffer(full[i % k]!);
        if (b !== null) s += b.length;
      }
      const ms = performance.now() - t0;
      if (s !== seqN * (VALUE_BYTES + 8)) throw new Error('ioredis: a get missed');
      sink += s;
      return opsPerSec(seqN, ms);
    };
    // `inFlight` workers share one index: exactly that many requests outstanding until the end.
    const concurrent = async (get: (i: number) => Promise<number>): Promise<number> => {
      let next = 0;
      let s = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          while (next < concN) s += await get(next++ % k);
        }),
      );
      const ms = performance.now() - t0;
      sink += s;
      return opsPerSec(concN, ms);
    };
    const runGuildConc = (): Promise<number> => concurrent(async (i) => (await tier.get(NS, order[i]!))?.value.length ?? 0);
    const runRawConc = (): Promise<number> => concurrent(async (i) => (await client.getBuffer(full[i]!))?.length ?? 0);

    const seq = await interleave(rounds, { guild: runGuildSeq, raw: runRawSeq });
    const conc = await interleave(rounds, { guild: runGuildConc, raw: runRawConc });
    const m = { guildSeq: median(seq.guild!), rawSeq: median(seq.raw!), guildConc: median(conc.guild!), rawConc: median(conc.raw!) };
    result = {
      url,
      sequentialGets: seqN,
      concurrentGets: concN,
      inFlight,
      guildSeq: seq.guild!,
      rawSeq: seq.raw!,
      guildConc: conc.guild!,
      rawConc: conc.raw!,
      medians: m,
      ratios: { sequential: m.guildSeq / m.rawSeq, concurrent: m.guildConc / m.rawConc },
      keysRemoved: 0,
    };
  } finally {
    const removed = await tier.clear().catch(() => -1);
    await tier.close();
    await client.quit().catch(() => client.disconnect());
    console.log(`redis: removed ${removed} keys under ${prefix}`);
    if (result) result.keysRemoved = removed;
  }
  return result;
}

// ---------------------------------------------------------------------------------------------

export interface CacheTiersResult {
  l1: L1Result;
  l2: L2Result;
  l3: L3Result | null;
  l3Skipped: string | null;
}

export async function main(): Promise<CacheTiersResult> {
  const rounds = Math.max(1, argNumber('rounds', 7));
  const gets = Math.max(1, argNumber('gets', 1_000_000));
  const nKeys = Math.max(100, argNumber('keys', 10_000));
  const passes = Math.max(1, argNumber('l2-passes', 10));
  const seqN = Math.max(100, argNumber('redis-seq', 5_000));
  const concN = Math.max(100, argNumber('redis-conc', 50_000));
  const inFlight = 100;
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

  const keys = makeKeys(nKeys, 'key-', 0x5eed);
  const rand = prng(42);
  const values = keys.map(() => {
    const b = Buffer.allocUnsafe(VALUE_BYTES);
    for (let i = 0; i < VALUE_BYTES; i++) b[i] = Math.floor(rand() * 256);
    return b;
  });

  console.log(`cache-tiers: ${nKeys} keys, ${VALUE_BYTES}-byte values, ${rounds} interleaved rounds after a warm-up`);
  if (!gc) console.log('(run node with --expose-gc for a GC between rounds)');

  console.log(`L1: ${gets.toLocaleString('en-US')} gets per round…`);
  const l1 = await benchL1(keys, values, gets, rounds);
  console.log(`L2: ${(nKeys * passes).toLocaleString('en-US')} gets, ${nKeys.toLocaleString('en-US')} sets per round…`);
  const l2 = await benchL2(keys, values, rounds, passes);
  console.log(`L3: ${seqN} sequential gets, ${concN} gets with ${inFlight} in flight per round, at ${redisUrl}…`);
  const l3r = await benchL3(redisUrl, keys, values, Math.min(rounds, 5), seqN, concN, inFlight);
  const l3 = typeof l3r === 'string' ? null : l3r;
  const l3Skipped = typeof l3r === 'string' ? l3r : null;
  if (l3Skipped) console.log(`L3 skipped: ${l3Skipped}`);

  const verdict = (ok: boolean): string => (ok ? 'met' : 'NOT met');
  const rows: string[][] = [
    ['L1 MemoryTier.get (hit)', fmtOps(l1.guildMedian), 'lru-cache maxSize+sizeCalc', fmtOps(l1.lruMaxSizeMedian), fmtRatio(l1.ratio), `ratio >= ${GOALS.l1Ratio}`, verdict(l1.ratio >= GOALS.l1Ratio)],
    ['L1 MemoryTier.get (hit)', fmtOps(l1.guildMedian), 'lru-cache { max: 20000 }', fmtOps(l1.lruMaxMedian), fmtRatio(l1.ratioMax), 'info', ''],
    ['LayeredCache.get (L1 hit, await)', fmtOps(l1.layered.guildMedian), 'await async lru.get', fmtOps(l1.layered.asyncLruMedian), fmtRatio(l1.layered.ratio), 'info', ''],
    ['L2 SqliteTier.get + flush', fmtOps(l2.medians.guildGets), 'better-sqlite3 minimal', fmtOps(l2.medians.rawGets), fmtRatio(l2.ratios.getsVsRaw), `>= ${fmtOps(GOALS.l2Gets)}/s`, verdict(l2.medians.guildGets >= GOALS.l2Gets)],
    ['L2 SqliteTier.get + flush', fmtOps(l2.medians.guildGets), 'better-sqlite3 same schema', fmtOps(l2.medians.schemaGets), fmtRatio(l2.ratios.getsVsSchema), 'info', ''],
    ['L2 SqliteTier.get (no flush)', fmtOps(l2.medians.guildGetsNoFlush), 'better-sqlite3 minimal', fmtOps(l2.medians.rawGets), fmtRatio(l2.medians.guildGetsNoFlush / l2.medians.rawGets), 'info', ''],
    ['L2 SqliteTier.set + flush', fmtOps(l2.medians.guildSets), 'better-sqlite3 minimal txn', fmtOps(l2.medians.rawSets), fmtRatio(l2.ratios.setsVsRaw), `>= ${fmtOps(GOALS.l2Sets)}/s`, verdict(l2.medians.guildSets >= GOALS.l2Sets)],
    ['L2 SqliteTier.set + flush', fmtOps(l2.medians.guildSets), 'better-sqlite3 same schema', fmtOps(l2.medians.schemaSets), fmtRatio(l2.ratios.setsVsSchema), 'info', ''],
  ];
  if (l3) {
    rows.push(['L3 RedisTier.get sequential', fmtOps(l3.medians.guildSeq), 'ioredis getBuffer', fmtOps(l3.medians.rawSeq), fmtRatio(l3.ratios.sequential), 'info', '']);
    rows.push([`L3 RedisTier.get ${inFlight} in flight`, fmtOps(l3.medians.guildConc), 'ioredis getBuffer', fmtOps(l3.medians.rawConc), fmtRatio(l3.ratios.concurrent), 'info', '']);
  } else rows.push(['L3 RedisTier', 'skipped', '', '', '', '', '']);
  console.log('');
  printTable(['Guild', 'ops/s (median)', 'peer', 'peer ops/s', 'Guild/peer', 'goal', 'goal'], rows);
  console.log('');
  console.log(`L1 rounds (M gets/s) Guild ${l1.guild.map((x) => (x / 1e6).toFixed(1)).join('/')}  lru maxSize ${l1.lruMaxSize.map((x) => (x / 1e6).toFixed(1)).join('/')}  lru max ${l1.lruMax.map((x) => (x / 1e6).toFixed(1)).join('/')}`);
  console.log(`L2 get rounds (k/s) Guild ${l2.guildGets.map((x) => (x / 1e3).toFixed(0)).join('/')}  raw ${l2.rawGets.map((x) => (x / 1e3).toFixed(0)).join('/')}; set rounds Guild ${l2.guildSets.map((x) => (x / 1e3).toFixed(0)).join('/')}  raw ${l2.rawSets.map((x) => (x / 1e3).toFixed(0)).join('/')}`);
  if (l3) console.log(`L3 rounds (k/s) seq Guild ${l3.guildSeq.map((x) => (x / 1e3).toFixed(1)).join('/')}  raw ${l3.rawSeq.map((x) => (x / 1e3).toFixed(1)).join('/')}; ${inFlight} in flight Guild ${l3.guildConc.map((x) => (x / 1e3).toFixed(0)).join('/')}  raw ${l3.rawConc.map((x) => (x / 1e3).toFixed(0)).join('/')}`);

  const result: CacheTiersResult = { l1, l2, l3, l3Skipped };
  const file = writeResult('cache-tiers', {
    benchmark: 'cache-tiers',
    environment: environment(),
    keys: nKeys,
    valueBytes: VALUE_BYTES,
    rounds,
    goals: GOALS,
    goalsMet: { l1Ratio: l1.ratio >= GOALS.l1Ratio, l2Gets: l2.medians.guildGets >= GOALS.l2Gets, l2Sets: l2.medians.guildSets >= GOALS.l2Sets },
    peers: {
      l1: 'lru-cache 11 configured as MemoryTier configures it (maxSize 256 MiB, sizeCalculation value+key+64, no max), holding the Buffers; also { max: 20000 }',
      l2: 'better-sqlite3, WAL + synchronous=NORMAL, minimal table t(k TEXT PRIMARY KEY, value BLOB) and a copy of cache_entries; sets INSERT OR REPLACE in one transaction',
      l3: 'ioredis getBuffer on the same client and keys',
    },
    ...result,
  });
  console.log(`wrote ${file}${sink === 0 ? '' : ''}`);
  return result;
}

if (isMain(import.meta.url)) await main();
