/**
 * `bench:` in a workflow file: scenarios with their defaults, thresholds merged once (a rate's in
 * percentage points), errors naming file, line and key; and what a metric's name says about it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/config/load-config.js';
import { DEFAULTS } from '../src/config/defaults.js';
import { ConfigErrors } from '../src/errors.js';
import { metricSpec, selectMetrics } from '../src/regression/metrics.js';
import { guild, writeWorkflow } from './helpers.js';

const TASKS = `agents: { t: {} }
tasks:
  - { id: build, agent: t, run: "true" }
  - { id: test, agent: t, run: "true", needs: [build] }
  - { id: lint, agent: t, run: "true" }
`;

describe('bench: in a workflow file', () => {
  it('without a bench: section, the whole workflow is the one scenario: 5 runs after 1 warm-up, the default metrics', () => {
    const c = loadConfig(writeWorkflow(TASKS));
    assert.equal(c.bench.declared, false);
    assert.deepEqual(
      c.bench.scenarios.map((s) => [s.name, s.kind, s.repeat, s.warmup, s.cache]),
      [['workflow', 'workflow', 5, 1, false]],
    );
    assert.deepEqual(c.bench.scenarios[0]!.metrics, DEFAULTS.bench.metrics);
    assert.equal(c.bench.alpha, 0.05);
    assert.equal(c.bench.test, 'mann-whitney');
    assert.equal(c.bench.baselineRuns, 10);
    assert.equal(c.bench.minBaseline, 5);
  });

  it('scenarios: tasks, a command, thresholds per metric, pattern and kind; the scenario’s win over the file’s; a rate’s are points', () => {
    const c = loadConfig(
      writeWorkflow(`${TASKS}bench:
  thresholds: { time: 30%, error_rate: 2%, memory: 0.2 }
  test: welch
  scenarios:
    tests: { tasks: [test], repeat: 8, warmup: 0, metrics: [makespan_ms, "task.*.duration_ms"], thresholds: { time: 10%, "task.*.duration_ms": 40% } }
    cli: { run: "node -e 0", memory: 64MB, cache: true }
`),
    );
    assert.equal(c.bench.declared, true);
    assert.equal(c.bench.test, 'welch');
    const [tests, cli] = c.bench.scenarios;
    assert.equal(tests!.kind, 'tasks');
    assert.deepEqual(tests!.tasks, ['test']);
    assert.equal(tests!.repeat, 8);
    assert.equal(tests!.warmup, 0);
    assert.deepEqual({ ...tests!.thresholds }, { time: 0.1, error_rate: 2, memory: 0.2, 'task.*.duration_ms': 0.4 });
    assert.equal(cli!.kind, 'command');
    assert.equal(cli!.run, 'node -e 0');
    assert.equal(cli!.memoryBytes, 64 * 1024 ** 2);
    assert.equal(cli!.cache, true);
    assert.deepEqual({ ...cli!.thresholds }, { time: 0.3, error_rate: 2, memory: 0.2 });
  });

  it('a metric’s spec: the exact name, then the longest pattern, then the kind, then the default', () => {
    const t = { time: 0.1, 'task.*.duration_ms': 0.4, 'task.build.duration_ms': 0.05, 'task.*': 0.9 };
    assert.deepEqual(metricSpec('task.build.duration_ms', t), { name: 'task.build.duration_ms', kind: 'time', better: 'lower', threshold: 0.05 });
    assert.equal(metricSpec('task.test.duration_ms', t).threshold, 0.4, 'the longer pattern wins');
    assert.equal(metricSpec('makespan_ms', t).threshold, 0.1);
    assert.deepEqual(metricSpec('peak_rss_bytes'), { name: 'peak_rss_bytes', kind: 'memory', better: 'lower', threshold: 0.15 });
    assert.deepEqual(metricSpec('throughput_tasks_per_s'), { name: 'throughput_tasks_per_s', kind: 'throughput', better: 'higher', threshold: 0.2 });
    assert.deepEqual(metricSpec('error_rate'), { name: 'error_rate', kind: 'rate', better: 'lower', threshold: 1 });
    assert.equal(metricSpec('cache_hit_rate').better, 'higher');
    assert.equal(metricSpec('makespan_ratio').kind, 'ratio');
    assert.deepEqual(metricSpec('metric.cache-tiers.l1_get_speedup'), { name: 'metric.cache-tiers.l1_get_speedup', kind: 'ratio', better: 'higher', threshold: 0.25 });
    assert.equal(metricSpec('tokens_in').kind, 'count');
    assert.deepEqual(selectMetrics(['makespan_ms', 'task.*.duration_ms'], ['makespan_ms', 'task.a.duration_ms', 'task.a.peak_rss_bytes', 'error_rate']), ['makespan_ms', 'task.a.duration_ms']);
  });

  it('errors name the file, the line and the key: an unknown task (with a hint), tasks and run together, a bad threshold', () => {
    const file = writeWorkflow(`${TASKS}bench:
  scenarios:
    a: { tasks: [tset] }
    b: { tasks: [build], run: "true" }
    c: { thresholds: { time: fast } }
`);
    assert.throws(
      () => loadConfig(file),
      (e: unknown) => {
        assert.ok(e instanceof ConfigErrors);
        const m = e.message;
        assert.match(m, /guild\.yaml:10:\d+: bench\.scenarios\.c\.thresholds\.time: Expected a threshold such as 25%/);
        return true;
      },
    );
    const semantic = writeWorkflow(`${TASKS}bench:
  scenarios:
    a: { tasks: [tset] }
    b: { tasks: [build], run: "true" }
`);
    assert.throws(
      () => loadConfig(semantic),
      (e: unknown) => {
        assert.ok(e instanceof ConfigErrors, String(e));
        assert.match(e.message, /guild\.yaml:8:\d+: bench\.scenarios\.a\.tasks\[0\]: names no task of this file: 'tset' \(did you mean 'test'\?\)/);
        assert.match(e.message, /guild\.yaml:9:\d+: bench\.scenarios\.b\.run: a scenario runs either/);
        return true;
      },
    );
  });

  it('guild bench with a bad bench: section exits 2 and measures nothing', async () => {
    const file = writeWorkflow(`${TASKS}bench:\n  scenarios:\n    a: { repeat: 1 }\n`);
    const r = await guild(['bench', file]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /bench\.scenarios\.a\.repeat/);
    assert.equal(r.stdout, '');
  });
});
