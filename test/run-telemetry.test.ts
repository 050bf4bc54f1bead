/**
 * RunTelemetry fed with recorded events (no processes): live state, when alerts fire and what
 * counts as a repeat, what finish() adds to the report. The same paths run end to end in
 * telemetry-e2e.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/workflow/run-workflow.js';
import { RunTelemetry } from '../src/telemetry/run-telemetry.js';
import type { RunEvent } from '../src/workflow/events.js';
import type { RunReport } from '../src/workflow/report.js';
import type { PressureLevel } from '../src/governor/levels.js';
import { MB, writeWorkflow } from './helpers.js';

const GB = 1024 * MB;

function setup(): { telemetry: RunTelemetry; alerts: string[] } {
  const file = writeWorkflow(`budget: 1GB
agents:
  analyzer: { memory: 100MB, kind: code-analysis }
  builder: { memory: 200MB }
tasks:
  - { id: a, agent: analyzer, run: "true" }
  - { id: b, agent: builder, run: "true", needs: [a] }
`);
  const alerts: string[] = [];
  const telemetry = new RunTelemetry(loadConfig(file), { store: false, onAlert: (r) => alerts.push(`${r.rule}: ${r.message}`) });
  return { telemetry, alerts };
}

const health = { event_loop_delay_p50_ms: 1, event_loop_delay_p99_ms: 12.5, event_loop_delay_max_ms: 20, gc_count: 1, gc_pause_total_ms: 3.25, gc_pause_max_ms: 3.25 };

function sample(t: number, level: PressureLevel, running: { id: string; agent: string; rss: number; elapsed: number }[] = []): RunEvent {
  return {
    type: 'sample',
    t,
    totalRssBytes: running.reduce((n, r) => n + r.rss, 0),
    reservedBytes: 0,
    budgetBytes: GB,
    availableBytes: 4 * GB,
    queued: 0,
    running: running.map((r) => ({ id: r.id, agent: r.agent, pid: 1, rssBytes: r.rss, elapsedMs: r.elapsed, attempt: 1 })),
    done: 0,
    total: 2,
    blocked: null,
    level,
    paused: 0,
    usedBytes: 3 * GB,
    limitBytes: 8 * GB,
    cpu: 0.5,
    guildRssBytes: 70 * MB,
    guildHealth: health,
    denied: { memory: 0, cpu: 0 },
    cacheRequests: [],
  };
}

describe('RunTelemetry', () => {
  it('alerts when a condition begins, not at every sample it lasts; a new occurrence is a repeat', () => {
    const { telemetry, alerts } = setup();
    telemetry.onEvent({ type: 'run-start', runId: 'r1', t: 0, tasks: 2, budgetBytes: GB, logDir: null, instructionsFile: null, warnings: [] });
    for (let t = 100; t <= 2000; t += 100) telemetry.onEvent(sample(t, 'high'));
    assert.equal(alerts.length, 1, alerts.join('\n'));
    assert.match(alerts[0]!, /^high-memory: memory pressure high: the machine at 38 % of its 8 GB limit/);
    telemetry.onEvent(sample(2100, 'emergency'));
    assert.equal(alerts.length, 1, 'critical and emergency are the run\'s own memory-pressure alerts, not a second high-memory');
    telemetry.onEvent(sample(2200, 'optimal'));
    telemetry.onEvent(sample(2300, 'high'));
    assert.equal(alerts.length, 1, 'a new occurrence within the cooldown is counted, not sent');
    assert.equal(telemetry.state().alerts.at(-1)?.repeats, 1);
    telemetry.close();
  });

  it('a slow running task is alerted once, not again when it ends', () => {
    const { telemetry, alerts } = setup();
    telemetry.onEvent({ type: 'run-start', runId: 'r1', t: 0, tasks: 2, budgetBytes: GB, logDir: null, instructionsFile: null, warnings: [] });
    telemetry.onEvent({ type: 'task-queued', t: 0, id: 'a' });
    telemetry.onEvent({ type: 'task-start', t: 5, id: 'a', agent: 'analyzer', attempt: 1, pid: 1 });
    // Target 200 ms (code-analysis): slow past 200 × 20/3 ≈ 1.33 s.
    for (let t = 200; t <= 3000; t += 200) telemetry.onEvent(sample(t, 'optimal', [{ id: 'a', agent: 'analyzer', rss: 50 * MB, elapsed: t }]));
    telemetry.onEvent({ type: 'task-end', t: 3100, id: 'a', agent: 'analyzer', attempt: 1, status: 'succeeded', exitCode: 0, signal: null, durationMs: 3095, peakRssBytes: 50 * MB, error: null, killedBy: null });
    assert.deepEqual(alerts.map((a) => a.split(':')[0]), ['slow-execution']);
    assert.equal(telemetry.state().alerts[0]!.repeats, 0);
    telemetry.close();
  });

  it('keeps task rows, queue and agents from events; the end state shows nothing running', async () => {
    const { telemetry } = setup();
    telemetry.onEvent({ type: 'run-start', runId: 'r1', t: 0, tasks: 2, budgetBytes: GB, logDir: null, instructionsFile: null, warnings: [] });
    telemetry.onEvent({ type: 'task-queued', t: 0, id: 'a' });
    telemetry.onEvent({ type: 'task-start', t: 5, id: 'a', agent: 'analyzer', attempt: 1, pid: 1 });
    let s = telemetry.state();
    assert.equal(s.queue.running, 1, 'from the rows, before any sample');
    assert.equal(s.tasks.find((t) => t.id === 'a')?.status, 'running');
    assert.equal(s.tasks.find((t) => t.id === 'b')?.status, 'pending');
    telemetry.onEvent(sample(100, 'optimal', [{ id: 'a', agent: 'analyzer', rss: 80 * MB, elapsed: 95 }]));
    s = telemetry.state();
    assert.equal(s.agents.find((a) => a.name === 'analyzer')?.rss_bytes, 80 * MB);
    assert.equal(s.tasks.find((t) => t.id === 'a')?.peak_rss_bytes, 80 * MB);
    assert.equal(s.guild.event_loop_delay_p99_ms, 12.5, 'measured, from the sample');
    assert.equal(s.series.length, 1);
    telemetry.onEvent({ type: 'task-end', t: 150, id: 'a', agent: 'analyzer', attempt: 1, status: 'failed', exitCode: 1, signal: null, durationMs: 145, peakRssBytes: 80 * MB, error: 'exited with code 1', killedBy: null });
    telemetry.onEvent({ type: 'task-settled', t: 150, id: 'b', agent: 'builder', status: 'skipped', error: "dependency 'a' failed" });
    telemetry.onEvent(sample(200, 'optimal'));
    s = telemetry.state();
    assert.equal(s.queue.running, 0);
    assert.equal(s.queue.done, 2);
    assert.equal(s.agents.find((a) => a.name === 'analyzer')?.running, 0);
    assert.deepEqual(s.alerts.map((a) => a.rule), ['agent-failure']);

    const events: string[] = [];
    telemetry.subscribe((event) => events.push(event));
    const report = { run_id: 'r1', makespan_ms: 200, lower_bound: { chain_ms: 145, memory_ms: 0, cpu_ms: 0 }, cache: { hits: 0, misses: 0, hit_rate: null, saved_ms: 0 }, guild_health: { rss_peak_bytes: 70 * MB, ...health }, alerts: [] } as unknown as RunReport;
    const full = await telemetry.finish(report);
    assert.ok(full.kpis);
    // One failed task of one finished: shown, too little data to grade (KPI_MINIMUMS.error_rate).
    const errors = full.kpis.scores.find((k) => k.kpi === 'error_rate');
    assert.deepEqual([errors?.value, errors?.score, errors?.note], [1, null, 'not scored: too little data (1 of 10 finished tasks)']);
    assert.deepEqual(full.alerts.map((a) => a.rule), ['agent-failure']);
    assert.deepEqual(events, ['kpis', 'end']);
    telemetry.close();
  });
});
