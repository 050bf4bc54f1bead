/**
 * Links stay links: the task cache never follows a symlink out of the project, neither to store
 * an output, nor to restore one, nor to hash an input. Real workflows, real files, the real store.
 */
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LayeredCache } from '../src/cache/layered-cache.js';
import { CACHE_FORMAT_VERSION, decodeEntry, encodeEntry, TaskMemo, TASKS_NAMESPACE, type MemoEntry } from '../src/cache/memo.js';
import { MemoryTier } from '../src/cache/memory-tier.js';
import { SqliteTier } from '../src/cache/sqlite-tier.js';
import { GuildError } from '../src/errors.js';
import { runWorkflow } from '../src/index.js';
import type { FileData } from '../src/io/files.js';
import { storeFile } from '../src/store/db.js';
import type { RunReport } from '../src/workflow/report.js';
import { tempDir, writeWorkflow } from './helpers.js';

/** A project folder and, beside it, a folder outside the project holding a file with a unique marker. */
function layout(): { outer: string; dir: string; outside: string; secret: string; marker: string } {
  const outer = tempDir('guild-links-');
  const dir = join(outer, 'proj');
  const outside = join(outer, 'outside');
  mkdirSync(dir);
  mkdirSync(outside);
  const marker = `secret-${randomBytes(16).toString('hex')}`;
  const secret = join(outside, 'secret.txt');
  writeFileSync(secret, `${marker}\n`);
  writeFileSync(join(dir, 'in.txt'), 'input\n');
  return { outer, dir, outside, secret, marker };
}

const workflow = (dir: string, run: string, outputs = '["out/**"]', inputs = 'in.txt'): string =>
  writeWorkflow(
    `agents: { t: {} }
tasks:
  - id: build
    agent: t
    inputs: ${inputs}
    outputs: ${outputs}
    run: ${JSON.stringify(run)}
`,
    dir,
  );

const build = (r: RunReport) => r.tasks.find((t) => t.id === 'build')!;

/** Every cache value in the workflow's store, and the store's files byte for byte. */
function storeHolds(dir: string, needle: string): { values: boolean; files: boolean; taskEntries: number } {
  const db = new Database(storeFile(dir), { readonly: true });
  try {
    const rows = db.prepare('SELECT ns, value FROM cache_entries').all() as { ns: string; value: Buffer }[];
    const bytes = Buffer.from(needle);
    const guild = join(dir, '.guild');
    const files = readdirSync(guild).filter((f) => f.startsWith('guild.db'));
    return {
      values: rows.some((r) => r.value.includes(bytes)),
      files: files.some((f) => readFileSync(join(guild, f)).includes(bytes)),
      taskEntries: rows.filter((r) => r.ns === TASKS_NAMESPACE).length,
    };
  } finally {
    db.close();
  }
}

const memoOf = (dir: string): TaskMemo => new TaskMemo(new LayeredCache({ tiers: [new MemoryTier({ maxBytes: 1 << 20 })] }), dir);

const entry = (outputs: FileData[]): MemoEntry => ({ task: 'build', fingerprint: 'f'.repeat(64), createdAt: 1, durationMs: 5, peakRssBytes: null, log: Buffer.from('log\n'), outputs });
const file = (path: string, text: string): FileData => ({ type: 'file', path, mode: 0o644, data: Buffer.from(text) });
const link = (path: string, target: string): FileData => ({ type: 'symlink', path, target });

async function refused(p: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof GuildError, String(e));
    assert.equal(e.code, 'UNSAFE_PATH');
    assert.match(e.message, message);
    return true;
  });
}

describe('outputs: a symlink out of the project is refused, never followed or read', () => {
  // Each leaves something under out/ that leads to the outside file; the path named and its target.
  const cases: { name: string; run: (l: ReturnType<typeof layout>) => string; outputs?: string; path: string; says: (l: ReturnType<typeof layout>) => string }[] = [
    { name: 'an absolute link', run: (l) => `mkdir -p out && echo ok > out/f.txt && ln -sfn ${l.secret} out/link`, path: 'out/link', says: (l) => `is a symlink to ${l.secret}` },
    { name: 'a relative link with ..', run: () => 'mkdir -p out && echo ok > out/f.txt && ln -sfn ../../outside/secret.txt out/link', path: 'out/link', says: () => 'is a symlink to ../../outside/secret.txt' },
    {
      // The target text stays in the project; a link the task did not declare as an output leads out.
      name: 'a link through another link',
      run: () => 'ln -sfn ../outside ext && mkdir -p out && echo ok > out/f.txt && ln -sfn ../ext/secret.txt out/link',
      path: 'out/link',
      says: () => 'is a symlink to ../ext/secret.txt',
    },
    { name: 'a link to a folder outside', run: (l) => `mkdir -p out && echo ok > out/f.txt && ln -sfn ${l.outside} out/d`, path: 'out/d', says: (l) => `is a symlink to ${l.outside}` },
    { name: 'an output folder that is a link out', run: () => 'ln -sfn ../outside gen', outputs: '["gen/**"]', path: 'gen', says: () => 'is a symlink to ../outside' },
  ];
  for (const c of cases) {
    it(`${c.name}: the task succeeds, its result is not stored, the reason names the task and the path, the store holds no byte of it`, async () => {
      const l = layout();
      const wf = workflow(l.dir, c.run(l), c.outputs);
      const r = await runWorkflow(wf);
      const t = build(r);
      assert.equal(t.status, 'succeeded', 'the task keeps its status');
      assert.equal(r.ok, true);
      const held = storeHolds(l.dir, l.marker);
      assert.deepEqual(held, { values: false, files: false, taskEntries: 0 }, 'nothing of the outside file, no entry');
      const expected = `task build: output ${c.path} ${c.says(l)}, outside the project: not stored`;
      assert.equal(t.cache.reason, expected);
      assert.ok(
        r.alerts.some((a) => a.message === expected),
        JSON.stringify(r.alerts),
      );
      assert.equal(readFileSync(l.secret, 'utf8'), `${l.marker}\n`);

      // Not cached: the next run runs it again (and refuses again).
      const again = await runWorkflow(wf);
      assert.equal(build(again).status, 'succeeded');
      assert.equal(build(again).cache.status, 'miss');
    });
  }

  it('a fifo among the outputs is refused by its kind, never opened', async () => {
    const l = layout();
    const r = await runWorkflow(workflow(l.dir, 'mkdir -p out && echo ok > out/f.txt && mkfifo out/pipe'));
    assert.equal(build(r).status, 'succeeded');
    assert.equal(build(r).cache.reason, 'task build: output out/pipe is a fifo, neither a file nor a symlink: not stored');
    assert.equal(storeHolds(l.dir, 'ok').taskEntries, 0);
  });
});

describe('outputs: a symlink inside the project is stored and restored as that link', () => {
  it('links (to a file, up a folder, to a folder, dangling) come back as links with the same targets', async () => {
    const l = layout();
    const run = 'mkdir -p out/sub && head -c 64 /dev/urandom > out/f.txt && ln -sfn f.txt out/link && ln -sfn ../f.txt out/sub/up && ln -sfn sub out/dirlink && ln -sfn missing.txt out/dangling';
    const wf = workflow(l.dir, run);
    const first = await runWorkflow(wf);
    assert.equal(build(first).cache.status, 'miss');
    assert.equal(build(first).cache.reason, null);
    const bytes = readFileSync(join(l.dir, 'out/f.txt'));

    rmSync(join(l.dir, 'out'), { recursive: true });
    const second = await runWorkflow(wf);
    assert.equal(build(second).status, 'cached', JSON.stringify(build(second).cache));
    assert.ok(readFileSync(join(l.dir, 'out/f.txt')).equals(bytes), 'the random bytes: restored, not re-run');
    for (const [path, target] of [
      ['out/link', 'f.txt'],
      ['out/sub/up', '../f.txt'],
      ['out/dirlink', 'sub'],
      ['out/dangling', 'missing.txt'],
    ] as const) {
      assert.ok(lstatSync(join(l.dir, path)).isSymbolicLink(), `${path} is a link`);
      assert.equal(readlinkSync(join(l.dir, path)), target);
    }
    assert.ok(readFileSync(join(l.dir, 'out/link')).equals(bytes));
  });
});

describe('restores never write through a symlink', () => {
  it('a cached output replaced by a link to a file outside: the outside file is unchanged, the output is a regular file again', async () => {
    const l = layout();
    const wf = workflow(l.dir, 'mkdir -p out && head -c 256 /dev/urandom > out/f.txt');
    assert.equal(build(await runWorkflow(wf)).cache.status, 'miss');
    const bytes = readFileSync(join(l.dir, 'out/f.txt'));
    const victim = join(l.outside, 'victim.txt');
    writeFileSync(victim, 'victim\n');

    unlinkSync(join(l.dir, 'out/f.txt'));
    symlinkSync(victim, join(l.dir, 'out/f.txt'));
    const second = await runWorkflow(wf);
    assert.equal(build(second).status, 'cached');
    assert.equal(readFileSync(victim, 'utf8'), 'victim\n', 'the link was replaced, not written through');
    const st = lstatSync(join(l.dir, 'out/f.txt'));
    assert.ok(st.isFile() && !st.isSymbolicLink());
    assert.ok(readFileSync(join(l.dir, 'out/f.txt')).equals(bytes));
    assert.deepEqual(
      readdirSync(join(l.dir, 'out')).filter((f) => f.endsWith('.tmp')),
      [],
      'no temporary left',
    );
  });

  it('a folder of the outputs replaced by a link out of the project: refused, nothing is made or written outside', async () => {
    const l = layout();
    const memo = memoOf(l.dir);
    mkdirSync(join(l.dir, 'out'));
    symlinkSync(l.outside, join(l.dir, 'out/sub'));
    await refused(memo.restore(entry([file('out/sub/g.txt', 'g'), file('out/sub/deeper/h.txt', 'h')]), null), /^task build: cached output out\/sub\/(g\.txt|deeper\/h\.txt) is under out\/sub, a symlink to .*outside, outside the project: not restored$/);
    assert.deepEqual(readdirSync(l.outside), ['secret.txt'], 'no file, no folder made outside');
  });
});

describe('a poisoned entry (a shared Redis entry anyone could write) is refused before anything is written', () => {
  const poisons: { name: string; outputs: (l: ReturnType<typeof layout>) => FileData[]; says: RegExp }[] = [
    { name: 'a path with ..', outputs: () => [file('out/ok.txt', 'ok'), file('../escape.txt', 'x')], says: /"\.\.\/escape\.txt" is not a relative path inside the project/ },
    { name: 'an absolute path', outputs: (l) => [file('out/ok.txt', 'ok'), file(join(l.outer, 'escape.txt'), 'x')], says: /is not a relative path inside the project/ },
    { name: 'a path with .. inside it', outputs: () => [file('out/ok.txt', 'ok'), file('out/../../escape.txt', 'x')], says: /is not a relative path inside the project/ },
    { name: 'a link out by its text', outputs: () => [file('out/ok.txt', 'ok'), link('out/l', '../../escape.txt')], says: /out\/l is a symlink to \.\.\/\.\.\/escape\.txt, outside the project/ },
    { name: 'an absolute link out', outputs: (l) => [file('out/ok.txt', 'ok'), link('out/l', l.secret)], says: /out\/l is a symlink to .*secret\.txt, outside the project/ },
  ];
  for (const p of poisons) {
    it(`${p.name}: UNSAFE_PATH, not one output written`, async () => {
      const l = layout();
      await refused(memoOf(l.dir).restore(entry(p.outputs(l)), null), p.says);
      assert.equal(existsSync(join(l.outer, 'escape.txt')), false, 'nothing outside');
      assert.equal(existsSync(join(l.dir, 'out')), false, 'checked before anything is written');
    });
  }

  it('links whose texts stay inside but lead out together (a → z/../w, then z → ../../..): refused, the link removed', async () => {
    const l = layout();
    const memo = memoOf(l.dir);
    await refused(memo.restore(entry([link('out/p/q/a', 'z/../w'), link('out/p/q/z', '../../..')]), null), /out\/p\/q\/a is a symlink to z\/\.\.\/w, outside the project/);
    assert.equal(lstatExists(join(l.dir, 'out/p/q/a')), false, 'the link that leads out is gone');
  });

  it('end to end: a poisoned entry in the store is refused (reason and alert), the task runs instead, nothing lands outside', async () => {
    const l = layout();
    const wf = workflow(l.dir, 'mkdir -p out && echo fresh > out/f.txt', '["out/f.txt"]');
    const first = await runWorkflow(wf);
    const fp = build(first).cache.fingerprint!;
    assert.match(fp, /^[0-9a-f]{64}$/);

    const tier = new SqliteTier({ db: storeFile(l.dir), maxBytes: 1 << 30 });
    tier.set(TASKS_NAMESPACE, fp, encodeEntry({ ...entry([file('out/f.txt', 'poisoned'), file('../escape.txt', 'x')]), fingerprint: fp }), 0);
    tier.close();

    const second = await runWorkflow(wf);
    const t = build(second);
    assert.equal(t.status, 'succeeded', 'ran instead of being served');
    assert.equal(t.cache.reason, 'cache: task build: cached output "../escape.txt" is not a relative path inside the project: not restored');
    assert.ok(second.alerts.some((a) => /"\.\.\/escape\.txt" is not a relative path inside the project/.test(a.message)), JSON.stringify(second.alerts));
    assert.equal(existsSync(join(l.outer, 'escape.txt')), false);
    assert.equal(readFileSync(join(l.dir, 'out/f.txt'), 'utf8'), 'fresh\n', 'not one byte of the entry');
  });
});

describe('inputs: a symlink out of the project is fingerprinted by its target text, never read', () => {
  it('the outside file changing keeps the hit; the link changing, or a file holding its text, is a miss; links inside are followed', async () => {
    const l = layout();
    mkdirSync(join(l.dir, 'src'));
    writeFileSync(join(l.dir, 'src/a.txt'), 'a\n');
    symlinkSync('a.txt', join(l.dir, 'src/inside'));
    symlinkSync(l.secret, join(l.dir, 'src/out'));
    const wf = workflow(l.dir, 'mkdir -p out && date +%s%N > out/stamp', '["out/stamp"]', '["src/**"]');
    const status = async (): Promise<string> => build(await runWorkflow(wf)).status;
    assert.equal(await status(), 'succeeded');
    assert.equal(await status(), 'cached');

    writeFileSync(l.secret, 'changed outside\n');
    assert.equal(await status(), 'cached', 'the outside content is not part of the fingerprint: it was not read');

    unlinkSync(join(l.dir, 'src/out'));
    symlinkSync(join(l.outside, 'other.txt'), join(l.dir, 'src/out'));
    assert.equal(await status(), 'succeeded', 'a new target is a new fingerprint');
    assert.equal(await status(), 'cached');

    unlinkSync(join(l.dir, 'src/out'));
    writeFileSync(join(l.dir, 'src/out'), join(l.outside, 'other.txt'));
    assert.equal(await status(), 'succeeded', 'a file holding the target text is not the link');

    writeFileSync(join(l.dir, 'src/a.txt'), 'A\n');
    assert.equal(await status(), 'succeeded', 'an input reached through a link inside is read as ever');
  });
});

function lstatExists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

describe('entries stored before outputs had a type', () => {
  it('decode as regular files and restore byte for byte with their modes; the header now says each type', async () => {
    const l = layout();
    const data = Buffer.from('from an old entry\n');
    const log = Buffer.from('old log\n');
    // The layout written before links were kept: outputs with path, mode and size only.
    const header = Buffer.from(
      JSON.stringify({ v: CACHE_FORMAT_VERSION, task: 'build', fingerprint: 'f'.repeat(64), created_at: 1, duration_ms: 5, peak_rss_bytes: null, log_bytes: log.length, outputs: [{ path: 'out/old.txt', mode: 0o640, size: data.length }] }),
    );
    const len = Buffer.alloc(4);
    len.writeUInt32BE(header.length, 0);
    const old = decodeEntry(Buffer.concat([len, header, log, data]));
    assert.deepEqual(old.outputs, [{ type: 'file', path: 'out/old.txt', mode: 0o640, data }]);
    await memoOf(l.dir).restore(old, null);
    const st = lstatSync(join(l.dir, 'out/old.txt'));
    assert.ok(st.isFile());
    assert.equal(st.mode & 0o777, 0o640);
    assert.ok(readFileSync(join(l.dir, 'out/old.txt')).equals(data));

    // A link and a file holding its target's text are different entries.
    const asLink = encodeEntry(entry([link('out/x', 'old.txt')]));
    const asFile = encodeEntry(entry([file('out/x', 'old.txt')]));
    assert.notDeepEqual(asLink, asFile);
    assert.deepEqual(decodeEntry(asLink).outputs, [{ type: 'symlink', path: 'out/x', target: 'old.txt' }]);
  });
});

describe('inputs the user names outside the project are still read', () => {
  it('a change to an input under the project or to one named ../ outside it is a miss (never a stale hit)', async () => {
    const parent = tempDir('guild-links-parent-');
    const dir = join(parent, 'proj');
    mkdirSync(join(dir, 'src'), { recursive: true });
    writeFileSync(join(dir, 'src', 'a.txt'), 'a\n');
    writeFileSync(join(parent, 'tool-version'), '1\n');
    const file = writeWorkflow(
      `agents: { a: { memory: 10MB } }\ntasks:\n  - { id: t, agent: a, run: 'true', inputs: [src/**, ../tool-version] }\n`,
      dir,
    );
    const statusOf = async (): Promise<string> => (await runWorkflow(file, { telemetry: false })).tasks[0]!.status;
    assert.equal(await statusOf(), 'succeeded');
    assert.equal(await statusOf(), 'cached');
    writeFileSync(join(dir, 'src', 'a.txt'), 'b\n');
    assert.equal(await statusOf(), 'succeeded', 'a change inside the project re-runs the task');
    writeFileSync(join(parent, 'tool-version'), '2\n');
    assert.equal(await statusOf(), 'succeeded', 'a change to the declared outside input re-runs the task');
    assert.equal(await statusOf(), 'cached');
  });
});
