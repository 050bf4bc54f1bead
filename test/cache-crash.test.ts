/**
 * kill -9 in the middle of heavy cache writes: test/fixtures/cache-writer.mjs writes entries to a
 * SqliteTier as fast as it can (batched commits) until it is killed. Afterwards the file must be
 * intact, and every entry in it whole: what a batch wrote is all there or not at all.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { SqliteTier } from '../src/cache/sqlite-tier.js';
import { ROOT } from './helpers.js';

const WRITER = join(ROOT, 'test', 'fixtures', 'cache-writer.mjs');
/** The writer's batch size (SqliteTier's default): at most this many writes are ever uncommitted. */
const BATCH = 1000;

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The value the writer stores under `key` (mirrors `derive` in cache-writer.mjs). */
function derive(key: string): Buffer {
  const digest = createHash('sha256').update(key).digest();
  const h = digest.readUInt32BE(0);
  const size = h % 8 === 0 ? 100 + ((h >>> 3) % (64 * 1024 - 100 + 1)) : 100 + ((h >>> 3) % 4000);
  const out = Buffer.allocUnsafe(size);
  for (let o = 0; o < size; o += digest.length) digest.copy(out, o, 0, Math.min(digest.length, size - o));
  return out;
}

interface Killed {
  /** The last write count the writer reported before it died. */
  reported: number;
  signal: NodeJS.Signals | null;
}

/** Runs the writer on `file` until it reports at least `writes`, waits `extraMs` more, then SIGKILLs it. */
async function writeThenKill(file: string, writes: number, extraMs: number): Promise<Killed> {
  const child = spawn(process.execPath, [WRITER, file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let reported = 0;
  let partial = '';
  let stderr = '';
  let reached!: () => void;
  const enough = new Promise<void>((r) => (reached = r));
  child.stdout.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!;
    for (const l of lines) if (/^\d+$/.test(l)) reported = Number(l);
    if (reported >= writes) reached();
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 180_000)));
  const first = await Promise.race([enough.then(() => 'enough' as const), exited.then(() => 'exited' as const), timeout]);
  clearTimeout(timer);
  if (first !== 'enough') {
    child.kill('SIGKILL');
    const e = await exited;
    assert.fail(`the writer ${first === 'timeout' ? 'did not reach' : `exited (${e.code ?? e.signal}) before`} ${writes} writes (reported ${reported}): ${stderr}`);
  }
  if (extraMs > 0) await sleep(extraMs);
  child.kill('SIGKILL');
  const { signal } = await exited;
  // Whatever it printed after the kill was sent was written before it died.
  return { reported, signal };
}

/** Checks the file after a kill; returns how many entries it holds. */
function verify(file: string, killed: Killed): number {
  const raw = new Database(file);
  let rows: { key: string; len: number; size: number }[];
  try {
    assert.equal(raw.pragma('integrity_check', { simple: true }), 'ok');
    rows = raw.prepare("SELECT key, length(value) AS len, size FROM cache_entries WHERE ns = 'crash'").all() as typeof rows;
  } finally {
    raw.close();
  }
  assert.ok(rows.length > 0, 'something was committed');

  const tier = new SqliteTier({ db: file, maxBytes: 1024 ** 3 });
  try {
    const indices: number[] = [];
    for (const r of rows) {
      const m = /^k(\d+)$/.exec(r.key);
      assert.ok(m, `unexpected key ${r.key}`);
      indices.push(Number(m[1]));
      const expected = derive(r.key);
      assert.equal(r.size, r.len, `${r.key}: stored length matches the recorded size`);
      assert.equal(r.len, expected.length, `${r.key}: whole value, not a partial one`);
      const got = tier.get('crash', r.key);
      assert.ok(got, `${r.key}: listed in the table but not readable (checksum)`);
      assert.ok(got.value.equals(expected), `${r.key}: value differs from its derivation`);
    }
    // Batches commit in order and each is all or nothing: the keys are k0 … k(n-1), no holes.
    indices.sort((a, b) => a - b);
    assert.equal(indices[0], 0);
    assert.equal(indices[indices.length - 1], indices.length - 1, `holes among ${indices.length} keys up to k${indices[indices.length - 1]}`);
    // At most one batch was still buffered when the count was printed: the rest had been committed, and a
    // commit survives the death of the process.
    assert.ok(rows.length >= killed.reported - (BATCH - 1), `${rows.length} entries, but ${killed.reported} writes were reported`);
    assert.equal(tier.get('crash', `k${rows.length}`), undefined);
    const s = tier.stats().namespaces.crash;
    assert.equal(s?.corrupt, 0);
    assert.equal(s?.entries, rows.length);
  } finally {
    tier.close();
  }
  return rows.length;
}

describe('kill -9 during heavy cache writes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'guild-crash-'));
  dirs.push(dir);

  // Different moments: right at a report, and a little after (mid-batch, maybe mid-commit). The last
  // round reuses the second file: a writer starting on a file left by a kill, killed in turn.
  const rounds = [
    { name: 'after 5,000 writes', file: join(dir, 'one.db'), writes: 5000, extraMs: 0 },
    { name: 'after 7,000 writes and 17 ms', file: join(dir, 'two.db'), writes: 7000, extraMs: 17 },
    { name: 'after 9,000 writes and 41 ms, by a writer that reopened the file of the previous kill', file: join(dir, 'two.db'), writes: 9000, extraMs: 41 },
    { name: 'after 12,000 writes and 3 ms', file: join(dir, 'three.db'), writes: 12_000, extraMs: 3 },
    { name: 'after 5,000 writes and 97 ms', file: join(dir, 'four.db'), writes: 5000, extraMs: 97 },
  ];
  const left = new Map<string, number>();
  for (const r of rounds) {
    test(`the store is intact and every entry whole ${r.name}`, { timeout: 300_000 }, async (t) => {
      const killed = await writeThenKill(r.file, r.writes, r.extraMs);
      assert.equal(killed.signal, 'SIGKILL', 'the writer was killed, it did not stop on its own');
      assert.ok(killed.reported >= r.writes);
      const n = verify(r.file, killed);
      t.diagnostic(`${killed.reported} writes reported, ${n} entries committed, ${(statSync(r.file).size / 1024 ** 2).toFixed(1)} MiB file`);
      const before = left.get(r.file);
      if (before !== undefined) assert.ok(n >= before, `what the earlier kill left (${before} entries) is still there: ${n}`);
      left.set(r.file, n);
    });
  }
});
