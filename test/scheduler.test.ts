import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Priority } from '../src/config/schema.js';
import { PriorityHeap } from '../src/scheduler/priority-queue.js';
import { Scheduler, type SchedulerJob } from '../src/scheduler/scheduler.js';
import { MB } from './helpers.js';


interface Job extends SchedulerJob {
  started?: number;
}

function job(id: string, o: Partial<{ type: string; priority: Priority; mb: number; cpu: number; dur: number }> = {}): Job {
  return {
    id,
    type: o.type ?? 'a',
    priority: o.priority ?? 'medium',
    memoryBytes: (o.mb ?? 0) * MB,
    cpu: o.cpu ?? 0,
    expectedDurationMs: o.dur ?? 1000,
    key: 0,
    seq: 0,
  };
}

/** A scheduler on a fake clock that records what starts. */
function harness(opts: Partial<ConstructorParameters<typeof Scheduler<Job>>[0]> = {}) {
  let now = 0;
  const started: Job[] = [];
  const s = new Scheduler<Job>({
    budgetBytes: 1000 * MB,
    cpuCap: 100,
    now: () => now,
    start: (j) => {
      j.started = now;
      started.push(j);
    },
    ...opts,
  });
  return {
    s,
    started,
    ids: () => started.map((j) => j.id),
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe('priority heap', () => {
  it('pops in (key, seq) order for many random keys', () => {
    const h = new PriorityHeap<{ key: number; seq: number }>();
    let x = 12345;
    const rand = () => (x = (x * 1103515245 + 12345) % 2 ** 31);
    for (let i = 0; i < 10_000; i++) h.push({ key: rand() % 100, seq: i });
    let prev = { key: -1, seq: -1 };
    for (let i = 0; i < 10_000; i++) {
      const e = h.pop()!;
      assert.ok(e.key > prev.key || (e.key === prev.key && e.seq > prev.seq));
      prev = e;
    }
    assert.equal(h.size, 0);
  });
});

describe('scheduler', () => {
  it('starts in priority order, FIFO within a priority', () => {
    const h = harness({ maxParallel: 1 });
    h.s.enqueue(job('blocker'));
    for (const [id, p] of [['l1', 'low'], ['m1', 'medium'], ['c1', 'critical'], ['h1', 'high'], ['c2', 'critical'], ['l2', 'low']] as const) {
      h.s.enqueue(job(id, { priority: p }));
    }
    for (let i = 0; i < 6; i++) h.s.release(h.started[h.started.length - 1]!);
    assert.deepEqual(h.ids(), ['blocker', 'c1', 'c2', 'h1', 'm1', 'l1', 'l2']);
  });

  it('among equals queued together, the larger goes first (first-fit decreasing)', () => {
    const h = harness({ budgetBytes: 1000 * MB });
    h.s.batch(() => {
      h.s.enqueue(job('small', { type: 's', mb: 100 }));
      h.s.enqueue(job('large', { type: 'l', mb: 600 }));
      h.s.enqueue(job('mid', { type: 'm', mb: 200 }));
      h.s.enqueue(job('urgent-small', { type: 'u', mb: 50, priority: 'high' }));
    });
    // Priority first; then by size among equals, whatever the order of the calls.
    assert.deepEqual(h.ids(), ['urgent-small', 'large', 'mid', 'small']);
  });

  it('ages waiting tasks: a low task that waited long enough goes before a fresh critical one', () => {
    const h = harness({ maxParallel: 1, agingMs: 1000 });
    h.s.enqueue(job('blocker'));
    h.s.enqueue(job('old-low', { priority: 'low' })); // key 0 + 3 × 1000
    h.advance(3500);
    h.s.enqueue(job('new-critical', { priority: 'critical' })); // key 3500
    h.s.release(h.started[0]!);
    assert.deepEqual(h.ids(), ['blocker', 'old-low']);
  });

  it('never exceeds per-type concurrency, and a full type does not block others', () => {
    const h = harness({ concurrency: (t) => (t === 'a' ? 2 : null) });
    for (let i = 0; i < 5; i++) h.s.enqueue(job(`a${i}`, { type: 'a', priority: 'critical' }));
    h.s.enqueue(job('b0', { type: 'b', priority: 'low' }));
    assert.deepEqual(h.ids(), ['a0', 'a1', 'b0']);
    h.s.release(h.started[0]!);
    assert.deepEqual(h.ids(), ['a0', 'a1', 'b0', 'a2']);
  });

  it('admits only with free budget >= 1.2 × expected memory, counting reservations until memory shows', () => {
    const h = harness({ budgetBytes: 600 * MB });
    h.s.enqueue(job('x', { mb: 250 }));
    h.s.enqueue(job('y', { mb: 250 }));
    // After x: 350 MB free >= 300 needed; after y: 100 MB free < 300 for z.
    h.s.enqueue(job('z', { mb: 250 }));
    assert.deepEqual(h.ids(), ['x', 'y']);
    assert.equal(h.s.accountedBytes, 500 * MB);
    // x touched less than it declared: its reservation still counts.
    h.s.observe(h.started[0]!, 50 * MB);
    h.s.pump();
    assert.deepEqual(h.ids(), ['x', 'y']);
    // y grew beyond its estimate: the observed figure counts.
    h.s.observe(h.started[1]!, 400 * MB);
    assert.equal(h.s.accountedBytes, 650 * MB);
    h.s.release(h.started[0]!);
    assert.deepEqual(h.ids(), ['x', 'y'], '600 − 400 = 200 MB free < 300 MB');
    h.s.release(h.started[1]!);
    assert.deepEqual(h.ids(), ['x', 'y', 'z']);
  });

  it('the system view counts untouched reservations against live available memory', () => {
    const h = harness({ budgetBytes: 10_000 * MB });
    h.s.setSystemAvailable(700 * MB);
    h.s.enqueue(job('x', { mb: 250 }));
    h.s.enqueue(job('y', { mb: 250 }));
    // 700 − 250 untouched (x) = 450 >= 300 → y starts; then 700 − 500 = 200 < 300.
    h.s.enqueue(job('z', { mb: 250 }));
    assert.deepEqual(h.ids(), ['x', 'y']);
    assert.equal(h.s.blocked?.reason, 'memory');
  });

  it('keeps the sum of CPU shares under the cap; a task above the cap runs alone', () => {
    const h = harness({ cpuCap: 1.6 });
    h.s.enqueue(job('a', { cpu: 0.7 }));
    h.s.enqueue(job('b', { cpu: 0.7 }));
    h.s.enqueue(job('c', { cpu: 0.7 }));
    assert.deepEqual(h.ids(), ['a', 'b']);
    assert.equal(h.s.blocked?.reason, 'cpu');
    h.s.release(h.started[0]!);
    h.s.release(h.started[1]!);
    h.s.enqueue(job('huge', { cpu: 3 }));
    assert.deepEqual(h.ids(), ['a', 'b', 'c']);
    h.s.release(h.started[2]!);
    assert.deepEqual(h.ids(), ['a', 'b', 'c', 'huge']);
  });

  it('respects max_parallel and the governor cap', () => {
    const h = harness({ maxParallel: 3 });
    for (let i = 0; i < 6; i++) h.s.enqueue(job(`t${i}`));
    assert.equal(h.s.running, 3);
    h.s.setCap(1);
    h.s.release(h.started[0]!);
    assert.equal(h.s.running, 2, 'no start while above the cap');
    h.s.setCap(null);
    assert.equal(h.s.running, 3);
  });

  it('backfills a small task that ends before the blocked head could start', () => {
    const h = harness({ budgetBytes: 1000 * MB });
    h.s.enqueue(job('running', { type: 'mid', mb: 500, dur: 10_000 }));
    h.s.enqueue(job('head', { type: 'big', mb: 600, priority: 'high', dur: 5000 }));
    h.s.enqueue(job('short', { type: 'small', mb: 300, priority: 'low', dur: 2000 }));
    // head needs 720 free, has 500: shadow at t=10000. short ends at 2000 <= 10000: backfills.
    assert.deepEqual(h.ids(), ['running', 'short']);
  });

  it('does not backfill a task that would delay the head', () => {
    const h = harness({ budgetBytes: 1000 * MB });
    h.s.enqueue(job('running', { type: 'mid', mb: 500, dur: 2000 }));
    h.s.enqueue(job('head', { type: 'big', mb: 600, priority: 'high', dur: 5000 }));
    // long would still run when the head could start (t=2000) and the head leaves only
    // 1000 − 720 = 280 MB spare then, less than long's 300 MB.
    h.s.enqueue(job('long', { type: 'small', mb: 300, priority: 'low', dur: 60_000 }));
    assert.deepEqual(h.ids(), ['running']);
    h.s.release(h.started[0]!);
    assert.deepEqual(h.ids(), ['running', 'head', 'long'], 'the head first; long fits beside it afterwards');
  });

  it('stops backfilling once the head has waited past the starvation limit', () => {
    const h = harness({ budgetBytes: 1000 * MB, starvationLimitMs: 5000 });
    h.s.enqueue(job('running', { type: 'mid', mb: 500, dur: 1000 }));
    h.s.enqueue(job('head', { type: 'big', mb: 600, priority: 'high' }));
    // Short tasks that fit in the spare memory keep backfilling while the head is young…
    h.s.enqueue(job('s1', { type: 'small', mb: 100, priority: 'low', dur: 500 }));
    assert.deepEqual(h.ids(), ['running', 's1']);
    // …but the running task overruns its estimate, so the head keeps waiting.
    h.advance(6000);
    h.s.release(h.started[1]!);
    h.s.enqueue(job('s2', { type: 'small', mb: 100, priority: 'low', dur: 500 }));
    assert.deepEqual(h.ids(), ['running', 's1'], 'head waited 6 s > 5 s: no more backfill');
    h.s.release(h.started[0]!);
    assert.deepEqual(h.ids(), ['running', 's1', 'head', 's2'], 'the head first, then s2 in what it leaves');
    assert.equal(h.s.stats.backfilled, 1);
  });

  it('drain empties the queue and stop halts admission', () => {
    const h = harness({ maxParallel: 1 });
    for (let i = 0; i < 4; i++) h.s.enqueue(job(`t${i}`));
    h.s.stop();
    assert.equal(h.s.drain().length, 3);
    h.s.release(h.started[0]!);
    assert.equal(h.s.running, 0);
    assert.equal(h.s.queued, 0);
  });

  describe('budget pools (critical 20, execution 40, caching 25, buffer 15)', () => {
    const pools = { critical: 0.2, execution: 0.4, caching: 0.25, buffer: 0.15 };

    it('tasks below critical reach execution + caching + an idle critical pool; critical tasks may borrow the buffer', () => {
      let reclaims = 0;
      const h = harness({ budgetBytes: 1000 * MB, headroom: 1, pools, reclaim: () => reclaims++ });
      // 850 MB for non-critical work: 8 × 100 MB fit, the 9th waits.
      for (let i = 0; i < 9; i++) h.s.enqueue(job(`m${i}`, { type: 'm', mb: 100 }));
      assert.equal(h.s.running, 8);
      assert.equal(reclaims, 1, 'caches are asked to give memory back before a task waits');
      // A critical task may use the buffer: 800 + 150 <= 1000.
      h.s.enqueue(job('crit', { type: 'c', mb: 150, priority: 'critical' }));
      assert.deepEqual(h.ids().slice(-1), ['crit']);
    });

    it('the critical pool is not lent while a critical task waits', () => {
      const h = harness({ budgetBytes: 1000 * MB, headroom: 1, pools });
      h.s.enqueue(job('big-crit', { type: 'c', mb: 400, priority: 'critical' }));
      h.s.enqueue(job('other', { type: 'o', mb: 300 }));
      assert.deepEqual(h.ids(), ['big-crit', 'other'], '400 + 300 <= 850 with no critical task waiting');
      h.s.enqueue(job('crit-2', { type: 'c2', mb: 400, priority: 'critical' }));
      h.s.enqueue(job('other-2', { type: 'o2', mb: 100, priority: 'high' }));
      // crit-2 waits (700 + 400 > 1000). other-2 would fit in 850 − 700, but while a critical task
      // waits the critical pool is not lent: its limit is 650 (execution + caching).
      assert.deepEqual(h.ids(), ['big-crit', 'other']);
      h.s.release(h.started[1]!);
      assert.deepEqual(h.ids(), ['big-crit', 'other', 'crit-2'], 'the critical task goes first');
    });

    it('lends the buffer to every task while the machine is calm', () => {
      const h = harness({ budgetBytes: 1000 * MB, headroom: 1, pools });
      for (let i = 0; i < 10; i++) h.s.enqueue(job(`m${i}`, { type: 'm', mb: 100 }));
      assert.equal(h.s.running, 8);
      h.s.setLendBuffer(true);
      assert.equal(h.s.running, 10);
      assert.equal(h.s.stats.peakReserved.other, 1000 * MB);
    });
  });
});

