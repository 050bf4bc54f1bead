import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { TelemetryHistory } from '../src/store/telemetry.js';
import { openDatabase } from '../src/store/db.js';
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
