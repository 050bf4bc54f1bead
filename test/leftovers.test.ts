import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { endLeftovers, realCgroupFiles, type CgroupFiles } from '../src/system/leftovers.js';
import { identityAlive, readProcStat } from '../src/system/process-identity.js';
import { spawn } from 'node:child_process';
import { alive, sleep, tempDir } from './helpers.js';

/**
 * A fake /proc and cgroupfs: processes are dirs with `stat` and `environ`; a cgroup is a dir with
 * `cgroup.procs` (and `freezer.state` on v1). The fake kernel: SIGKILL removes a process (from
 * /proc and every cgroup) unless it is in uninterruptible sleep; a frozen cgroup's members die
 * only once thawed, as on v1.
 */
class FakeSystem {
  readonly proc = join(tempDir('guild-fakeproc-'), 'proc');
  readonly cg = tempDir('guild-fakecg-');
  readonly signals: string[] = [];
  readonly unkillable = new Set<number>();
  /** pid → a child it forks when it is first signalled (a process that forks while being looked at). */
  readonly forksOnSignal = new Map<number, number>();
  readonly #pendingKill = new Set<number>();

  constructor() {
    mkdirSync(this.proc, { recursive: true });
  }

  spawn(pid: number, opts: { pgid?: number; start?: number; env?: Record<string, string>; state?: string; cgroup?: string } = {}): void {
    const dir = join(this.proc, String(pid));
    mkdirSync(dir, { recursive: true });
    // Fields 3… after "(comm) ": state ppid pgrp session tty tpgid flags minflt cminflt majflt
    // cmajflt utime stime cutime cstime priority nice threads itreal starttime(22) vsize…
    const rest = [opts.state ?? 'S', 1, opts.pgid ?? pid, opts.pgid ?? pid, 0, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, 1, 0, opts.start ?? 1000, 0, 0];
    writeFileSync(join(dir, 'stat'), `${pid} (odd ) name) ${rest.join(' ')}\n`);
    const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}\0`).join('');
    writeFileSync(join(dir, 'environ'), env);
    if (opts.cgroup) writeFileSync(join(opts.cgroup, 'cgroup.procs'), `${this.procsOf(opts.cgroup).concat(pid).join('\n')}\n`);
  }

  cgroup(name: string, v1Freezer = false): string {
    const dir = join(this.cg, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'cgroup.procs'), '');
    if (v1Freezer) writeFileSync(join(dir, 'freezer.state'), 'THAWED\n');
    return dir;
  }

  procsOf(dir: string): number[] {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  }

  alive(pid: number): boolean {
    return existsSync(join(this.proc, String(pid)));
  }

  readonly kill = (pid: number, signal: NodeJS.Signals): boolean => {
    this.signals.push(`${signal} ${pid}`);
    const targets = pid < 0 ? this.members(-pid) : this.alive(pid) ? [pid] : [];
    for (const p of targets) {
      const child = this.forksOnSignal.get(p);
      if (child !== undefined) {
        this.forksOnSignal.delete(p);
        this.spawn(child, { env: this.envOf(p) });
      }
      if (signal !== 'SIGKILL' || this.unkillable.has(p)) continue;
      if (this.frozenCgroupOf(p)) this.#pendingKill.add(p);
      else this.#reap(p);
    }
    return targets.length > 0;
  };

  readonly files: CgroupFiles = {
    ...realCgroupFiles,
    write: (path, text) => {
      writeFileSync(path, `${text}\n`);
      if (path.endsWith('freezer.state') && text === 'THAWED') {
        for (const p of [...this.#pendingKill]) if (!this.frozenCgroupOf(p)) (this.#pendingKill.delete(p), this.#reap(p));
      }
      return true;
    },
    // The kernel refuses to remove a cgroup that still holds processes; control files do not count.
    rmdir: (dir) => {
      if (!existsSync(dir) || this.procsOf(dir).length > 0) return false;
      if (readdirSync(dir, { withFileTypes: true }).some((e) => e.isDirectory())) return false;
      rmSync(dir, { recursive: true });
      return true;
    },
  };

  members(pgid: number): number[] {
    return readdirSync(this.proc)
      .map(Number)
      .filter((p) => readProcStat(p, this.proc)?.pgid === pgid);
  }

  envOf(pid: number): Record<string, string> {
    const text = readFileSync(join(this.proc, String(pid), 'environ'), 'latin1');
    return Object.fromEntries(text.split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  }

  frozenCgroupOf(pid: number): boolean {
    return this.cgroupsHolding(pid).some((d) => existsSync(join(d, 'freezer.state')) && readFileSync(join(d, 'freezer.state'), 'utf8').trim() === 'FROZEN');
  }

  cgroupsHolding(pid: number): string[] {
    const out: string[] = [];
    const walk = (dir: string): void => {
      if (existsSync(join(dir, 'cgroup.procs')) && this.procsOf(dir).includes(pid)) out.push(dir);
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(join(dir, e.name));
    };
    walk(this.cg);
    return out;
  }

  #reap(pid: number): void {
    rmSync(join(this.proc, String(pid)), { recursive: true, force: true });
    for (const d of this.cgroupsHolding(pid)) writeFileSync(join(d, 'cgroup.procs'), this.procsOf(d).filter((p) => p !== pid).join('\n'));
  }
}

const opts = (f: FakeSystem) => ({ procRoot: f.proc, kill: f.kill, cgroupFiles: f.files, selfPid: 1, sleep: async () => undefined, rounds: 5 });

describe('endLeftovers (fake /proc and cgroupfs)', () => {
  it('ends every process carrying the run id, stopping each before any is killed, and nothing else', async () => {
    const f = new FakeSystem();
    f.spawn(101, { env: { PATH: '/bin', GUILD_RUN_ID: 'dead' } });
    f.spawn(102, { env: { GUILD_RUN_ID: 'other' } });
    f.spawn(103, { env: { GUILD_RUN_ID: 'dead2' } }); // a longer id that starts with the dead one
    f.spawn(104, { env: { NOT_GUILD_RUN_ID: 'dead' } });
    f.spawn(1, { env: { GUILD_RUN_ID: 'dead' } }); // the caller itself
    const r = await endLeftovers('dead', [], opts(f));
    assert.deepEqual(r.killed, [101]);
    assert.deepEqual(r.survivors, []);
    assert.ok(!f.alive(101));
    for (const p of [102, 103, 104, 1]) assert.ok(f.alive(p), `${p} untouched`);
    assert.deepEqual(f.signals, ['SIGSTOP 101', 'SIGKILL 101']);
  });

  it('a process that forks while being looked at: the child is found by the next look and killed too', async () => {
    const f = new FakeSystem();
    f.spawn(201, { env: { GUILD_RUN_ID: 'dead' } });
    f.forksOnSignal.set(201, 202);
    const r = await endLeftovers('dead', [], opts(f));
    assert.deepEqual(r.killed, [201, 202]);
    assert.ok(!f.alive(201) && !f.alive(202));
    // Both were stopped before the first kill: nothing could be born between a look and the kill.
    const firstKill = f.signals.findIndex((s) => s.startsWith('SIGKILL'));
    assert.ok(f.signals.indexOf('SIGSTOP 202') < firstKill, f.signals.join(', '));
  });

  it("kills a leader's process group only while its start time still matches (a reused pid is someone else)", async () => {
    const f = new FakeSystem();
    f.spawn(300, { start: 5000 });
    f.spawn(301, { pgid: 300, start: 5001 }); // its child, env cleared
    f.spawn(400, { start: 9999 }); // pid 400 was our leader at tick 6000; now an unrelated process
    f.spawn(500, { start: 7000, state: 'Z' }); // a zombie leader: dead already
    const r = await endLeftovers('dead', [
      { cgroups: [], pid: 300, startTime: 5000 },
      { cgroups: [], pid: 400, startTime: 6000 },
      { cgroups: [], pid: 500, startTime: 7000 },
      { cgroups: [], pid: null, startTime: null },
    ], opts(f));
    assert.deepEqual(r.groups, [300]);
    assert.ok(!f.alive(300) && !f.alive(301));
    assert.ok(f.alive(400), 'a reused pid is never signalled');
    assert.ok(!f.signals.some((s) => s.endsWith(' 400') || s.endsWith(' -400') || s.endsWith(' 500') || s.endsWith(' -500')), f.signals.join(', '));
    assert.ok(f.signals.indexOf('SIGSTOP -300') < f.signals.indexOf('SIGKILL -300'));
  });

  it('cgroup v1: freezes, kills what is inside (children first), thaws, and removes the dirs', async () => {
    const f = new FakeSystem();
    const task = f.cgroup('guild/task-a', true);
    const sub = f.cgroup('guild/task-a/nested', true);
    const mem = f.cgroup('memory/task-a'); // the same attempt in the memory hierarchy
    f.spawn(601, { cgroup: task, pgid: 601 });
    f.spawn(602, { cgroup: task, pgid: 999 }); // left its group (set -m), env cleared
    f.spawn(603, { cgroup: sub });
    writeFileSync(join(mem, 'cgroup.procs'), '601\n602\n');
    const r = await endLeftovers('dead', [{ cgroups: [mem, task], pid: null, startTime: null }], opts(f));
    assert.deepEqual(r.killed, [601, 602, 603]);
    for (const p of [601, 602, 603]) assert.ok(!f.alive(p), `${p} ended`);
    assert.deepEqual(r.cgroupsLeft, []);
    assert.deepEqual(r.cgroupsRemoved, [sub, task, mem], 'the freezer dir first, children before parents');
    for (const d of [sub, task, mem]) assert.ok(!existsSync(d));
  });

  it('reports what will not die, and a second call finds nothing', async () => {
    const f = new FakeSystem();
    const task = f.cgroup('stuck');
    f.spawn(701, { env: { GUILD_RUN_ID: 'dead' }, state: 'D' });
    f.unkillable.add(701);
    f.spawn(702, { cgroup: task });
    f.unkillable.add(702);
    const r = await endLeftovers('dead', [{ cgroups: [task], pid: null, startTime: null }], opts(f));
    assert.deepEqual(r.survivors, [701, 702]);
    assert.deepEqual(r.cgroupsLeft, [task]);
    f.unkillable.clear();
    await endLeftovers('dead', [{ cgroups: [task], pid: null, startTime: null }], opts(f));
    const again = await endLeftovers('dead', [{ cgroups: [task], pid: null, startTime: null }], opts(f));
    assert.deepEqual(again, { killed: [], groups: [], cgroupsRemoved: [], cgroupsLeft: [], survivors: [] });
  });
});

describe('process identity', () => {
  it('alive means same pid, same start time, not a zombie', () => {
    const f = new FakeSystem();
    f.spawn(10, { start: 42 });
    f.spawn(11, { start: 43, state: 'Z' });
    assert.equal(identityAlive({ pid: 10, startTime: 42 }, f.proc), true);
    assert.equal(identityAlive({ pid: 10, startTime: 41 }, f.proc), false);
    assert.equal(identityAlive({ pid: 11, startTime: 43 }, f.proc), false);
    assert.equal(identityAlive({ pid: 12, startTime: 42 }, f.proc), false);
    assert.deepEqual(readProcStat(10, f.proc), { state: 'S', pgid: 10, startTime: 42 });
    // The real /proc: this process.
    const me = readProcStat(process.pid);
    assert.ok(me !== null && me.startTime > 0);
  });
});

/** This process's cgroup dir in a v1 hierarchy, or null when that hierarchy is not mounted. */
function ownV1Dir(controller: string): string | null {
  const line = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.split(':')[1]?.split(',').includes(controller));
  const dir = line ? join('/sys/fs/cgroup', controller, line.split(':')[2]!) : null;
  return dir && existsSync(join(dir, 'cgroup.procs')) ? dir : null;
}

describe('endLeftovers (real cgroup v1, where Guild may create cgroups)', () => {
  it('a task tree that left its session and cleared its environment is ended through its freezer and memory cgroups', async (t) => {
    const freezer = ownV1Dir('freezer');
    const memory = ownV1Dir('memory');
    const frz = freezer && join(freezer, `guild-lease-test-${process.pid}`);
    const mem = memory && join(memory, `guild-lease-test-${process.pid}`);
    try {
      if (!frz || !mem) throw new Error('no v1 freezer and memory hierarchies');
      mkdirSync(frz);
      mkdirSync(mem);
    } catch (e) {
      return t.skip(`cannot create cgroups here: ${(e as Error).message}`);
    }
    try {
      // Joins both cgroups before it execs anything, then escapes every other way: new session,
      // empty environment, two backgrounded children.
      const child = spawn('/bin/sh', ['-c', `echo $$ > ${frz}/cgroup.procs; echo $$ > ${mem}/cgroup.procs; exec env -i setsid sh -c 'sleep 300 & sleep 301 & wait'`], { detached: true, stdio: 'ignore' });
      child.unref();
      const procs = (): number[] => readFileSync(join(frz, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
      for (let i = 0; i < 400 && procs().length < 3; i++) await sleep(25);
      const inside = procs();
      assert.equal(inside.length, 3, 'sh and two sleeps are inside');
      const r = await endLeftovers('no-such-run', [{ cgroups: [mem, frz], pid: null, startTime: null }]);
      assert.deepEqual(r.killed, [...inside].sort((a, b) => a - b));
      assert.deepEqual(r.survivors, []);
      assert.deepEqual(r.cgroupsRemoved, [frz, mem]);
      for (const pid of inside) assert.equal(alive(pid), false, `pid ${pid} survived`);
    } finally {
      for (const d of [frz, mem]) {
        if (existsSync(d)) {
          for (const p of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) process.kill(Number(p), 'SIGKILL');
          if (d === frz) writeFileSync(join(d, 'freezer.state'), 'THAWED');
        }
      }
      await sleep(50);
      for (const d of [frz, mem]) {
        try {
          if (existsSync(d)) rmdirSync(d);
        } catch {
          /* still busy: left for the machine's owner */
        }
      }
    }
  });
});
