import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  formatBenchCompare,
  formatBenchMarkdown,
  formatBenchTable,
  formatMetricValue,
  plotHistory,
} from '../src/regression/report.js';
import { metricKind } from '../src/regression/metrics.js';
import type {
  BenchResult,
  BenchRunRecord,
  Comparison,
  Fingerprint,
  MachineRecord,
  MetricKind,
  SampleSummary,
  ScenarioResult,
} from '../src/regression/types.js';

// ─── fixtures, built by hand ────────────────────────────────────────────────────────────────────

const summary = (median: number, n = 5, stdev = median / 20): SampleSummary => ({
  n,
  mean: median,
  median,
  stdev,
  min: median - stdev,
  max: median + stdev,
});

function cmp(metric: string, kind: MetricKind, base: number, cur: number, extra: Partial<Comparison> = {}): Comparison {
  return {
    metric,
    kind,
    better: kind === 'throughput' ? 'higher' : 'lower',
    baseline: summary(base),
    current: summary(cur),
    change: kind === 'rate' ? cur - base : cur / base - 1,
    threshold: kind === 'rate' ? 1 : 0.25,
    test: 'welch',
    p: 0.5,
    ratio: null,
    verdict: 'ok',
    severity: null,
    ...extra,
  };
}

const fingerprint: Fingerprint = { node: 'v20.11.1', cpuModel: 'AMD EPYC 7B13', cores: 8, memoryLimitBytes: 16 * 1024 ** 3 };

function scenario(over: Partial<ScenarioResult>): ScenarioResult {
  return {
    scenario: 'build',
    runId: '20250304-050607-abcd',
    commit: '0123456789abcdef0123456789abcdef01234567',
    repeat: 5,
    mode: 'baseline',
    baselineNeeded: 5, baselineRuns: 10,
    current: {},
    against: null,
    comparisons: [],
    disturbed: 0,
    excludedDisturbed: false,
    status: 'pass',
    confirmed: null,
    ...over,
  };
}

/** A clean pass: every kind once, nothing past its threshold. */
const pass = scenario({
  scenario: 'pass',
  comparisons: [
    cmp('makespan_ms', 'time', 1500, 1520, { p: 0.41 }),
    cmp('peak_rss_bytes', 'memory', 512 * 1024 ** 2, 520 * 1024 ** 2, { p: 0.2 }),
    cmp('tasks_per_s', 'throughput', 182.4, 180.1),
    cmp('error_rate', 'rate', 0, 0, { p: null }),
    cmp('makespan_over_lower_bound_ratio', 'ratio', 1.2, 1.21),
  ],
});

/** +60 % response time: major (2.4 × the 25 % threshold), listed after a noisy and an ok metric. */
const regression = scenario({
  scenario: 'agents | tools',
  status: 'regression',
  disturbed: 1,
  excludedDisturbed: true,
  comparisons: [
    cmp('tool.search.latency_ms', 'time', 40, 41, { verdict: 'ok', p: 0.62 }),
    cmp('guild_rss_bytes', 'memory', 100 * 1024 ** 2, 130 * 1024 ** 2, { verdict: 'noise', p: 0.08 }),
    cmp('task.a|b.duration_ms', 'time', 250, 400, { verdict: 'regression', severity: 'major', p: 0.0004 }),
    cmp('cache_hit_rate', 'rate', 70, 85, { better: 'higher', verdict: 'improved', p: 0.003 }),
    cmp('error_rate', 'rate', 0, 3, { verdict: 'regression', severity: 'critical', p: 0.002 }),
  ],
});

/** Three comparable runs of the five a baseline needs: nothing compared yet. */
const tooFew = scenario({ scenario: 'fresh', status: 'not-enough-baseline', baselineNeeded: 5, baselineRuns: 3 });

/** `--against main`: ratios with their 95 % intervals. */
const against = scenario({
  scenario: 'ab',
  mode: 'against',
  baselineNeeded: 5, baselineRuns: 0,
  against: { rev: 'main', commit: 'fedcba9876543210fedcba9876543210fedcba98' },
  status: 'regression',
  comparisons: [
    cmp('makespan_ms', 'time', 1000, 1350, {
      verdict: 'regression',
      severity: 'minor',
      p: 0.003,
      ratio: { value: 1.35, low: 1.28, high: 1.42 },
    }),
    cmp('peak_rss_bytes', 'memory', 300 * 1024 ** 2, 301 * 1024 ** 2, { ratio: { value: 1.0033, low: 0.99, high: 1.02 } }),
  ],
});

const result = (scenarios: ScenarioResult[], exitCode: 0 | 1 | 2): BenchResult => ({
  exitCode,
  workflow: '/repo/guild.yaml',
  guildVersion: '0.9.0',
  fingerprint,
  scenarios,
});

/** The table lines of one scenario of the terminal output: from its header to the blank line. */
function block(text: string, name: string): string[] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`${name}: `));
  assert.notEqual(start, -1, `no scenario ${name} in\n${text}`);
  const end = lines.indexOf('', start);
  return lines.slice(start, end);
}

/** Splits an aligned terminal row into its cells (columns are two or more spaces apart). */
const cellsOf = (line: string): string[] => line.trim().split(/ {2,}/);

// ─── values ─────────────────────────────────────────────────────────────────────────────────────

describe('values are shown in their kind’s unit', () => {
  it('formats each kind', () => {
    assert.equal(formatMetricValue('time', 0.3521), '0.352 ms');
    assert.equal(formatMetricValue('time', 41.66), '41.7 ms');
    assert.equal(formatMetricValue('time', 12_340), '12.34 s');
    assert.equal(formatMetricValue('memory', 512 * 1024 ** 2), '512 MB');
    assert.equal(formatMetricValue('memory', 1.5 * 1024 ** 3), '1.50 GB');
    assert.equal(formatMetricValue('throughput', 182.44), '182.4/s');
    assert.equal(formatMetricValue('rate', 3), '3.0 %');
    assert.equal(formatMetricValue('ratio', 1.2345), '1.23');
    assert.equal(formatMetricValue('count', 1200), '1200');
    assert.equal(formatMetricValue('count', 0.012345), '0.0123');
    assert.equal(formatMetricValue('time', NaN), '—');
    assert.equal(formatMetricValue('memory', null), '—');
  });

  it('guesses a kind from the name’s suffix', () => {
    assert.equal(metricKind('task.build.duration_ms'), 'time');
    assert.equal(metricKind('peak_rss_bytes'), 'memory');
    assert.equal(metricKind('tool_calls_per_s'), 'throughput');
    assert.equal(metricKind('error_rate'), 'rate');
    assert.equal(metricKind('cpu_pct'), 'rate');
    assert.equal(metricKind('makespan_over_lower_bound_ratio'), 'ratio');
    assert.equal(metricKind('tokens'), 'count');
  });
});

// ─── terminal table ─────────────────────────────────────────────────────────────────────────────

describe('the terminal table', () => {
  const text = formatBenchTable(result([pass, regression, tooFew, against], 1));

  it('has the columns metric, baseline, current, change, p, verdict', () => {
    assert.deepEqual(cellsOf(block(text, 'pass')[1]!), ['metric', 'baseline', 'current', 'change', 'p', 'verdict']);
  });

  it('lists regressions first by severity, then improved, noise, ok', () => {
    const rows = block(text, 'agents | tools').slice(2).map(cellsOf);
    assert.deepEqual(
      rows.map((r) => [r[0], r[r.length - 1]]),
      [
        ['error_rate', 'REGRESSION (critical)'],
        ['task.a|b.duration_ms', 'REGRESSION (major)'],
        ['cache_hit_rate', 'improved'],
        ['guild_rss_bytes', 'noise'],
        ['tool.search.latency_ms', 'ok'],
      ],
    );
  });

  it('formats values, changes and p-values per kind', () => {
    const rows = new Map(block(text, 'pass').slice(2).map((l) => [cellsOf(l)[0], cellsOf(l)]));
    assert.deepEqual(rows.get('makespan_ms'), ['makespan_ms', '1.50 s', '1.52 s', '+1.3 %', '0.410', 'ok']);
    assert.deepEqual(rows.get('peak_rss_bytes'), ['peak_rss_bytes', '512 MB', '520 MB', '+1.6 %', '0.200', 'ok']);
    assert.deepEqual(rows.get('tasks_per_s'), ['tasks_per_s', '182.4/s', '180.1/s', '-1.3 %', '0.500', 'ok']);
    assert.deepEqual(rows.get('error_rate'), ['error_rate', '0.0 %', '0.0 %', '0.0 pt', '—', 'ok']);
    assert.deepEqual(rows.get('makespan_over_lower_bound_ratio'), ['makespan_over_lower_bound_ratio', '1.20', '1.21', '+0.8 %', '0.500', 'ok']);
    const reg = new Map(block(text, 'agents | tools').slice(2).map((l) => [cellsOf(l)[0], cellsOf(l)]));
    assert.deepEqual(reg.get('task.a|b.duration_ms'), ['task.a|b.duration_ms', '250.0 ms', '400.0 ms', '+60.0 %', '<0.001', 'REGRESSION (major)']);
    assert.deepEqual(reg.get('error_rate')?.slice(3, 5), ['+3.0 pt', '0.002']);
  });

  it('says in each header the mode, repeat, disturbed iterations and status', () => {
    assert.equal(block(text, 'pass')[0], 'pass: baseline of 10 runs · repeat 5 · no disturbed iteration · pass');
    assert.equal(block(text, 'agents | tools')[0], 'agents | tools: baseline of 10 runs · repeat 5 · 1 disturbed iteration excluded · REGRESSION');
    assert.equal(block(text, 'fresh')[0], 'fresh: baseline of 3 runs · repeat 5 · no disturbed iteration · not enough baseline: 3 comparable runs, 5 needed');
    assert.match(block(text, 'ab')[0]!, /^ab: against main \(fedcba9\) · repeat 5 · /);
  });

  it('adds the ratio with its 95 % interval in against mode', () => {
    const lines = block(text, 'ab');
    assert.deepEqual(cellsOf(lines[1]!), ['metric', 'baseline', 'current', 'change', 'ratio [95% CI]', 'p', 'verdict']);
    assert.deepEqual(cellsOf(lines[2]!), ['makespan_ms', '1.00 s', '1.35 s', '+35.0 %', '1.35 [1.28, 1.42]', '0.003', 'REGRESSION (minor)']);
    assert.equal(cellsOf(lines[3]!)[4], '1.00 [0.99, 1.02]');
  });

  it('ends with the count and the exit code', () => {
    assert.equal(text.split('\n').at(-1), 'guild bench: 4 scenarios, 3 regressions, 1 without enough baseline → exit 1');
    assert.equal(formatBenchTable(result([pass], 0)).split('\n').at(-1), 'guild bench: 1 scenario, no regression → exit 0');
  });

  it('colours only when asked, without shifting the columns', () => {
    assert.doesNotMatch(text, /\x1b\[/);
    const colored = formatBenchTable(result([regression], 1), { color: true });
    assert.match(colored, /\x1b\[1;31mREGRESSION \(critical\)\x1b\[0m/);
    const stripped = colored.replace(/\x1b\[[0-9;]*m/g, '');
    assert.equal(stripped, formatBenchTable(result([regression], 1)));
  });
});

// ─── Markdown ───────────────────────────────────────────────────────────────────────────────────

/** The report's shape: every digit as `#`, so the snapshot holds its structure and not its numbers. */
const structure = (md: string): string => md.replace(/\d/g, '#');

describe('the Markdown report', () => {
  it('has the expected structure', () => {
    const md = formatBenchMarkdown(result([regression, tooFew, against], 1));
    assert.equal(
      structure(md),
      `## guild bench: # regressions, # scenario without enough baseline

- **Workflow:** /repo/guild.yaml
- **Guild:** #.#.# · **Node:** v##.##.# · **CPU:** AMD EPYC #B## · **Cores:** # · **Memory limit:** ##.## GB

### agents \\| tools: REGRESSION

baseline of ## runs · repeat # · # disturbed iteration excluded · run ########-######-abcd at #######

| metric | baseline | current | change | p | verdict |
|---|---:|---:|---:|---:|---|
| **error_rate** | #.# % | #.# % | +#.# pt | #.### | **REGRESSION (critical)** |
| **task.a\\|b.duration_ms** | ###.# ms | ###.# ms | +##.# % | <#.### | **REGRESSION (major)** |
| cache_hit_rate | ##.# % | ##.# % | +##.# pt | #.### | improved |
| guild_rss_bytes | ### MB | ### MB | +##.# % | #.### | noise |
| tool.search.latency_ms | ##.# ms | ##.# ms | +#.# % | #.### | ok |

<details><summary>Samples</summary>

| metric | side | n | mean | median | stdev |
|---|---|---:|---:|---:|---:|
| error_rate | baseline | # | #.# % | #.# % | #.# % |
| error_rate | current | # | #.# % | #.# % | #.## % |
| task.a\\|b.duration_ms | baseline | # | ###.# ms | ###.# ms | ##.# ms |
| task.a\\|b.duration_ms | current | # | ###.# ms | ###.# ms | ##.# ms |
| cache_hit_rate | baseline | # | ##.# % | ##.# % | #.# % |
| cache_hit_rate | current | # | ##.# % | ##.# % | #.# % |
| guild_rss_bytes | baseline | # | ### MB | ### MB | #.# MB |
| guild_rss_bytes | current | # | ### MB | ### MB | #.# MB |
| tool.search.latency_ms | baseline | # | ##.# ms | ##.# ms | #.## ms |
| tool.search.latency_ms | current | # | ##.# ms | ##.# ms | #.## ms |

</details>

### fresh: not enough baseline: # comparable runs, # needed

baseline of # runs · repeat # · no disturbed iteration · run ########-######-abcd at #######

_Nothing compared._

### ab: REGRESSION

against main (fedcba#) · repeat # · no disturbed iteration · run ########-######-abcd at #######

| metric | baseline | current | change | ratio [##% CI] | p | verdict |
|---|---:|---:|---:|---:|---:|---|
| **makespan_ms** | #.## s | #.## s | +##.# % | #.## [#.##, #.##] | #.### | **REGRESSION (minor)** |
| peak_rss_bytes | ### MB | ### MB | +#.# % | #.## [#.##, #.##] | #.### | ok |

<details><summary>Samples</summary>

| metric | side | n | mean | median | stdev |
|---|---|---:|---:|---:|---:|
| makespan_ms | baseline | # | #.## s | #.## s | ##.# ms |
| makespan_ms | current | # | #.## s | #.## s | ##.# ms |
| peak_rss_bytes | baseline | # | ### MB | ### MB | ##.# MB |
| peak_rss_bytes | current | # | ### MB | ### MB | ##.# MB |

</details>
`,
    );
  });

  it('titles a clean result as a pass and one without baseline as such', () => {
    assert.equal(formatBenchMarkdown(result([pass], 0)).split('\n')[0], '## guild bench: pass');
    assert.equal(formatBenchMarkdown(result([tooFew], 2)).split('\n')[0], '## guild bench: 1 scenario without enough baseline');
  });

  it('escapes `|` so every table row keeps its cell count', () => {
    const md = formatBenchMarkdown(result([regression], 1));
    const rows = md.split('\n').filter((l) => l.startsWith('| '));
    for (const r of rows) {
      const cells = r.split(/(?<!\\)\|/).length - 2;
      assert.equal(cells, 6, r);
    }
    assert.ok(md.includes('task.a\\|b.duration_ms'));
    assert.ok(md.includes('### agents \\| tools'));
  });
});

// ─── compare ────────────────────────────────────────────────────────────────────────────────────

const quiet: MachineRecord = {
  load1: 0.2,
  memAvailableBytes: 8 * 1024 ** 3,
  outsideCpuCores: 0,
  psiMemorySome: null,
  psiCpuSome: null,
  disturbed: false,
  reasons: [],
};

function run(id: string, commit: string | null, medians: Record<string, number[]>, over: Partial<BenchRunRecord> = {}): BenchRunRecord {
  const count = Math.max(1, ...Object.values(medians).map((v) => v.length));
  return {
    id,
    scenario: 'build',
    workflow: '/repo/guild.yaml',
    startedAt: new Date(Date.UTC(2025, 2, 4, 5, 6, 7)),
    commit,
    dirty: false,
    guildVersion: '0.9.0',
    fingerprint,
    fingerprintHash: '0123456789abcdef',
    mode: 'baseline',
    side: null,
    iterations: Array.from({ length: count }, (_, index) => ({
      index,
      metrics: Object.fromEntries(Object.entries(medians).flatMap(([k, v]) => (v[index] === undefined ? [] : [[k, v[index]!]]))),
      machine: quiet,
    })),
    ...over,
  };
}

describe('guild bench compare', () => {
  it('names both runs, then the table', () => {
    const a = run('run-a', '1111111aaaaaaa', { makespan_ms: [1000] });
    const b = run('run-b', '2222222bbbbbbb', { makespan_ms: [1600] }, { dirty: true, startedAt: new Date(Date.UTC(2025, 2, 5)) });
    const text = formatBenchCompare(a, b, [cmp('makespan_ms', 'time', 1000, 1600, { verdict: 'regression', severity: 'major', p: 0.01 })]);
    const lines = text.split('\n');
    assert.equal(lines[0], 'compare build');
    assert.equal(lines[1], '  A  run-a  1111111  2025-03-04 05:06:07 UTC  guild 0.9.0  1 iteration');
    assert.equal(lines[2], '  B  run-b  2222222 (dirty)  2025-03-05 00:00:00 UTC  guild 0.9.0  1 iteration');
    assert.deepEqual(cellsOf(lines[4]!), ['metric', 'baseline', 'current', 'change', 'p', 'verdict']);
    assert.deepEqual(cellsOf(lines[5]!), ['makespan_ms', '1.00 s', '1.60 s', '+60.0 %', '0.010', 'REGRESSION (major)']);
    assert.equal(lines.at(-1), 'B against A: 1 regression, 0 improved, 0 within noise');
    assert.doesNotMatch(text, /warning/);
  });

  it('warns when the runs are not comparable', () => {
    const a = run('run-a', null, {});
    const b = run('run-b', null, {}, { fingerprintHash: 'ffffffffffffffff', scenario: 'other' });
    const text = formatBenchCompare(a, b, []);
    assert.match(text, /different scenarios/);
    assert.match(text, /different machines/);
    assert.match(text, /nothing compared/);
  });
});

// ─── history plot ───────────────────────────────────────────────────────────────────────────────

describe('the history plot', () => {
  // Newest first, as the store returns them.
  const runs = [
    run('r4', 'dddddddddd', { makespan_ms: [1400, 1500, 1450], peak_rss_bytes: [300 * 1024 ** 2] }),
    run('r3', 'cccccccccc', { makespan_ms: [1300] }),
    run('r2', 'bbbbbbbbbb', { makespan_ms: [1000, 1100] }),
    run('r1', 'aaaaaaaaaa', { makespan_ms: [1000], peak_rss_bytes: [200 * 1024 ** 2] }),
  ];

  /** The charts of a plot: blocks separated by a blank line. */
  const charts = (text: string): string[][] => text.split('\n\n').map((c) => c.split('\n'));

  it('draws one chart per metric with the asked height and width', () => {
    const cs = charts(plotHistory(runs, ['makespan_ms', 'peak_rss_bytes'], { width: 60, height: 8 }));
    assert.equal(cs.length, 2);
    for (const c of cs) {
      assert.equal(c.filter((l) => l.includes('│')).length, 8);
      const axis = c.find((l) => l.includes('└'))!;
      assert.equal(axis.length, 60);
    }
    assert.match(cs[0]![0]!, /^makespan_ms \(median per run, 4 runs of 4\)/);
    assert.match(cs[1]![0]!, /^peak_rss_bytes \(median per run, 2 runs of 4\)/);
  });

  it('labels the y axis with min and max in the metric’s unit, and the x axis with the oldest and newest commits', () => {
    const [c] = charts(plotHistory(runs, ['makespan_ms']));
    const plot = c!.filter((l) => l.includes('│'));
    assert.equal(plot.length, 10);
    assert.match(plot[0]!, /^ *1\.45 s │/);
    assert.match(plot.at(-1)!, /^ *1\.00 s │/);
    const xLabels = c!.at(-1)!.trim().split(/ +/);
    assert.deepEqual(xLabels, ['aaaaaaa', 'ddddddd']);
    // The oldest run (1000 ms) is a point at the bottom left; the newest (median 1450) at the top right.
    const bar = plot[0]!.indexOf('│');
    assert.equal(plot.at(-1)![bar + 1], '●');
    assert.ok(plot[0]!.endsWith('●'));
    // Points are joined: every column of the plot area holds a mark.
    const width = Math.max(...plot.map((l) => l.length)) - bar - 1;
    for (let col = 0; col < width; col++) assert.ok(plot.some((l) => l[bar + 1 + col] && l[bar + 1 + col] !== ' '), `column ${col} empty`);
  });

  it('is deterministic', () => {
    assert.equal(plotHistory(runs, ['makespan_ms', 'peak_rss_bytes']), plotHistory(runs, ['makespan_ms', 'peak_rss_bytes']));
  });

  it('handles a single run, a missing metric and no runs', () => {
    const single = charts(plotHistory([runs[0]!], ['makespan_ms'], { height: 5 }))[0]!;
    assert.equal(single.filter((l) => l.includes('│')).length, 5);
    assert.equal(single.filter((l) => l.includes('●')).length, 1);
    assert.equal(single.at(-1)!.trim(), 'ddddddd');
    const missing = plotHistory(runs, ['nope_ms']);
    assert.equal(missing, 'nope_ms (median per run, 0 runs of 4)\n  no values');
    assert.equal(plotHistory([], ['makespan_ms']), 'makespan_ms (median per run, 0 runs of 0)\n  no values');
  });

  it('skips runs without the metric and joins across them', () => {
    const c = charts(plotHistory(runs, ['peak_rss_bytes'], { height: 4 }))[0]!;
    const plot = c.filter((l) => l.includes('│'));
    assert.equal(plot.join('').split('●').length - 1, 2);
    assert.match(plot[0]!, /^300 MB │/);
    assert.match(plot.at(-1)!, /^200 MB │●/);
  });
});
