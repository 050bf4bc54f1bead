/**
 * Guild's own benchmark suite. Each benchmark compares Guild with a peer in the same run and writes
 * bench/results/<name>.json; this runs them and prints their headline figures (bench/headlines.ts)
 * in one table.
 *
 * By default the suite runs through `guild bench` (bench/guild.yaml: one scenario per benchmark,
 * each run twice): every headline figure is stored in bench/.guild/guild.db with the commit and
 * the machine's fingerprint and, once 5 comparable runs are stored, judged against them — a figure
 * past its threshold and significantly worse is a regression (exit 1). Each benchmark's output is
 * in its task log (the path is printed).
 *
 * Run: npm run bench                  (= tsc -p tsconfig.json && node dist/bench/run.js)
 *      node dist/bench/run.js [--only=startup,memory-bound] [--repeat=N] [extra args for each benchmark, e.g. --rounds=1]
 *      node dist/bench/run.js --no-store [...]   each benchmark once, its output on the terminal, nothing stored
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { metricKind } from '../src/regression/metrics.js';
import { formatChange, formatMetricValue, formatP, formatVerdict } from '../src/regression/report.js';
import { runBench } from '../src/regression/runner.js';
import type { BenchResult, Comparison } from '../src/regression/types.js';
import { BENCHMARKS, headlines } from './headlines.js';
import { printTable, REPO_ROOT } from './lib.js';

const here = dirname(fileURLToPath(import.meta.url));
const arg = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const only = arg('only')?.split(',');
const repeat = arg('repeat') === undefined ? undefined : Number(arg('repeat'));
const store = !process.argv.includes('--no-store');
const passThrough = process.argv.slice(2).filter((a) => !/^--(only|repeat)=/.test(a) && a !== '--no-store');
const unknown = (only ?? []).filter((b) => !BENCHMARKS.includes(b));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; the suite has: ${BENCHMARKS.join(', ')}`);
  process.exit(2);
}
const selected = BENCHMARKS.filter((b) => !only || only.includes(b));

const load = (name: string): unknown => {
  try {
    return JSON.parse(readFileSync(join(REPO_ROOT, 'bench', 'results', `${name}.json`), 'utf8')) as unknown;
  } catch {
    return null;
  }
};

const t0 = performance.now();
const failed: string[] = [];
let result: BenchResult | null = null;
if (store) {
  const file = join(REPO_ROOT, 'bench', 'guild.yaml');
  process.env.GUILD_BENCH_ARGS = passThrough.join(' ');
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  process.once('SIGTERM', () => ac.abort());
  result = await runBench({
    file,
    scenarios: selected,
    ...(repeat !== undefined && { repeat }),
    signal: ac.signal,
    onProgress: (p) => {
      if (p.type === 'waiting') console.log(`waiting for the bench lock (held by pid ${p.holderPid})`);
      else console.log(`${p.scenario.padEnd(22)} run ${p.index}/${p.of}: ${(p.ms / 1000).toFixed(1)} s${p.disturbed ? ' (disturbed: another process used the machine)' : ''}`);
    },
  }).catch((e: unknown) => {
    if (ac.signal.aborted) {
      console.log('interrupted: nothing of the unfinished benchmark was stored');
      process.exit(130);
    }
    throw e;
  });
  for (const s of result.scenarios) if ((s.current.error_rate ?? 0) > 0) failed.push(`${s.scenario} (failed in ${s.current.error_rate} % of runs; its log is under bench/.guild/runs/)`);
} else {
  for (const name of selected) {
    console.log(`\n=== ${name} ${'='.repeat(Math.max(0, 70 - name.length))}`);
    const r = spawnSync(process.execPath, ['--expose-gc', join(here, `${name}.js`), ...passThrough], { stdio: 'inherit' });
    if (r.status !== 0) failed.push(`${name} (exit ${r.status ?? r.signal})`);
  }
}

// One table: every headline figure, with its goal and, once there is a baseline, its verdict.
console.log(`\n=== summary (${((performance.now() - t0) / 1000).toFixed(0)} s) ${'='.repeat(50)}`);
const rows: string[][] = [];
for (const name of selected) {
  const scenario = result?.scenarios.find((s) => s.scenario === name);
  for (const h of headlines(name, load(name))) {
    const key = `metric.${h.metric}`;
    const c: Comparison | undefined = scenario?.comparisons.find((x) => x.metric === key);
    const value = scenario?.current[key] ?? h.value;
    rows.push([
      name,
      h.label,
      formatMetricValue(metricKind(h.metric), value),
      h.goal,
      c ? formatMetricValue(c.kind, c.baseline.median) : '',
      c ? formatChange(c) : '',
      c ? formatP(c.p) : '',
      c ? formatVerdict(c) : '',
    ]);
  }
}
printTable(['benchmark', 'figure', result ? `median of ${result.scenarios[0]?.repeat ?? '?'}` : 'value', 'goal', 'baseline', 'change', 'p', 'verdict'], rows, 2);
if (result) {
  const waiting = result.scenarios.filter((s) => s.status === 'not-enough-baseline');
  if (waiting.length > 0) {
    const have = Math.min(...waiting.map((s) => s.baselineRuns));
    console.log(`\nstored in bench/.guild/guild.db; verdicts begin once ${waiting[0]!.baselineNeeded} comparable runs are stored (${have} before this one) — guild bench history -w bench/guild.yaml`);
  }
  const regressed = result.scenarios.filter((s) => s.status === 'regression').map((s) => s.scenario);
  if (regressed.length > 0) {
    console.log(`REGRESSION: ${regressed.join(', ')}`);
    process.exitCode = 1;
  }
}
if (failed.length > 0) {
  console.log(`FAILED: ${failed.join(', ')}`);
  process.exitCode = 1;
}
