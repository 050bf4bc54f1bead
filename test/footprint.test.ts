// What keeps a waiting `guild run` small: memory given back once it waits, run ids without a Date
// object, one store connection. The RSS figures themselves are bench/startup.ts's, not a timed test.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { IdleMemoryReducer } from '../src/system/idle-memory.js';
import { nativeAddon } from '../src/system/native.js';
import { newRunId, utcStamp } from '../src/workflow/execute-options.js';
import { ROOT, sleep } from './helpers.js';

describe('giving memory back once the run waits (system/idle-memory.ts)', () => {
  it('reduces once after a quiet spell, not while activity goes on, and not again without new activity', async () => {
    let n = 0;
    const r = new IdleMemoryReducer(() => n++, { quietMs: 300, minGapMs: 0 });
    r.activity();
    // Activity every 20 ms for 200 ms: never 300 ms of quiet (margins for a loaded machine).
    for (let i = 0; i < 10; i++) {
      await sleep(20);
      r.activity();
    }
    assert.equal(n, 0, 'reduced while tasks were still starting');
    await sleep(900);
    assert.equal(n, 1, 'a quiet spell after activity: one reduction');
    await sleep(700);
    assert.equal(n, 1, 'no activity since: nothing to give back');
    r.activity();
    await sleep(900);
    assert.equal(n, 2);
    assert.equal(r.reductions, 2);
    r.stop();
  });

  it('keeps at least the minimum gap between two reductions, and stop() cancels what is pending', async () => {
    let n = 0;
    const r = new IdleMemoryReducer(() => n++, { quietMs: 30, minGapMs: 2000 });
    r.activity();
    await sleep(400);
    assert.equal(n, 1);
    r.activity();
    await sleep(400); // quiet again, but within 2 s of the first
    assert.equal(n, 1, 'reduced again within the minimum gap');
    await sleep(2000);
    assert.equal(n, 2, 'the deferred reduction came once the gap had passed');
    r.activity();
    r.stop();
    await sleep(600);
    assert.equal(n, 2, 'stopped: nothing more');
    r.activity(); // after stop: ignored, no timer keeps the process
    assert.equal(r.reductions, 2);
  });

  it("the addon's reduceMemory really shrinks V8's young generation (a real process)", (t) => {
    if (nativeAddon() === null) return t.skip('the native addon is not built on this machine (npm install builds it with node-gyp)');
    const native = join(ROOT, 'dist', 'src', 'system', 'native.js');
    const script = `
      import { getHeapSpaceStatistics } from 'node:v8';
      import { nativeAddon } from ${JSON.stringify(native)};
      const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
      // Grow the young generation as a burst of task starts does: many short-lived objects, some kept.
      const kept = [];
      for (let i = 0; i < 400000; i++) { const o = { i, s: 'x' + i, a: [i, i] }; if (i % 50 === 0) kept.push(o); }
      const before = newSpace();
      nativeAddon().reduceMemory();
      console.log(JSON.stringify({ before, after: newSpace(), kept: kept.length }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const { before, after } = JSON.parse(r.stdout) as { before: number; after: number };
    assert.ok(before >= 2 * 1024 * 1024, `the burst grew new space to ${before} bytes`);
    assert.ok(after <= before / 2, `new space ${before} -> ${after} bytes`);
  });
});

describe('run ids without a Date object', () => {
  it('utcStamp formats as Date#toISOString does, over four centuries and at the edges of days and leap years', () => {
    const cases = [0, 951_782_400_000 - 1, 951_782_400_000, 951_868_800_000, 1_709_164_800_000, 4_107_542_399_999, -86_400_001, Date.UTC(2100, 1, 28, 23, 59, 59)];
    for (let ms = Date.UTC(1900, 0, 1); ms < Date.UTC(2300, 0, 1); ms += 86_400_000 * 7 + 3_601_001) cases.push(ms);
    for (const ms of cases) {
      const want = new Date(ms).toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
      assert.equal(utcStamp(ms), want, `at ${ms}`);
    }
    assert.match(newRunId(Date.UTC(2026, 10, 22, 4, 17, 0)), /^20261122-041700-[0-9a-f]{4}$/);
  });
});

describe('one store connection per process (store/db.ts shareDatabase)', () => {
  it('hands out handles over one connection; each close gives back its share, the last closes it', async () => {
    const { shareDatabase } = await import('../src/store/db.js');
    const { tempDir } = await import('./helpers.js');
    const file = join(tempDir(), '.guild', 'guild.db');
    const a = shareDatabase(file);
    const b = shareDatabase(file);
    a.exec('CREATE TABLE t (x INTEGER)');
    b.prepare('INSERT INTO t VALUES (?)').run(7);
    // One connection: a transaction begun through one handle is visible through the other.
    a.exec('BEGIN');
    assert.equal(b.inTransaction, true);
    a.exec('COMMIT');
    a.close();
    a.close(); // a second close gives back nothing more
    assert.equal(a.open, false);
    assert.throws(() => a.prepare('SELECT 1'), /not open/);
    assert.equal(b.open, true, 'closing one handle left the other open');
    assert.equal((b.prepare('SELECT x FROM t').get() as { x: number }).x, 7);
    b.close();
    assert.equal(b.open, false);
    // All shares given back: the next caller gets a new connection.
    const c = shareDatabase(file);
    assert.equal((c.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, 1);
    c.close();
  });
});

describe('compiled modules are Latin-1 (scripts/latin1-dist.mjs, run by build, prepare and test)', () => {
  it('no module under dist/src has a character above U+00FF, so V8 keeps each source as a one-byte string', async () => {
    const { readdirSync, readFileSync } = await import('node:fs');
    const dist = join(ROOT, 'dist', 'src');
    const wide: string[] = [];
    let n = 0;
    for (const e of readdirSync(dist, { recursive: true, withFileTypes: true })) {
      if (!e.isFile() || !e.name.endsWith('.js')) continue;
      n++;
      const path = join(e.parentPath ?? e.path, e.name);
      if (/[^\u0000-\u00ff]/.test(readFileSync(path, 'utf8'))) wide.push(path);
    }
    assert.ok(n > 100, `${n} modules found`);
    assert.deepEqual(wide, [], 'modules with characters above U+00FF (npm test runs the escaping step after tsc)');
    // The escapes mean the same characters: units.ts writes an em dash for an unknown duration.
    assert.match(readFileSync(join(dist, 'util', 'units.js'), 'utf8'), /return '\\u2014';/);
    const { formatDuration } = await import('../src/util/units.js');
    assert.equal(formatDuration(null), '\u2014');
  });
});
