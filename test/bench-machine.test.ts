/**
 * The machine kept quiet while `guild bench` measures: the machine-wide bench lock (waiting,
 * taking over a dead holder's, letting the benchmark's own children through, `guild run` waiting
 * for it) and the watch that marks an iteration measured under outside pressure.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MachineWatch, type MachineWatchSources } from '../src/regression/quiet.js';
import { acquireBenchLock, benchLockHolder, foreignBenchHolder, HELD_ENV, waitWhileBenchLocked } from '../src/system/bench-lock.js';
import { treeCpuTicks } from '../src/system/machine-load.js';
import { guild, sleep, tempDir, writeWorkflow } from './helpers.js';

/** A process that holds the lock file `file` until killed, started as a separate Node. */
function holder(file: string): Promise<{ pid: number; kill(sig?: NodeJS.Signals): void; exited: Promise<void> }> {
  const code = `import('${new URL('../src/system/bench-lock.js', import.meta.url).href}').then(async (m) => { await m.acquireBenchLock({ file: ${JSON.stringify(file)} }); process.stdout.write('held\\n'); setInterval(() => {}, 1000); });`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return new Promise((resolve) => {
    child.stdout.once('data', () => resolve({ pid: child.pid!, kill: (sig = 'SIGTERM') => void child.kill(sig), exited }));
  });
}

describe('the bench lock', () => {
  it('one holder at a time: a second waits (told who holds it) until the first releases', async () => {
    const file = join(tempDir(), 'bench.lock');
    const h = await holder(file);
    assert.equal(benchLockHolder(file)?.pid, h.pid);
    const waits: number[] = [];
    let got = false;
    const p = acquireBenchLock({ file, pollMs: 20, onWait: (x) => waits.push(x.pid) }).then((l) => ((got = true), l));
    await sleep(300);
    assert.equal(got, false, 'must wait while a live process holds the lock');
    assert.deepEqual(waits, [h.pid], 'told once who holds it');
    h.kill();
    const lock = await p;
    assert.equal(benchLockHolder(file)?.pid, process.pid);
    assert.equal(process.env[HELD_ENV]?.startsWith(`${process.pid}:`), true, 'children learn the lock is their parent’s');
    lock.release();
    assert.equal(existsSync(file), false);
    assert.equal(process.env[HELD_ENV], undefined);
  });

  it('a holder killed with SIGKILL leaves a stale file: the next one takes it over at once', async () => {
    const file = join(tempDir(), 'bench.lock');
    const h = await holder(file);
    h.kill('SIGKILL');
    await h.exited;
    assert.ok(existsSync(file), 'the dead holder’s file is still there');
    const lock = await acquireBenchLock({ file, wait: false });
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).pid, process.pid);
    lock.release();
    // Garbage in the file is stale too.
    writeFileSync(file, 'not json');
    assert.equal(benchLockHolder(file), null);
    assert.equal(existsSync(file), false);
  });

  it('waitWhileBenchLocked: returns at once for the holder itself and for what it started, waits for anyone else, and can be aborted', async () => {
    const file = join(tempDir(), 'bench.lock');
    const mine = await acquireBenchLock({ file });
    await waitWhileBenchLocked({ file }); // our own lock
    assert.equal(foreignBenchHolder(file), null);
    mine.release();
    const h = await holder(file);
    const ac = new AbortController();
    const waited = waitWhileBenchLocked({ file, pollMs: 20, signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(waited, { name: 'AbortError' });
    // A child of the holder (its env says so) does not wait for its own parent.
    const st = readFileSync(`/proc/${h.pid}/stat`, 'utf8');
    const startTime = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[19]);
    process.env[HELD_ENV] = `${h.pid}:${startTime}`;
    try {
      assert.equal(foreignBenchHolder(file), null);
      // …and a `guild bench` it started measures inside its parent's lock, leaving it the parent's.
      const nested = await acquireBenchLock({ file, wait: false });
      nested.release();
      assert.equal(benchLockHolder(file)?.pid, h.pid);
    } finally {
      delete process.env[HELD_ENV];
    }
    assert.equal(foreignBenchHolder(file)?.pid, h.pid);
    const released = waitWhileBenchLocked({ file, pollMs: 20 });
    setTimeout(() => h.kill(), 100);
    await released;
  });

  it('guild run waits while another process measures, saying so; with --no-wait it refuses (exit 1)', async () => {
    const file = join(tempDir(), 'bench.lock');
    const env = { GUILD_BENCH_LOCK: file };
    const wf = writeWorkflow('agents: { t: {} }\ntasks:\n  - { id: a, agent: t, run: "true" }\n');
    const h = await holder(file);
    const refused = await guild(['run', wf, '--no-wait', '--no-telemetry'], { env });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, new RegExp(`guild bench \\(pid ${h.pid}\\) is measuring on this machine; not waiting`));
    const t0 = Date.now();
    // The holder lets go only once the run says it waits (a loaded machine may take seconds to start node).
    let said!: () => void;
    const saidWaiting = new Promise<void>((resolve) => (said = resolve));
    const waiting = guild(['run', wf, '--no-telemetry'], { env, onStderr: (text) => void (/waiting for it to finish/.test(text) && said()) });
    await Promise.all([saidWaiting, sleep(1000)]);
    h.kill();
    const r = await waiting;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Date.now() - t0 >= 1000, 'it waited for the holder');
    assert.match(r.stderr, /is measuring on this machine; waiting for it to finish/);
  });
});

/** Sources whose readings a test sets before stop(). */
function fake(): MachineWatchSources & { set(o: Partial<Record<'busy' | 'tree' | 'psiMemory' | 'psiCpu' | 'now' | 'mem', number | null>>): void } {
  const v = { busy: 0 as number | null, tree: 0, psiMemory: 0 as number | null, psiCpu: 0 as number | null, now: 0, mem: 8e9 as number | null };
  return {
    set: (o) => Object.assign(v, o),
    busyTicks: () => v.busy,
    treeTicks: () => v.tree,
    load1: () => 1.5,
    memAvailable: () => v.mem,
    psiSome: (r) => (r === 'memory' ? v.psiMemory : v.psiCpu),
    now: () => v.now,
  };
}

describe('the machine while an iteration is measured', () => {
  it('Guild’s own CPU is not outside pressure: busy ticks of its tree are subtracted', () => {
    const s = fake();
    const w = new MachineWatch(s);
    w.start();
    // 10 s; the machine was busy 150 ticks (1.5 core-seconds), all of it Guild's tree's.
    s.set({ now: 10_000, busy: 150, tree: 150, psiCpu: 4_000_000 });
    const m = w.stop();
    assert.equal(m.outsideCpuCores, 0);
    assert.equal(m.psiCpuSome, 0.4, 'recorded, but CPU stalls of its own tasks do not disturb');
    assert.equal(m.disturbed, false);
    assert.deepEqual(m.reasons, []);
  });

  it('another process’s CPU above half a core, or memory stalls above 5 %, mark the iteration disturbed, saying why', () => {
    const s = fake();
    const w = new MachineWatch(s);
    w.start();
    s.set({ now: 2_000, busy: 250, tree: 50, psiMemory: 200_000, mem: 1e9 });
    const m = w.stop();
    assert.equal(m.outsideCpuCores, 1);
    assert.equal(m.psiMemorySome, 0.1);
    assert.equal(m.memAvailableBytes, 1e9, 'the lowest available memory seen');
    assert.equal(m.disturbed, true);
    assert.deepEqual(m.reasons, ['other processes used 1.00 cores', 'memory stalls 10.0 % of the time (PSI)']);
    const quiet = new MachineWatch(fake());
    quiet.start();
    assert.equal(quiet.stop().disturbed, false, 'no PSI and no load: quiet');
  });

  it('for real: a busy process outside Guild’s tree disturbs; the same work inside it does not', { skip: !existsSync('/proc/stat') && 'no /proc/stat' }, async () => {
    const busy = 'const e = Date.now() + 1500; while (Date.now() < e);';
    // Inside: our own child.
    let w = new MachineWatch();
    w.start();
    spawnSync(process.execPath, ['-e', busy]);
    const inside = w.stop();
    // Outside: the shell exits at once, so the busy Node is reparented away from this tree.
    w = new MachineWatch();
    w.start();
    spawnSync('/bin/sh', ['-c', `"${process.execPath}" -e '${busy}' >/dev/null 2>&1 &`]);
    await sleep(1500);
    await sleep(200);
    const outside = w.stop();
    assert.ok(outside.outsideCpuCores > 0.5, `outside: ${outside.outsideCpuCores.toFixed(2)} cores`);
    assert.equal(outside.disturbed, true);
    assert.ok(inside.outsideCpuCores < outside.outsideCpuCores - 0.4, `inside ${inside.outsideCpuCores.toFixed(2)} vs outside ${outside.outsideCpuCores.toFixed(2)}`);
    assert.ok(treeCpuTicks(process.pid) > 100, 'the reaped child’s CPU counts in this tree');
  });
});
