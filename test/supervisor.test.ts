/**
 * The supervisor alone, without a workflow: a long-lived server with pipes and no timeout,
 * watched, limited, paused, recycled through its owner's policy, governed, and reaped on close.
 * Real processes and the real probe.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { Supervisor, type Execution, type Measurement, type ExecOutcome, type KillNotice, type KillReason, type Supervised, type WatchOptions } from '../src/index.js';
import { ProcessExecutor } from '../src/executors/process-executor.js';
import { systemCgroupControl } from '../src/system/cgroup-control.js';
import { ProcReader } from '../src/system/proc-reader.js';
import { LinuxProbe, type MemorySnapshot } from '../src/system/probe.js';
import { parseProcStat, pidsInGroup } from '../src/system/process-tree.js';
import { MB, sleep } from './helpers.js';

/** What the test asks for: a long-lived server with pipes and no timeout. */
interface PipeRequest {
  taskId: string;
  attempt: number;
  /** null: no timeout (a long-lived server). */
  timeoutMs: number | null;
  killGraceMs: number;
  stdio: 'pipe';
}

type PipeExecution = Execution & { stdio: NonNullable<Execution['stdio']> };

/** A line server: `ping` answers; `grow N` holds N more MB (touched) and answers. */
const SERVER = `
const held = [];
require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => {
  const [cmd, n] = l.split(' ');
  if (cmd === 'grow') held.push(Buffer.alloc(Number(n) * 1048576, 1));
  process.stdout.write(cmd + ' ok ' + process.pid + '\\n');
});
`;

const groupAlive = (pgid: number): boolean => {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
};

const dir = mkdtempSync(join(tmpdir(), 'guild-supervisor-'));
const serverFile = join(dir, 'server.cjs');
writeFileSync(serverFile, SERVER);
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Guild's own ProcessExecutor with `stdio: 'pipe'` (a cgroup per server where the machine
 * allows, else the walked tree), running SERVER; it remembers each leader for the reap checks.
 */
class PipeExecutor {
  readonly pids: number[] = [];
  readonly #inner = new ProcessExecutor({ probe: new LinuxProbe(), containment: systemCgroupControl() });

  start(req: PipeRequest): PipeExecution {
    const exec = this.#inner.start({ ...req, command: `exec "${process.execPath}" "${serverFile}"`, cwd: dir, env: { ...process.env }, runId: `supervisor-test-${process.pid}` });
    this.pids.push(exec.pid!);
    return exec as PipeExecution;
  }
}

/** Sends one line and waits for the answer. */
function ask(exec: Execution, line: string): Promise<string> {
  const { stdin, stdout } = (exec as PipeExecution).stdio;
  return new Promise((resolve) => {
    const rl = createInterface({ input: stdout });
    rl.once('line', (answer) => {
      rl.close();
      resolve(answer);
    });
    stdin.write(`${line}\n`);
  });
}

const reader = new ProcReader();
const states = (pgid: number): string[] => pidsInGroup(pgid, reader).map((p) => parseProcStat(reader.readOnce(`/proc/${p}/stat`) ?? '')?.state ?? '?');

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !check(); await sleep(20)) if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
}

const request = (taskId: string, attempt = 1): PipeRequest => ({ taskId, attempt, timeoutMs: null, killGraceMs: 1000, stdio: 'pipe' });

function watch(id: string, more: Partial<WatchOptions<PipeRequest>> = {}): WatchOptions<PipeRequest> {
  return { id, priority: 'medium', reservationBytes: 100 * MB, limitBytes: null, onPressure: 'pause', ...more };
}

/** The real probe, except that the machine's memory use reads as `fraction` of its limit. */
class SteeredProbe extends LinuxProbe {
  fraction = 0.3;
  override memory(): MemorySnapshot {
    const m = super.memory();
    return { ...m, usedBytes: Math.round(m.limitBytes * this.fraction), availableBytes: Math.round(m.limitBytes * (1 - this.fraction)) };
  }
}

const probe = new LinuxProbe();
after(() => probe.close());

describe('the supervisor alone', () => {
  it('watches a long-lived server with pipes and no timeout, pauses and resumes it, reaps it on close', async () => {
    const pipe = new PipeExecutor();
    const supervisor = new Supervisor({ probe, executors: { pipe }, sampleIntervalMs: 50 });
    const samples: number[] = [];
    const h: Supervised<PipeRequest> = supervisor.start('pipe', request('server'), watch('server', { onSample: (b) => samples.push(b) }));
    const pid = h.pid!;
    assert.equal(await ask(h.execution, 'ping'), `ping ok ${pid}`);
    await until('three samples', () => samples.length >= 3);
    // Its own cgroup where the machine allows one (usage − inactive_file), else the walked tree.
    assert.equal(h.lastSample!.source, systemCgroupControl() ? 'cgroup' : 'tree-rss');
    // A cgroup is charged only the pages its members faulted in (the node binary's file pages may
    // be charged to whoever read them first), so a few MB; the tree's RSS counts them all.
    assert.ok(h.lastBytes! > 2 * MB, `measured ${h.lastBytes! / MB} MB`);
    await sleep(300);
    assert.ok(groupAlive(pid), 'no timeout ends it');

    assert.equal(supervisor.pause('server'), true);
    assert.equal(h.paused, true);
    await until('the group stopped', () => states(pid).length > 0 && states(pid).every((s) => s === 'T' || s === 'D'));
    const pausedSamples = samples.length;
    await sleep(150);
    assert.ok(samples.length > pausedSamples, 'a paused server is still measured');
    supervisor.resume('server');
    assert.equal(h.paused, false);
    assert.ok(h.pausedMs >= 150, `paused ${h.pausedMs} ms`);
    assert.equal(await ask(h.execution, 'ping'), `ping ok ${pid}`, 'it answers again');
    assert.ok(states(pid).every((s) => s !== 'T' && s !== 'D'));

    await supervisor.close();
    const o = await h.done;
    assert.equal(o.killedBy, 'cancelled');
    assert.equal(supervisor.size, 0);
    assert.equal(groupAlive(pid), false, 'nothing of it left');
  });

  it('kills a server that grows past its limit', async () => {
    const pipe = new PipeExecutor();
    const supervisor = new Supervisor({ probe, executors: { pipe }, sampleIntervalMs: 50 });
    const notices: KillNotice[] = [];
    const h = supervisor.start('pipe', request('hog'), watch('hog', { limitBytes: 150 * MB, onKill: (n) => notices.push(n) }));
    const pid = h.pid!;
    assert.match(await ask(h.execution, 'grow 10'), /^grow ok/);
    (h.execution as PipeExecution).stdio.stdin.write('grow 300\n');
    const o = await h.done;
    assert.equal(o.killedBy, 'limit');
    assert.equal(notices.length, 1);
    assert.equal(notices[0]!.reason, 'limit');
    assert.equal(notices[0]!.then, 'end');
    assert.ok(notices[0]!.bytes! > 150 * MB, `killed at ${notices[0]!.bytes! / MB} MB`);
    assert.equal(groupAlive(pid), false);
    assert.equal(supervisor.size, 0);
    await supervisor.close();
  });

  it("recycles a server through its owner's policy: over its limit, or when the owner asks", async () => {
    const pipe = new PipeExecutor();
    const supervisor = new Supervisor({ probe, executors: { pipe }, sampleIntervalMs: 50 });
    const ended: (KillReason | 'recycle' | null)[] = [];
    const replacements: Execution[] = [];
    let attempt = 1;
    const h = supervisor.start(
      'pipe',
      request('srv'),
      watch('srv', {
        onPressure: 'recycle',
        limitBytes: 150 * MB,
        restart: (o) => {
          ended.push(o.killedBy);
          return request('srv', ++attempt);
        },
        onRestart: (e) => replacements.push(e),
      }),
    );
    const first = h.pid!;
    (h.execution as PipeExecution).stdio.stdin.write('grow 300\n');
    await until('a replacement', () => replacements.length === 1);
    const second = h.pid!;
    assert.notEqual(second, first);
    assert.equal(replacements[0], h.execution, 'the handle now holds the replacement');
    assert.deepEqual(ended, ['recycle']);
    assert.equal(groupAlive(first), false, 'the old server is gone');
    assert.equal(await ask(h.execution, 'ping'), `ping ok ${second}`);

    supervisor.recycle('srv');
    await until('a second replacement', () => replacements.length === 2);
    assert.equal(h.restarts, 2);
    assert.equal(await ask(h.execution, 'ping'), `ping ok ${h.pid}`);

    await supervisor.close();
    assert.equal((await h.done).killedBy, 'cancelled');
    for (const pid of pipe.pids) assert.equal(groupAlive(pid), false, `${pid} reaped`);
  });

  it("carries out the governor's responses through each execution's policy", async () => {
    const steered = new SteeredProbe();
    const pipe = new PipeExecutor();
    const actions: string[] = [];
    const recycled: string[] = [];
    const supervisor = new Supervisor({
      probe: steered,
      executors: { pipe },
      sampleIntervalMs: 50,
      governance: {
        options: { holdMs: 100, cooldownMs: 100, onAction: (a) => actions.push(a.type === 'level' ? `level:${a.to}` : `${a.type}:${'id' in a ? a.id : ''}`) },
        admission: { setCap: () => undefined, setAdmission: () => undefined, setCaching: () => undefined },
        budgetBytes: 1024 * MB,
      },
    });
    // Oldest first: the oldest always keeps running; the youngest lowest-priority one dies first.
    const oldest = supervisor.start('pipe', request('oldest'), watch('oldest'));
    await sleep(20);
    const task = supervisor.start('pipe', request('task'), watch('task'));
    await sleep(20);
    let attempt = 1;
    const server = supervisor.start(
      'pipe',
      request('server'),
      watch('server', {
        priority: 'low',
        onPressure: 'recycle',
        restart: () => {
          recycled.push('server');
          return request('server', ++attempt);
        },
      }),
    );
    const serverPid = server.pid!;
    await until('measured', () => oldest.lastBytes !== null && task.lastBytes !== null && server.lastBytes !== null);

    steered.fraction = 0.99; // emergency
    await until('the server recycled', () => recycled.length === 1);
    steered.fraction = 0.3;
    assert.equal(task.paused || actions.includes('pause:task'), true, actions.join(','));
    assert.ok(actions.includes('kill:server'), actions.join(','));
    assert.equal(oldest.paused, false, 'the oldest keeps running');
    assert.equal(server.paused, false, 'a server is never paused: its callers would hang');
    assert.notEqual(server.pid, serverPid);
    await until('pressure fell and the task resumed', () => !task.paused);
    assert.ok(actions.includes('resume:task'), actions.join(','));

    await supervisor.close();
    steered.close();
    for (const pid of pipe.pids) assert.equal(groupAlive(pid), false, `${pid} reaped`);
  });

  it('measures an execution that is not local through its own memory(), and does to it only what it allows', async () => {
    const steered = new SteeredProbe();
    const paused: string[] = [];
    const killed: [string, KillReason][] = [];
    /** Runs "elsewhere": no pid, memory reported by the execution, may be killed but not paused. */
    const remote = {
      start(req: { taskId: string }): Execution {
        let end!: (o: ExecOutcome) => void;
        const done = new Promise<ExecOutcome>((r) => (end = r));
        return Object.assign(
          {
            pid: null,
            done,
            kill: (reason: KillReason) => {
              killed.push([req.taskId, reason]);
              end({ exitCode: null, signal: null, killedBy: reason, error: reason, durationMs: 1 });
            },
            pause: () => (paused.push(req.taskId), true),
            resume: () => undefined,
          },
          { canPause: false, canKill: true, memory: () => ({ bytes: 300 * MB, source: 'remote' as const, pids: [] }), lease: { cgroups: [], pid: null, startTime: null }, stdio: null },
        );
      },
    };
    const readings: Measurement[] = [];
    const supervisor = new Supervisor({
      probe: steered,
      executors: { remote },
      sampleIntervalMs: 20,
      governance: {
        options: { holdMs: 100, cooldownMs: 100 },
        admission: { setCap: () => undefined, setAdmission: () => undefined, setCaching: () => undefined },
        budgetBytes: 1024 * MB,
      },
      onMeasure: (m) => readings.push(m),
    });
    const a = supervisor.start('remote', { taskId: 'a' }, watch('a'));
    await sleep(10);
    const b = supervisor.start('remote', { taskId: 'b' }, watch('b', { priority: 'low' }));
    await until('both measured', () => a.lastBytes !== null && b.lastBytes !== null);
    assert.equal(b.lastSample!.source, 'remote');
    assert.equal(b.lastBytes, 300 * MB, 'not shown as 0 bytes');
    await until('a reading with both', () => readings.some((m) => m.totalBytes === 600 * MB));
    const r = readings.find((m) => m.totalBytes === 600 * MB)!.reading!;
    assert.deepEqual([r.reservedBytes, r.paidBytes, r.agentsBytes, r.overBytes], [200 * MB, 200 * MB, 600 * MB, 400 * MB]);

    steered.fraction = 0.99;
    const o = await b.done;
    assert.equal(o.killedBy, 'pressure');
    assert.deepEqual(killed, [['b', 'pressure']]);
    assert.deepEqual(paused, [], 'never paused: it cannot be');
    assert.equal(supervisor.get('a'), a, 'the oldest keeps running');
    await supervisor.close();
    assert.deepEqual(killed, [['b', 'pressure'], ['a', 'cancelled']]);
    steered.close();
  });
});
