import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { ProcessExecutor } from '../src/executors/process-executor.js';
import type { Executor } from '../src/executors/executor.js';
import type { ProcessRequest } from '../src/executors/process-executor.js';
import { createSystemProbe } from '../src/system/probe.js';
import { systemCgroupControl } from '../src/system/cgroup-control.js';
import { storeFile } from '../src/store/db.js';
import { runWorkflow } from '../src/workflow/run-workflow.js';
import { tempDir, writeWorkflow } from './helpers.js';

// Issue 11, finding 3 (the parts inside the run): an error inside a sampling instant, or an
// attempt that cannot even start (EMFILE opening its log), must never crash the run: it ends
// with its report and its row is not left `running`.

const statusOf = (dir: string, runId: string): string => {
  const db = new Database(storeFile(dir), { readonly: true });
  try {
    return (db.prepare(`SELECT status FROM runs WHERE id = ?`).get(runId) as { status: string }).status;
  } finally {
    db.close();
  }
};

describe('a run survives failures inside itself', () => {
  it('an error thrown inside a sampling instant is a failed sample: counted, warned, the run ends with its report', async () => {
    const dir = tempDir('guild-resilience-');
    const file = writeWorkflow(`sample_interval: 50ms\nagents: { a: { memory: 10MB } }\ntasks:\n  - { id: t, agent: a, run: 'sleep 1' }\n`, dir);
    let samples = 0;
    const report = await runWorkflow(file, {
      telemetry: false,
      onEvent: (e) => {
        // Thrown from inside the supervisor's timer, as an EMFILE in a read would be.
        if (e.type === 'sample' && ++samples === 3) throw Object.assign(new Error('EMFILE: too many open files, open /proc/self/statm'), { code: 'EMFILE' });
      },
    });
    assert.equal(report.ok, true);
    assert.ok(report.failed_samples >= 1, String(report.failed_samples));
    assert.ok(
      report.warnings.some((w) => /samples failed \(first: EMFILE: too many open files/.test(w)),
      report.warnings.join('\n'),
    );
    assert.ok(samples > 3, 'sampling went on after the failed instant');
    assert.equal(statusOf(dir, report.run_id), 'succeeded');
  });

  it('an attempt whose start throws (EMFILE for its log) fails as an attempt, is retried, and the run reports', async () => {
    const dir = tempDir('guild-resilience-');
    const file = writeWorkflow(`agents: { a: { memory: 10MB, retries: 1 } }\ntasks:\n  - { id: t, agent: a, run: 'echo ok' }\n  - { id: u, agent: a, run: 'true' }\n`, dir);
    const probe = createSystemProbe();
    const real = new ProcessExecutor({ probe, containment: systemCgroupControl() });
    let starts = 0;
    const flaky: Executor<ProcessRequest> = {
      start(req) {
        if (req.taskId === 't' && ++starts === 1) throw Object.assign(new Error(`EMFILE: too many open files, open '${req.logFile}'`), { code: 'EMFILE' });
        return real.start(req);
      },
    };
    const report = await runWorkflow(file, { telemetry: false, probe, executors: { process: flaky } }).finally(() => probe.close());
    const t = report.tasks.find((x) => x.id === 't')!;
    assert.equal(t.status, 'succeeded', JSON.stringify(t));
    assert.equal(t.attempts, 2);
    assert.equal(report.ok, true);
    assert.equal(statusOf(dir, report.run_id), 'succeeded');
  });
});
