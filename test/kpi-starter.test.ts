/**
 * The starter workflow `guild init` writes (3 tasks, well under a second), run for real through the
 * CLI: it grades no KPI it has too little data for and recommends nothing. Before minimums of
 * evidence it was graded "CPU use 90 % poor" and told to lower max_parallel, from the start-up of
 * one `node -e` on a machine busy with other work.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KPI_MINIMUMS } from '../src/telemetry/kpi.js';
import type { KpiScore } from '../src/telemetry/state.js';
import type { RunReport } from '../src/workflow/report.js';
import { guild, tempDir } from './helpers.js';

/** Why a KPI with data may go ungraded whatever the amount of it. */
const STRUCTURAL = ['no target declared (set kind or response_target)', 'one task / one chain: no parallelism possible', 'cold cache: first run of this workflow'];
const TOO_LITTLE = /^not scored: too little data \((\d+(\.\d)? of \d+ [a-z ]+|\d+(\.\d)? of \d+ s)(, \d+(\.\d)? of \d+ s)?\)$/;

describe('the guild init starter, run end to end', () => {
  it('grades no KPI it has too little data for, and recommends nothing', async () => {
    const dir = tempDir('guild-starter-');
    const init = await guild(['init'], { cwd: dir });
    assert.equal(init.code, 0, init.stderr);
    const run = await guild(['run', 'guild.yaml', '--json', '--progress', 'none'], { cwd: dir });
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as RunReport;
    const kpis = report.kpis;
    assert.ok(kpis, 'the --json report carries KPIs');
    assert.deepEqual(kpis.minimums, JSON.parse(JSON.stringify(KPI_MINIMUMS)), 'and the minimums it was held to');
    const seconds = report.makespan_ms / 1000;
    const shown = (s: KpiScore): string =>
      `${s.kpi}${s.subject ? `/${s.subject}` : ''} = ${String(s.value)} over ${s.samples} (${s.score ?? 'not scored'}: ${String(s.note)})`;

    for (const s of kpis.scores) {
      const min = KPI_MINIMUMS[s.kpi as keyof typeof KPI_MINIMUMS];
      assert.ok(min, `a minimum for ${s.kpi}`);
      // Samples count within the run, and no KPI spans more than the run.
      const short = s.samples < min.samples || seconds < min.seconds;
      if (short) assert.equal(s.score, null, `graded on too little data: ${shown(s)}`);
      if (s.score === null && s.value !== null) assert.ok(STRUCTURAL.includes(s.note ?? '') || TOO_LITTLE.test(s.note ?? ''), `says why: ${shown(s)}`);
    }
    // What the starter can never have enough of: 3 tasks, 3 outcomes, 3 queue waits.
    for (const [kpi, subject] of [['error_rate', null], ['throughput', null], ['response_time', 'queue-wait']] as const) {
      const s: KpiScore | undefined = kpis.scores.find((x) => x.kpi === kpi && x.subject === subject);
      assert.ok(s, `${kpi} is listed`);
      assert.equal(s.score, null, shown(s));
      assert.match(s.note ?? '', /^not scored: too little data \(3 of \d+ /, shown(s));
    }
    const cpu = kpis.scores.find((x) => x.kpi === 'cpu');
    assert.ok(cpu && cpu.value !== null, "the agents' CPU share is measured and shown");
    if (seconds < KPI_MINIMUMS.cpu.seconds) assert.match(cpu.note ?? '', new RegExp(`of ${KPI_MINIMUMS.cpu.seconds} s\\)$`), shown(cpu));
    assert.deepEqual(kpis.recommendations, []);
    assert.ok(kpis.scores.every((s) => s.score === null) === (kpis.overall.score === null), 'overall from scored KPIs only');

    // The summary a user reads says the same.
    const text = await guild(['run', 'guild.yaml', '--progress', 'none'], { cwd: dir });
    assert.equal(text.code, 0, text.stderr);
    assert.doesNotMatch(text.stdout + text.stderr, /recommendation:|max_parallel/);
  });
});
