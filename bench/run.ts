/**
 * Runs every benchmark in sequence, each in its own node process (fresh heap, --expose-gc), then
 * prints the headline ratios from their bench/results/<name>.json files.
 *
 * Run: npm run bench            (= tsc -p tsconfig.json && node dist/bench/run.js)
 *      node dist/bench/run.js [--only=startup,memory-bound] [extra args passed to each, e.g. --rounds=1]
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmtMB, fmtRatio, REPO_ROOT } from './lib.js';

const BENCHMARKS = ['scheduler-throughput', 'memory-bound', 'startup'] as const;
const here = dirname(fileURLToPath(import.meta.url));

const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
const passThrough = process.argv.slice(2).filter((a) => !a.startsWith('--only='));
const selected = BENCHMARKS.filter((b) => !only || only.includes(b));

const failed: string[] = [];
const t0 = performance.now();
for (const name of selected) {
  console.log(`\n=== ${name} ${'='.repeat(Math.max(0, 70 - name.length))}`);
  const r = spawnSync(process.execPath, ['--expose-gc', join(here, `${name}.js`), ...passThrough], { stdio: 'inherit' });
  if (r.status !== 0) failed.push(`${name} (exit ${r.status ?? r.signal})`);
}

const load = (name: string): Record<string, unknown> | null => {
  try {
    return JSON.parse(readFileSync(join(REPO_ROOT, 'bench', 'results', `${name}.json`), 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
};

console.log(`\n=== summary (${((performance.now() - t0) / 1000).toFixed(0)} s) ${'='.repeat(50)}`);
if (selected.includes('scheduler-throughput')) {
  const r = load('scheduler-throughput') as { results: { concurrency: number; ratio: number; drainRatio: number }[]; guildInversions: number; allRan: boolean } | null;
  for (const x of r?.results ?? []) console.log(`scheduler-throughput  Guild / p-queue tasks/s @ conc ${x.concurrency}: ${fmtRatio(x.ratio)} (goal >= 1.0; drain phase alone ${fmtRatio(x.drainRatio)})`);
  if (r) console.log(`scheduler-throughput  all tasks ran: ${r.allRan ? 'yes' : 'NO'}; Guild priority inversions: ${r.guildInversions}`);
}
if (selected.includes('memory-bound')) {
  const r = load('memory-bound') as { summary: { runner: string; makespanMs: number; peakBytes: number; peakOverBudget: number; makespanOverLowerBound: number }[] } | null;
  for (const s of r?.summary ?? []) {
    console.log(`memory-bound          ${s.runner.padEnd(32)} makespan/LB ${fmtRatio(s.makespanOverLowerBound)}  peak/budget ${fmtRatio(s.peakOverBudget)}  (${(s.makespanMs / 1000).toFixed(1)} s, ${fmtMB(s.peakBytes)})`);
  }
  console.log('memory-bound          goals for Guild: makespan/LB <= 1.25, peak/budget <= 1.0');
}
if (selected.includes('startup')) {
  const r = load('startup') as { cold: { guildMedianMs: number; guildP90Ms: number; ratio: number }; idle: { guildMidRunBytes: number; ratio: number } } | null;
  if (r) {
    console.log(`startup               guild --version median ${r.cold.guildMedianMs.toFixed(0)} ms, p90 ${r.cold.guildP90Ms.toFixed(0)} ms (target < 2000 ms); / node -e 0: ${fmtRatio(r.cold.ratio)}`);
    console.log(`startup               Guild RSS while waiting ${fmtMB(r.idle.guildMidRunBytes)} (target < 50 MB); / bare node: ${fmtRatio(r.idle.ratio)}`);
  }
}
if (failed.length > 0) {
  console.log(`FAILED: ${failed.join(', ')}`);
  process.exitCode = 1;
}
