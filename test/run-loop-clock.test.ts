/**
 * The whole run loop driven by a fake clock, a fake executor and a fake probe: no process, no
 * real timer decides anything. Every wait (retry backoff, sampling) passes only when the test
 * advances the clock.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runWorkflow, type Clock } from '../src/index.js';
import type { Execution, ExecOutcome, Executor } from '../src/executors/executor.js';
import type { ProcessRequest } from '../src/executors/process-executor.js';
import type { MemorySnapshot, SystemProbe } from '../src/system/probe.js';
import type { TreeSample } from '../src/system/process-tree.js';
import type { RunEvent } from '../src/workflow/events.js';
import { MB, tempDir } from './helpers.js';

/** Time moves only when `advance` is called; due timers fire in order, each at its own instant. */
class FakeClock implements Clock {
  #now = 5_000; // not zero: the run must measure from its own start
  #seq = 0;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, ms: number): { cancel(): void } {
    const id = this.#seq++;
    this.#timers.set(id, { at: this.#now + ms, fn });
    return { cancel: () => void this.#timers.delete(id) };
  }

  /** Fires every timer due within `ms`, letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].at <= target && (next === undefined || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.#timers.delete(next[0]);
      this.#now = next[1].at;
      next[1].fn();
      await settle();
    }
    this.#now = target;
    await settle();
  }
}

/** Lets every pending promise chain run (the loop reacts to endings in microtasks and I/O callbacks). */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

/** A machine with 8 GiB, 2 used; every live fake pid holds 50 MB. */
class FakeProbe implements SystemProbe {
  readonly live = new Set<number>();
  memory(): MemorySnapshot {
    const limit = 8192 * MB;
    return { source: 'meminfo', cgroupDir: null, limitBytes: limit, usedBytes: 2048 * MB, availableBytes: 6144 * MB, hostTotalBytes: limit, hostAvailableBytes: 6144 * MB, oomKills: 0 };
  }
  cpu() {
    return { cores: 4, source: 'online-cpus' as const };
  }
  cpuUsage(): number | null {
    return null;
  }
  psi() {
    return null;
  }
  tree(pid: number): TreeSample {
    return this.live.has(pid) ? { rssBytes: 50 * MB, pids: [pid] } : { rssBytes: 0, pids: [] };
  }
  forget(): void {}
  selfRss(): number {
    return 60 * MB;
  }
  close(): void {}
}

interface Started {
  name: string;
  at: number;
  end(exitCode: number): void;
}

/** Starts nothing: records each attempt and lets the test end it with an exit code. */
class FakeExecutor implements Executor<ProcessRequest> {
  readonly started: Started[] = [];
  #pid = 1000;
  constructor(
    readonly clock: FakeClock,
    readonly probe: FakeProbe,
  ) {}

  start(req: ProcessRequest): Execution {
    const pid = this.#pid++;
    const t0 = this.clock.now();
    this.probe.live.add(pid);
    let resolve!: (o: ExecOutcome) => void;
    const done = new Promise<ExecOutcome>((r) => (resolve = r));
    const finish = (o: Omit<ExecOutcome, 'durationMs'>): void => {
      this.probe.live.delete(pid);
      resolve({ ...o, durationMs: this.clock.now() - t0 });
    };
    this.started.push({
      name: `${req.taskId}#${req.attempt}`,
      at: t0,
      end: (exitCode) => finish({ exitCode, signal: null, killedBy: null, error: exitCode === 0 ? null : `exited with code ${exitCode}` }),
    });
    return {
      pid,
      done,
      kill: (reason) => finish({ exitCode: null, signal: 'SIGTERM', killedBy: reason, error: reason }),
      pause: () => true,
      resume: () => undefined,
      canPause: true,
      canKill: true,
      memory: () => {
        const t = this.probe.tree(pid);
        return t.pids.length === 0 ? null : { bytes: t.rssBytes, source: 'tree-rss', pids: t.pids };
      },
      lease: { cgroups: [], pid, startTime: null },
      stdio: null,
    };
  }

  get(name: string): Started {
    const s = this.started.find((x) => x.name === name);
    assert.ok(s, `${name} started (started: ${this.names().join(', ')})`);
    return s;
  }

  names(): string[] {
    return this.started.map((s) => s.name);
  }
}

describe('the run loop on a fake clock', () => {
  it('starts by dependencies, retries only once the backoff has passed on the clock, and reports', async () => {
    const clock = new FakeClock();
    const probe = new FakeProbe();
    const executor = new FakeExecutor(clock, probe);
    const events: RunEvent[] = [];
    const t0 = clock.now();
    const run = runWorkflow(
      {
        budget: '1GB',
        agents: { a: { memory: '100MB', cpu: 0.1 } },
        tasks: [
          { id: 'build', agent: 'a', run: 'make build', retries: 1 },
          { id: 'lint', agent: 'a', run: 'make lint' },
          { id: 'test', agent: 'a', run: 'make test', needs: ['build'] },
        ],
      },
      { dir: tempDir(), store: false, telemetry: false, probe, clock, executors: { process: executor }, onEvent: (e) => events.push(e) },
    );
    await settle();
    assert.deepEqual(executor.names(), ['build#1', 'lint#1'], 'independent tasks start at once, in declaration order');

    // Past one sampling interval (200 ms): a tick sees both trees at once.
    await clock.advance(250);
    executor.get('build#1').end(1);
    executor.get('lint#1').end(0);
    await settle();
    const failedAt = clock.now() - t0;
    // Backoff: retryBackoffMs (1 s) × 2^(attempt − 1).
    await clock.advance(999);
    assert.deepEqual(executor.names(), ['build#1', 'lint#1'], 'no retry before the backoff has passed');
    await clock.advance(1);
    assert.deepEqual(executor.names(), ['build#1', 'lint#1', 'build#2']);
    assert.equal(executor.get('build#2').at - t0, failedAt + 1000, 'the retry starts when the clock reaches the backoff');

    await clock.advance(400);
    assert.ok(!executor.names().includes('test#1'), 'the dependent waits for its dependency');
    executor.get('build#2').end(0);
    await settle();
    assert.deepEqual(executor.names(), ['build#1', 'lint#1', 'build#2', 'test#1']);
    await clock.advance(250);
    executor.get('test#1').end(0);
    const report = await run;

    assert.equal(report.ok, true);
    const byId = new Map(report.tasks.map((t) => [t.id, t]));
    assert.deepEqual(
      report.tasks.map((t) => [t.id, t.status, t.attempts]),
      [
        ['build', 'succeeded', 2],
        ['lint', 'succeeded', 1],
        ['test', 'succeeded', 1],
      ],
    );
    // Every time is run time on the fake clock.
    assert.equal(byId.get('build')!.started_ms, 0);
    assert.equal(byId.get('build')!.duration_ms, 250 + 400, 'busy time of both attempts, not the backoff');
    assert.equal(byId.get('test')!.started_ms, failedAt + 1000 + 400);
    assert.equal(byId.get('test')!.ended_ms, failedAt + 1000 + 400 + 250);
    assert.equal(report.makespan_ms, failedAt + 1000 + 400 + 250);
    assert.equal(byId.get('build')!.peak_rss_bytes, 50 * MB, 'measured through the fake probe');
    assert.equal(report.peak_rss_bytes, 100 * MB, 'two trees of 50 MB at once');
    assert.ok(report.samples >= 5, `sampled on the fake clock: ${report.samples}`);
    assert.deepEqual(report.counts, { succeeded: 3, cached: 0, failed: 0, skipped: 0, cancelled: 0 });
    assert.equal(report.pressure.highest, 'optimal');
    assert.equal(report.guild_kills, 0);

    const ends = events.filter((e): e is Extract<RunEvent, { type: 'task-end' }> => e.type === 'task-end').map((e) => `${e.id}#${e.attempt}:${e.status}`);
    assert.deepEqual(ends, ['build#1:retrying', 'lint#1:succeeded', 'build#2:succeeded', 'test#1:succeeded']);
    assert.equal(events[events.length - 1]!.type, 'run-end');
  });
});
