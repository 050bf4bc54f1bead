import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { runWorkflow } from '../src/workflow/run-workflow.js';
import { RunLockedError, type RunLockHolder } from '../src/store/lease.js';
import { GuildError } from '../src/errors.js';
import { GUILD, guild, tempDir, writeWorkflow } from './helpers.js';
import { lines, processesOfRun, runIdOf, startGuild, until } from './lease-helpers.js';

/**
 * One workflow for every run of a folder: its task appends "<run id> start" to `order`, waits
 * until the file `go` exists, then appends "<run id> end". A run started after `go` exists goes
 * straight through. Who ran when is read from `order`, never from a clock.
 */
function folder(): { dir: string; file: string; order: string; go: string } {
  const dir = tempDir('guild-lock-');
  const order = join(dir, 'order');
  const go = join(dir, 'go');
  const file = writeWorkflow(
    `agents: { a: { memory: 10MB } }
tasks:
  - id: work
    agent: a
    timeout: 10m
    run: 'echo "$GUILD_RUN_ID start" >> ${order}; while [ ! -f ${go} ]; do sleep 0.05; done; echo "$GUILD_RUN_ID end" >> ${order}'
`,
    dir,
  );
  return { dir, file, order, go };
}

const runsIn = (dir: string): { id: string; status: string }[] => {
  const db = new Database(join(dir, '.guild', 'guild.db'), { readonly: true });
  try {
    return db.prepare(`SELECT id, status FROM runs ORDER BY started_at, rowid`).all() as { id: string; status: string }[];
  } finally {
    db.close();
  }
};

describe('the folder run lock (CLI)', () => {
  it('a second guild run waits while the first is alive, says so once, and starts only after the first ended', async () => {
    const f = folder();
    const first = startGuild(['run', f.file, '--progress', 'plain'], f.dir);
    await until(() => lines(f.order).length === 1, 'the first run started its task');
    const a = runIdOf(first.stderr)!;
    assert.ok(a, first.stderr);

    const second = startGuild(['run', f.file, '--progress', 'plain'], f.dir);
    await until(() => second.stderr.includes('waiting for run'), 'the second run says it waits');
    assert.match(second.stderr, new RegExp(`guild: waiting for run ${a} \\(pid ${first.child.pid}\\) to finish; --no-wait to refuse\\n`));
    // While it waits, its task has not started and it is not in the store.
    assert.deepEqual(lines(f.order), [`${a} start`]);
    assert.deepEqual(runsIn(f.dir).map((r) => r.id), [a]);

    writeFileSync(f.go, '');
    const [r1, r2] = await Promise.all([first.closed, second.closed]);
    assert.equal(r1.code, 0, first.stderr);
    assert.equal(r2.code, 0, second.stderr);
    const b = runIdOf(second.stderr)!;
    assert.ok(b && b !== a, second.stderr);
    assert.deepEqual(lines(f.order), [`${a} start`, `${a} end`, `${b} start`, `${b} end`]);
    assert.equal(second.stderr.match(/waiting for run/g)?.length, 1, 'the message is printed once');
    assert.deepEqual(runsIn(f.dir), [
      { id: a, status: 'succeeded' },
      { id: b, status: 'succeeded' },
    ]);
  });

  it('--no-wait refuses while the first is alive: exit 1, the holder named, nothing started or stored', async () => {
    const f = folder();
    const first = startGuild(['run', f.file, '--progress', 'plain'], f.dir);
    await until(() => lines(f.order).length === 1, 'the first run started its task');
    const a = runIdOf(first.stderr)!;

    const refused = await guild(['run', f.file, '--no-wait', '--json'], { cwd: f.dir });
    assert.equal(refused.code, 1, refused.stderr);
    assert.equal(refused.stdout, '');
    assert.equal(refused.stderr, `guild: run ${a} (pid ${first.child.pid}) holds the run lock of this folder\n`);
    assert.deepEqual(lines(f.order), [`${a} start`]);
    assert.deepEqual(runsIn(f.dir).map((r) => r.id), [a]);

    writeFileSync(f.go, '');
    assert.equal((await first.closed).code, 0, first.stderr);
    // Free again: --no-wait runs.
    const after = await guild(['run', f.file, '--no-wait', '--progress', 'none'], { cwd: f.dir });
    assert.equal(after.code, 0, after.stderr);
  });

  it('takes over at once when the first was kill -9ed: --no-wait runs, the dead run is crashed and nothing of it is left', async () => {
    const f = folder();
    const first = startGuild(['run', f.file, '--progress', 'plain'], f.dir);
    await until(() => lines(f.order).length === 1, 'the first run started its task');
    const a = runIdOf(first.stderr)!;
    first.child.kill('SIGKILL');
    await first.closed;
    assert.ok(processesOfRun(a).length > 0, 'kill -9 of Guild left its task running');

    // --no-wait: had the dead owner been taken for a live one, this would refuse.
    const next = join(f.dir, 'next.yaml');
    writeFileSync(next, `agents: { a: { memory: 10MB } }\ntasks:\n  - { id: quick, agent: a, run: "true" }\n`);
    const r = await guild(['run', next, '--no-wait', '--progress', 'plain'], { cwd: f.dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`guild: warning: run ${a} had crashed \\(pid ${first.child.pid} gone\\): ended [1-9]\\d* process`));
    assert.deepEqual(processesOfRun(a), []);
    assert.deepEqual(runsIn(f.dir).map((x) => `${x.id === a ? 'dead' : 'next'}:${x.status}`), ['dead:crashed', 'next:succeeded']);
  });
});

describe('the folder run lock: ways out of a wait', () => {
  it('SIGINT while waiting: exit 130, nothing started or stored', async () => {
    const f = folder();
    const first = startGuild(['run', f.file, '--progress', 'plain'], f.dir);
    await until(() => lines(f.order).length === 1, 'the first run started its task');
    const a = runIdOf(first.stderr)!;
    const second = startGuild(['run', f.file, '--progress', 'plain'], f.dir);
    await until(() => second.stderr.includes('waiting for run'), 'the second run says it waits');
    second.child.kill('SIGINT');
    assert.equal((await second.closed).code, 130, second.stderr);
    assert.deepEqual(runsIn(f.dir).map((r) => r.id), [a]);
    writeFileSync(f.go, '');
    assert.equal((await first.closed).code, 0, first.stderr);
    assert.deepEqual(lines(f.order), [`${a} start`, `${a} end`]);
  });

  it('a guild run inside a task of the run holding the folder is refused at once instead of waiting for itself', async () => {
    const dir = tempDir('guild-lock-nested-');
    const inner = join(dir, 'inner.yaml');
    writeFileSync(inner, `agents: { a: {} }\ntasks:\n  - { id: x, agent: a, run: "true" }\n`);
    const file = writeWorkflow(
      `agents: { a: {} }\ntasks:\n  - { id: nested, agent: a, run: '${process.execPath} ${GUILD} run ${inner} --progress none 2> nested.err; echo $? > nested.code' }\n`,
      dir,
    );
    const r = await guild(['run', file, '--progress', 'none'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(lines(join(dir, 'nested.code')), ['1']);
    assert.match(lines(join(dir, 'nested.err')).join('\n'), /^guild: run \S+ \(pid \d+\) holds the run lock of this folder, and this is one of its tasks/);
  });
});

describe('the folder run lock (library)', () => {
  it('wait: false rejects with RunLockedError (LOCKED); the default waits, calls onWait once, and runs after', async () => {
    const dir = tempDir('guild-lock-lib-');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const order: string[] = [];
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const holder = runWorkflow(
      { agents: { a: { memory: '10MB' } }, tasks: [{ id: 'hold', agent: 'a', run: async () => (order.push('first start'), started(), await gate, order.push('first end')) }] },
      { dir, telemetry: false },
    );
    await running;
    const second = { agents: { a: { memory: '10MB' } }, tasks: [{ id: 'next', agent: 'a', run: async () => void order.push('second') }] };

    const refused = await runWorkflow(second, { dir, telemetry: false, wait: false }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(refused instanceof RunLockedError, String(refused));
    assert.ok(refused instanceof GuildError && refused.code === 'LOCKED');
    assert.equal(refused.holder.pid, process.pid);

    const waits: RunLockHolder[] = [];
    const waiting = runWorkflow(second, { dir, telemetry: false, onWait: (h) => (waits.push(h), release()) });
    const [r1, r2] = await Promise.all([holder, waiting]);
    assert.equal(r1.ok && r2.ok, true);
    assert.deepEqual(order, ['first start', 'first end', 'second']);
    assert.deepEqual(waits.map((h) => h.runId), [r1.run_id]);
    assert.deepEqual(runsIn(dir).map((x) => x.status), ['succeeded', 'succeeded']);
  });
});
