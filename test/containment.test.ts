import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ProcessExecutor } from '../src/executors/process-executor.js';
import { systemCgroupControl } from '../src/system/cgroup-control.js';
import { createSystemProbe } from '../src/system/probe.js';
import { GUILD, guild, hog, MB, ROOT, sleep, tempDir, writeWorkflow } from './helpers.js';

/**
 * Containment with real processes: a task whose child leaves the process group (`set -m`) and a
 * grandchild that leaves the session (`setsid`, reparented at once) are ended at the limit, on
 * timeout, on SIGINT of a real `guild run`, and by Guild's exit hook; nothing of them survives.
 * Every case runs with per-task cgroups where this machine allows them, and with the tree walk
 * (GUILD_CONTAINMENT=tree). Waits poll for a state; none asserts on time.
 */

const control = systemCgroupControl();
const MODES = [
  { name: 'cgroup', env: {} as Record<string, string>, skip: control ? false : 'no cgroup can be made here (needs root or a delegated cgroup v2 subtree with memory)' },
  { name: 'tree', env: { GUILD_CONTAINMENT: 'tree' } as Record<string, string>, skip: false as const },
];

/** A marker for one test's processes: `CONTAIN_MARK=<random>` in the task's environment. */
const newMark = (): string => randomBytes(6).toString('hex');

/** Live (non-zombie) processes whose environment holds `NAME=value`; read independently of the code under test. */
function withEnv(entry: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const env = readFileSync(`/proc/${e}/environ`, 'latin1');
      if (env.split('\0').includes(entry)) out.push(Number(e));
    } catch {
      /* gone, or not readable */
    }
  }
  return out;
}

/** The state letter of /proc/<pid>/stat, or null once gone. */
function state(pid: number): string | null {
  try {
    const t = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return t.slice(t.lastIndexOf(')') + 2, t.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

/** Task cgroups whose name holds `part`, in every hierarchy Guild would use. */
function cgroupsNamed(part: string): string[] {
  if (!control) return [];
  return control.hierarchies.flatMap((h) => readdirSync(h.parent).filter((n) => n.startsWith('guild-') && n.includes(part)).map((n) => join(h.parent, n)));
}

const until = async (what: () => boolean): Promise<void> => {
  while (!what()) await sleep(25);
};

const lines = (file: string): number[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number) : []);

/**
 * The escaping task: bash with job control puts the hog in a process group of its own; `setsid`
 * (a group leader there) forks, so the sleeper is reparented to init at once. Both write their
 * pids to `pidfile`.
 */
function escaping(pidfile: string, hogCommand: string): string {
  return `bash -c 'set -m; ${hogCommand} & setsid sh -c "echo \\$\\$ >> ${pidfile}; exec sleep 300" & wait'`;
}

for (const mode of MODES) {
  describe(`containment (${mode.name})`, { skip: mode.skip }, () => {
    it('the set -m hog and the setsid grandchild die at the limit; nothing survives, no cgroup is left', { timeout: 120_000 }, async () => {
      const dir = tempDir();
      const mark = newMark();
      const pidfile = join(dir, 'pids');
      const file = writeWorkflow(
        `kill_grace: 500ms
agents: { a: { memory: 100MB, limit: 400MB } }
tasks:
  - id: esc-${mark}
    agent: a
    env: { CONTAIN_MARK: "${mark}", HOG_PIDFILE: "${pidfile}" }
    run: ${JSON.stringify(escaping(pidfile, hog(1200, 30000, '0 --ramp 4000')))}
`,
        dir,
      );
      const r = await guild(['run', file, '--json', '--no-cache', '--progress', 'none'], { env: mode.env, cwd: dir });
      const doc = JSON.parse(r.stdout) as { run_id: string; tasks: { status: string; error: string }[] };
      assert.equal(doc.tasks[0]!.status, 'failed', r.stderr);
      assert.match(doc.tasks[0]!.error, /^memory limit exceeded: \d+ MB > 400 MB$/);
      assert.equal(lines(pidfile).length, 2, 'the hog and the sleeper started');
      assert.deepEqual(withEnv(`CONTAIN_MARK=${mark}`), [], 'nothing of the task survives');
      assert.deepEqual(withEnv(`GUILD_RUN_ID=${doc.run_id}`), []);
      assert.deepEqual(cgroupsNamed(mark), []);
    });

    it('on timeout nothing survives', { timeout: 120_000 }, async () => {
      const dir = tempDir();
      const mark = newMark();
      const pidfile = join(dir, 'pids');
      const file = writeWorkflow(
        `kill_grace: 500ms
agents: { a: { memory: 50MB, timeout: 2s } }
tasks:
  - id: esc-${mark}
    agent: a
    env: { CONTAIN_MARK: "${mark}", HOG_PIDFILE: "${pidfile}" }
    run: ${JSON.stringify(escaping(pidfile, hog(20, 60000)))}
`,
        dir,
      );
      const r = await guild(['run', file, '--json', '--no-cache', '--progress', 'none'], { env: mode.env, cwd: dir });
      const doc = JSON.parse(r.stdout) as { tasks: { status: string; error: string }[] };
      assert.match(doc.tasks[0]!.error, /timed out after 2\.0s/, r.stderr);
      assert.equal(lines(pidfile).length, 2, 'the hog and the sleeper started');
      assert.deepEqual(withEnv(`CONTAIN_MARK=${mark}`), []);
      assert.deepEqual(cgroupsNamed(mark), []);
    });

    it('on SIGINT of a real guild run nothing survives', { timeout: 120_000 }, async () => {
      const dir = tempDir();
      const mark = newMark();
      const pidfile = join(dir, 'pids');
      const file = writeWorkflow(
        `kill_grace: 500ms
agents: { a: { memory: 50MB } }
tasks:
  - id: esc-${mark}
    agent: a
    env: { CONTAIN_MARK: "${mark}", HOG_PIDFILE: "${pidfile}" }
    run: ${JSON.stringify(escaping(pidfile, hog(20, 60000)))}
`,
        dir,
      );
      const child = spawn(process.execPath, [GUILD, 'run', file, '--json', '--no-cache', '--progress', 'none'], { cwd: dir, env: { ...process.env, ...mode.env } });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      await until(() => lines(pidfile).length === 2);
      child.kill('SIGINT');
      assert.equal(await exited, 130);
      const doc = JSON.parse(stdout) as { interrupted: boolean; tasks: { status: string }[] };
      assert.equal(doc.interrupted, true);
      assert.equal(doc.tasks[0]!.status, 'cancelled');
      assert.deepEqual(withEnv(`CONTAIN_MARK=${mark}`), []);
      assert.deepEqual(cgroupsNamed(mark), []);
    });

    it(`memory reads ${mode.name === 'cgroup' ? "'cgroup'" : "'tree-rss'"}; pause stops every process, escapees included, and resume lets them run`, { timeout: 120_000 }, async () => {
      const dir = tempDir();
      const mark = newMark();
      const pidfile = join(dir, 'pids');
      const probe = createSystemProbe();
      const executor = new ProcessExecutor({ probe, containment: mode.name === 'cgroup' ? control : null });
      const exec = executor.start({
        taskId: `esc-${mark}`,
        attempt: 1,
        timeoutMs: null,
        killGraceMs: 500,
        command: escaping(pidfile, hog(100, 60000)),
        cwd: dir,
        env: { ...process.env, CONTAIN_MARK: mark, HOG_PIDFILE: pidfile },
        logFile: join(dir, 'log'),
        runId: `test${process.pid}`,
      });
      try {
        assert.equal(exec.canPause, true);
        assert.equal(exec.lease.pid, exec.pid);
        assert.ok(exec.lease.startTime! > 0);
        assert.equal(exec.lease.cgroups.length, mode.name === 'cgroup' ? control!.hierarchies.length : 0);
        await until(() => (exec.memory()?.bytes ?? 0) >= 100 * MB && lines(pidfile).length === 2);
        const sample = exec.memory()!;
        assert.equal(sample.source, mode.name === 'cgroup' ? 'cgroup' : 'tree-rss');
        const pids = withEnv(`CONTAIN_MARK=${mark}`);
        for (const p of lines(pidfile)) assert.ok(pids.includes(p), `${p} is one of the task's processes`);

        assert.equal(exec.pause(), true);
        // Frozen processes read as D (cgroup freezer); stopped ones as T (SIGSTOP, the tree walk).
        const paused = mode.name === 'cgroup' && control!.hierarchies.some((h) => h.freezer) ? 'D' : 'T';
        // The kernel reports FREEZING until the last member has stopped: wait for the state, not a time.
        const fz = exec.lease.cgroups.find((d) => existsSync(join(d, 'freezer.state')));
        const frozen = (): boolean => !fz || readFileSync(join(fz, 'freezer.state'), 'utf8').trim() === 'FROZEN';
        await until(() => pids.every((p) => state(p) === paused) && (paused === 'T' || frozen()));
        exec.resume();
        await until(() => pids.every((p) => state(p) === 'S' || state(p) === 'R'));
      } finally {
        exec.kill('cancelled');
        const o = await exec.done;
        probe.close();
        assert.equal(o.killedBy, 'cancelled');
      }
      assert.deepEqual(withEnv(`CONTAIN_MARK=${mark}`), []);
      for (const d of exec.lease.cgroups) assert.equal(existsSync(d), false, `${d} removed`);
      assert.equal(exec.memory(), null, 'nothing to measure once done');
    });

    it("Guild's exit hook ends everything at once, escapees included", { timeout: 120_000 }, async () => {
      const dir = tempDir();
      const mark = newMark();
      const pidfile = join(dir, 'pids');
      const script = join(dir, 'owner.mjs');
      // An owner that starts the task and exits without stopping it: only the exit hook remains.
      writeFileSync(
        script,
        `import { ProcessExecutor } from ${JSON.stringify(join(ROOT, 'dist/src/executors/process-executor.js'))};
import { systemCgroupControl } from ${JSON.stringify(join(ROOT, 'dist/src/system/cgroup-control.js'))};
import { createSystemProbe } from ${JSON.stringify(join(ROOT, 'dist/src/system/probe.js'))};
import { readFileSync, existsSync } from 'node:fs';
const exec = new ProcessExecutor({ probe: createSystemProbe(), containment: systemCgroupControl() }).start({
  taskId: 'esc-${mark}', attempt: 1, timeoutMs: null, killGraceMs: 500, cwd: ${JSON.stringify(dir)},
  command: ${JSON.stringify(escaping(pidfile, hog(20, 60000)))},
  env: { ...process.env, CONTAIN_MARK: '${mark}', HOG_PIDFILE: ${JSON.stringify(pidfile)} }, logFile: ${JSON.stringify(join(dir, 'log'))},
});
console.log(JSON.stringify(exec.lease));
const lines = () => existsSync(${JSON.stringify(pidfile)}) ? readFileSync(${JSON.stringify(pidfile)}, 'utf8').split('\\n').filter(Boolean).length : 0;
const wait = () => (lines() === 2 && exec.memory() ? process.exit(0) : setTimeout(wait, 25));
wait();
`,
      );
      const out = await new Promise<string>((resolve) => {
        const c = spawn(process.execPath, [script], { env: { ...process.env, ...mode.env } });
        let s = '';
        c.stdout.on('data', (d: Buffer) => (s += d.toString()));
        c.on('close', () => resolve(s));
      });
      const lease = JSON.parse(out) as { cgroups: string[] };
      assert.equal(lines(pidfile).length, 2);
      // The hook sent SIGKILL to all of them before the owner exited; a loaded machine may still be
      // tearing one down: wait for them to go (a survivor fails the test by its timeout).
      await until(() => withEnv(`CONTAIN_MARK=${mark}`).length === 0);
      for (const d of lease.cgroups) assert.equal(existsSync(d), false, `${d} removed`);
    });
  });
}

describe('execution shapes', () => {
  it("stdio 'pipe' with no timeout: the child's streams, stderr also in the log; a recycle kill", { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const log = join(dir, 'server.log');
    const probe = createSystemProbe();
    const exec = new ProcessExecutor({ probe, containment: control }).start({
      taskId: 'server',
      attempt: 1,
      timeoutMs: null,
      killGraceMs: 500,
      command: 'echo oops >&2; exec cat',
      cwd: dir,
      env: process.env,
      stdio: 'pipe',
      logFile: log,
    });
    assert.ok(exec.stdio);
    let out = '';
    exec.stdio.stdout.on('data', (d: Buffer) => (out += d.toString()));
    exec.stdio.stdin.write('hello\n');
    await until(() => out === 'hello\n' && existsSync(log) && readFileSync(log, 'utf8') === 'oops\n');
    exec.kill('recycle');
    const o = await exec.done;
    probe.close();
    assert.equal(o.killedBy, 'recycle');
    assert.equal(o.error, 'recycled');
  });

  it('a function can be neither paused nor killed, has no memory of its own and no lease', async () => {
    const { FunctionExecutor } = await import('../src/executors/function-executor.js');
    const exec = new FunctionExecutor().start({ taskId: 'f', attempt: 1, timeoutMs: 2 ** 31, killGraceMs: 0, fn: () => 42 });
    assert.deepEqual(
      { canPause: exec.canPause, canKill: exec.canKill, memory: exec.memory(), lease: exec.lease, stdio: exec.stdio },
      { canPause: false, canKill: false, memory: null, lease: { cgroups: [], pid: null, startTime: null }, stdio: null },
    );
    // A timeout past setTimeout's range must not fire at once.
    assert.equal((await exec.done).error, null);
  });
});

describe('the cgroup backstop', { skip: control ? false : 'no cgroup can be made here' }, () => {
  it("sits above Guild's limit; when the kernel acts (Guild not watching), the outcome says so", { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const probe = createSystemProbe();
    // Nobody samples this execution: only the kernel limit (1.25 × 100 MB) stops the hog.
    const exec = new ProcessExecutor({ probe, containment: control }).start({
      taskId: 'hog',
      attempt: 1,
      timeoutMs: null,
      killGraceMs: 500,
      command: hog(300, 10_000),
      cwd: dir,
      env: process.env,
      logFile: join(dir, 'log'),
      limitBytes: 100 * MB,
    });
    const limitFile = exec.lease.cgroups.map((d) => join(d, 'memory.limit_in_bytes')).find((f) => existsSync(f)) ?? exec.lease.cgroups.map((d) => join(d, 'memory.max')).find((f) => existsSync(f))!;
    assert.equal(Number(readFileSync(limitFile, 'utf8')), Math.ceil(125 * MB / 4096) * 4096);
    const o = await exec.done;
    probe.close();
    assert.notEqual(o.exitCode, 0);
    assert.ok((o.oomKills ?? 0) >= 1, `oom kills: ${o.oomKills}`);
    assert.match(o.error!, /kernel's OOM killer/);
  });
});
