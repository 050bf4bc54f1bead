/**
 * Distributed memory-bound packing (issue 15): the 24-agent workload of bench/memory-bound.ts (its
 * SEED, bench/agent-sim.mjs, its workflow yaml, with a `distributed:` line in front) run through
 * `guild run` on `guild worker` processes on loopback:
 *   (a) one worker with the whole budget (1.1 GB, as memory-bound);
 *   (b) two workers with 0.6 × the budget each (the issue's case);
 *   (c) two workers with 0.7 × the budget each: the nearest share at which every task fits a
 *       worker, since a worker admits a task only with free budget >= 1.2 × its expected peak
 *       (headroom), even when idle, and the five largest simulators (expected 578–617 MB) need
 *       694–740 MB while 0.6 × 1.1 GB is 676 MB. The smallest such share is printed.
 * And, as a reference for what distribution itself costs, (0) memory-bound's own local Guild run
 * (no Redis, `--budget 1.1GB`; `--no-local` leaves it out).
 * Reported per case: makespan (the report's makespan_ms) and its ratio to (a) in the same round
 * (median over rounds; goal <= 1.1), each
 * worker's measured peak (its report `workers[].peak_bytes`, from the worker's own sampling, and
 * an independent /proc sampler over the worker's descendants every 100 ms) against its budget
 * (must be <= 1.0), and how evenly the work spread: tasks per worker and task-seconds per worker
 * (Σ tasks[].duration_ms by tasks[].worker), with the spread as max/min of those task-seconds.
 * Tasks that no worker can take fail after a 5 s grace (the file's `distributed.grace`), and
 * `--keep-going` lets the others finish, so a case that cannot place everything still shows what
 * did run. Cases rotate order across rounds; each round of a case uses its own queue family
 * (`bm<pid>r<round><case>`), whose keys are deleted after it.
 *
 * The container case (--where=cgroup or both): the same, with each worker inside its own fresh
 * memory cgroup of limit = its budget × 1.4/1.1 (memory-bound's 1.4 GB around 1.1 GB), so each
 * worker's governor reads its cgroup; reported: the cgroups' peak usage and kernel OOM kills.
 * Without root or a memory hierarchy it says why and runs on the host only.
 *
 * Needs Redis (127.0.0.1:6379, or --redis=URL) and ~3 GB free. Sets GUILD_CLUSTER_KEY if unset.
 * Run: npx tsc -p . && node dist/bench/distributed-memory.js [--rounds=2] [--where=host|cgroup|both] [--shares=0.6,0.7] [--no-local]
 * Writes bench/results/distributed-memory.json.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { DEFAULTS } from '../src/config/defaults.js';
import type { RunReport, WorkerReport } from '../src/workflow/report.js';
import { benchRedis, clusterPatterns, deleteKeys, distributedHeader, ensureClusterKey, startGuildWorker, type BenchWorker } from './distributed-lib.js';
import { argNumber, environment, fmtMB, fmtMs, fmtRatio, isMain, makeMemoryCgroup, median, printTable, runGuildCli, startTreeSampler, writeResult, type BenchCgroup } from './lib.js';
import { BUDGET_BYTES, CGROUP_LIMIT_BYTES, SEED, simulators, workflowYaml, type Sim } from './memory-bound.js';

/** A task that fits no worker fails after this (the issue's default is 30 s; nothing joins here). */
const GRACE = '5s';

interface Case {
  id: string;
  label: string;
  workers: number;
  share: number;
}

interface WorkerFigures {
  name: string;
  budgetBytes: number;
  /** The run report's figure (the worker's own sampling). */
  reportPeakBytes: number;
  /** Σ RSS of the worker's descendants, sampled here every 100 ms. */
  externalPeakBytes: number;
  tasks: number;
  taskMs: number;
  cgroup?: { limitBytes: number; peakUsageBytes: number | null; kernelOomKills: number };
}

interface CaseRound {
  case: string;
  round: number;
  where: 'host' | 'cgroup';
  ok: boolean;
  makespanMs: number;
  succeeded: number;
  failed: number;
  firstError: string | null;
  workers: WorkerFigures[];
  /** max/min task-seconds over the workers (1.0 = perfectly even; Infinity if one ran nothing). */
  spread: number;
}

async function runCase(c: Case, sims: readonly Sim[], round: number, where: 'host' | 'cgroup', client: Redis): Promise<CaseRound> {
  const queue = `bm${process.pid}r${round}${c.id}${where === 'cgroup' ? 'c' : ''}`;
  // Outside any git repository: workers run the workflow at its absolute path.
  const dir = mkdtempSync(join(tmpdir(), 'guild-bench-distmem-'));
  const budgetBytes = Math.floor(BUDGET_BYTES * c.share);
  const workers: BenchWorker[] = [];
  const groups: BenchCgroup[] = [];
  const samplers: ReturnType<typeof startTreeSampler>[] = [];
  try {
    const local = c.workers === 0;
    // The local reference is memory-bound's own Guild run (no Redis); inside a cgroup, Guild itself is in one.
    writeFileSync(join(dir, 'memory-bound.yaml'), (local ? '' : distributedHeader(queue, GRACE)) + workflowYaml(sims));
    let localCg: BenchCgroup | undefined;
    if (local && where === 'cgroup') {
      const made = makeMemoryCgroup('distmem-local', CGROUP_LIMIT_BYTES);
      if (typeof made === 'string') throw new Error(made);
      groups.push((localCg = made));
    }
    for (let i = 0; i < c.workers; i++) {
      let cg: BenchCgroup | undefined;
      if (where === 'cgroup') {
        const made = makeMemoryCgroup(`distmem-w${i + 1}`, Math.round((budgetBytes * CGROUP_LIMIT_BYTES) / BUDGET_BYTES));
        if (typeof made === 'string') throw new Error(made);
        groups.push((cg = made));
      }
      const w = await startGuildWorker({ name: `w${i + 1}`, queue, budgetBytes, workdir: dir, ...(cg ? { cg } : {}) });
      workers.push(w);
      samplers.push(startTreeSampler(w.child.pid!));
    }
    const oomBefore = groups.map((g) => g.oomKills());
    const args = ['--progress', 'none', '--no-telemetry', '--keep-going', ...(local ? ['--budget', `${budgetBytes}B`] : [])];
    const { code, stderr, report, externalPeakBytes } = await runGuildCli(join(dir, 'memory-bound.yaml'), args, dir, localCg);
    const ext = samplers.map((s) => s.stop());
    const tasks = report.tasks as (RunReport['tasks'][number] & { worker?: string })[];
    const reported = ((report as RunReport & { workers?: WorkerReport[] }).workers ?? []) as WorkerReport[];
    const figures: WorkerFigures[] = workers.map((w, i) => {
      const mine = tasks.filter((t) => t.worker === w.name);
      const g = groups[i];
      return {
        name: w.name,
        budgetBytes,
        reportPeakBytes: reported.find((x) => x.name === w.name)?.peak_bytes ?? 0,
        externalPeakBytes: ext[i]!.peakAgentsBytes,
        tasks: mine.length,
        taskMs: mine.reduce((s, t) => s + t.duration_ms, 0),
        ...(g ? { cgroup: { limitBytes: Math.round((budgetBytes * CGROUP_LIMIT_BYTES) / BUDGET_BYTES), peakUsageBytes: g.peakBytes(), kernelOomKills: g.oomKills() - oomBefore[i]! } } : {}),
      };
    });
    if (local) {
      figures.push({
        name: 'local',
        budgetBytes,
        reportPeakBytes: report.peak_rss_bytes,
        externalPeakBytes,
        tasks: tasks.length,
        taskMs: tasks.reduce((sum, t) => sum + t.duration_ms, 0),
        ...(localCg ? { cgroup: { limitBytes: CGROUP_LIMIT_BYTES, peakUsageBytes: localCg.peakBytes(), kernelOomKills: localCg.oomKills() - oomBefore[0]! } } : {}),
      });
    }
    const failedTasks = tasks.filter((t) => t.status !== 'succeeded');
    const ms = figures.map((f) => f.taskMs);
    return {
      case: c.id,
      round,
      where,
      ok: code === 0 && report.ok,
      makespanMs: report.makespan_ms,
      succeeded: tasks.length - failedTasks.length,
      failed: failedTasks.length,
      firstError: failedTasks[0] ? `${failedTasks[0].id}: ${failedTasks[0].error ?? failedTasks[0].status}` : code === 0 ? null : stderr.slice(-300),
      workers: figures,
      spread: Math.max(...ms) / Math.min(...ms),
    };
  } finally {
    for (const s of samplers) s.stop();
    await Promise.all(workers.map((w) => w.stop()));
    for (const g of groups) await g.remove();
    rmSync(dir, { recursive: true, force: true });
    await deleteKeys(client, clusterPatterns(queue));
  }
}

export interface DistributedMemoryResult {
  budgetBytes: number;
  /** The smallest share of the budget at which every task fits one worker (1.2 × expected <= share × budget). */
  minShare: number;
  cases: Case[];
  rounds: CaseRound[];
  summary: {
    case: string;
    where: 'host' | 'cgroup';
    makespanMs: number;
    makespanOverOne: number;
    allOk: boolean;
    failed: number;
    worstPeakOverBudget: number;
    spread: number;
    tasksPerWorker: string;
    oomKills: number;
  }[];
  cgroupSkipped: string | null;
}

export async function main(): Promise<DistributedMemoryResult | null> {
  const roundsN = Math.max(1, argNumber('rounds', 2));
  const where = process.argv.find((a) => a.startsWith('--where='))?.slice('--where='.length) ?? 'both';
  const shares = (process.argv.find((a) => a.startsWith('--shares='))?.slice('--shares='.length) ?? '0.6,0.7').split(',').map(Number);
  const client = await benchRedis();
  if (typeof client === 'string') {
    console.log(`distributed-memory: skipped (${client})`);
    return null;
  }
  ensureClusterKey();
  const sims = simulators(SEED);
  const minShare = (Math.max(...sims.map((s) => s.expectedBytes)) * DEFAULTS.headroom) / BUDGET_BYTES;
  const cases: Case[] = [
    ...(process.argv.includes('--no-local') ? [] : [{ id: 'local', label: 'local run (no Redis)', workers: 0, share: 1 }]),
    { id: 'one', label: '1 worker × 1.0', workers: 1, share: 1 }, ...shares.map((s) => ({ id: `two${Math.round(s * 100)}`, label: `2 workers × ${s}`, workers: 2, share: s }))];
  const places: ('host' | 'cgroup')[] = [];
  let cgroupSkipped: string | null = where === 'host' ? 'not asked for (--where=host)' : null;
  if (where === 'host' || where === 'both') places.push('host');
  if (where === 'cgroup' || where === 'both') {
    const probe = makeMemoryCgroup('distmem-probe', CGROUP_LIMIT_BYTES);
    if (typeof probe === 'string') cgroupSkipped = probe;
    else {
      await probe.remove();
      places.push('cgroup');
    }
  }
  console.log(
    `distributed-memory: memory-bound's ${sims.length} simulators on guild workers; budget ${fmtGiB(BUDGET_BYTES)}; cases ${cases.map((c) => c.label).join(', ')}; ` +
      `every task fits one worker from a share of ${minShare.toFixed(3)}; ${roundsN} round(s); ${places.join(' and ')}${cgroupSkipped && where !== 'host' ? ` (cgroup skipped: ${cgroupSkipped})` : ''}`,
  );
  const rounds: CaseRound[] = [];
  try {
    for (let r = 0; r < roundsN; r++) {
      for (const place of places) {
        for (let k = 0; k < cases.length; k++) {
          const c = cases[(k + r) % cases.length]!;
          process.stdout.write(`  round ${r + 1}/${roundsN} ${place}: ${c.label} … `);
          const x = await runCase(c, sims, r + 1, place, client);
          rounds.push(x);
          console.log(`${fmtMs(x.makespanMs)}${x.ok ? '' : ` (${x.failed} failed: ${x.firstError})`}; tasks ${x.workers.map((w) => w.tasks).join('/')}`);
        }
      }
    }
  } finally {
    client.disconnect();
  }

  const summary: DistributedMemoryResult['summary'] = [];
  for (const place of places) {
    const one = median(rounds.filter((x) => x.where === place && x.case === 'one').map((x) => x.makespanMs));
    for (const c of cases) {
      const rs = rounds.filter((x) => x.where === place && x.case === c.id);
      const makespanMs = median(rs.map((x) => x.makespanMs));
      // Same-round ratios: this shared machine's load drifts more between rounds than within one.
      const sameRound = rs.map((x) => x.makespanMs / (rounds.find((y) => y.where === place && y.case === 'one' && y.round === x.round)?.makespanMs ?? one));
      const last = rs[rs.length - 1]!;
      summary.push({
        case: c.label,
        where: place,
        makespanMs,
        makespanOverOne: median(sameRound),
        allOk: rs.every((x) => x.ok),
        failed: Math.max(...rs.map((x) => x.failed)),
        worstPeakOverBudget: Math.max(...rs.flatMap((x) => x.workers.map((w) => Math.max(w.reportPeakBytes, w.externalPeakBytes) / w.budgetBytes))),
        spread: median(rs.map((x) => x.spread)),
        tasksPerWorker: last.workers.map((w) => w.tasks).join('/'),
        oomKills: rs.reduce((n, x) => n + x.workers.reduce((m, w) => m + (w.cgroup?.kernelOomKills ?? 0), 0), 0),
      });
    }
  }
  console.log('');
  printTable(
    ['case', 'where', 'makespan', 'vs 1 worker', 'goal <= 1.1', 'failed', 'worst peak/budget', 'tasks/worker', 'spread (max/min task-s)', 'OOM kills'],
    summary.map((s) => [
      s.case,
      s.where,
      fmtMs(s.makespanMs),
      fmtRatio(s.makespanOverOne),
      s.case.startsWith('1 ') || s.case.startsWith('local') ? '' : s.failed > 0 ? 'n/a (tasks failed)' : s.makespanOverOne <= 1.1 ? 'met' : 'MISSED',
      String(s.failed),
      fmtRatio(s.worstPeakOverBudget),
      s.tasksPerWorker,
      s.case.startsWith('1 ') || s.case.startsWith('local') ? '' : fmtRatio(s.spread),
      String(s.oomKills),
    ]),
    2,
  );
  console.log(`(medians of ${roundsN} round(s); "vs 1 worker" = median of same-round ratios; peak = max of the report's worker peak and a 100 ms /proc sampler over the worker's descendants; tasks/worker from the last round)`);
  console.log('');
  printTable(
    ['round', 'where', 'case', 'worker', 'budget', 'peak (report)', 'peak (/proc)', 'peak/budget', 'tasks', 'task-seconds', 'cgroup peak', 'OOM'],
    rounds.flatMap((x) =>
      x.workers.map((w) => [
        String(x.round),
        x.where,
        cases.find((c) => c.id === x.case)!.label,
        w.name,
        fmtMB(w.budgetBytes),
        fmtMB(w.reportPeakBytes),
        fmtMB(w.externalPeakBytes),
        fmtRatio(Math.max(w.reportPeakBytes, w.externalPeakBytes) / w.budgetBytes),
        String(w.tasks),
        (w.taskMs / 1000).toFixed(1),
        w.cgroup ? `${w.cgroup.peakUsageBytes === null ? 'n/a' : fmtMB(w.cgroup.peakUsageBytes)} of ${fmtMB(w.cgroup.limitBytes)}` : '',
        w.cgroup ? String(w.cgroup.kernelOomKills) : '',
      ]),
    ),
    4,
  );
  const failures = rounds.filter((x) => !x.ok);
  for (const f of failures) console.log(`round ${f.round} ${f.where} ${cases.find((c) => c.id === f.case)!.label}: ${f.failed} task(s) failed; first: ${f.firstError}`);

  const result: DistributedMemoryResult = { budgetBytes: BUDGET_BYTES, minShare, cases, rounds, summary, cgroupSkipped };
  const file = writeResult('distributed-memory', { benchmark: 'distributed-memory', environment: environment(), ...result });
  console.log(`wrote ${file}`);
  return result;
}

const fmtGiB = (b: number): string => `${(b / 1024 ** 3).toFixed(2)} GiB`;

if (isMain(import.meta.url)) await main();
