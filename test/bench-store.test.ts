/**
 * What `guild bench` keeps: stored runs read back whole (iterations, machine, every metric), ids
 * by prefix, the baseline as the newest comparable runs only, and the git and machine facts a run
 * is recorded with.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openDatabase } from '../src/store/db.js';
import { baselineRuns, getBenchRun, listBenchRuns, saveBenchRun } from '../src/store/bench.js';
import { fingerprintHash, machineFingerprint } from '../src/regression/fingerprint.js';
import { addWorktree, commitOf } from '../src/regression/git.js';
import type { BenchRunRecord, Fingerprint } from '../src/regression/types.js';
import { createSystemProbe } from '../src/system/probe.js';
import { gitRepo, tempDir } from './helpers.js';

const FP: Fingerprint = { node: 'v20.0.0', cpuModel: 'Test CPU', cores: 2, memoryLimitBytes: 8 * 2 ** 30 };
const OTHER: Fingerprint = { ...FP, cores: 4 };

let seq = 0;
function run(o: Partial<BenchRunRecord> & { at: number; makespan?: number[] }): BenchRunRecord {
  const fp = o.fingerprint ?? FP;
  return {
    id: o.id ?? `run-${String(++seq).padStart(4, '0')}-${Math.random().toString(16).slice(2, 10)}`,
    scenario: o.scenario ?? 'workflow',
    workflow: o.workflow ?? '/w/guild.yaml',
    startedAt: new Date(o.at),
    commit: o.commit ?? 'a'.repeat(40),
    dirty: o.dirty ?? false,
    guildVersion: '0.1.0',
    fingerprint: fp,
    fingerprintHash: fingerprintHash(fp),
    mode: o.mode ?? 'baseline',
    side: o.side ?? null,
    iterations: (o.makespan ?? [100, 110]).map((v, index) => ({
      index,
      metrics: { makespan_ms: v, peak_rss_bytes: 1e6 + index, error_rate: 0 },
      machine: { load1: 0.5, memAvailableBytes: 1e9, outsideCpuCores: index === 1 ? 0.9 : 0.1, psiMemorySome: 0, psiCpuSome: 0.02, disturbed: index === 1, reasons: index === 1 ? ['other processes used 0.90 cores'] : [] },
    })),
  };
}

describe('bench store', () => {
  it('a stored run reads back whole: iterations in order, the machine meanwhile, every metric', () => {
    const db = openDatabase(join(tempDir(), 'guild.db'));
    const r = run({ at: 1000, makespan: [120, 130, 125] });
    saveBenchRun(db, r);
    assert.deepEqual(getBenchRun(db, r.id), r);
    db.close();
  });

  it('a run is found by a unique prefix of its id; an ambiguous, empty or unknown prefix finds none', () => {
    const db = openDatabase(join(tempDir(), 'guild.db'));
    saveBenchRun(db, run({ at: 1, id: 'abc123' }));
    saveBenchRun(db, run({ at: 2, id: 'abd456' }));
    saveBenchRun(db, run({ at: 3, id: 'x_y' }));
    assert.equal(getBenchRun(db, 'abc')?.id, 'abc123');
    assert.equal(getBenchRun(db, 'ab'), null);
    assert.equal(getBenchRun(db, ''), null);
    assert.equal(getBenchRun(db, 'zzz'), null);
    // LIKE's wildcards in a prefix are literal.
    assert.equal(getBenchRun(db, 'x%'), null);
    assert.equal(getBenchRun(db, 'x_')?.id, 'x_y');
    db.close();
  });

  it('the baseline: the newest runs of the same scenario, workflow and fingerprint, never an --against side, at most the limit', () => {
    const db = openDatabase(join(tempDir(), 'guild.db'));
    for (let i = 0; i < 12; i++) saveBenchRun(db, run({ at: 1000 + i, id: `base-${i}` }));
    saveBenchRun(db, run({ at: 5000, id: 'other-machine', fingerprint: OTHER }));
    saveBenchRun(db, run({ at: 5001, id: 'other-scenario', scenario: 'build' }));
    saveBenchRun(db, run({ at: 5002, id: 'other-file', workflow: '/w/other.yaml' }));
    saveBenchRun(db, run({ at: 5003, id: 'ab-head', mode: 'against', side: 'head' }));
    const b = baselineRuns(db, { scenario: 'workflow', workflow: '/w/guild.yaml', fingerprintHash: fingerprintHash(FP), limit: 10 });
    assert.deepEqual(
      b.map((r) => r.id),
      [11, 10, 9, 8, 7, 6, 5, 4, 3, 2].map((i) => `base-${i}`),
    );
    assert.equal(baselineRuns(db, { scenario: 'workflow', fingerprintHash: fingerprintHash(OTHER), limit: 10 }).length, 1);
    assert.deepEqual(
      listBenchRuns(db, { limit: 3 }).map((r) => r.id),
      ['ab-head', 'other-file', 'other-scenario'],
    );
    assert.equal(listBenchRuns(db, { scenario: 'build' }).length, 1);
    assert.equal(listBenchRuns(db).length, 16);
    db.close();
  });
});

describe('bench facts: the machine and the commit', () => {
  it('the fingerprint names this machine (Node, CPU, cores, memory limit) and its hash ignores nothing of it', () => {
    const probe = createSystemProbe();
    const f = machineFingerprint(probe);
    probe.close();
    assert.equal(f.node, process.version);
    assert.ok(f.cpuModel.length > 0);
    assert.ok(f.cores >= 1);
    assert.ok(f.memoryLimitBytes > 64 * 2 ** 20);
    assert.match(fingerprintHash(f), /^[0-9a-f]{16}$/);
    assert.equal(fingerprintHash({ ...f }), fingerprintHash(f));
    for (const changed of [{ ...f, node: 'v22.0.0' }, { ...f, cpuModel: 'x' }, { ...f, cores: f.cores + 1 }, { ...f, memoryLimitBytes: f.memoryLimitBytes / 2 }]) {
      assert.notEqual(fingerprintHash(changed), fingerprintHash(f));
    }
  });

  it('commitOf: the commit, the root and whether the tree is dirty (Guild’s own .guild/ never counts); null outside git', () => {
    assert.equal(commitOf(tempDir()), null);
    const { dir, git } = gitRepo();
    writeFileSync(join(dir, 'guild.yaml'), 'tasks: []\n');
    git('add', '.');
    git('commit', '-qm', 'one');
    const c = commitOf(dir)!;
    assert.equal(c.sha, git('rev-parse', 'HEAD'));
    assert.equal(c.dirty, false);
    assert.equal(c.root, git('rev-parse', '--show-toplevel'));
    writeFileSync(join(dir, 'guild.yaml'), 'tasks: [] # changed\n');
    assert.equal(commitOf(dir)!.dirty, true);
  });

  it('addWorktree checks a revision out into a folder of the project that remove() deletes; leftovers of a killed bench go first; a bad revision is a usage error', () => {
    const { dir, git } = gitRepo();
    writeFileSync(join(dir, 'f.txt'), 'one\n');
    git('add', '.');
    git('commit', '-qm', 'one');
    const first = git('rev-parse', 'HEAD');
    writeFileSync(join(dir, 'f.txt'), 'two\n');
    git('commit', '-qam', 'two');
    const under = join(dir, '.guild', 'bench-worktrees');
    const wt = addWorktree(dir, 'HEAD~1', under);
    assert.equal(wt.sha, first);
    assert.ok(wt.dir.startsWith(under));
    assert.equal(readFileSync(join(wt.dir, 'f.txt'), 'utf8'), 'one\n');
    // A bench killed with SIGKILL leaves its worktree: the next one removes it before adding its own.
    const next = addWorktree(dir, 'HEAD', under);
    assert.equal(existsSync(wt.dir), false);
    assert.equal(git('worktree', 'list').split('\n').length, 2);
    next.remove();
    wt.remove(); // twice, or after it was taken away: harmless
    assert.equal(existsSync(next.dir), false);
    assert.equal(git('worktree', 'list').split('\n').length, 1);
    assert.throws(() => addWorktree(dir, 'no-such-rev', under), { code: 'USAGE', message: /'no-such-rev' is not a commit/ });
  });
});
