/**
 * Scheduler throughput: 100,000 in-process no-op tasks with mixed priorities (25% each of
 * critical/high/medium/low, in a seeded pseudo-random order), all enqueued up-front while
 * admission is held, then drained. Guild's `Scheduler` (memoryBytes 0, cpu 0, one type, a
 * `start` callback that runs the async no-op and calls `release(job)` when it settles) against
 * p-queue (`new PQueue({concurrency, autoStart: false})`, `add(fn, {priority})`), at the same
 * concurrency (8 and 1). Reports tasks/s (median of alternating rounds after a warm-up), the
 * ratio Guild / p-queue (goal >= 1.0), that every task ran, and priority inversions in start order.
 *
 * Timed region: creating + enqueuing all tasks, unpausing, and waiting until all have settled.
 * Guild enqueues inside `scheduler.batch(...)` (admission held until the batch ends); p-queue
 * with autoStart:false and `start()`; so both see the whole queue before the first start.
 *
 * Run: npx tsc -p . && node dist/bench/scheduler-throughput.js [--tasks=100000] [--rounds=5]
 * Writes bench/results/scheduler-throughput.json.
 */
import PQueue from 'p-queue';
import type { Priority } from '../src/config/schema.js';
import { Scheduler, type SchedulerJob } from '../src/scheduler/scheduler.js';
import { argNumber, environment, fmtRatio, isMain, median, printTable, prng, shuffle, writeResult, gc } from './lib.js';

const PRIORITIES: readonly Priority[] = ['critical', 'high', 'medium', 'low'];
/** p-queue runs higher numbers first. */
const PQ_PRIORITY: Record<Priority, number> = { critical: 3, high: 2, medium: 1, low: 0 };

interface Outcome {
  ms: number;
  /** Part of `ms` spent creating and enqueuing (before unpausing). */
  enqueueMs: number;
  tasksPerSec: number;
  completed: number;
  /** Pairs started in the wrong priority order (a less urgent task before a more urgent one). */
  inversions: number;
  /** Within one priority, tasks started out of enqueue order (count of descents). */
  fifoViolations: number;
}

/** The workload: rank (0 = critical … 3 = low) of each task, in enqueue order. */
function workload(n: number, seed: number): Uint8Array {
  const ranks: number[] = [];
  for (let i = 0; i < n; i++) ranks.push(i % 4);
  return Uint8Array.from(shuffle(ranks, prng(seed)));
}

const noop = async (): Promise<void> => {};

interface Run {
  ms: number;
  enqueueMs: number;
  order: Int32Array;
  completed: number;
}

interface Job extends SchedulerJob {
  readonly index: number;
}

async function runGuild(ranks: Uint8Array, concurrency: number): Promise<Run> {
  const n = ranks.length;
  const order = new Int32Array(n).fill(-1);
  let started = 0;
  let completed = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const t0 = performance.now();
  const sched: Scheduler<Job> = new Scheduler<Job>({
    budgetBytes: Number.MAX_SAFE_INTEGER,
    cpuCap: 1,
    maxParallel: concurrency,
    start: (job) => {
      order[started++] = job.index;
      noop().then(
        () => {
          completed++;
          sched.release(job);
          if (completed === n) resolveDone();
        },
        () => sched.release(job),
      );
    },
  });
  let t1 = 0;
  // batch(): admission is held back until every job is queued, then starts in priority order.
  sched.batch(() => {
    for (let i = 0; i < n; i++) {
      sched.enqueue({ id: `t${i}`, index: i, type: 'noop', priority: PRIORITIES[ranks[i]!]!, memoryBytes: 0, cpu: 0, expectedDurationMs: 0, key: 0, seq: 0 });
    }
    t1 = performance.now();
  });
  await done;
  return { ms: performance.now() - t0, enqueueMs: t1 - t0, order, completed };
}

async function runPQueue(ranks: Uint8Array, concurrency: number): Promise<Run> {
  const n = ranks.length;
  const order = new Int32Array(n).fill(-1);
  let started = 0;
  let completed = 0;
  const t0 = performance.now();
  const queue = new PQueue({ concurrency, autoStart: false });
  for (let i = 0; i < n; i++) {
    void queue.add(
      async () => {
        order[started++] = i;
        await noop();
        completed++;
      },
      { priority: PQ_PRIORITY[PRIORITIES[ranks[i]!]!] },
    );
  }
  const t1 = performance.now();
  queue.start();
  await queue.onIdle();
  return { ms: performance.now() - t0, enqueueMs: t1 - t0, order, completed };
}

/** Inversions (pairs i<j in start order with rank[i] > rank[j]) and per-priority FIFO descents. */
function checkOrder(order: Int32Array, ranks: Uint8Array): { inversions: number; fifoViolations: number } {
  const seen = [0, 0, 0, 0];
  const last = [-1, -1, -1, -1];
  let inversions = 0;
  let fifoViolations = 0;
  for (const idx of order) {
    if (idx < 0) continue;
    const r = ranks[idx]!;
    for (let k = r + 1; k < 4; k++) inversions += seen[k]!;
    seen[r]!++;
    if (idx < last[r]!) fifoViolations++;
    last[r] = idx;
  }
  return { inversions, fifoViolations };
}

function outcome(r: Run, ranks: Uint8Array): Outcome {
  return { ms: r.ms, enqueueMs: r.enqueueMs, tasksPerSec: (ranks.length / r.ms) * 1000, completed: r.completed, ...checkOrder(r.order, ranks) };
}


export interface ThroughputResult {
  concurrency: number;
  guild: Outcome[];
  pqueue: Outcome[];
  guildMedianTps: number;
  pqueueMedianTps: number;
  ratio: number;
  /** p-queue's median drain time / Guild's (drain = after the last enqueue). */
  drainRatio: number;
}

export async function main(): Promise<ThroughputResult[]> {
  const n = argNumber('tasks', 100_000);
  const rounds = Math.max(1, argNumber('rounds', 5));
  const ranks = workload(n, 0x5eed);
  const results: ThroughputResult[] = [];
  console.log(`scheduler-throughput: ${n} no-op tasks, priorities 25% each (seeded order), ${rounds} alternating rounds + warm-up`);
  if (!gc) console.log('(run node with --expose-gc for a GC between rounds)');

  for (const concurrency of [8, 1]) {
    // Warm-up: one untimed run of each (JIT, heap growth).
    await runGuild(ranks, concurrency);
    await runPQueue(ranks, concurrency);
    const g: Outcome[] = [];
    const p: Outcome[] = [];
    for (let i = 0; i < rounds; i++) {
      // Alternate who goes first, so drift in machine load hits both alike.
      const order: ('g' | 'p')[] = i % 2 === 0 ? ['g', 'p'] : ['p', 'g'];
      for (const who of order) {
        gc?.();
        if (who === 'g') g.push(outcome(await runGuild(ranks, concurrency), ranks));
        else p.push(outcome(await runPQueue(ranks, concurrency), ranks));
      }
    }
    const gm = median(g.map((o) => o.tasksPerSec));
    const pm = median(p.map((o) => o.tasksPerSec));
    const drain = (os: Outcome[]): number => median(os.map((o) => o.ms - o.enqueueMs));
    results.push({ concurrency, guild: g, pqueue: p, guildMedianTps: gm, pqueueMedianTps: pm, ratio: gm / pm, drainRatio: drain(p) / drain(g) });
  }

  console.log('');
  const rows: string[][] = [];
  for (const r of results) {
    for (const [name, os, m] of [
      ['Guild Scheduler', r.guild, r.guildMedianTps],
      ['p-queue', r.pqueue, r.pqueueMedianTps],
    ] as const) {
      rows.push([
        name,
        String(r.concurrency),
        Math.round(m).toLocaleString('en-US'),
        `${median(os.map((o) => o.enqueueMs)).toFixed(0)} ms`,
        `${median(os.map((o) => o.ms - o.enqueueMs)).toFixed(0)} ms`,
        os.map((o) => Math.round(o.tasksPerSec / 1000)).join('/') + 'k',
        `${Math.min(...os.map((o) => o.completed))}/${n}`,
        String(Math.max(...os.map((o) => o.inversions))),
        String(Math.max(...os.map((o) => o.fifoViolations))),
      ]);
    }
  }
  printTable(['runner', 'conc', 'median tasks/s', 'enqueue (med)', 'drain (med)', 'rounds (tasks/s)', 'ran (min)', 'inversions (max)', 'FIFO viol. (max)'], rows);
  console.log('');
  for (const r of results) {
    const verdict = r.ratio >= 1 ? 'meets goal >= 1.0' : 'BELOW goal >= 1.0';
    console.log(`ratio Guild / p-queue @ concurrency ${r.concurrency}: ${fmtRatio(r.ratio)}  (${verdict}); drain phase alone: ${fmtRatio(r.drainRatio)}`);
  }
  const allRan = results.every((r) => [...r.guild, ...r.pqueue].every((o) => o.completed === n));
  const guildInversions = Math.max(...results.flatMap((r) => r.guild.map((o) => o.inversions)));
  console.log(`all ${n} tasks ran in every round: ${allRan ? 'yes' : 'NO'}; Guild priority inversions: ${guildInversions}`);

  const file = writeResult('scheduler-throughput', {
    benchmark: 'scheduler-throughput',
    environment: environment(),
    tasks: n,
    rounds,
    results,
    allRan,
    guildInversions,
  });
  console.log(`wrote ${file}`);
  return results;
}

if (isMain(import.meta.url)) await main();
