/**
 * The CPU KPI inside RunTelemetry, fed with recorded events and a fake CPU-time reader: the agents'
 * share is what Guild reaped since the run began plus the trees still running, over the run time
 * and the configured cores; lowering max_parallel is advised only on a saturated machine. The
 * real reader is checked against real processes at the end.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { createCpuTimes, parseStatTimes, type CpuTimes } from '../src/system/cpu-times.js';
import { RunTelemetry } from '../src/telemetry/run-telemetry.js';
import type { KpiScore } from '../src/telemetry/state.js';
import { loadConfig } from '../src/workflow/run-workflow.js';
import type { RunEvent } from '../src/workflow/events.js';
import type { RunReport } from '../src/workflow/report.js';
import { MB, writeWorkflow } from './helpers.js';

const GB = 1024 * MB;
const health = { event_loop_delay_p50_ms: 1, event_loop_delay_p99_ms: 2, event_loop_delay_max_ms: 3, gc_count: 0, gc_pause_total_ms: 0, gc_pause_max_ms: 0 };

/** A CPU-time reader the test moves by hand; it records which trees were read. */
class FakeCpuTimes implements CpuTimes {
  own = 50;
  reaped = 100;
  readonly trees = new Map<number, number>();
  readonly walked: number[] = [];
  self(): { ownSeconds: number; reapedSeconds: number } {
    return { ownSeconds: this.own, reapedSeconds: this.reaped };
  }
  tree(pid: number): number {
    this.walked.push(pid);
    return this.trees.get(pid) ?? 0;
  }
}

function setup(cpuTimes: CpuTimes | null): { telemetry: RunTelemetry; cores: number } {
  const file = writeWorkflow(`agents:
  burner: { memory: 50MB }
tasks:
  - { id: a, agent: burner, run: "true" }
`);
  const config = loadConfig(file);
  return { telemetry: new RunTelemetry(config, { store: false, cpuTimes }), cores: config.cores };
}

function sample(t: number, cpu: number, pids: number[]): RunEvent {
  return {
    type: 'sample',
    t,
    totalRssBytes: 0,
    reservedBytes: 0,
    budgetBytes: GB,
    availableBytes: 4 * GB,
    queued: 0,
    running: pids.map((pid) => ({ id: `t${pid}`, agent: 'burner', pid, rssBytes: MB, elapsedMs: t, attempt: 1 })),
    done: 0,
    total: 1,
    blocked: null,
    level: 'optimal',
    paused: 0,
    usedBytes: GB,
    limitBytes: 8 * GB,
    cpu,
    guildRssBytes: 70 * MB,
    guildHealth: health,
    denied: { memory: 0, cpu: 0 },
    cacheRequests: [],
  };
}

const report = (makespanMs: number): RunReport =>
  ({ run_id: 'r1', makespan_ms: makespanMs, lower_bound: { chain_ms: 0, memory_ms: 0, cpu_ms: 0 }, cache: { hits: 0, misses: 0, hit_rate: null, saved_ms: 0 }, guild_health: { rss_peak_bytes: 70 * MB, ...health }, alerts: [] }) as unknown as RunReport;

const cpuOf = (scores: readonly KpiScore[]): KpiScore => scores.find((s) => s.kpi === 'cpu')!;

describe("RunTelemetry's CPU KPI", () => {
  it("live: reaped since the run began plus the running trees; final: what was reaped, over the makespan; Guild's own time apart", async () => {
    const fake = new FakeCpuTimes();
    const { telemetry, cores } = setup(fake);
    fake.reaped = 120; // reaped before this run: not its agents'
    telemetry.onEvent({ type: 'run-start', runId: 'r1', t: 0, tasks: 1, budgetBytes: GB, logDir: null, instructionsFile: null, warnings: [] });
    for (let t = 200; t <= 6000; t += 200) telemetry.onEvent(sample(t, 0.5, [4242, 1, process.pid]));
    fake.trees.set(4242, 0.3 * 6 * cores); // the running tree: 30 % of the cores over 6 s
    const live = cpuOf(telemetry.kpis().scores);
    assert.equal(live.value, 0.3);
    assert.equal(live.score, 'excellent');
    assert.deepEqual([...new Set(fake.walked)], [4242], 'pid 1 and Guild itself are never walked as trees');

    // The tree ended and Guild reaped it, with a little more use; Guild itself used 2 s.
    fake.trees.clear();
    fake.reaped = 120 + 0.5 * 10 * cores;
    fake.own = 52;
    for (let t = 6200; t <= 10_000; t += 200) telemetry.onEvent(sample(t, 0.5, []));
    const full = await telemetry.finish(report(10_000));
    const c = cpuOf(full.kpis!.scores);
    assert.deepEqual([c.value, c.score, c.samples], [0.5, 'excellent', 50]);
    assert.equal(c.note, `share of ${cores} core${cores === 1 ? '' : 's'} used by Guild's agents; machine busy 50 %`);
    assert.deepEqual(full.kpis!.recommendations, []);
    telemetry.close();
  });

  it('advises lowering max_parallel only when the machine was saturated', async () => {
    for (const [machine, advised] of [[0.97, true], [0.5, false]] as const) {
      const fake = new FakeCpuTimes();
      const { telemetry, cores } = setup(fake);
      telemetry.onEvent({ type: 'run-start', runId: 'r1', t: 0, tasks: 1, budgetBytes: GB, logDir: null, instructionsFile: null, warnings: [] });
      for (let t = 200; t <= 10_000; t += 200) telemetry.onEvent(sample(t, machine, []));
      fake.reaped += 0.85 * 10 * cores; // 85 %: poor
      fake.own += 0.01 * 10 * cores;
      const full = await telemetry.finish(report(10_000));
      assert.equal(cpuOf(full.kpis!.scores).score, 'poor');
      const recs = full.kpis!.recommendations.filter((r) => r.includes('max_parallel'));
      // The agents and Guild together (86 %) do not saturate the cores; the machine's 97 % does.
      assert.equal(recs.length, advised ? 1 : 0, `machine ${machine}: ${recs.join('; ')}`);
      telemetry.close();
    }
  });

  it('a short run shows its CPU share but does not grade it', async () => {
    const fake = new FakeCpuTimes();
    const { telemetry } = setup(fake);
    telemetry.onEvent({ type: 'run-start', runId: 'r1', t: 0, tasks: 1, budgetBytes: GB, logDir: null, instructionsFile: null, warnings: [] });
    telemetry.onEvent(sample(200, 0.99, []));
    fake.reaped += 0.25;
    const c = cpuOf((await telemetry.finish(report(300))).kpis!.scores);
    assert.notEqual(c.value, null);
    assert.deepEqual([c.score, c.note], [null, 'not scored: too little data (1 of 10 samples, 0.3 of 5 s)']);
    telemetry.close();
  });

  it('without a reader the CPU KPI has no value, and says why', async () => {
    const { telemetry } = setup(null);
    telemetry.onEvent({ type: 'run-start', runId: 'r1', t: 0, tasks: 1, budgetBytes: GB, logDir: null, instructionsFile: null, warnings: [] });
    for (let t = 200; t <= 10_000; t += 200) telemetry.onEvent(sample(t, 0.99, []));
    const c = cpuOf((await telemetry.finish(report(10_000))).kpis!.scores);
    assert.deepEqual([c.value, c.score, c.note], [null, null, "no reading of the agents' CPU time"]);
    telemetry.close();
  });
});

describe('the /proc CPU-time reader', () => {
  it('parses /proc/<pid>/stat whatever the command name holds', () => {
    const line = '4242 (a) b (c)) R 1 4242 4242 0 -1 4194304 100 0 0 0 250 30 7 3 20 0 1 0 100 1000 10';
    assert.deepEqual(parseStatTimes(line), { utime: 250, stime: 30, cutime: 7, cstime: 3 });
    assert.equal(parseStatTimes('garbage'), null);
  });

  it("counts a running tree's processes, then the same time once Guild has reaped it", async () => {
    const reader = createCpuTimes();
    const before = reader.self()!;
    // A shell whose two children each burn 0.4 s of CPU; it waits for them, then sleeps 2 s.
    const burn = `${process.execPath} -e "const e=process.cpuUsage();while(process.cpuUsage(e).user<400000){}"`;
    const child = spawn('/bin/sh', ['-c', `${burn} & ${burn} & wait; sleep 2`], { stdio: 'ignore' });
    const exited = new Promise((r) => child.once('exit', r));
    const until = Date.now() + 20_000;
    // Read while it runs until the figure stops growing: both children done, their time in the shell's cutime.
    let live = 0;
    for (let prev = -1; Date.now() < until && !(live >= 0.8 && live === prev); ) {
      prev = live;
      await new Promise((r) => setTimeout(r, 300));
      live = reader.tree(child.pid!);
    }
    assert.ok(live >= 0.8 && live < 5, `the live tree used ${live} s`);
    await exited;
    assert.equal(reader.tree(child.pid!), 0, 'gone');
    // The shell reaped its children, Guild (here: this process) reaped the shell: all of it moved into our cutime.
    const reaped = reader.self()!.reapedSeconds - before.reapedSeconds;
    assert.ok(Math.abs(reaped - live) < 0.05, `reaped ${reaped} s, seen live ${live} s`);
  });
});
