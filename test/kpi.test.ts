/**
 * KPI evaluation: moving windows, grading at every threshold, scaling to targets and to the
 * dependency chain, the minimum of evidence a KPI is graded on, the overall grade, recommendations
 * with their numbers, and the edge cases a live dashboard meets (no data yet, one task, only
 * cached tasks, a cold cache, all failed).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULTS } from '../src/config/defaults.js';
import { evaluateKpis, gradePoints, KPI_CPU_SATURATED, KPI_MINIMUMS, KPI_THRESHOLDS, tooLittleData, type AgentTypeInput, type KpiInput } from '../src/telemetry/kpi.js';
import { KpiRecorder, type KpiAgentProfile } from '../src/telemetry/kpi-recorder.js';
import { MovingAverage } from '../src/telemetry/moving-average.js';
import type { KpiReport, KpiScore } from '../src/telemetry/state.js';
import { MB } from './helpers.js';

const GB = 1024 * MB;

/** Figures with nothing measured; each test fills in what it grades. */
function blank(over: Partial<KpiInput> = {}): KpiInput {
  const none = { samples: 0, meanMs: null, p90Ms: null };
  return {
    agents: [],
    kinds: [],
    queueWait: none,
    cacheServe: none,
    throughput: { serialMs: 0, makespanMs: 0, chainMs: 0, tasks: 0 },
    errors: { finished: 0, failed: 0 },
    cache: { hits: 0, misses: 0, cold: false },
    memory: { samples: 0, seconds: 0, lowestFreeShare: null },
    cpu: { samples: 0, seconds: 0, mean: null, machine: null, guild: null, cores: null },
    ...over,
  };
}

/** Memory figures with evidence to spare: 100 samples over 20 s. */
const memory = (lowestFreeShare: number, samples = 100, seconds = 20): KpiInput['memory'] => ({ samples, seconds, lowestFreeShare });

/** CPU figures with evidence to spare (50 samples over 60 s on 4 cores); the machine as busy as the agents unless said. */
const cpuUse = (mean: number, machine: number | null = mean, over: Partial<KpiInput['cpu']> = {}): KpiInput['cpu'] => ({ samples: 50, seconds: 60, mean, machine, guild: 0.01, cores: 4, ...over });

function agent(over: Partial<AgentTypeInput> & { agent: string }): AgentTypeInput {
  return { kind: null, responseTargetMs: null, declaredBytes: 0, peakRssBytes: null, measuredTasks: 0, samples: 10, meanMs: 100, p90Ms: 100, ...over };
}

function find(r: KpiReport, kpi: string, subject: string | null = null): KpiScore {
  const s = r.scores.find((x) => x.kpi === kpi && x.subject === subject);
  assert.ok(s, `no ${kpi} score for ${String(subject)} in ${r.scores.map((x) => `${x.kpi}/${String(x.subject)}`).join(', ')}`);
  return s;
}

/** Every number anywhere in the report is finite (JSON would turn NaN into a silent null). */
function assertFinite(value: unknown, path = 'report'): void {
  if (typeof value === 'number') assert.ok(Number.isFinite(value), `${path} is ${value}`);
  else if (Array.isArray(value)) value.forEach((v, i) => assertFinite(v, `${path}[${i}]`));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) assertFinite(v, `${path}.${k}`);
  else if (typeof value === 'string') assert.ok(!/NaN|Infinity|undefined/.test(value), `${path}: ${value}`);
}

const profile = (kind: KpiAgentProfile['kind'], declaredBytes: number, responseTargetMs: number | null = null): KpiAgentProfile => ({ kind, responseTargetMs, declaredBytes });

describe('MovingAverage', () => {
  test('an empty window has no mean, extremes or quantiles', () => {
    const w = new MovingAverage(5);
    assert.equal(w.count, 0);
    assert.equal(w.mean(), null);
    assert.equal(w.min(), null);
    assert.equal(w.max(), null);
    assert.equal(w.quantile(0.9), null);
    assert.equal(w.sum(), 0);
  });

  test('values beyond the window drop out of mean, min, max and count', () => {
    const w = new MovingAverage(3);
    for (const v of [100, 1, 2, 3]) w.push(v);
    assert.equal(w.count, 3);
    assert.equal(w.mean(), 2);
    assert.equal(w.max(), 3);
    assert.equal(w.min(), 1);
    for (const v of [4, 5]) w.push(v);
    assert.deepEqual([w.mean(), w.min(), w.max(), w.count], [4, 3, 5, 3]);
  });

  test('a window of one keeps only the newest value', () => {
    const w = new MovingAverage(1);
    w.push(7);
    w.push(9);
    assert.deepEqual([w.count, w.mean(), w.quantile(0.5)], [1, 9, 9]);
  });

  test('quantiles are nearest-rank over the window, whatever the insertion order', () => {
    const w = new MovingAverage(10);
    for (const v of [7, 3, 10, 1, 9, 2, 8, 4, 6, 5]) w.push(v);
    assert.equal(w.quantile(0), 1);
    assert.equal(w.quantile(0.5), 5);
    assert.equal(w.quantile(0.9), 9);
    assert.equal(w.quantile(1), 10);
    w.push(100); // evicts the 7
    assert.equal(w.quantile(1), 100);
    assert.equal(w.quantile(0.5), 5);
  });

  test('non-finite values are ignored', () => {
    const w = new MovingAverage(4);
    w.push(Number.NaN);
    w.push(Number.POSITIVE_INFINITY);
    w.push(2);
    assert.deepEqual([w.count, w.mean()], [1, 2]);
  });

  test('rejects a window that is not a positive integer, and q outside 0..1', () => {
    assert.throws(() => new MovingAverage(0), /Expected window to be a positive integer, got 0/);
    assert.throws(() => new MovingAverage(2.5), RangeError);
    assert.throws(() => new MovingAverage(3).quantile(1.5), /Expected q between 0 and 1, got 1.5/);
  });
});

describe('grading at every threshold', () => {
  // [value, expected]: just better than a line takes the higher grade, on the line the lower one.
  const cases = {
    responseTimeMs: [[299.9, 'excellent'], [300, 'good'], [799.9, 'good'], [800, 'poor'], [1999.9, 'poor'], [2000, 'critical']],
    cpu: [[0.5999, 'excellent'], [0.6, 'good'], [0.7999, 'good'], [0.8, 'poor'], [0.9499, 'poor'], [0.95, 'critical']],
    errorRate: [[0, 'excellent'], [0.0099, 'excellent'], [0.01, 'good'], [0.0499, 'good'], [0.05, 'poor'], [0.1499, 'poor'], [0.15, 'critical'], [1, 'critical']],
    throughput: [[3.51, 'excellent'], [3.5, 'good'], [2.01, 'good'], [2, 'poor'], [1.01, 'poor'], [1, 'critical']],
    memoryEfficiency: [[0.1501, 'excellent'], [0.15, 'good'], [0.0501, 'good'], [0.05, 'poor'], [0.0201, 'poor'], [0.02, 'critical'], [0, 'critical']],
    cacheHitRate: [[0.9001, 'excellent'], [0.9, 'good'], [0.7001, 'good'], [0.7, 'poor'], [0.4001, 'poor'], [0.4, 'critical'], [0, 'critical']],
  } as const;

  test('response time (lower is better), against the unscaled 300 ms target of kind knowledge', () => {
    for (const [v, want] of cases.responseTimeMs) {
      const r = evaluateKpis(blank({ agents: [agent({ agent: 'indexer', kind: 'knowledge', meanMs: v })] }));
      assert.equal(find(r, 'response_time', 'indexer').score, want, `${v} ms`);
    }
  });

  test('CPU use (lower is better)', () => {
    for (const [v, want] of cases.cpu) assert.equal(find(evaluateKpis(blank({ cpu: cpuUse(v) })), 'cpu').score, want, String(v));
  });

  test('error rate (lower is better), from failed / finished', () => {
    for (const [v, want] of cases.errorRate) {
      const r = evaluateKpis(blank({ errors: { finished: 10_000, failed: Math.round(v * 10_000) } }));
      assert.equal(find(r, 'error_rate').score, want, String(v));
    }
  });

  test('throughput (higher is better), speed-up = serial sum / makespan, when the chain allows plenty', () => {
    for (const [v, want] of cases.throughput) {
      const r = evaluateKpis(blank({ throughput: { serialMs: v * 10_000, makespanMs: 10_000, chainMs: 500, tasks: 40 } }));
      const s = find(r, 'throughput');
      assert.equal(s.score, want, `${v}×`);
      assert.equal(s.value, v);
      assert.equal(s.note, null);
    }
  });

  test('memory efficiency (higher is better), the lowest free share', () => {
    for (const [v, want] of cases.memoryEfficiency) {
      assert.equal(find(evaluateKpis(blank({ memory: memory(v) })), 'memory_efficiency').score, want, String(v));
    }
  });

  test('memory efficiency: 85 % used is on the good line despite float noise (1 − 0.85 ≠ 0.15)', () => {
    const s = find(evaluateKpis(blank({ memory: memory(1 - 0.85) })), 'memory_efficiency');
    assert.equal(s.value, 0.15);
    assert.equal(s.score, 'good');
  });

  test('cache hit rate (higher is better)', () => {
    for (const [v, want] of cases.cacheHitRate) {
      const r = evaluateKpis(blank({ cache: { hits: Math.round(v * 10_000), misses: 10_000 - Math.round(v * 10_000), cold: false } }));
      assert.equal(find(r, 'cache_hit_rate').score, want, String(v));
    }
  });

  test('each score carries the thresholds it was graded against and its direction', () => {
    const r = evaluateKpis(blank({ cpu: cpuUse(0.5, 0.5, { samples: 3 }), cache: { hits: 1, misses: 0, cold: false } }));
    assert.deepEqual(find(r, 'cpu').thresholds, { ...KPI_THRESHOLDS.cpu });
    assert.equal(find(r, 'cpu').samples, 3);
    assert.equal(find(r, 'cache_hit_rate').thresholds.higher_is_better, true);
    assert.equal(find(r, 'cpu').thresholds.higher_is_better, false);
  });
});

describe('response time targets', () => {
  test('a kind scales the thresholds by target / 300, so the target is the good line', () => {
    for (const [kind, target] of [['code-analysis', 200], ['knowledge', 300], ['coordination', 500], ['file-ops', 100]] as const) {
      const below = evaluateKpis(blank({ agents: [agent({ agent: 'a', kind, meanMs: target - 1 })] }));
      const on = evaluateKpis(blank({ agents: [agent({ agent: 'a', kind, meanMs: target })] }));
      assert.equal(find(below, 'response_time', 'a').score, 'excellent', kind);
      assert.equal(find(on, 'response_time', 'a').score, 'good', kind);
      const t = find(on, 'response_time', 'a').thresholds;
      assert.deepEqual([t.good, t.acceptable, t.poor], [target, Math.round((800 * target) / 30) / 10, Math.round((2000 * target) / 30) / 10], kind);
    }
  });

  test('code analysis: 533.3 ms is poor, 1333.3 ms critical', () => {
    const grade = (ms: number) => find(evaluateKpis(blank({ agents: [agent({ agent: 'analyzer', kind: 'code-analysis', meanMs: ms })] })), 'response_time', 'analyzer').score;
    assert.equal(grade(533.2), 'good');
    assert.equal(grade(533.3), 'poor');
    assert.equal(grade(1333.2), 'poor');
    assert.equal(grade(1333.3), 'critical');
  });

  test("an agent type's own target overrides its kind's", () => {
    const r = evaluateKpis(blank({ agents: [agent({ agent: 'analyzer', kind: 'code-analysis', responseTargetMs: 1500, meanMs: 1400, p90Ms: 1800 })] }));
    const s = find(r, 'response_time', 'analyzer');
    assert.equal(s.score, 'excellent');
    assert.equal(s.thresholds.good, 1500);
    assert.equal(s.note, 'target 1.5 s (response_target); p90 1.8 s');
  });

  test('a target equal to the kind\'s (as the resolved config folds it in) is named after the kind', () => {
    const r = evaluateKpis(blank({ agents: [agent({ agent: 'analyzer', kind: 'code-analysis', responseTargetMs: 200, meanMs: 150, p90Ms: 190 })] }));
    assert.equal(find(r, 'response_time', 'analyzer').note, 'target 200 ms (kind code-analysis); p90 190 ms');
  });

  test('an agent type with neither kind nor target is shown, not graded: a 20 s test shard is not critical', () => {
    const r = evaluateKpis(blank({ agents: [agent({ agent: 'tests', meanMs: 20_000, samples: 4 })] }));
    const s = find(r, 'response_time', 'tests');
    assert.equal(s.value, 20_000);
    assert.equal(s.score, null);
    assert.equal(s.note, 'no target declared (set kind or response_target)');
    assert.equal(s.label, 'response time · tests');
    assert.equal(r.overall.points, null);
    assert.deepEqual(r.recommendations, []);
  });

  test('a kind pools the tasks of all its agent types; queue wait and cache serve are graded as coordination and file-ops', () => {
    const rec = new KpiRecorder({ agents: { analyzer: profile('code-analysis', 256 * MB), linter: profile('code-analysis', 128 * MB), writer: profile(null, 64 * MB) } });
    for (const ms of [100, 140, 90, 120, 150]) rec.taskFinished({ agent: 'analyzer', durationMs: ms, status: 'succeeded', peakRssBytes: null });
    for (const ms of [300, 310, 330, 320, 340]) rec.taskFinished({ agent: 'linter', durationMs: ms, status: 'succeeded', peakRssBytes: null });
    for (const ms of [600, 700, 650, 620, 680]) rec.taskQueuedToStart(ms);
    for (let i = 0; i < 5; i++) rec.taskFinished({ agent: 'writer', durationMs: 40, status: 'cached', peakRssBytes: null });
    const r = rec.report(2000, 500);

    const kind = find(r, 'response_time', 'code-analysis');
    assert.equal(kind.value, 220); // (600 + 1600) / 10
    assert.equal(kind.samples, 10);
    assert.equal(kind.score, 'good');
    assert.equal(kind.label, 'response time · code-analysis');
    assert.equal(find(r, 'response_time', 'analyzer').score, 'excellent');
    assert.equal(find(r, 'response_time', 'linter').score, 'good');

    const queue = find(r, 'response_time', 'queue-wait');
    assert.deepEqual([queue.value, queue.thresholds.good, queue.score], [650, 500, 'good']);
    assert.equal(queue.label, 'response time · coordination (queue wait)');
    const serve = find(r, 'response_time', 'cache-serve');
    assert.deepEqual([serve.value, serve.thresholds.good, serve.score], [40, 100, 'excellent']);
    // A kind nobody has, and the writer's missing kind, add no rows.
    assert.equal(r.scores.filter((s) => s.kpi === 'response_time').length, 6);
  });

  test('built-in rows appear only when they have samples', () => {
    const r = evaluateKpis(blank());
    assert.equal(r.scores.some((s) => s.subject === 'queue-wait' || s.subject === 'cache-serve'), false);
  });
});

describe('throughput and the dependency chain', () => {
  test('a chain that caps the speed-up below 3.5× scales the thresholds by bound / 3.5, and says so', () => {
    // Serial 24 s over a 10 s chain: at best 2.4×.
    const r = evaluateKpis(blank({ throughput: { serialMs: 24_000, makespanMs: 12_000, chainMs: 10_000, tasks: 6 } }));
    const s = find(r, 'throughput');
    assert.equal(s.value, 2);
    assert.deepEqual(s.thresholds, { good: 2.4, acceptable: 1.37, poor: 0.69, higher_is_better: true });
    assert.equal(s.score, 'good');
    assert.equal(s.note, 'the dependency chain allows at most 2.4×: thresholds scaled by 0.69');
  });

  test('the bound in the note reads as the scaled good line does (0.01×)', () => {
    const s = find(evaluateKpis(blank({ throughput: { serialMs: 29_600, makespanMs: 20_000, chainMs: 10_000, tasks: 5 } })), 'throughput');
    assert.equal(s.thresholds.good, 2.96);
    assert.equal(s.note, 'the dependency chain allows at most 2.96×: thresholds scaled by 0.85');
  });

  test('a bound of 1.05× or less (one chain) is not graded', () => {
    const r = evaluateKpis(blank({ throughput: { serialMs: 10_500, makespanMs: 10_600, chainMs: 10_000, tasks: 3 } }));
    const s = find(r, 'throughput');
    assert.equal(s.score, null);
    assert.equal(s.value, 0.99);
    assert.equal(s.note, 'one task / one chain: no parallelism possible');
  });

  test('just above 1.05× it is graded against the scaled lines', () => {
    const r = evaluateKpis(blank({ throughput: { serialMs: 10_600, makespanMs: 10_100, chainMs: 10_000, tasks: 4 } }));
    assert.notEqual(find(r, 'throughput').score, null);
  });

  test('an unknown chain (0) leaves the thresholds unscaled', () => {
    const s = find(evaluateKpis(blank({ throughput: { serialMs: 30_000, makespanMs: 10_000, chainMs: 0, tasks: 9 } })), 'throughput');
    assert.deepEqual([s.thresholds.good, s.score, s.note], [3.5, 'good', null]);
  });
});

describe('overall score', () => {
  test('the mean of the points per KPI: excellent 100 and critical 0 make 50, poor', () => {
    const r = evaluateKpis(blank({ memory: memory(0.5), cpu: cpuUse(0.99) }));
    assert.deepEqual(r.overall, { score: 'poor', points: 50 });
  });

  test('response time rows count as one KPI: their mean, not one vote each', () => {
    const r = evaluateKpis(
      blank({
        agents: [agent({ agent: 'fast', kind: 'knowledge', meanMs: 100 }), agent({ agent: 'slow', kind: 'knowledge', meanMs: 5000 })],
        cpu: cpuUse(0.1),
      }),
    );
    // Response time (100 + 0) / 2 = 50, CPU 100: 75.
    assert.deepEqual(r.overall, { score: 'good', points: 75 });
  });

  test('points are rounded: excellent, good, poor make 72', () => {
    const r = evaluateKpis(blank({ cpu: cpuUse(0.1), memory: memory(0.1), errors: { finished: 10, failed: 1 } }));
    assert.deepEqual(r.overall, { score: 'good', points: 72 });
  });

  test('the overall grade lines: 90 / 70 / 40', () => {
    assert.deepEqual([90, 89, 70, 69, 40, 39, 0, 100].map(gradePoints), ['excellent', 'good', 'good', 'poor', 'poor', 'critical', 'critical', 'excellent']);
  });
});

describe('edge cases', () => {
  test('no data at all: every score null, overall null, no recommendations, no NaN anywhere', () => {
    const r = new KpiRecorder({ agents: {} }).report(0, 0);
    assert.ok(r.scores.length >= 5);
    for (const s of r.scores) {
      assert.equal(s.score, null, s.kpi);
      assert.equal(s.value, null, s.kpi);
      assert.equal(s.samples, 0, s.kpi);
      assert.ok(s.note, `${s.kpi} says why`);
    }
    assert.deepEqual(r.overall, { score: null, points: null });
    assert.deepEqual(r.recommendations, []);
    assertFinite(r);
    assert.equal(find(r, 'throughput').note, 'no task ran yet');
    assert.equal(find(r, 'cache_hit_rate').note, 'no cacheable task looked up');
  });

  test('declared agent types with no run yet are listed, not graded', () => {
    const r = new KpiRecorder({ agents: { analyzer: profile('code-analysis', 256 * MB) } }).report(1500, 0);
    const s = find(r, 'response_time', 'analyzer');
    assert.deepEqual([s.value, s.score, s.note, s.thresholds.good], [null, null, 'no succeeded run yet', 200]);
    assert.equal(r.scores.some((x) => x.subject === 'code-analysis'), false);
    assertFinite(r);
  });

  test('one task: throughput not graded, its response time shown but too little data to grade', () => {
    const rec = new KpiRecorder({ agents: { analyzer: profile('code-analysis', 256 * MB) } });
    rec.taskFinished({ agent: 'analyzer', durationMs: 150, status: 'succeeded', peakRssBytes: 120 * MB });
    const r = rec.report(180, 150);
    const t = find(r, 'throughput');
    assert.deepEqual([t.score, t.note, t.samples], [null, 'one task / one chain: no parallelism possible', 1]);
    const rt = find(r, 'response_time', 'analyzer');
    assert.deepEqual([rt.value, rt.samples, rt.score], [150, 1, null]);
    assert.equal(rt.note, 'not scored: too little data (1 of 5 tasks)');
    assert.deepEqual(r.overall, { score: null, points: null });
    assertFinite(r);
  });

  test('only cached tasks: nothing ran, nothing failed, the cache is graded', () => {
    const rec = new KpiRecorder({ agents: { analyzer: profile('code-analysis', 256 * MB) } });
    for (const ms of [12, 18, 25, 9, 16, 12, 18, 25, 9, 16]) {
      rec.cacheLookup(true);
      rec.taskFinished({ agent: 'analyzer', durationMs: ms, status: 'cached', peakRssBytes: null });
    }
    const r = rec.report(160, 0);
    assert.equal(find(r, 'throughput').note, 'no task ran yet');
    assert.equal(find(r, 'response_time', 'analyzer').score, null);
    assert.deepEqual([find(r, 'response_time', 'cache-serve').value, find(r, 'response_time', 'cache-serve').score], [16, 'excellent']);
    assert.deepEqual([find(r, 'error_rate').value, find(r, 'error_rate').samples, find(r, 'error_rate').score], [0, 10, 'excellent']);
    assert.deepEqual([find(r, 'cache_hit_rate').value, find(r, 'cache_hit_rate').score], [1, 'excellent']);
    assert.deepEqual(r.recommendations, []);
    assertFinite(r);
  });

  test('a cold cache: the hit rate is shown, not graded, and recommends nothing', () => {
    const rec = new KpiRecorder({ agents: {}, cold: true });
    for (let i = 0; i < 12; i++) rec.cacheLookup(false);
    const r = rec.report(1000, 0);
    const s = find(r, 'cache_hit_rate');
    assert.deepEqual([s.value, s.samples, s.score, s.note], [0, 12, null, 'cold cache: first run of this workflow']);
    assert.deepEqual(r.recommendations, []);
  });

  test('all failed: error rate 100 % critical, no response time, throughput still measured', () => {
    const rec = new KpiRecorder({ agents: { analyzer: profile('code-analysis', 256 * MB) } });
    for (const ms of [900, 1200, 1100, 1000, 1000, 900, 1200, 1100, 1000, 1000]) rec.taskFinished({ agent: 'analyzer', durationMs: ms, status: 'failed', peakRssBytes: 100 * MB });
    const r = rec.report(2600, 1200);
    assert.deepEqual([find(r, 'error_rate').value, find(r, 'error_rate').score], [1, 'critical']);
    assert.equal(find(r, 'response_time', 'analyzer').score, null);
    assert.equal(find(r, 'throughput').value, 4);
    assert.equal(r.recommendations[0], '10 of 10 tasks failed (100 %): read their errors in guild status or the run report; retries: helps only when failures are flaky');
    assertFinite(r);
  });

  test('cancelled and skipped tasks do not count for the error rate; a task cancelled while running counts for throughput', () => {
    const rec = new KpiRecorder({ agents: {} });
    rec.taskFinished({ agent: 'x', durationMs: 500, status: 'succeeded', peakRssBytes: null });
    rec.taskFinished({ agent: 'x', durationMs: 0, status: 'skipped', peakRssBytes: null });
    rec.taskFinished({ agent: 'x', durationMs: 0, status: 'cancelled', peakRssBytes: null });
    rec.taskFinished({ agent: 'x', durationMs: 300, status: 'cancelled', peakRssBytes: null });
    const input = rec.input(600, 500);
    assert.deepEqual(input.errors, { finished: 1, failed: 0 });
    assert.deepEqual(input.throughput, { serialMs: 800, makespanMs: 600, chainMs: 500, tasks: 2 });
  });

  test('memory past the limit reads as nothing free, not a negative share', () => {
    const rec = new KpiRecorder({ agents: {} });
    for (let t = 200; t <= 2000; t += 200) rec.sample({ t, usedFraction: 1.02, cpu: null });
    const s = find(rec.report(2000, 0), 'memory_efficiency');
    assert.deepEqual([s.value, s.score], [0, 'critical']);
    assert.equal(find(rec.report(2000, 0), 'cpu').score, null);
  });

  test("the run's own cache totals replace the counted lookups", () => {
    const rec = new KpiRecorder({ agents: {} });
    rec.cacheLookup(false);
    const s = find(rec.report(100, 0, { hits: 9, misses: 1 }), 'cache_hit_rate');
    assert.deepEqual([s.value, s.samples], [0.9, 10]);
  });

  test('rejects a window that is not a positive integer, naming it', () => {
    assert.throws(() => new KpiRecorder({ agents: {}, windows: { cpu: 0 } }), /Expected windows.cpu to be a positive integer, got 0/);
  });
});

describe('recommendations name the measured numbers', () => {
  const memoryRec = (peak: number, declared: number, measuredTasks = 5) =>
    evaluateKpis(blank({ agents: [agent({ agent: 'analyzer', declaredBytes: declared, peakRssBytes: peak, measuredTasks })] })).recommendations;

  test('a peak above 1.2 × the declaration: declare ~10 % more, rounded up to 50 MB', () => {
    assert.deepEqual(memoryRec(610 * MB, 256 * MB), ['analyzer tasks peak at 610 MB but declare 256 MB: declare memory: 700MB (Guild also learns it after 3 runs)']);
    assert.deepEqual(memoryRec(1.5 * GB, 512 * MB), ['analyzer tasks peak at 1.5 GB but declare 512 MB: declare memory: 1700MB (Guild also learns it after 3 runs)']);
    assert.deepEqual(memoryRec(1800 * MB, 1 * GB), ['analyzer tasks peak at 1.8 GB but declare 1 GB: declare memory: 2000MB (Guild also learns it after 3 runs)']);
  });

  test('a peak within 1.2 × of the declaration, or half of it with fewer than 5 measured tasks, recommends nothing', () => {
    assert.deepEqual(memoryRec(300 * MB, 256 * MB), []);
    assert.deepEqual(memoryRec(100 * MB, 1 * GB, 4), []);
    assert.deepEqual(memoryRec(129 * MB, 256 * MB), []);
  });

  test('one measured task over its declaration is evidence enough to declare more', () => {
    assert.deepEqual(memoryRec(610 * MB, 256 * MB, 1), ['analyzer tasks peak at 610 MB but declare 256 MB: declare memory: 700MB (Guild also learns it after 3 runs)']);
  });

  test('a peak under half the declaration over 5 tasks: declare less, more run at once', () => {
    const r = evaluateKpis(blank({ agents: [agent({ agent: 'builder', declaredBytes: 2 * GB, peakRssBytes: 300 * MB, measuredTasks: 5 })] }));
    assert.deepEqual(r.recommendations, ['builder declares 2 GB but peaks at 300 MB over 5 tasks: a lower memory: (350MB) lets more run at once']);
  });

  test('cache hit rate under 70 %', () => {
    const r = evaluateKpis(blank({ cache: { hits: 41, misses: 59, cold: false } }));
    assert.match(r.recommendations[0] ?? '', /^cache hit rate 41 % is under 70 % \(41 hits in 100 lookups\): declare each cacheable task's inputs: and outputs:/);
  });

  test('error rate above the good line', () => {
    const r = evaluateKpis(blank({ errors: { finished: 20, failed: 3 } }));
    assert.match(r.recommendations[0] ?? '', /^3 of 20 tasks failed \(15 %\)/);
    assert.deepEqual(evaluateKpis(blank({ errors: { finished: 200, failed: 1 } })).recommendations, []);
    assert.match(evaluateKpis(blank({ errors: { finished: 100, failed: 1 } })).recommendations[0] ?? '', /^1 of 100 tasks failed \(1 %\)/);
  });

  test('response time graded poor or critical', () => {
    const r = evaluateKpis(blank({ agents: [agent({ agent: 'analyzer', kind: 'code-analysis', meanMs: 1400, p90Ms: 2100 })] }));
    assert.match(r.recommendations[0] ?? '', /^analyzer tasks take 1\.4 s \(mean, p90 2\.1 s\) against a 200 ms target: /);
  });

  test('slow queue waits and slow cache serving', () => {
    const r = evaluateKpis(blank({ queueWait: { samples: 30, meanMs: 2500, p90Ms: 4000 }, cacheServe: { samples: 10, meanMs: 450, p90Ms: 800 } }));
    assert.equal(r.recommendations.length, 2);
    assert.match(r.recommendations[0] ?? '', /^ready tasks wait 2\.5 s \(mean\) before they start, against a 500 ms target/);
    assert.match(r.recommendations[1] ?? '', /^serving a cached result takes 450 ms \(mean\) against a 100 ms target/);
  });

  test('throughput graded poor: the speed-up of a possible bound', () => {
    const r = evaluateKpis(blank({ throughput: { serialMs: 34_000, makespanMs: 28_333, chainMs: 10_000, tasks: 12 } }));
    assert.equal(find(r, 'throughput').score, 'poor');
    assert.match(r.recommendations[0] ?? '', /^speed-up 1\.2× of a possible 3\.4×: /);
  });

  test('CPU above the acceptable line on a saturated machine: lower max_parallel', () => {
    const r = evaluateKpis(blank({ cpu: cpuUse(0.85, 0.97) }));
    assert.equal(
      r.recommendations[0],
      "CPU use averaged 85 % of 4 cores by Guild's agents, on a saturated machine (97 % busy): lower max_parallel, or declare each agent's real cpu: so admission keeps fewer tasks on the cores at once",
    );
    assert.equal(find(r, 'cpu').note, "share of 4 cores used by Guild's agents; machine busy 97 % (saturated)");
    assert.deepEqual(evaluateKpis(blank({ cpu: cpuUse(0.79, 0.99) })).recommendations, []);
  });

  test('CPU poor but the machine had room: graded, and nothing to lower', () => {
    const r = evaluateKpis(blank({ cpu: cpuUse(0.82, 0.86, { guild: 0.02 }) }));
    assert.equal(find(r, 'cpu').score, 'poor');
    assert.equal(find(r, 'cpu').note, "share of 4 cores used by Guild's agents; machine busy 86 %");
    assert.deepEqual(r.recommendations, []);
  });

  test("agents and Guild filling their capacity saturate it, whatever the host's figure (a cgroup quota)", () => {
    const quota = cpuUse(0.85, 0.3, { guild: 0.06, cores: 1.5 });
    const r = evaluateKpis(blank({ cpu: quota }));
    assert.match(r.recommendations[0] ?? '', /^CPU use averaged 85 % of 1\.5 cores by Guild's agents, on a saturated machine \(91 % busy\): lower max_parallel/);
    assert.ok(0.85 + 0.06 >= KPI_CPU_SATURATED);
    // Unknown machine figure: the agents' own share still shows saturation, and nothing else is assumed.
    assert.equal(evaluateKpis(blank({ cpu: cpuUse(0.85, null, { guild: null }) })).recommendations.length, 0);
    assert.equal(evaluateKpis(blank({ cpu: cpuUse(0.96, null, { guild: null }) })).recommendations.length, 1);
  });

  test('memory efficiency poor: how close the machine came to its limit', () => {
    const r = evaluateKpis(blank({ memory: memory(0.03) }));
    assert.match(r.recommendations[0] ?? '', /^the machine came within 3 % of its memory limit \(97 % used at the worst moment\): lower budget:/);
  });

  test('nothing measured as poor, nothing recommended', () => {
    const r = evaluateKpis(
      blank({
        agents: [agent({ agent: 'analyzer', kind: 'code-analysis', meanMs: 150, declaredBytes: 256 * MB, peakRssBytes: 250 * MB, measuredTasks: 9 })],
        cpu: cpuUse(0.5),
        memory: memory(0.3),
        errors: { finished: 50, failed: 0 },
        cache: { hits: 95, misses: 5, cold: false },
        throughput: { serialMs: 40_000, makespanMs: 10_000, chainMs: 2_000, tasks: 50 },
      }),
    );
    assert.deepEqual(r.recommendations, []);
    assert.deepEqual(r.overall, { score: 'excellent', points: 100 });
  });
});

describe('recorded series', () => {
  test('a healthy run: every KPI excellent, nothing to recommend', () => {
    const rec = new KpiRecorder({
      agents: { analyzer: profile('code-analysis', 256 * MB), indexer: profile('knowledge', 512 * MB), planner: profile('coordination', 128 * MB), builder: profile(null, 512 * MB, 3000) },
      cores: 4,
    });
    const analyzer: [number[], number[]] = [[182, 171, 195, 160, 188, 176, 169, 190, 158, 185], [201, 188, 230, 176, 214, 199, 192, 226, 181, 207]];
    const runs: Array<[string, number[], number[]]> = [
      ['analyzer', [...analyzer[0], ...analyzer[0], ...analyzer[0]], [...analyzer[1], ...analyzer[1], ...analyzer[1]]],
      ['indexer', [240, 265, 251, 230, 277, 248], [288, 301, 296, 279, 310, 292]],
      ['planner', [410, 380, 455, 430, 420], [84, 91, 88, 90, 86]],
      ['builder', [2500, 2450, 2600, 2480, 2550, 2420], [400, 410, 380, 395, 420, 405]],
    ];
    for (const [name, durations, peaksMb] of runs) {
      durations.forEach((ms, i) => rec.taskFinished({ agent: name, durationMs: ms, status: 'succeeded', peakRssBytes: peaksMb[i]! * MB }));
    }
    for (const ms of [12, 40, 85, 130, 22, 64, 9, 51, 30, 77]) rec.taskQueuedToStart(ms);
    for (const ms of [18, 25, 31, 22, 27]) rec.taskFinished({ agent: 'analyzer', durationMs: ms, status: 'cached', peakRssBytes: null });
    for (let i = 0; i < 20; i++) rec.cacheLookup(i !== 7);
    for (let i = 0; i < 4; i++) rec.tokens(10_000, 0);
    rec.tokens(0, 60_000); // the cache hits saved 60 % of the tokens
    const used = [0.52, 0.55, 0.61, 0.66, 0.7, 0.74, 0.78, 0.77, 0.73, 0.69, 0.64, 0.6, 0.58];
    const cpu = [0.35, 0.42, 0.51, 0.55, 0.48, 0.44, 0.39, null, 0.47, 0.52, 0.41, 0.38, 0.36];
    used.forEach((u, i) => rec.sample({ t: (i + 1) * 500, usedFraction: u, cpu: cpu[i] ?? null }));
    // 10.4 CPU seconds over 6.5 s on 4 cores: 40 %.
    rec.cpuTime({ t: 6500, agentsSeconds: 10.4, guildSeconds: 0.3 });

    const r = rec.report(6500, 2600); // serial 23.9 s over 6.5 s: 3.68×
    assert.deepEqual(
      r.scores.filter((s) => s.score !== 'excellent').map((s) => `${s.label}: ${String(s.note)}`),
      [],
    );
    assert.equal(find(r, 'throughput').value, 3.68);
    assert.equal(find(r, 'memory_efficiency').value, 0.22);
    assert.deepEqual([find(r, 'cpu').value, find(r, 'cpu').samples], [0.4, 12]);
    assert.equal(find(r, 'cache_hit_rate').value, 0.95);
    assert.equal(find(r, 'response_time', 'analyzer').value, 177.4);
    assert.equal(find(r, 'response_time', 'coordination').value, 419);
    assert.deepEqual(r.overall, { score: 'excellent', points: 100 });
    assert.deepEqual(r.recommendations, []);
    assertFinite(r);
  });

  test('a struggling run: every recommendation carries its numbers, critical first', () => {
    const rec = new KpiRecorder({
      agents: { analyzer: profile('code-analysis', 256 * MB), builder: profile(null, 2 * GB), tester: profile(null, 512 * MB) },
      cores: 4,
    });
    const analyzer = [1210, 1380, 1655, 1490, 1302, 1440, 1520, 1395];
    const analyzerPeaksMb = [540, 610, 588, 602, 571, 593, 560, 599];
    analyzer.forEach((ms, i) => rec.taskFinished({ agent: 'analyzer', durationMs: ms, status: 'succeeded', peakRssBytes: analyzerPeaksMb[i]! * MB }));
    for (const [ms, mb] of [[20_500, 280], [19_800, 300], [21_200, 260], [20_100, 290], [20_900, 270]] as const) rec.taskFinished({ agent: 'builder', durationMs: ms, status: 'succeeded', peakRssBytes: mb * MB });
    const tester: Array<['succeeded' | 'failed', number]> = [['succeeded', 4200], ['failed', 900], ['succeeded', 3900], ['succeeded', 4400], ['failed', 30_000], ['succeeded', 4100], ['succeeded', 3800], ['failed', 1200], ['succeeded', 4050], ['failed', 1100]];
    for (const [status, ms] of tester) rec.taskFinished({ agent: 'tester', durationMs: ms, status, peakRssBytes: 350 * MB });
    for (const ms of [300, 1200, 800, 1500, 950, 600]) rec.taskQueuedToStart(ms);
    for (let i = 0; i < 17; i++) rec.cacheLookup(i < 7); // 7 hits of 17: 41 %
    [0.71, 0.8, 0.86, 0.91, 0.94, 0.97, 0.95, 0.9, 0.88, 0.85].forEach((u, i) => rec.sample({ t: (i + 1) * 600, usedFraction: u, cpu: 0.9 }));
    rec.cpuTime({ t: 6000, agentsSeconds: 21.6, guildSeconds: 0.2 }); // 90 % of 4 cores over 6 s

    const serial = rec.input(1, 0).throughput.serialMs;
    const r = rec.report(Math.round(serial / 1.2), Math.round(serial / 3.4));

    assert.equal(find(r, 'response_time', 'analyzer').value, 1424);
    assert.equal(find(r, 'response_time', 'analyzer').score, 'critical');
    assert.equal(find(r, 'response_time', 'builder').score, null);
    assert.deepEqual([find(r, 'error_rate').value, find(r, 'error_rate').score], [0.1739, 'critical']);
    assert.deepEqual([find(r, 'memory_efficiency').value, find(r, 'memory_efficiency').score], [0.03, 'poor']);
    assert.deepEqual([find(r, 'throughput').value, find(r, 'throughput').thresholds.good, find(r, 'throughput').score], [1.2, 3.4, 'poor']);
    assert.deepEqual([find(r, 'cpu').value, find(r, 'cpu').score], [0.9, 'poor']);

    assert.deepEqual(
      r.recommendations.map((t) => t.split(':')[0]),
      [
        'analyzer tasks take 1.4 s (mean, p90 1.7 s) against a 200 ms target',
        '4 of 23 tasks failed (17 %)',
        'the machine came within 3 % of its memory limit (97 % used at the worst moment)',
        'speed-up 1.2× of a possible 3.4×',
        "CPU use averaged 90 % of 4 cores by Guild's agents, on a saturated machine (91 % busy)",
        'cache hit rate 41 % is under 70 % (7 hits in 17 lookups)',
        'analyzer tasks peak at 610 MB but declare 256 MB',
        'builder declares 2 GB but peaks at 300 MB over 5 tasks',
      ],
    );
    assert.ok(r.recommendations.includes('analyzer tasks peak at 610 MB but declare 256 MB: declare memory: 700MB (Guild also learns it after 3 runs)'));
    assert.ok(r.overall.points !== null && r.overall.points < 40);
    assert.equal(r.overall.score, 'critical');
    assertFinite(r);
  });

  test('a spike older than the memory window no longer counts', () => {
    const rec = new KpiRecorder({ agents: {}, windows: { memory: 100 } });
    rec.sample({ t: 200, usedFraction: 0.99, cpu: 0.2 });
    const first = find(rec.report(200, 0), 'memory_efficiency');
    assert.deepEqual([first.value, first.score, first.note], [0.01, null, 'not scored: too little data (1 of 10 samples, 0.2 of 2 s)']);
    for (let i = 0; i < 99; i++) rec.sample({ t: 400 + i * 200, usedFraction: 0.6 + (i % 10) / 100, cpu: 0.2 });
    assert.deepEqual([find(rec.report(20_000, 0), 'memory_efficiency').value, find(rec.report(20_000, 0), 'memory_efficiency').score], [0.01, 'critical']);
    rec.sample({ t: 20_200, usedFraction: 0.65, cpu: 0.2 });
    const s = find(rec.report(20_200, 0), 'memory_efficiency');
    assert.deepEqual([s.value, s.samples, s.score], [0.31, 100, 'excellent']);
    // The window now spans its oldest sample (400 ms) to its newest: 19.8 s.
    assert.equal(rec.input(20_200, 0).memory.seconds, 19.8);
  });
});

describe('the minimum of evidence', () => {
  test('one table, from the defaults, frozen, and carried by every report', () => {
    assert.ok(Object.isFrozen(KPI_MINIMUMS));
    for (const [k, m] of Object.entries(KPI_MINIMUMS)) {
      assert.ok(Object.isFrozen(m), k);
      const d = DEFAULTS.kpiMinimums[k as keyof typeof DEFAULTS.kpiMinimums];
      assert.deepEqual([m.samples, m.seconds], [d.samples, d.seconds], k);
      assert.ok(m.of.length > 0, k);
    }
    for (const id of ['response_time', 'memory_efficiency', 'throughput', 'cpu', 'error_rate', 'cache_hit_rate', 'token_efficiency']) assert.ok(id in KPI_MINIMUMS, id);
    const r = evaluateKpis(blank());
    assert.equal(r.minimums, KPI_MINIMUMS);
    assert.deepEqual(JSON.parse(JSON.stringify(r)).minimums.cpu, { samples: 10, seconds: 5, of: 'samples' });
  });

  test('the note names only what falls short, seconds floored', () => {
    assert.equal(tooLittleData('cpu', 4, 0.3), 'not scored: too little data (4 of 10 samples, 0.3 of 5 s)');
    assert.equal(tooLittleData('cpu', 40, 4.96), 'not scored: too little data (4.9 of 5 s)');
    assert.equal(tooLittleData('cpu', 4, 60), 'not scored: too little data (4 of 10 samples)');
    assert.equal(tooLittleData('cpu', 10, 5), null);
    assert.equal(tooLittleData('error_rate', 9), 'not scored: too little data (9 of 10 finished tasks)');
    assert.equal(tooLittleData('response_time', 5), null);
  });

  // One below the minimum, with a value that would be critical: shown, not graded, no recommendation; at the minimum: graded and
  // advised (a kind's row only grades: its agent types carry the advice).
  const cases: Array<[string, string | null, (enough: boolean) => Partial<KpiInput>, string]> = [
    ['response_time', 'analyzer', (ok) => ({ agents: [agent({ agent: 'analyzer', kind: 'code-analysis', meanMs: 5000, samples: ok ? 5 : 4 })] }), '(4 of 5 tasks)'],
    ['response_time', 'code-analysis', (ok) => ({ kinds: [{ kind: 'code-analysis', samples: ok ? 5 : 4, meanMs: 5000, p90Ms: 6000 }] }), '(4 of 5 tasks)'],
    ['response_time', 'queue-wait', (ok) => ({ queueWait: { samples: ok ? 5 : 4, meanMs: 9000, p90Ms: 9000 } }), '(4 of 5 tasks)'],
    ['response_time', 'cache-serve', (ok) => ({ cacheServe: { samples: ok ? 5 : 4, meanMs: 9000, p90Ms: 9000 } }), '(4 of 5 tasks)'],
    ['memory_efficiency', null, (ok) => ({ memory: memory(0.01, ok ? 10 : 9, 2) }), '(9 of 10 samples)'],
    ['memory_efficiency', null, (ok) => ({ memory: memory(0.01, 10, ok ? 2 : 1.99) }), '(1.9 of 2 s)'],
    ['throughput', null, (ok) => ({ throughput: { serialMs: 2000, makespanMs: 2000, chainMs: 500, tasks: ok ? 4 : 3 } }), '(3 of 4 tasks)'],
    ['throughput', null, (ok) => ({ throughput: { serialMs: 2000, makespanMs: ok ? 2000 : 1999, chainMs: 500, tasks: 4 } }), '(1.9 of 2 s)'],
    ['cpu', null, (ok) => ({ cpu: cpuUse(0.99, 0.99, { samples: ok ? 10 : 9, seconds: 5 }) }), '(9 of 10 samples)'],
    ['cpu', null, (ok) => ({ cpu: cpuUse(0.99, 0.99, { samples: 10, seconds: ok ? 5 : 4.99 }) }), '(4.9 of 5 s)'],
    ['error_rate', null, (ok) => ({ errors: { finished: ok ? 10 : 9, failed: 5 } }), '(9 of 10 finished tasks)'],
    ['cache_hit_rate', null, (ok) => ({ cache: { hits: 0, misses: ok ? 10 : 9, cold: false } }), '(9 of 10 lookups)'],
    ['token_efficiency', null, (ok) => ({ tokens: { spent: 1000, saved: 1, tasks: ok ? 5 : 4 } }), '(4 of 5 tasks reporting tokens)'],
  ];
  for (const [kpi, subject, input, short] of cases) {
    test(`${kpi}${subject ? ` · ${subject}` : ''}: below ${short.slice(1, -1)} shown, not graded, nothing recommended`, () => {
      const below = evaluateKpis(blank(input(false)));
      const s = find(below, kpi, subject);
      assert.notEqual(s.value, null);
      assert.equal(s.score, null);
      assert.equal(s.note, `not scored: too little data ${short}`);
      assert.deepEqual(below.recommendations, []);
      assert.deepEqual(below.overall, { score: null, points: null });
      const enough = evaluateKpis(blank(input(true)));
      assert.equal(find(enough, kpi, subject).score, 'critical');
      assert.equal(enough.recommendations.length, subject === 'code-analysis' ? 0 : 1, enough.recommendations.join('\n'));
    });
  }

  test('a structural reason comes before too little data: no target, one chain, a cold cache', () => {
    const r = evaluateKpis(
      blank({
        agents: [agent({ agent: 'tests', samples: 2 })],
        throughput: { serialMs: 300, makespanMs: 300, chainMs: 300, tasks: 3 },
        cache: { hits: 0, misses: 3, cold: true },
      }),
    );
    assert.equal(find(r, 'response_time', 'tests').note, 'no target declared (set kind or response_target)');
    assert.equal(find(r, 'throughput').note, 'one task / one chain: no parallelism possible');
    assert.equal(find(r, 'cache_hit_rate').note, 'cold cache: first run of this workflow');
  });

  test('the overall grade is the mean of the scored KPIs only', () => {
    const r = evaluateKpis(blank({ memory: memory(0.5), cpu: cpuUse(0.99, 0.99, { samples: 3 }), errors: { finished: 3, failed: 3 } }));
    assert.deepEqual(r.overall, { score: 'excellent', points: 100 });
  });
});

describe("the CPU KPI: Guild's agents' share of the capacity over the run", () => {
  test('agents CPU seconds / (run time × cores); the machine busy share time-weighted', () => {
    const rec = new KpiRecorder({ agents: {}, cores: 2 });
    // 1 s at 100 % busy, then 9 samples of 100 ms at 0 %: time-weighted 50 %, not the 10 % a mean per sample gives.
    rec.sample({ t: 1000, usedFraction: 0.5, cpu: 1 });
    for (let t = 1100; t <= 2000; t += 100) rec.sample({ t, usedFraction: 0.5, cpu: 0 });
    rec.cpuTime({ t: 2000, agentsSeconds: 1.2, guildSeconds: 0.1 });
    const c = rec.input(2000, 0, undefined, 'run').cpu;
    assert.deepEqual(c, { samples: 11, seconds: 2, mean: 0.3, machine: 0.5, guild: 0.025, cores: 2 });
  });

  test('without cores or a reading there is no value, and the note says why', () => {
    const rec = new KpiRecorder({ agents: {} });
    for (let t = 200; t <= 10_000; t += 200) rec.sample({ t, usedFraction: 0.5, cpu: 0.99 });
    rec.cpuTime({ t: 10_000, agentsSeconds: 40, guildSeconds: 1 });
    const s = find(rec.report(10_000, 0), 'cpu');
    assert.deepEqual([s.value, s.score, s.note], [null, null, "no reading of the agents' CPU time"]);
    assert.equal(find(new KpiRecorder({ agents: {}, cores: 4 }).report(10_000, 0), 'cpu').note, "no reading of the agents' CPU time");
    assert.throws(() => new KpiRecorder({ agents: {}, cores: 0 }), /Expected cores to be a positive number, got 0/);
  });

  test('live, the span starts at the newest reading a CPU window back; a final report spans the whole run', () => {
    const rec = new KpiRecorder({ agents: {}, cores: 1, windows: { cpu: 10 } });
    let t = 0;
    const tick = (n: number, cpu: number): void => {
      for (let i = 0; i < n; i++) rec.sample({ t: (t += 500), usedFraction: 0.5, cpu });
    };
    tick(10, 1); // 5 s with the agents at 100 %
    rec.cpuTime({ t, agentsSeconds: 5, guildSeconds: 0 });
    tick(10, 0.1); // 5 s with the agents at 10 %
    rec.cpuTime({ t, agentsSeconds: 5.5, guildSeconds: 0 });
    const live = rec.input(t, 0).cpu;
    assert.deepEqual([live.samples, live.seconds, live.mean, Math.round(live.machine! * 100) / 100], [10, 5, 0.1, 0.1]);
    const run = rec.input(t, 0, undefined, 'run').cpu;
    assert.deepEqual([run.samples, run.seconds, run.mean, Math.round(run.machine! * 100) / 100], [20, 10, 0.55, 0.55]);
  });

  test('a reading with no sample since the last replaces it: marks stay bounded however often KPIs are read', () => {
    const rec = new KpiRecorder({ agents: {}, cores: 1, windows: { cpu: 5 } });
    for (let t = 100; t <= 1000; t += 100) {
      rec.sample({ t, usedFraction: 0.5, cpu: 0.5 });
      for (let i = 0; i < 100; i++) rec.cpuTime({ t, agentsSeconds: t / 2000, guildSeconds: null });
    }
    const live = rec.input(1000, 0).cpu;
    assert.deepEqual([live.samples, live.seconds, live.mean, live.guild], [5, 0.5, 0.5, null]);
  });
});
