/**
 * Distributed workers made visible, without Redis: heartbeats as rows, the run's telemetry
 * following which worker runs each task, `guild status`'s tables and the per-worker `/metrics`.
 * The same paths run against real workers in distributed-visible.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatStatus, formatWorkers } from '../src/cli/status-format.js';
import { GuildMetrics } from '../src/telemetry/metrics.js';
import { RunTelemetry } from '../src/telemetry/run-telemetry.js';
import type { WorkerRow } from '../src/telemetry/state.js';
import { workerRows, type WorkerHeartbeat } from '../src/telemetry/workers.js';
import type { RunEvent } from '../src/workflow/events.js';
import { loadConfig } from '../src/workflow/run-workflow.js';
import { MB, writeWorkflow } from './helpers.js';

const NOW = 1_764_673_200_000;

const beat = (name: string, over: Partial<WorkerHeartbeat> = {}): WorkerHeartbeat => ({
  name,
  host: 'box',
  pid: 10,
  budgetBytes: 1024 * MB,
  freeBytes: 768 * MB,
  running: 1,
  pressure: 'optimal',
  peakBytes: 300 * MB,
  rejected: 0,
  at: NOW - 250,
  ...over,
});

function sample(t: number, running: { id: string; worker?: string }[]): RunEvent {
  return {
    type: 'sample',
    t,
    totalRssBytes: 0,
    reservedBytes: 0,
    budgetBytes: 1024 * MB,
    availableBytes: 4096 * MB,
    queued: 0,
    running: running.map((r) => ({ id: r.id, agent: 'build', pid: null, rssBytes: null, elapsedMs: t, attempt: 1, ...(r.worker !== undefined && { worker: r.worker }) })),
    done: 0,
    total: 2,
    blocked: null,
    level: 'optimal',
    paused: 0,
    usedBytes: 1024 * MB,
    limitBytes: 8192 * MB,
    cpu: null,
    guildRssBytes: 60 * MB,
    guildHealth: { event_loop_delay_p50_ms: 1, event_loop_delay_p99_ms: 2, event_loop_delay_max_ms: 3, gc_count: 0, gc_pause_total_ms: 0, gc_pause_max_ms: 0 },
    denied: { memory: 0, cpu: 0 },
    cacheRequests: [],
  };
}

const taskEnd = (t: number, id: string, worker: string | undefined, status: 'succeeded' | 'retrying' = 'succeeded'): RunEvent => ({
  type: 'task-end',
  t,
  id,
  agent: 'build',
  attempt: 1,
  status,
  exitCode: status === 'succeeded' ? 0 : 1,
  signal: null,
  durationMs: 100,
  peakRssBytes: 20 * MB,
  error: null,
  killedBy: null,
  ...(worker !== undefined && { worker }),
});

function telemetry(): RunTelemetry {
  const file = writeWorkflow(`agents:
  build: { memory: 100MB }
tasks:
  - { id: a, agent: build, run: "true" }
  - { id: b, agent: build, run: "true" }
`);
  return new RunTelemetry(loadConfig(file), { store: false, cpuTimes: null });
}

describe('worker rows', () => {
  it('used is budget − free, the age is never negative, rows are sorted by name; tasks null without a run, 0 for a worker that ran none', () => {
    const rows = workerRows([beat('w2', { at: NOW + 500 }), beat('w1', { freeBytes: 2048 * MB })], NOW, new Map([['w2', 3]]));
    assert.deepEqual(rows.map((r) => [r.name, r.used_bytes, r.heartbeat_age_ms, r.tasks]), [
      ['w1', 0, 250, 0],
      ['w2', 256 * MB, 0, 3],
    ]);
    assert.equal(workerRows([beat('w1')], NOW, null)[0]!.tasks, null);
  });
});

describe('the run telemetry follows which worker runs each task', () => {
  it('a sample names the worker running a task; its end names the one that ran it and counts it there', () => {
    const t = telemetry();
    t.onEvent({ type: 'run-start', runId: 'r1', t: 0, tasks: 2, budgetBytes: 1024 * MB, logDir: null, instructionsFile: null, warnings: [] });
    for (const id of ['a', 'b']) t.onEvent({ type: 'task-start', t: 1, id, agent: 'build', attempt: 1, pid: null });
    t.onEvent(sample(100, [{ id: 'a', worker: 'w1' }, { id: 'b' }]));
    assert.deepEqual(t.state().tasks.map((r) => r.worker ?? null), ['w1', null], 'b waits for a worker: none named');
    t.onEvent(sample(150, [{ id: 'a' }, { id: 'b', worker: 'w2' }]));
    assert.deepEqual(t.state().tasks.map((r) => r.worker ?? null), [null, 'w2'], 'a was handed back: it waits again, on no worker');
    assert.equal(t.workers(), null, 'not distributed until told where the workers are');
    t.watchWorkers('q', () => [beat('w1'), beat('w2')]);
    t.onEvent(taskEnd(200, 'a', 'w1'));
    t.onEvent(taskEnd(300, 'b', 'w2', 'retrying'));
    t.onEvent(taskEnd(400, 'b', 'w2'));
    assert.deepEqual(t.state().tasks.map((r) => r.worker ?? null), ['w1', 'w2']);
    const w = t.workers()!;
    assert.equal(w.queue, 'q');
    assert.deepEqual(w.workers.map((r) => [r.name, r.tasks]), [['w1', 1], ['w2', 2]], 'attempts that ended there, retries included');
    t.close();
  });

  it('a local run: no task row names a worker', () => {
    const t = telemetry();
    t.onEvent({ type: 'run-start', runId: 'r1', t: 0, tasks: 2, budgetBytes: 1024 * MB, logDir: null, instructionsFile: null, warnings: [] });
    t.onEvent(taskEnd(200, 'a', undefined));
    assert.equal('worker' in t.state().tasks[0]!, false);
    t.close();
  });
});

describe('guild status shows the workers', () => {
  const rows: WorkerRow[] = workerRows([beat('big', { budgetBytes: 2048 * MB, freeBytes: 1536 * MB, running: 2 }), beat('small', { budgetBytes: 512 * MB, freeBytes: 52 * MB, pressure: 'high', rejected: 2, at: NOW - 1500 })], NOW, new Map([['big', 3]]));

  it('a table of budget, used, running, pressure, peak, heartbeat age and the run\'s tasks', () => {
    assert.deepEqual(formatWorkers({ queue: 'guild', at: NOW, workers: rows }), [
      'WORKERS (queue guild): 2 live',
      'NAME   HOST     BUDGET          USED  RUNNING  PRESSURE    PEAK  HEARTBEAT  TASKS',
      'big    box:10  2.00 GB  512 MB (25%)        2  optimal   300 MB  250ms ago      3',
      'small  box:10   512 MB  460 MB (90%)        1  high      300 MB   1.5s ago      0',
      'rejected unsigned or altered jobs: small 2',
    ]);
    const noRun = formatWorkers({ queue: 'guild', at: NOW, workers: workerRows([beat('big')], NOW, null) });
    assert.equal(noRun[1]!.includes('TASKS'), false, 'without a run there is nothing to count');
    assert.match(formatWorkers({ queue: 'q2', at: NOW, workers: [] }).join('\n'), /0 live\nno worker heartbeats: start one with guild worker --redis URL/);
  });

  it('a distributed run: the running tasks name their worker (or say they wait), the workers follow', () => {
    const base = new RunTelemetry(loadConfig(writeWorkflow(`agents:
  build: { memory: 100MB }
tasks:
  - { id: a, agent: build, run: "true" }
  - { id: b, agent: build, run: "true" }
`)), { store: false, cpuTimes: null });
    base.onEvent({ type: 'run-start', runId: 'r1', t: 0, tasks: 2, budgetBytes: 1024 * MB, logDir: null, instructionsFile: null, warnings: [] });
    for (const id of ['a', 'b']) base.onEvent({ type: 'task-start', t: 1, id, agent: 'build', attempt: 1, pid: null });
    base.onEvent(sample(100, [{ id: 'a', worker: 'big' }, { id: 'b' }]));
    const text = formatStatus({ ...base.state(), workers: { queue: 'guild', at: NOW, workers: rows } });
    assert.match(text, /RUNNING\n {2}a +build +big +— /);
    assert.match(text, /\n {2}b +build +waiting +— /);
    assert.match(text, /\n\n {2}WORKERS \(queue guild\): 2 live\n {2}NAME/);
    const local = formatStatus(base.state());
    assert.equal(/WORKERS|waiting/.test(local), false, 'a local run has no worker column and no workers table');
    base.close();
  });
});

describe('/metrics per worker', () => {
  it('no guild_worker_* families for a local run; per-worker gauges once watched, a gone worker leaves them', async () => {
    const m = new GuildMetrics({ agents: ['build'], processMetrics: false });
    assert.equal((await m.text()).body.includes('guild_worker_'), false);
    let live: WorkerRow[] = workerRows([beat('w1', { pressure: 'high' }), beat('w2')], NOW, new Map([['w1', 2]]));
    m.watchWorkers(() => live);
    const body = (await m.text()).body;
    for (const line of [
      'guild_worker_budget_bytes{worker="w1"} 1073741824',
      'guild_worker_used_bytes{worker="w1"} 268435456',
      'guild_worker_peak_bytes{worker="w1"} 314572800',
      'guild_worker_running{worker="w1"} 1',
      'guild_worker_pressure_level{worker="w1"} 2',
      'guild_worker_pressure_level{worker="w2"} 0',
      `guild_worker_last_heartbeat_seconds{worker="w1"} ${(NOW - 250) / 1000}`,
      'guild_worker_heartbeat_age_seconds{worker="w1"} 0.25',
      'guild_worker_tasks_total{worker="w1"} 2',
      'guild_worker_tasks_total{worker="w2"} 0',
    ]) {
      assert.ok(body.includes(`${line}\n`), `${line}\nin\n${body}`);
    }
    live = workerRows([beat('w1')], NOW, new Map([['w1', 3]]));
    const later = (await m.text()).body;
    assert.equal(later.includes('guild_worker_budget_bytes{worker="w2"}'), false, 'an expired worker leaves the gauges');
    assert.ok(later.includes('guild_worker_tasks_total{worker="w1"} 3\n'));
  });
});
