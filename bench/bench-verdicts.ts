/**
 * How often `guild bench --against` is wrong on this machine, against a naive peer in the same run.
 *   1. False alarms: R rounds (default 20) of a scenario measured against the same commit; each
 *      round that reports a regression is a false alarm (goal 0 of 20).
 *   2. Detection: R rounds of a scenario whose task takes ~20 % longer in the newer commit; each
 *      round that reports the regression is a detection.
 * The scenario: one task sleeping 300 ms and one Node busy-loop of 100 ms after it; `repeat: 5`,
 * `warmup: 1`, makespan_ms judged with a 10 % threshold (the default 25 % would, by design, not
 * call a 20 % slowdown a regression).
 * Peer, from the same measurements: the single-sample comparison of github-action-benchmark (the
 * first measured run of each side, alert when past the threshold), and Guild's threshold alone
 * (medians past the threshold, no significance test).
 *
 * Run: npx tsc -p . && node dist/bench/bench-verdicts.js [--rounds=20]
 * Writes bench/results/bench-verdicts.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBench } from '../src/regression/runner.js';
import { listBenchRuns } from '../src/store/bench.js';
import { openDatabase, storeFile } from '../src/store/db.js';
import { argNumber, environment, fmtRatio, isMain, median, printTable, writeResult } from './lib.js';

const THRESHOLD = 0.1;
const workflow = (sleepS: number): string => `agents: { t: { memory: 32MB } }
tasks:
  - { id: nap, agent: t, run: "sleep ${sleepS}" }
  - { id: spin, agent: t, run: "node -e 'const e = Date.now() + 100; while (Date.now() < e);'", needs: [nap] }
bench:
  scenarios:
    s: { repeat: 5, warmup: 1, metrics: [makespan_ms], thresholds: { makespan_ms: ${THRESHOLD * 100}% } }
`;

/** A git repository whose HEAD~1 sleeps `baseS` and HEAD `headS`. */
function repo(baseS: number, headS: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'guild-bench-verdicts-'));
  const git = (...a: string[]): void => void execFileSync('git', a, { cwd: dir, stdio: 'ignore' });
  git('init', '-q');
  git('config', 'user.email', 'bench@example.com');
  git('config', 'user.name', 'bench');
  writeFileSync(join(dir, '.gitignore'), '.guild/\n');
  writeFileSync(join(dir, 'guild.yaml'), workflow(baseS));
  git('add', '.');
  git('commit', '-qm', 'base');
  writeFileSync(join(dir, 'guild.yaml'), workflow(headS));
  git('commit', '-q', '--allow-empty', '-am', 'head');
  return dir;
}

interface Round {
  guild: boolean;
  singleSample: boolean;
  thresholdOnly: boolean;
  ratio: number;
  p: number | null;
}

async function round(dir: string, rev: string): Promise<Round> {
  const r = await runBench({ file: join(dir, 'guild.yaml'), against: rev });
  const c = r.scenarios[0]!.comparisons.find((x) => x.metric === 'makespan_ms')!;
  const db = openDatabase(storeFile(dir));
  const [head, base] = listBenchRuns(db, { limit: 2 });
  db.close();
  const first = (run: typeof head): number => run!.iterations[0]!.metrics.makespan_ms!;
  return {
    guild: c.verdict === 'regression',
    singleSample: first(head) / first(base) - 1 > THRESHOLD,
    thresholdOnly: c.change !== null && c.change > THRESHOLD,
    ratio: c.current.median / c.baseline.median,
    p: c.p,
  };
}

async function main(): Promise<void> {
  const rounds = argNumber('rounds', 20);
  process.env.GUILD_BENCH_LOCK = join(mkdtempSync(join(tmpdir(), 'guild-bench-lock-')), 'bench.lock');
  const same = repo(0.3, 0.3);
  // ~20 % of the measured makespan (~0.56 s on the 2-core machine: 0.3 s of sleep, 0.1 s of spin, Node's start-up and Guild's own steps).
  const slower = repo(0.3, 0.415);
  const sides: { name: string; dir: string; rev: string; expect: boolean; rounds: Round[] }[] = [
    { name: 'same commit', dir: same, rev: 'HEAD', expect: false, rounds: [] },
    { name: '~20 % slower', dir: slower, rev: 'HEAD~1', expect: true, rounds: [] },
  ];
  try {
    for (let i = 0; i < rounds; i++) {
      for (const s of sides) {
        s.rounds.push(await round(s.dir, s.rev));
        const r = s.rounds.at(-1)!;
        console.log(`round ${i + 1}/${rounds} ${s.name}: ratio ${fmtRatio(r.ratio)}, p ${r.p?.toFixed(3) ?? '—'}; guild ${r.guild ? 'REGRESSION' : 'pass'}, single-sample ${r.singleSample ? 'alert' : 'pass'}`);
      }
    }
  } finally {
    rmSync(same, { recursive: true, force: true });
    rmSync(slower, { recursive: true, force: true });
  }
  const count = (s: (typeof sides)[number], k: 'guild' | 'singleSample' | 'thresholdOnly'): number => s.rounds.filter((r) => r[k]).length;
  const [fa, det] = sides as [(typeof sides)[number], (typeof sides)[number]];
  printTable(
    ['', 'guild bench (threshold and significance)', 'threshold alone (medians of 5)', 'single sample (github-action-benchmark)', 'median ratio'],
    sides.map((s) => [
      `${s.name}: ${s.expect ? 'detected' : 'false alarms'}`,
      `${count(s, 'guild')} of ${rounds}`,
      `${count(s, 'thresholdOnly')} of ${rounds}`,
      `${count(s, 'singleSample')} of ${rounds}`,
      fmtRatio(median(s.rounds.map((r) => r.ratio))),
    ]),
  );
  console.log(`goal: 0 false alarms of ${rounds}; a 20 % slowdown (threshold ${THRESHOLD * 100} %) detected in as many rounds as possible`);
  writeResult('bench-verdicts', {
    environment: environment(),
    rounds,
    threshold: THRESHOLD,
    falseAlarms: { guild: count(fa, 'guild'), thresholdOnly: count(fa, 'thresholdOnly'), singleSample: count(fa, 'singleSample'), rounds: fa.rounds },
    detection: { guild: count(det, 'guild'), thresholdOnly: count(det, 'thresholdOnly'), singleSample: count(det, 'singleSample'), rounds: det.rounds },
  });
}

if (isMain(import.meta.url)) await main();
