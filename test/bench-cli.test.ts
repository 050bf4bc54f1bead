/**
 * `guild bench` for real, on a git repository of its own: a task that sleeps 35 % longer in the
 * newer commit is caught by --against with the interval excluding 1.0 (exit 1); the same commit
 * against itself passes; a stored baseline needs 5 runs (exit 2 before, a verdict after), with
 * every run stored and read back by `bench history` and `bench compare`.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { BenchResult } from '../src/regression/types.js';
import { gitRepo, guild } from './helpers.js';

function repo(sleep: string): { dir: string; git: (...a: string[]) => string; env: NodeJS.ProcessEnv } {
  const { dir, git } = gitRepo('guild-bench-repo-');
  writeFileSync(join(dir, '.gitignore'), '.guild/\n');
  writeFileSync(
    join(dir, 'guild.yaml'),
    `agents: { t: { memory: 16MB } }
tasks:
  - { id: nap, agent: t, run: "sleep ${sleep}" }
bench:
  scenarios:
    nap: { repeat: 5, warmup: 1, metrics: [makespan_ms, error_rate] }
`,
  );
  git('add', '.');
  git('commit', '-qm', 'base');
  // Each test its own lock: test files may run side by side.
  return { dir, git, env: { GUILD_BENCH_LOCK: join(dir, 'bench.lock') } };
}

describe('guild bench, for real', () => {
  it('--against: a task 35 % slower in the newer commit is a regression, its interval excluding 1.0 (exit 1); the worktree is gone after', async () => {
    const { dir, git, env } = repo('0.4');
    const base = git('rev-parse', 'HEAD');
    writeFileSync(join(dir, 'guild.yaml'), readFileSync(join(dir, 'guild.yaml'), 'utf8').replace('sleep 0.4', 'sleep 0.54'));
    git('commit', '-qam', 'slower');
    const md = join(dir, 'report.md');
    const r = await guild(['bench', '--against', 'HEAD~1', '--json', '--markdown', md], { cwd: dir, env });
    assert.equal(r.code, 1, r.stderr);
    const out = JSON.parse(r.stdout) as BenchResult;
    const [s] = out.scenarios;
    assert.equal(s!.status, 'regression');
    assert.deepEqual(s!.against, { rev: 'HEAD~1', commit: base });
    const m = s!.comparisons.find((c) => c.metric === 'makespan_ms')!;
    assert.equal(m.verdict, 'regression');
    assert.ok(m.ratio!.low > 1 && m.ratio!.high > m.ratio!.low, `95 % interval ${m.ratio!.low}..${m.ratio!.high} excludes 1.0`);
    assert.ok(m.ratio!.value > 1.2 && m.ratio!.value < 1.5, `ratio ${m.ratio!.value}`);
    assert.ok(m.p! < 0.05);
    assert.equal(m.baseline.n, 5);
    assert.equal(m.current.n, 5);
    assert.equal(s!.comparisons.find((c) => c.metric === 'error_rate')!.verdict, 'ok');
    // Interleaved: progress names both sides, taking turns.
    const sides = [...r.stderr.matchAll(/nap \[(base|head)\] run/g)].map((x) => x[1]);
    assert.equal(sides.length, 10);
    assert.deepEqual(sides.slice(0, 4), ['base', 'head', 'head', 'base']);
    assert.match(readFileSync(md, 'utf8'), /makespan_ms/);
    assert.equal(git('worktree', 'list').split('\n').length, 1, 'the temporary worktree is removed');
  });

  it('--against the same commit passes (exit 0)', async () => {
    const { dir, env } = repo('0.3');
    const r = await guild(['bench', '--against', 'HEAD', '--repeat', '4'], { cwd: dir, env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /no regression → exit 0/);
  });

  it('gates on what tasks report spending: a task whose cost rose 50 % in the newer commit is a regression of cost_usd', async () => {
    const { dir, git, env } = repo('0');
    const original = readFileSync(join(dir, 'guild.yaml'), 'utf8');
    const spend = (usd: number): string =>
      original
        .replace(/run: "sleep [^"]*"/, `run: "echo '{\\"cost_usd\\": ${usd}, \\"tokens_in\\": 1000}' >> $GUILD_METRICS"`)
        .replace('metrics: [makespan_ms, error_rate]', 'metrics: [cost_usd, tokens]');
    writeFileSync(join(dir, 'guild.yaml'), spend(0.1));
    git('commit', '-qam', 'reports spend');
    writeFileSync(join(dir, 'guild.yaml'), spend(0.15));
    git('commit', '-qam', 'costlier');
    const r = await guild(['bench', '--against', 'HEAD~1', '--json', '--repeat', '3'], { cwd: dir, env });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const c = (JSON.parse(r.stdout) as BenchResult).scenarios[0]!.comparisons;
    assert.deepEqual(Object.fromEntries(c.map((x) => [x.metric, x.verdict])), { tokens: 'ok', cost_usd: 'regression' });
    assert.equal(c.find((x) => x.metric === 'cost_usd')!.severity, 'major', '+50 % is 3.3 × the 15 % threshold');
  });

  it('a stored baseline: "not enough baseline" (exit 2) until 5 comparable runs, then a verdict; history and compare read the store', async () => {
    const { dir, env } = repo('0.05');
    for (let i = 0; i < 5; i++) {
      const r = await guild(['bench', '--repeat', '2', '--no-progress'], { cwd: dir, env });
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`not enough baseline: ${i} comparable runs?, 5 needed`), r.stdout);
    }
    const r = await guild(['bench', '--repeat', '2', '--no-progress', '--json'], { cwd: dir, env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const out = JSON.parse(r.stdout) as BenchResult;
    assert.equal(out.scenarios[0]!.baselineRuns, 5);
    assert.equal(out.scenarios[0]!.comparisons.find((c) => c.metric === 'makespan_ms')!.baseline.n, 10);
    assert.ok(existsSync(join(dir, '.guild', 'guild.db')));
    const h = await guild(['bench', 'history', '--json'], { cwd: dir });
    assert.equal(h.code, 0, h.stderr);
    const runs = JSON.parse(h.stdout) as { id: string; commit: string; iterations: unknown[] }[];
    assert.equal(runs.length, 6);
    assert.ok(runs.every((x) => x.iterations.length === 2 && /^[0-9a-f]{40}$/.test(x.commit)));
    const plot = await guild(['bench', 'history'], { cwd: dir });
    assert.match(plot.stdout, /makespan_ms \(median per run/);
    const c = await guild(['bench', 'compare', runs[1]!.id.slice(0, 8), runs[0]!.id.slice(0, 8)], { cwd: dir });
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /makespan_ms/);
    const missing = await guild(['bench', 'compare', 'nope', runs[0]!.id], { cwd: dir });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no stored bench run 'nope'/);
  });
});
