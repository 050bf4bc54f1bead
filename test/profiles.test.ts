import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runWorkflow } from '../src/index.js';
import { openDatabase } from '../src/store/db.js';
import { learnedProfiles } from '../src/store/profiles.js';
import { RunHistory } from '../src/store/runs.js';
import { quantile } from '../src/util/quantile.js';
import { join } from 'node:path';
import { guild, hog, maxOverlap, MB, tempDir, writeWorkflow } from './helpers.js';

describe('learned profiles', () => {
  it('nearest-rank quantiles', () => {
    assert.equal(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9), 9);
    assert.equal(quantile([5], 0.9), 5);
    assert.ok(Number.isNaN(quantile([], 0.5)));
  });

  it('after 3 runs the measured p90 replaces an over-declared estimate, and more runs at once', async () => {
    const dir = tempDir();
    const tasks = Array.from({ length: 4 }, (_, i) => `  - { id: t${i}, agent: cautious, run: "${hog(20, 400)}" }`);
    const file = writeWorkflow(`budget: 600MB\nagents:\n  cautious: { memory: 300MB, cpu: 0.1 }\ntasks:\n${tasks.join('\n')}\n`, dir);
    const overlap = (r: Awaited<ReturnType<typeof runWorkflow>>) => maxOverlap(r.tasks.map((t) => ({ start: t.started_ms!, end: t.ended_ms! })));

    const first = await runWorkflow(file);
    assert.equal(first.profiles.cautious!.source, 'declared');
    assert.equal(overlap(first), 1, '300 MB × 1.2 leaves no room for a second in 600 MB');
    await runWorkflow(file);
    await runWorkflow(file);
    const fourth = await runWorkflow(file);
    const p = fourth.profiles.cautious!;
    assert.equal(p.source, 'learned');
    assert.equal(p.samples, 12);
    // 20 MB held, plus node itself: its whole RSS as a tree (~60 MB), or what its own cgroup was charged (~28 MB).
    assert.ok(p.estimate_bytes < 120 * MB && p.estimate_bytes > 20 * MB, `learned ${p.estimate_bytes / MB} MB`);
    assert.ok(overlap(fourth) >= 3, `now ${overlap(fourth)} at once`);
    assert.ok(fourth.peak_rss_bytes <= fourth.budget_bytes);

    const cli = await guild(['profiles', file, '--json']);
    assert.equal(cli.code, 0, cli.stderr);
    const [row] = JSON.parse(cli.stdout) as { agent: string; declared_bytes: number; samples: number; source: string }[];
    assert.deepEqual([row!.agent, row!.declared_bytes, row!.samples, row!.source], ['cautious', 300 * MB, 16, 'learned']);
    const human = await guild(['profiles', file]);
    assert.match(human.stdout, /cautious\s+300 MB\s+—\s+16\s+/);
  });

  it('never mixes cgroup counters with tree RSS sums: an agent type learns from the source of its newest run', () => {
    const db = openDatabase(join(tempDir(), 'guild.db'));
    const runs = new RunHistory(db);
    const row = (run: string, i: number, peak: number, source: string) => ({ run_id: run, id: `t${i}`, agent: 'a', status: 'succeeded', exit_code: 0, signal: null, started_ms: 0, ended_ms: 100, duration_ms: 100, peak_rss_bytes: peak, memory_source: source, attempts: 1, error: null });
    runs.startRun({ id: 'old', workflow: 'w', name: 'w', started_at: 1, budget_bytes: 1 });
    runs.recordTasks([0, 1, 2, 3].map((i) => row('old', i, 300 * MB, 'tree-rss')));
    assert.equal(learnedProfiles(db).get('a')!.peakP90Bytes, 300 * MB);
    runs.startRun({ id: 'new', workflow: 'w', name: 'w', started_at: 2, budget_bytes: 1 });
    runs.recordTasks([0, 1].map((i) => row('new', i, 100 * MB, 'cgroup')));
    const p = learnedProfiles(db).get('a')!;
    assert.deepEqual([p.samples, p.peakP90Bytes, p.peakMaxBytes], [2, 100 * MB, 100 * MB], 'only the cgroup rows, too few to replace a declaration yet');
    db.close();
  });
});
