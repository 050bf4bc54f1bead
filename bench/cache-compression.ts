/**
 * Compressed cache entries: which codec and level, from what size, and what it costs the tiers.
 * Everything is measured in one run against its peer in the same run (compression off, or the
 * other codecs); nothing is compared with a stored figure.
 *
 * Content, generated from real text so the ratios mean something:
 *   - source: real TypeScript and JavaScript read from this repository and node_modules (no two
 *     values the same text, so the codec finds no repeat it was not meant to);
 *   - logs: synthetic build/test log lines (timestamps, task ids, pids, sizes, messages);
 *   - random: crypto random bytes (incompressible).
 * Sizes: 1 KiB, 4 KiB, 16 KiB, 256 KiB, 5 MiB.
 *
 *   1. Codecs: brotli quality 1–4, gzip level 1, deflate-raw level 1 (zstd level 1 and 3 where
 *      the running Node has it): stored/original ratio, compress and decompress MB/s (single
 *      thread, sync API, median of rounds), per content and size.
 *   2. Tiers: a LayeredCache over one tier, compression on (the default) against off, same keys
 *      and values: bytes the tier stores (its own stats), sets/s (flushed) and gets/s, per
 *      content and size. SQLite on a temp file; Redis under a unique prefix, removed after
 *      (skipped with a message when not reachable; REDIS_URL, default redis://127.0.0.1:6379).
 *   3. L1: gets/s of an L1 hit when the memory tier holds frames (compressed) against values
 *      (what Guild does), and how many entries a 16 MiB tier holds each way: the measurement
 *      behind keeping L1 uncompressed.
 *
 * Run: npx tsc -p . && node dist/bench/cache-compression.js [--rounds=3] [--budget-mb=48]
 *      (or: node dist/bench/run.js --only=cache-compression)
 * Writes bench/results/cache-compression.json.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { compressRaw, decompressRaw } from '../src/cache/codecs.js';
import { LayeredCache } from '../src/cache/layered-cache.js';
import { MemoryTier } from '../src/cache/memory-tier.js';
import { connectRedis, escapeGlob, RedisTier } from '../src/cache/redis-tier.js';
import { SqliteTier } from '../src/cache/sqlite-tier.js';
import type { CacheTier } from '../src/cache/tier.js';
import { HAS_ZSTD, type CodecName, type CompressionOptions } from '../src/config/compression.js';
import { DEFAULTS } from '../src/config/defaults.js';
import { argNumber, environment, fmtRatio, gc, isMain, median, printTable, prng, REPO_ROOT, writeResult } from './lib.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const SIZES = [KiB, 4 * KiB, 16 * KiB, 256 * KiB, 5 * MiB] as const;
const CONTENTS = ['source', 'logs', 'random'] as const;
type Content = (typeof CONTENTS)[number];
const DEFAULT = DEFAULTS.cache.compression;

const CODECS: { name: string; codec: CodecName; level: number }[] = [
  { name: 'brotli-1', codec: 'brotli', level: 1 },
  { name: 'brotli-2', codec: 'brotli', level: 2 },
  { name: 'brotli-3', codec: 'brotli', level: 3 },
  { name: 'brotli-4', codec: 'brotli', level: 4 },
  { name: 'gzip-1', codec: 'gzip', level: 1 },
  { name: 'deflate-1', codec: 'deflate', level: 1 },
  ...(HAS_ZSTD
    ? [
        { name: 'zstd-1', codec: 'zstd' as const, level: 1 },
        { name: 'zstd-3', codec: 'zstd' as const, level: 3 },
      ]
    : []),
];

const fmtSize = (b: number): string => (b >= MiB ? `${b / MiB} MiB` : `${b / KiB} KiB`);
const fmtOps = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '—');
const fmtMBs = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : '—');
let sink = 0;

// ---------------------------------------------------------------------------------------------
// Content

/** Real source text: .ts and .js files of the repository and node_modules, concatenated in a fixed order, up to `bytes`. */
function sourceCorpus(bytes: number): Buffer {
  const parts: Buffer[] = [];
  let total = 0;
  const walk = (dir: string, depth: number): void => {
    if (total >= bytes || depth > 6) return;
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return;
    }
    for (const n of names) {
      if (total >= bytes) return;
      if (n === '.git' || n === 'dist' || n === '.guild') continue;
      const p = join(dir, n);
      let st;
      try {
        st = statSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(p, depth + 1);
      else if (/\.(ts|js|mjs|cjs)$/.test(n) && !n.endsWith('.min.js') && st.size < 512 * KiB) {
        const b = readFileSync(p);
        parts.push(b);
        total += b.length;
      }
    }
  };
  walk(join(REPO_ROOT, 'src'), 0);
  walk(join(REPO_ROOT, 'node_modules'), 0);
  return Buffer.concat(parts).subarray(0, bytes);
}

/** Synthetic build and test logs: varied enough that every line differs, shaped like the real thing. */
function logCorpus(bytes: number, seed: number): Buffer {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const levels = ['INFO', 'INFO', 'INFO', 'DEBUG', 'WARN', 'ERROR'];
  const tasks = ['build', 'lint', 'test:unit', 'test:e2e', 'typecheck', 'bundle', 'mcp:fs', 'agent:review'];
  const msgs = [
    (i: number) => `compiled src/module-${i % 997}.ts in ${Math.floor(rand() * 900)} ms`,
    (i: number) => `PASS test/suite-${i % 311}.test.ts (${Math.floor(rand() * 4000)} ms)`,
    (i: number) => `FAIL test/suite-${i % 311}.test.ts > case ${i % 17}: expected ${Math.floor(rand() * 100)} to equal ${Math.floor(rand() * 100)}`,
    () => `GET /api/runs?limit=${Math.floor(rand() * 100)} 200 ${(rand() * 20).toFixed(2)} ms`,
    () => `rss=${Math.floor(rand() * 2048)} MB heap=${Math.floor(rand() * 512)} MB pressure=${pick(['optimal', 'moderate', 'high'])}`,
    (i: number) => `cache ${pick(['hit', 'miss'])} tasks/${(i * 2654435761 >>> 0).toString(16).padStart(8, '0')}${Math.floor(rand() * 1e8).toString(16)}`,
  ];
  const out: string[] = [];
  let n = 0;
  let t = Date.UTC(2025, 0, 6, 9);
  for (let i = 0; n < bytes; i++) {
    t += Math.floor(rand() * 40);
    const line = `${new Date(t).toISOString()} ${pick(levels).padEnd(5)} [${pick(tasks)}] pid=${4000 + Math.floor(rand() * 300)} ${pick(msgs)(i)}\n`;
    out.push(line);
    n += line.length;
  }
  return Buffer.from(out.join('')).subarray(0, bytes);
}

/** `count` distinct values of `size` bytes of `content` (slices of one corpus at different offsets). */
function values(content: Content, size: number, count: number, corpus: Record<Content, Buffer>): Buffer[] {
  const out: Buffer[] = [];
  if (content === 'random') {
    for (let i = 0; i < count; i++) out.push(randomBytes(size));
    return out;
  }
  const c = corpus[content];
  const step = Math.max(1, Math.floor((c.length - size) / Math.max(1, count)));
  for (let i = 0; i < count; i++) out.push(Buffer.from(c.subarray((i * step) % Math.max(1, c.length - size), ((i * step) % Math.max(1, c.length - size)) + size)));
  return out;
}

// ---------------------------------------------------------------------------------------------
// 1. Codecs

interface CodecRow {
  codec: string;
  content: Content;
  size: number;
  ratio: number;
  compressMBs: number;
  decompressMBs: number;
}

/** Repeats `fn` over `inputs` for at least `minMs`; MB/s of input bytes. */
function rate(inputs: readonly Buffer[], bytesOf: (b: Buffer, i: number) => number, fn: (b: Buffer, i: number) => number, minMs: number): number {
  let bytes = 0;
  const t0 = performance.now();
  let t = t0;
  do {
    for (let i = 0; i < inputs.length; i++) {
      sink += fn(inputs[i]!, i);
      bytes += bytesOf(inputs[i]!, i);
    }
    t = performance.now();
  } while (t - t0 < minMs);
  return bytes / MiB / ((t - t0) / 1000);
}

function benchCodecs(rounds: number, corpus: Record<Content, Buffer>): CodecRow[] {
  const rows: CodecRow[] = [];
  for (const content of CONTENTS) {
    for (const size of SIZES) {
      const count = Math.max(2, Math.min(64, Math.floor((8 * MiB) / size)));
      const inputs = values(content, size, count, corpus);
      for (const c of CODECS) {
        const packed = inputs.map((b) => compressRaw(c.codec, c.level, b));
        const stored = packed.reduce((a, b) => a + Math.min(b.length, size), 0);
        const comp: number[] = [];
        const decomp: number[] = [];
        for (let r = 0; r < rounds; r++) {
          comp.push(rate(inputs, (b) => b.length, (b) => compressRaw(c.codec, c.level, b).length, 60));
          decomp.push(rate(packed, (_b, i) => inputs[i]!.length, (b, i) => decompressRaw(c.codec, b, inputs[i]!.length).length, 60));
        }
        rows.push({ codec: c.name, content, size, ratio: stored / (size * count), compressMBs: median(comp), decompressMBs: median(decomp) });
      }
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// 2. Tiers, compression on against off

interface TierRow {
  tier: 'sqlite' | 'redis';
  content: Content;
  size: number;
  entries: number;
  storedOn: number;
  storedOff: number;
  setsOn: number;
  setsOff: number;
  getsOn: number;
  getsOff: number;
}

async function timeOps(n: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  return (n / (performance.now() - t0)) * 1000;
}

async function benchTier(
  kind: 'sqlite' | 'redis',
  make: (label: string) => CacheTier,
  rounds: number,
  budget: number,
  corpus: Record<Content, Buffer>,
): Promise<TierRow[]> {
  const rows: TierRow[] = [];
  for (const content of CONTENTS) {
    for (const size of SIZES) {
      const entries = Math.max(3, Math.min(2000, Math.floor(budget / size)));
      const vals = values(content, size, entries, corpus);
      const r: Record<'on' | 'off', { sets: number[]; gets: number[]; stored: number }> = { on: { sets: [], gets: [], stored: 0 }, off: { sets: [], gets: [], stored: 0 } };
      for (let round = 0; round < rounds; round++) {
        // Alternate which side goes first so neither always meets a warmer page cache or server.
        for (const side of round % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
          const tier = make(`${content}-${size}-${side}-${round}`);
          const cache = new LayeredCache({ tiers: [tier], compression: side === 'on' ? DEFAULT : null });
          gc?.();
          const t0 = performance.now();
          for (let i = 0; i < entries; i++) await cache.set('bench', `k${i}`, vals[i]!);
          await cache.flush();
          r[side].sets.push((entries / (performance.now() - t0)) * 1000);
          r[side].gets.push(
            await timeOps(entries, async (i) => {
              const v = await cache.get('bench', `k${i}`);
              sink += v!.length;
            }),
          );
          const s = (await tier.stats()).namespaces.bench!;
          r[side].stored = s.bytes ?? NaN;
          await tier.clear();
          await cache.close();
        }
      }
      rows.push({
        tier: kind,
        content,
        size,
        entries,
        storedOn: r.on.stored,
        storedOff: r.off.stored,
        setsOn: median(r.on.sets),
        setsOff: median(r.off.sets),
        getsOn: median(r.on.gets),
        getsOff: median(r.off.gets),
      });
      console.log(
        `  ${kind} ${content} ${fmtSize(size)}: stored ${fmtRatio(r.on.stored / r.off.stored)} of off; sets ${fmtOps(median(r.on.sets))}/s vs ${fmtOps(median(r.off.sets))}/s; gets ${fmtOps(median(r.on.gets))}/s vs ${fmtOps(median(r.off.gets))}/s`,
      );
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// 3. L1

interface L1Row {
  content: Content;
  size: number;
  getsOn: number;
  getsOff: number;
  /** Entries a 16 MiB memory tier holds with compression on / off. */
  heldOn: number;
  heldOff: number;
}

/** `m` with only the required methods of a tier: not recognised as holding Guild's memory. */
function framed(m: MemoryTier): CacheTier {
  return {
    name: m.name,
    get: (ns, k) => m.get(ns, k),
    set: (ns, k, v, e) => m.set(ns, k, v, e),
    delete: (ns, k) => m.delete(ns, k),
    keys: (ns) => m.keys(ns),
    clear: (ns) => m.clear(ns),
    prune: () => m.prune(),
    stats: () => m.stats(),
    flush: () => m.flush(),
    close: () => m.close(),
  };
}

async function benchL1(rounds: number, corpus: Record<Content, Buffer>): Promise<L1Row[]> {
  const rows: L1Row[] = [];
  for (const content of ['source', 'logs'] as const) {
    for (const size of [4 * KiB, 16 * KiB, 256 * KiB]) {
      const n = Math.min(500, Math.floor((64 * MiB) / size));
      const vals = values(content, size, n, corpus);
      const res: Record<'on' | 'off', { gets: number[]; held: number }> = { on: { gets: [], held: 0 }, off: { gets: [], held: 0 } };
      for (let round = 0; round < rounds; round++) {
        for (const side of round % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
          const memory = new MemoryTier({ maxBytes: 16 * MiB });
          // 'on': the memory tier behind a wrapper without bytes(), so the layered cache stores
          // frames in it as in a persistent tier: the alternative the default was chosen against.
          const cache = new LayeredCache({ tiers: [side === 'on' ? framed(memory) : memory], compression: side === 'on' ? DEFAULT : null });
          for (let i = 0; i < n; i++) await cache.set('bench', `k${i}`, vals[i]!);
          res[side].held = memory.stats().namespaces.bench!.entries ?? 0;
          const present = memory.keys('bench');
          // At least 300 ms of hits, cycling through what the tier holds.
          let gets = 0;
          const t0 = performance.now();
          while (performance.now() - t0 < 300) {
            for (let i = 0; i < present.length && i < 200; i++) sink += (await cache.get('bench', present[(gets + i) % present.length]!))!.length;
            gets += Math.min(200, present.length);
          }
          res[side].gets.push((gets / (performance.now() - t0)) * 1000);
          await cache.close();
        }
      }
      rows.push({ content, size, getsOn: median(res.on.gets), getsOff: median(res.off.gets), heldOn: res.on.held, heldOff: res.off.held });
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------

export interface CacheCompressionResult {
  default: CompressionOptions;
  codecs: CodecRow[];
  sqlite: TierRow[];
  redis: TierRow[] | null;
  redisSkipped: string | null;
  l1: L1Row[];
}

async function main(): Promise<void> {
  const rounds = argNumber('rounds', 3);
  const budget = argNumber('budget-mb', 48) * MiB;
  const corpus: Record<Content, Buffer> = { source: sourceCorpus(24 * MiB), logs: logCorpus(24 * MiB, 7), random: Buffer.alloc(0) };
  console.log(`corpus: source ${(corpus.source.length / MiB).toFixed(1)} MiB of real .ts/.js, logs ${(corpus.logs.length / MiB).toFixed(1)} MiB; Node ${process.version}${HAS_ZSTD ? '' : ' (no zstd)'}`);

  console.log('\n1. codecs (stored/original; compress and decompress MB/s of original bytes, one thread)');
  const codecs = benchCodecs(rounds, corpus);
  for (const content of CONTENTS) {
    const rows = CODECS.map((c) => [
      c.name,
      ...SIZES.map((size) => {
        const r = codecs.find((x) => x.codec === c.name && x.content === content && x.size === size)!;
        return `${r.ratio.toFixed(3)} ${fmtMBs(r.compressMBs)}/${fmtMBs(r.decompressMBs)}`;
      }),
    ]);
    console.log(`\n${content}: ratio  compress/decompress MB/s`);
    printTable(['codec', ...SIZES.map(fmtSize)], rows);
  }

  console.log(`\n2. tiers: compression on (${DEFAULT.codec}-${DEFAULT.level} from ${fmtSize(DEFAULT.thresholdBytes)}) against off`);
  const dir = mkdtempSync(join(tmpdir(), 'guild-bench-compress-'));
  let sqlite: TierRow[];
  try {
    let n = 0;
    sqlite = await benchTier('sqlite', () => new SqliteTier({ db: join(dir, `c${++n}.db`), maxBytes: 4 * 1024 * MiB }), rounds, budget, corpus);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  let redis: TierRow[] | null = null;
  let redisSkipped: string | null = null;
  let client: Redis | null = null;
  try {
    client = await connectRedis(url);
  } catch (err) {
    redisSkipped = `Redis not reachable at ${url}: ${err instanceof Error ? err.message : String(err)}`;
    console.log(`  redis: skipped (${redisSkipped})`);
  }
  if (client) {
    const base = `guild-bench:${process.pid}:${Date.now()}:`;
    try {
      redis = await benchTier('redis', (label) => new RedisTier({ client: client!, prefix: `${base}${label}:` }), Math.min(rounds, 3), Math.min(budget, 32 * MiB), corpus);
    } finally {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${escapeGlob(base)}*`, 'COUNT', 500);
        cursor = next;
        if (keys.length > 0) await client.unlink(...keys);
      } while (cursor !== '0');
      await client.quit();
    }
  }

  console.log('\n3. L1: LayeredCache.get hits/s and entries a 16 MiB memory tier holds, holding frames (on) against values (off)');
  const l1 = await benchL1(rounds, corpus);
  printTable(
    ['content', 'size', 'gets/s on', 'gets/s off', 'on/off', 'held on', 'held off'],
    l1.map((r) => [r.content, fmtSize(r.size), fmtOps(r.getsOn), fmtOps(r.getsOff), fmtRatio(r.getsOn / r.getsOff), String(r.heldOn), String(r.heldOff)]),
  );

  console.log('\nsummary: tiers, compression on / off');
  printTable(
    ['tier', 'content', 'size', 'stored on/off', 'sets on/off', 'gets on/off', 'gets/s on'],
    [...sqlite, ...(redis ?? [])].map((r) => [r.tier, r.content, fmtSize(r.size), fmtRatio(r.storedOn / r.storedOff), fmtRatio(r.setsOn / r.setsOff), fmtRatio(r.getsOn / r.getsOff), fmtOps(r.getsOn)]),
  );
  const file = writeResult('cache-compression', { environment: environment(), default: DEFAULT, codecs, sqlite, redis, redisSkipped, l1, sink } satisfies CacheCompressionResult & Record<string, unknown>);
  console.log(`\nwrote ${file}`);
}

if (isMain(import.meta.url)) await main();
