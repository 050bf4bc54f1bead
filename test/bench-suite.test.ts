/**
 * Guild's own benchmark suite through `guild bench` (bench/guild.yaml): every benchmark is a
 * command scenario whose headline figures arrive on GUILD_METRICS; a file of command scenarios
 * needs no tasks, and `guild run` still refuses it; a scenario's command that measures with
 * `guild bench` itself does not wait for its parent's bench lock.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BENCHMARKS, headlines } from '../bench/headlines.js';
import { loadBenchConfig } from '../src/config/load-config.js';
import { metricKind } from '../src/regression/metrics.js';
import type { BenchResult } from '../src/regression/types.js';
import { guild, tempDir } from './helpers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

describe("Guild's benchmark suite through guild bench", () => {
  it('bench/guild.yaml has one command scenario per benchmark, each running its compiled script, deciding on its headline figures and failures', () => {
    const config = loadBenchConfig(join(ROOT, 'bench', 'guild.yaml'));
    assert.equal(config.tasks.length, 0);
    assert.deepEqual(
      config.bench.scenarios.map((s) => s.name),
      BENCHMARKS,
    );
    for (const s of config.bench.scenarios) {
      assert.equal(s.kind, 'command');
      const script = /node --expose-gc \.\.\/(dist\/bench\/[\w-]+\.js) \$GUILD_BENCH_ARGS$/.exec(s.run ?? '');
      assert.ok(script, `${s.name}: ${s.run}`);
      assert.ok(existsSync(join(ROOT, script[1]!)), `${script[1]} is built`);
      assert.ok(s.repeat >= 2, 'two samples at least: one cannot be significant');
      assert.deepEqual(s.metrics, ['metric.*', 'error_rate']);
      assert.ok(s.timeoutMs !== null && s.timeoutMs >= 20 * 60_000, `${s.name}: a benchmark runs minutes, not the default 30 s`);
    }
  });

  it('headline figures: names a metric line accepts, kinds from their suffixes, nothing from a missing or partial result', () => {
    const figures = headlines('scheduler-throughput', { results: [{ concurrency: 8, ratio: 1.12 }], guildInversions: 0, allRan: true });
    assert.deepEqual(
      figures.map((h) => [h.metric, h.value]),
      [
        ['scheduler-throughput.c8_speedup', 1.12],
        ['scheduler-throughput.priority_inversions', 0],
        ['scheduler-throughput.tasks_lost', 0],
      ],
    );
    assert.equal(metricKind(figures[0]!.metric), 'ratio');
    assert.deepEqual(headlines('memory-bound', null), []);
    assert.deepEqual(headlines('reaction', { kill: { p50: 40, p99: 90 } }).map((h) => h.metric), ['reaction.kill_p99_ms']);
    assert.deepEqual(headlines('no-such-benchmark', {}), []);
    for (const b of BENCHMARKS) for (const h of headlines(b, {})) assert.match(h.metric, NAME_RE);
  });

  it('a file of command scenarios alone: guild bench measures it and stores what the command reports; guild run refuses it (exit 2)', async () => {
    const dir = tempDir('guild-bench-suite-');
    const file = join(dir, 'guild.yaml');
    // The command reports a figure over a peer's, as every benchmark does, then (nested) takes the bench lock itself.
    const lockModule = new URL('../src/system/bench-lock.js', import.meta.url).href;
    const cmd = `echo '{"probe.x_speedup": 1.5}' >> "$GUILD_METRICS" && node -e "import('${lockModule}').then((m) => m.acquireBenchLock({ wait: false })).then((l) => l.release())"`;
    writeFileSync(file, `bench:\n  scenarios:\n    probe:\n      run: ${JSON.stringify(cmd)}\n      repeat: 2\n      warmup: 0\n      timeout: 1m\n      metrics: ['metric.*', error_rate]\n`);
    const env = { GUILD_BENCH_LOCK: join(dir, 'bench.lock') };
    const r = await guild(['bench', file, '--json'], { cwd: dir, env });
    assert.equal(r.code, 2, r.stderr); // stored; no baseline yet
    const out = JSON.parse(r.stdout) as BenchResult;
    const [s] = out.scenarios;
    assert.equal(s!.status, 'not-enough-baseline');
    assert.equal(s!.current['metric.probe.x_speedup'], 1.5);
    assert.equal(s!.current.error_rate, 0, 'the nested bench lock was taken at once (--no-wait semantics), not refused');
    const run = await guild(['run', file, '--no-telemetry'], { cwd: dir, env });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /no tasks to run/);
  });
});
