import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { FolderLock, RunLockedError } from '../src/store/lease.js';
import { runWorkflow } from '../src/workflow/run-workflow.js';
import { storeFile } from '../src/store/db.js';
import { guild, tempDir, writeWorkflow } from './helpers.js';
import { lines, runIdOf, startGuild, until } from './lease-helpers.js';

// Issue 11, finding 1: two `guild run`s of one folder wrote into the same output files at once,
// and both stored the mix as cached results. The folder's run lock now guards the cache: runs,
// `cache clear` and `cache prune` take it; readers do not.

/** Ten cacheable tasks; each writes its output in two halves with a pause between, so interleaved runs would mix. */
function tenTasks(): { dir: string; file: string } {
  const dir = tempDir('guild-cachelock-');
  writeFileSync(join(dir, 'in.txt'), 'input\n');
  const tasks = Array.from(
    { length: 10 },
    (_, i) => `  - id: t${i}
    agent: a
    inputs: in.txt
    outputs: out/t${i}.txt
    run: 'mkdir -p out; echo "$GUILD_RUN_ID" >> out/t${i}.txt; sleep 0.2; echo "$GUILD_RUN_ID" >> out/t${i}.txt'
`,
  ).join('');
  const file = writeWorkflow(`agents: { a: { memory: 10MB } }\ntasks:\n${tasks}`, dir);
  return { dir, file };
}

/** The distinct run ids written in each output file. */
function writersOf(dir: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const f of readdirSync(join(dir, 'out'))) out.set(f, new Set(lines(join(dir, 'out', f))));
  return out;
}

describe('the run lock guards the cache', () => {
  it('two guild runs started together: both succeed, no output mixes two runs, and a third run restores unmixed results', async () => {
    const { dir, file } = tenTasks();
    const [a, b] = await Promise.all([guild(['run', file, '--json'], { cwd: dir }), guild(['run', file, '--json'], { cwd: dir })]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const mixed = [...writersOf(dir)].filter(([, ids]) => ids.size !== 1);
    assert.deepEqual(mixed, [], 'an output file holds lines of two runs');
    // One of the two waited for the other and was served from its results.
    const reports = [JSON.parse(a.stdout), JSON.parse(b.stdout)] as { tasks: { status: string }[] }[];
    const cached = reports.map((r) => r.tasks.filter((t) => t.status === 'cached').length).sort();
    assert.deepEqual(cached, [0, 10]);

    // Every stored result restores as one run wrote it.
    rmSync(join(dir, 'out'), { recursive: true });
    const c = await guild(['run', file, '--json'], { cwd: dir });
    assert.equal(c.code, 0, c.stderr);
    assert.ok((JSON.parse(c.stdout) as { tasks: { status: string }[] }).tasks.every((t) => t.status === 'cached'));
    for (const [f, ids] of writersOf(dir)) {
      assert.equal(ids.size, 1, `${f} restored mixed: ${[...ids].join(', ')}`);
      assert.equal(readFileSync(join(dir, 'out', f), 'utf8').split('\n').filter(Boolean).length, 2, f);
    }
  });

  it('guild cache clear waits while a run holds the folder (--no-wait refuses with LOCKED), and clears after it', async () => {
    const dir = tempDir('guild-cachelock-');
    const go = join(dir, 'go');
    writeFileSync(join(dir, 'in.txt'), 'x\n');
    const file = writeWorkflow(
      `agents: { a: { memory: 10MB } }
tasks:
  - id: block
    agent: a
    inputs: in.txt
    timeout: 10m
    run: 'while [ ! -f ${go} ]; do sleep 0.05; done'
`,
      dir,
    );
    const run = startGuild(['run', file, '--progress', 'plain'], dir);
    await until(() => runIdOf(run.stderr) !== undefined && run.stderr.includes('block'), 'the run started its task');
    const runId = runIdOf(run.stderr)!;

    const refused = await guild(['cache', 'clear', '-w', file, '--no-wait'], { cwd: dir });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, new RegExp(`run ${runId} \\(pid \\d+\\) holds the run lock of this folder`));

    const clearing = startGuild(['cache', 'clear', '-w', file], dir);
    await until(() => clearing.stderr.includes('waiting for'), 'cache clear says it waits');
    assert.match(clearing.stderr, new RegExp(`waiting for run ${runId} \\(pid \\d+\\) to finish`));
    assert.equal(clearing.stdout, '', 'cleared while the run still held the folder');
    writeFileSync(go, '');
    assert.equal((await run.closed).code, 0, run.stderr);
    const done = await clearing.closed;
    assert.equal(done.code, 0, clearing.stderr);
    // It cleared what the run stored, after the run.
    assert.match(clearing.stdout, /cleared every namespace: [1-9]\d* from sqlite/);
  });

  it('a run refuses (--no-wait) or waits while guild cache clear|prune holds the folder; a dead holder is ignored', async () => {
    const dir = tempDir('guild-cachelock-');
    const file = writeWorkflow(`agents: { a: { memory: 10MB } }\ntasks:\n  - { id: t, agent: a, run: 'true' }\n`, dir);
    mkdirSync(join(dir, '.guild'), { recursive: true });
    const lock = await FolderLock.acquire(storeFile(dir), 'cache prune');
    try {
      const r = await guild(['run', file, '--no-wait'], { cwd: dir });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /guild cache prune \(pid \d+\) holds the run lock of this folder/);
      await assert.rejects(FolderLock.acquire(storeFile(dir), 'cache clear', { wait: false }), (e: unknown) => e instanceof RunLockedError && e.holder.purpose === 'cache prune');
    } finally {
      lock.release();
    }
    // A holder whose process is gone (a kill -9 of `guild cache clear`) does not hold the folder.
    const dead = await FolderLock.acquire(storeFile(dir), 'cache clear', { owner: { pid: 2 ** 22 + 7, startTime: 1, host: (await import('node:os')).hostname() } });
    void dead; // never released: its owner "died"
    const r = await guild(['run', file, '--no-wait'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
  });
});

describe('a result is stored only by a run that held the lock for the task\'s whole life', () => {
  it('a run whose lock was taken over while its task ran stores nothing, and says why', async () => {
    const dir = tempDir('guild-cachelock-');
    const go = join(dir, 'go');
    writeFileSync(join(dir, 'in.txt'), 'x\n');
    const file = writeWorkflow(
      `agents: { a: { memory: 10MB } }
tasks:
  - id: t
    agent: a
    inputs: in.txt
    outputs: out.txt
    timeout: 10m
    run: 'echo one > out.txt; while [ ! -f ${go} ]; do sleep 0.05; done'
`,
      dir,
    );
    let started = false;
    const running = runWorkflow(file, { telemetry: false, onEvent: (e) => void (e.type === 'task-start' && (started = true)) });
    await until(() => started, 'the task started');
    // As a start on another host that judged this run dead would: the row is no longer ours.
    const db = new Database(storeFile(dir));
    db.prepare(`UPDATE runs SET owner_host = 'elsewhere' WHERE status = 'running'`).run();
    db.close();
    writeFileSync(go, '');
    const report = await running;
    const t = report.tasks.find((x) => x.id === 't')!;
    assert.equal(t.status, 'succeeded');
    assert.equal(t.cache.reason, "not stored: this run no longer holds the folder's run lock");
    assert.ok(report.alerts.some((a) => a.rule === 'cache' && a.message === "t: result not cached: this run no longer holds the folder's run lock"), JSON.stringify(report.alerts));
    const db2 = new Database(storeFile(dir), { readonly: true });
    try {
      const n = db2.prepare(`SELECT count(*) AS n FROM cache_entries`).get() as { n: number };
      assert.equal(n.n, 0);
    } finally {
      db2.close();
    }
  });
});

describe('commands that name something missing say so: NOT_FOUND, exit 1', () => {
  it('guild cache clear <unknown namespace>, and -w <missing file> for dashboard, cache and report', async () => {
    const { dir, file } = tenTasks();
    assert.equal((await guild(['run', file], { cwd: dir })).code, 0);
    const typo = await guild(['cache', 'clear', 'taks', '-w', file], { cwd: dir });
    assert.equal(typo.code, 1, typo.stderr);
    assert.match(typo.stderr, /no cache namespace 'taks'; did you mean 'tasks'\?/);
    // Nothing was cleared: the next run is served from the cache.
    const again = await guild(['run', file, '--json'], { cwd: dir });
    assert.ok((JSON.parse(again.stdout) as { tasks: { status: string }[] }).tasks.every((t) => t.status === 'cached'));
    // A known namespace clears.
    const ok = await guild(['cache', 'clear', 'tasks', '-w', file], { cwd: dir });
    assert.equal(ok.code, 0, ok.stderr);

    for (const args of [['dashboard', '-w', 'missing.yaml', '--port', '0'], ['cache', 'stats', '-w', 'missing.yaml'], ['cache', 'prune', '-w', 'missing.yaml'], ['report', '-w', 'missing.yaml']]) {
      // The folder has a store: a typo must not fall back to it.
      const r = await guild(args, { cwd: dir, timeoutMs: 20_000 });
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /no workflow file at missing\.yaml/, args.join(' '));
    }
  });
});
