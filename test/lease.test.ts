import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { TelemetryHistory } from '../src/store/telemetry.js';
import { openDatabase } from '../src/store/db.js';
import { RunHistory } from '../src/store/runs.js';
import { RunLease, RunLockedError, type LeaseOwner } from '../src/store/lease.js';
import { alive, GUILD, guild, tempDir, writeWorkflow } from './helpers.js';
import { lines, processesOfRun, runIdOf, startGuild, until } from './lease-helpers.js';

const statusOf = (dir: string, id: string): { status: string; note: string | null; owner_pid: number | null } => {
  const db = new Database(join(dir, '.guild', 'guild.db'), { readonly: true });
  try {
    return db.prepare(`SELECT status, note, owner_pid FROM runs WHERE id = ?`).get(id) as { status: string; note: string | null; owner_pid: number | null };
  } finally {
    db.close();
  }
};

/**
 * Tasks that outlive a killed Guild in every way a process can leave its task: a plain long
 * sleep, one that left the task's process group (`set -m`), one in a session of its own
 * (`setsid`), and one with an empty environment that stayed in the group. Each writes its pid.
 */
function escapingWorkflow(dir: string, pids: string): string {
  return writeWorkflow(
    `agents: { a: { memory: 10MB } }
tasks:
  - { id: plain, agent: a, timeout: 10m, run: 'echo $$ >> ${pids}; exec sleep 300' }
  - { id: set-m, agent: a, timeout: 10m, run: "bash -c 'set -m; sleep 301 & echo $! >> ${pids}; wait'" }
  - { id: setsid, agent: a, timeout: 10m, run: 'setsid sleep 302 & echo $! >> ${pids}; wait' }
  - { id: no-env, agent: a, timeout: 10m, run: "env -i sh -c 'echo $$ >> ${pids}; exec sleep 303' & wait" }
`,
    dir,
  );
}

const pidsIn = (file: string): number[] => lines(file).map(Number);

describe('leases: a kill -9ed Guild', () => {
  it('the next start in the folder ends every leftover of the dead run and marks it crashed', async () => {
    const dir = tempDir('guild-lease-');
    const pids = join(dir, 'pids');
    const file = escapingWorkflow(dir, pids);
    const first = startGuild(['run', file, '--progress', 'plain'], dir);
    await until(() => pidsIn(pids).length === 4, 'all four tasks wrote their pids');
    const dead = runIdOf(first.stderr)!;
    assert.ok(dead, first.stderr);
    first.child.kill('SIGKILL');
    await first.closed;

    // What the bug looked like: everything survives Guild, and the run reads `running`.
    for (const pid of pidsIn(pids)) assert.ok(alive(pid), `pid ${pid} outlived Guild`);
    const before = statusOf(dir, dead);
    assert.equal(before.status, 'running');
    assert.equal(before.owner_pid, first.child.pid);
    const db = openDatabase(join(dir, '.guild', 'guild.db'));
    const leases = db.prepare(`SELECT task_id, cgroups, pid, start_time FROM task_leases WHERE run_id = ? ORDER BY task_id`).all(dead) as { task_id: string; pid: number; start_time: number }[];
    db.close();
    assert.deepEqual(leases.map((l) => l.task_id), ['no-env', 'plain', 'set-m', 'setsid'], 'every attempt recorded its lease');
    for (const l of leases) assert.ok(l.pid > 0 && l.start_time > 0, JSON.stringify(l));

    const next = join(dir, 'next.yaml');
    writeFileSync(next, `agents: { a: { memory: 10MB } }\ntasks:\n  - { id: quick, agent: a, run: "true" }\n`);
    const r = await guild(['run', next, '--progress', 'plain'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);

    for (const pid of pidsIn(pids)) assert.equal(alive(pid), false, `pid ${pid} survived the takeover`);
    assert.deepEqual(processesOfRun(dead), []);
    const after = statusOf(dir, dead);
    assert.equal(after.status, 'crashed');
    assert.match(after.note!, new RegExp(`^crashed: pid ${first.child.pid} was gone when run ${runIdOf(r.stderr)} started; ended ([4-9]|\\d\\d+) processes`));

    // The runs list (what /api/runs and the dashboard show) and `guild report` say so too.
    const store = openDatabase(join(dir, '.guild', 'guild.db'));
    const listed = new TelemetryHistory(store).runs(10).map((x) => [x.id === dead ? 'dead' : 'next', x.status]);
    store.close();
    assert.deepEqual(listed, [
      ['next', 'succeeded'],
      ['dead', 'crashed'],
    ]);
    const report = await guild(['report', dead, '-w', next, '--json'], { cwd: dir });
    assert.equal(report.code, 1);
    assert.match(report.stderr, new RegExp(`^guild: run ${dead} crashed and left no report \\(crashed: pid ${first.child.pid} was gone`));
    const last = await guild(['report', 'last', '-w', next, '--json'], { cwd: dir });
    assert.equal(last.code, 0, last.stderr);
    assert.equal((JSON.parse(last.stdout) as { run_id: string }).run_id, runIdOf(r.stderr));
  });
});

describe('SIGHUP ends a run like SIGTERM', () => {
  const workflow = (dir: string, started: string): string =>
    writeWorkflow(
      `agents: { a: { memory: 10MB } }
tasks:
  - { id: one, agent: a, timeout: 10m, run: 'touch ${started}; exec sleep 300' }
  - { id: two, agent: a, timeout: 10m, run: "bash -c 'sleep 301 & wait'" }
`,
      dir,
    );

  it('kill -HUP: exit 143, the run recorded interrupted, no process of it left', async () => {
    const dir = tempDir('guild-hup-');
    const started = join(dir, 'started');
    const g = startGuild(['run', workflow(dir, started), '--progress', 'plain'], dir);
    // one: sleep 300; two: bash and sleep 301 (at least).
    await until(() => existsSync(started) && processesOfRun(runIdOf(g.stderr) ?? '-').length >= 3, 'both tasks running');
    const id = runIdOf(g.stderr)!;
    g.child.kill('SIGHUP');
    const { code } = await g.closed;
    assert.equal(code, 143, g.stderr);
    assert.equal(statusOf(dir, id).status, 'interrupted');
    assert.deepEqual(processesOfRun(id), []);
  });

  it('the terminal goes away (a pty closed under Guild): exit 143, not a crash; interrupted, nothing left', async (t) => {
    if (spawnSync('python3', ['-c', 'import pty'], { stdio: 'ignore' }).status !== 0) return t.skip('python3 with pty is needed');
    const dir = tempDir('guild-pty-');
    const started = join(dir, 'started');
    const file = workflow(dir, started);
    // Guild runs as the session leader of a new pty; once its task has started, the master side
    // is closed, as a terminal emulator or tmux kill-session does: the kernel sends SIGHUP and
    // every later write to the terminal fails with EIO.
    const script = `
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
while not os.path.exists(${JSON.stringify(started)}):
    try:
        os.read(fd, 65536)
    except OSError:
        break
os.close(fd)
_, st = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(st))
`;
    const r = spawnSync('python3', ['-c', script, process.execPath, GUILD, 'run', file, '--progress', 'tty'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.stdout.trim(), '143', r.stderr);
    const db = new Database(join(dir, '.guild', 'guild.db'), { readonly: true });
    const runs = db.prepare(`SELECT id, status FROM runs`).all() as { id: string; status: string }[];
    db.close();
    assert.deepEqual(runs.map((x) => x.status), ['interrupted']);
    assert.deepEqual(processesOfRun(runs[0]!.id), []);
  });
});

describe('RunLease (store, fake /proc)', () => {
  /** A fake /proc holding the given processes (pid → start time). */
  function fakeProc(procs: Record<number, number>): string {
    const root = join(tempDir('guild-leaseproc-'), 'proc');
    for (const [pid, start] of Object.entries(procs)) {
      mkdirSync(join(root, pid), { recursive: true });
      writeFileSync(join(root, pid, 'stat'), `${pid} (guild) S 1 ${pid} ${pid} 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 ${start} 0 0\n`);
      writeFileSync(join(root, pid, 'environ'), '');
    }
    return root;
  }
  const row = (id: string) => ({ id, workflow: '/w/guild.yaml', name: 'w', budget_bytes: 1 });
  const quiet = (procRoot: string) => ({ procRoot, selfPid: 1, kill: () => false, sleep: async () => undefined, rounds: 2 });

  it('one live holder at a time; a dead, reused-pid, or ownerless holder is taken over and marked crashed', async () => {
    const store = join(tempDir('guild-leasedb-'), 'guild.db');
    const host = hostname();
    const a: LeaseOwner = { pid: 10, startTime: 42, host };
    const b: LeaseOwner = { pid: 11, startTime: 43, host };
    let proc = fakeProc({ 10: 42, 11: 43 });
    const first = await RunLease.acquire(store, row('a'), { owner: a, procRoot: proc });
    first.recordAttempt('t', 1, { cgroups: [], pid: 777, startTime: 5 });

    await assert.rejects(RunLease.acquire(store, row('b'), { owner: b, procRoot: proc, wait: false }), (e: unknown) => e instanceof RunLockedError && e.code === 'LOCKED' && e.holder.runId === 'a' && e.holder.pid === 10);

    // pid 10 now belongs to a process that started later: a's owner is dead.
    proc = fakeProc({ 10: 99, 11: 43 });
    const second = await RunLease.acquire(store, row('b'), { owner: b, procRoot: proc, wait: false, leftovers: quiet(proc) });
    assert.deepEqual(second.crashed.map((c) => c.id), ['a']);
    assert.match(second.notes[0]!, /^run a had crashed \(pid 10 gone\): ended 0 processes$/);

    // An owner on another host cannot be judged from here: it holds. A run without an owner does not.
    const db = openDatabase(store);
    db.prepare(`UPDATE runs SET owner_host = 'elsewhere' WHERE id = 'b'`).run();
    new RunHistory(db).startRun({ id: 'legacy', workflow: '/w/guild.yaml', name: 'w', started_at: 1, budget_bytes: 1 });
    db.close();
    await assert.rejects(RunLease.acquire(store, row('c'), { owner: a, procRoot: fakeProc({}), wait: false, leftovers: quiet(proc) }), /run b \(pid 11 on elsewhere\) holds the run lock/);
    second.release(); // b was never finished: released as crashed
    const third = await RunLease.acquire(store, row('c'), { owner: a, procRoot: fakeProc({}), wait: false, leftovers: quiet(proc) });
    assert.deepEqual(third.crashed.map((c) => c.id), ['legacy']);
    third.release('test over');
    third.release('twice is a no-op');

    const check = openDatabase(store);
    const runs = check.prepare(`SELECT id, status, note FROM runs ORDER BY id`).all() as { id: string; status: string; note: string | null }[];
    const leases = check.prepare(`SELECT COUNT(*) AS n FROM task_leases`).get() as { n: number };
    check.close();
    assert.deepEqual(runs.map((r) => `${r.id}:${r.status}`), ['a:crashed', 'b:crashed', 'c:crashed', 'legacy:crashed']);
    assert.match(runs[0]!.note!, /^crashed: pid 10 was gone when run b started; ended 0 processes$/);
    assert.equal(runs[1]!.note, 'the run ended without finishing (an error inside Guild)');
    assert.equal(runs[2]!.note, 'test over');
    assert.match(runs[3]!.note!, /^crashed: no owner recorded \(started by a Guild before leases\) when run c started; ended 0 processes$/);
    assert.equal(leases.n, 0, 'leases go with their runs');
    rmSync(proc, { recursive: true, force: true });
  });
});
