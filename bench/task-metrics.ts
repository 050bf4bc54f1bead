/**
 * What collecting tasks' metrics costs a run: 2,000 small shell tasks (default), each appending
 * one usage line to a file of its own, $GUILD_METRICS when it is set and otherwise a file beside
 * it that nothing reads (so that both sides do the same work and only Guild's collecting differs),
 * run with task metrics on (GUILD_METRICS given,
 * the file read at every attempt's end and summed) and off (`taskMetrics: false`), the two taking
 * turns (ABBA) in one session, each run in a fresh process. Makespan ratio on / off, median over rounds (goal <= 1.02), and
 * that the "on" runs counted every line.
 *
 * Run: npx tsc -p . && node dist/bench/task-metrics.js [--tasks=2000] [--rounds=6]
 * Writes bench/results/task-metrics.json.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { argNumber, environment, fmtMs, fmtRatio, isMain, median, printTable, writeResult } from './lib.js';

const GOAL = 1.02;
const RUN_WORKFLOW = new URL('../src/workflow/run-workflow.js', import.meta.url).href;

function workflow(tasks: number): string {
  const lines = ['max_parallel: 8', 'agents: { t: { memory: 8MB } }', 'tasks:'];
  const run = `echo '{"tokens_in": 120, "tokens_out": 30, "cost_usd": 0.0004}' >> "\${GUILD_METRICS:-.guild/off-$GUILD_TASK_ID.jsonl}"`;
  for (let i = 0; i < tasks; i++) lines.push(`  - { id: t${i}, agent: t, run: ${JSON.stringify(run)} }`);
  return `${lines.join('\n')}\n`;
}

/**
 * One run in a fresh Node process (runs of thousands of tasks in one process slow down one after
 * another, whichever mode: see the README), its folder's .guild/ removed first.
 */
function once(file: string, on: boolean): { makespanMs: number; tokensIn: number; ok: boolean } {
  rmSync(join(dirname(file), '.guild'), { recursive: true, force: true });
  const code = `import(${JSON.stringify(RUN_WORKFLOW)}).then(async (m) => { const r = await m.runWorkflow(${JSON.stringify(file)}, { store: false, telemetry: false, taskMetrics: ${on} }); process.stdout.write(JSON.stringify({ makespanMs: r.makespan_ms, tokensIn: r.metrics.tokens_in ?? 0, ok: r.ok })); })`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`run failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { makespanMs: number; tokensIn: number; ok: boolean };
}

async function main(): Promise<void> {
  const tasks = argNumber('tasks', 2000);
  const rounds = argNumber('rounds', 6);
  const dir = mkdtempSync(join(tmpdir(), 'guild-bench-task-metrics-'));
  const file = join(dir, 'guild.yaml');
  writeFileSync(file, workflow(tasks));
  const rows: { round: number; onMs: number; offMs: number; ratio: number; counted: boolean }[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      // ABBA: on first in even rounds, off first in odd ones.
      const order = i % 2 === 0 ? [true, false] : [false, true];
      const got: Record<string, ReturnType<typeof once>> = {};
      for (const on of order) got[String(on)] = once(file, on);
      const on = got.true!;
      const off = got.false!;
      const row = { round: i + 1, onMs: on.makespanMs, offMs: off.makespanMs, ratio: on.makespanMs / off.makespanMs, counted: on.ok && off.ok && on.tokensIn === 120 * tasks && off.tokensIn === 0 };
      rows.push(row);
      console.log(`round ${row.round}: on ${fmtMs(row.onMs)}, off ${fmtMs(row.offMs)}, ratio ${fmtRatio(row.ratio)}${row.counted ? '' : '  (COUNTS WRONG)'}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const ratio = median(rows.map((r) => r.ratio));
  printTable(
    ['round', 'metrics on', 'metrics off', 'on / off', 'every line counted'],
    rows.map((r) => [String(r.round), fmtMs(r.onMs), fmtMs(r.offMs), fmtRatio(r.ratio), r.counted ? 'yes' : 'NO']),
  );
  console.log(`makespan on / off, median of ${rounds} rounds of ${tasks} tasks: ${ratio.toFixed(3)} (goal <= ${GOAL}: ${ratio <= GOAL ? 'met' : 'MISSED'})`);
  writeResult('task-metrics', { environment: environment(), tasks, rounds, ratio, goal: GOAL, rows });
}

if (isMain(import.meta.url)) await main();
