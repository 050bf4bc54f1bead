import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { admits, heldBytes, workerCapacity } from '../src/distributed/worker-admission.js';
import { MB } from './helpers.js';

// A worker's admission, without Redis: the local rule beside other jobs, the budget alone on an idle worker.

const cap = (jobs: { memory: number; observed: number }[], o: { budget?: number; available?: number; other?: number } = {}) =>
  workerCapacity({ budgetBytes: (o.budget ?? 676) * MB, jobs: jobs.map((j) => ({ payload: { memoryBytes: j.memory * MB }, observedBytes: j.observed * MB })), otherBytes: (o.other ?? 0) * MB, availableBytes: (o.available ?? 10_000) * MB, cores: 2, cpuUsed: 0 });

describe('worker admission', () => {
  it('alone on an idle worker, a job needs only its expected memory within the budget (no headroom)', () => {
    assert.equal(admits({ memoryBytes: 583 * MB, cpu: 0 }, cap([])), true, '583 MB × 1.2 > 676 MB, but nothing else runs');
    assert.equal(admits({ memoryBytes: 700 * MB, cpu: 0 }, cap([])), false, 'above the budget');
    assert.equal(admits({ memoryBytes: 583 * MB, cpu: 0 }, cap([], { available: 500 })), false, 'not free on the machine');
  });

  it('beside another job (or an MCP backend), headroom applies', () => {
    assert.equal(admits({ memoryBytes: 300 * MB, cpu: 0 }, cap([{ memory: 100, observed: 50 }])), true);
    assert.equal(admits({ memoryBytes: 500 * MB, cpu: 0 }, cap([{ memory: 100, observed: 50 }])), false, '100 + 500 × 1.2 > 676');
    assert.equal(admits({ memoryBytes: 583 * MB, cpu: 0 }, cap([], { other: 60 })), false, 'a backend holds 60 MB: not alone');
  });

  it('a job counts as max(expected, measured); what it has not touched yet is kept off the machine free memory', () => {
    const c = cap([{ memory: 100, observed: 150 }, { memory: 200, observed: 50 }], { available: 1000 });
    assert.equal(heldBytes([{ payload: { memoryBytes: 100 }, observedBytes: 150 }]), 150);
    assert.equal(c.accountedBytes, 350 * MB);
    assert.equal(c.systemFreeBytes, 850 * MB);
    assert.equal(c.running, 2);
  });
});
