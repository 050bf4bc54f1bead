/**
 * Distributed throughput (issue 15): tasks/s of N tasks running `true` through Guild's distributed
 * mode (`node bin/guild.js run <tmp>.yaml --json` with `distributed:` in the file, and 1, 2 and 4
 * `guild worker` processes on loopback, each with a 2 GB budget) ÷ raw BullMQ (a `Queue` with the
 * same N jobs and 1, 2, 4 `Worker`s, each in its own node process like Guild's workers, whose
 * processor spawns `/bin/sh -c true` and waits for it), in the same run, the order of the two
 * alternating across rounds. Goal >= 0.85.
 *
 * Concurrency per worker: 8 for both. Guild's worker has no concurrency flag; what it reaches is
 * set by its admission, so the one agent type declares `memory: 1MB` (never the limit under a 2 GB
 * budget) and `cpu: <the worker's CPU cap>/8` (cap = cores × 0.8, as the worker computes it), so
 * admission stops at exactly 8 running jobs per worker; a per-type `concurrency:` would not do,
 * since the submitter also holds it run-wide. Raw BullMQ's `Worker` gets `concurrency: 8`. Why 8:
 * spawning `true` is CPU-bound (~1–2 ms of fork/exec on 2 cores), so a few more in flight than
 * cores keeps both saturated while Redis round trips are pending, and more only queues on the CPU.
 * Reported next to it, for both: the mean number in flight per worker (Little's law: Σ task
 * durations on the worker / the round's time), and the worker processes' own CPU time per task
 * (utime + stime from /proc, the tasks' own excluded): on a host whose cores are saturated, the
 * ratio of tasks/s follows the ratio of CPU per task rather than the concurrency.
 *
 * Both sides add their N jobs one `add()` each, all at once (as Guild's submitter does when every
 * task is ready), with a priority (Guild maps `medium` to BullMQ priority 3) and the same
 * removeOnComplete/removeOnFail ages. Timed: Guild's report `makespan_ms` (from the run's start:
 * connecting to Redis, writing its agent-type registry, enqueuing, until the last result is
 * in; node's own start-up and config loading are excluded, and printed apart as wall time); raw:
 * from creating the Queue (connecting) until QueueEvents has seen N completions. Workers are
 * started and serving before each side's timed region and stopped after it. Each round uses its
 * own queue family (`bt<pid>r<round>k<workers>g` for Guild, `…raw` for BullMQ), whose keys are
 * deleted afterwards.
 *
 * Needs Redis (127.0.0.1:6379, or --redis=URL). Sets GUILD_CLUSTER_KEY for its children if unset.
 * Run: npx tsc -p . && node dist/bench/distributed-throughput.js [--tasks=400] [--rounds=3] [--workers=1,2,4]
 * Writes bench/results/distributed-throughput.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, QueueEvents, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { connectRedis } from '../src/cache/redis-tier.js';
import { DEFAULTS } from '../src/config/defaults.js';
import { createSystemProbe } from '../src/system/probe.js';
import type { RunReport } from '../src/workflow/report.js';
import { benchRedis, clusterPatterns, cpuMs, deleteKeys, distributedHeader, ensureClusterKey, REDIS_URL, startGuildWorker, type BenchWorker } from './distributed-lib.js';
import { argNumber, environment, fmtMs, fmtRatio, isMain, median, printTable, runGuildCli, sleep, writeResult } from './lib.js';

/** Jobs a worker runs at once, on both sides (see the header). */
const CONCURRENCY = 8;
/** Guild's BullMQ priority of a `medium` task (distributed/names.ts bullPriority). */
const PRIORITY = 3;
const JOB_OPTS = { priority: PRIORITY, removeOnComplete: { age: 3600 }, removeOnFail: { age: 24 * 3600 } };
/** Raw BullMQ's key prefix here, apart from Guild's `guild-bull`. */
const RAW_PREFIX = 'guild-bench-raw';

interface Side {
  ms: number;
  tasksPerSec: number;
  completed: number;
  /** Mean jobs in flight per worker: Σ durations on that worker / ms. */
  inFlight: number[];
  /** Jobs each worker ran. */
  perWorker: number[];
  /** CPU time of the worker processes (themselves, not the tasks) per task, ms: what bounds a saturated host. */
  workerCpuMsPerTask: number;
  /** Guild only: spawn to exit of the submitter, node start-up included. */
  wallMs?: number;
}

interface Round {
  round: number;
  workers: number;
  guild: Side;
  raw: Side;
  ratio: number;
}

// ---------------------------------------------------------------------------------------------
// The raw BullMQ worker process: `node distributed-throughput.js --raw-worker=<queue>`.

async function rawWorkerMain(queue: string): Promise<void> {
  const connection = await connectRedis(REDIS_URL, { redis: { maxRetriesPerRequest: null } });
  let done = 0;
  let busyMs = 0;
  const worker = new Worker(
    queue,
    async () => {
      const t = performance.now();
      await new Promise<void>((resolve, reject) => {
        const c = spawn('/bin/sh', ['-c', 'true'], { stdio: 'ignore' });
        c.once('error', reject);
        c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
      });
      busyMs += performance.now() - t;
      done++;
    },
    { connection, prefix: RAW_PREFIX, concurrency: CONCURRENCY },
  );
  await worker.waitUntilReady();
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => {
    void worker.close().finally(() => {
      process.stdout.write(`${JSON.stringify({ done, busyMs })}\n`);
      connection.disconnect();
      process.exit(0);
    });
  });
}

interface RawWorker {
  child: ChildProcess;
  out(): string;
  exited: Promise<number | null>;
}

async function startRawWorker(queue: string): Promise<RawWorker> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), `--raw-worker=${queue}`, `--redis=${REDIS_URL}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const t0 = Date.now();
  while (!out.includes('ready\n')) {
    if (Date.now() - t0 > 20_000 || child.exitCode !== null) throw new Error('a raw BullMQ worker did not start');
    await sleep(20);
  }
  return { child, out: () => out, exited };
}

async function runRaw(n: number, k: number, queue: string, client: Redis): Promise<Side> {
  const workers: RawWorker[] = [];
  const connection = await connectRedis(REDIS_URL, { redis: { maxRetriesPerRequest: null } });
  const eventsConnection = connection.duplicate();
  const events = new QueueEvents(queue, { connection: eventsConnection, prefix: RAW_PREFIX });
  try {
    for (let i = 0; i < k; i++) workers.push(await startRawWorker(queue));
    await events.waitUntilReady();
    const cpu0 = workers.map((w) => cpuMs(w.child.pid!));
    let completed = 0;
    let failed = 0;
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    events.on('completed', () => ++completed + failed >= n && resolveDone());
    events.on('failed', () => completed + ++failed >= n && resolveDone());
    const t0 = performance.now();
    const q = new Queue(queue, { connection, prefix: RAW_PREFIX });
    await Promise.all(Array.from({ length: n }, (_, i) => q.add(`t${i}`, { i }, JOB_OPTS)));
    await Promise.race([done, sleep(120_000)]);
    const ms = performance.now() - t0;
    const cpu = workers.reduce((sum, w, i) => sum + cpuMs(w.child.pid!) - cpu0[i]!, 0);
    await q.close();
    const stats: { done: number; busyMs: number }[] = [];
    for (const w of workers) {
      w.child.kill('SIGTERM');
      await w.exited;
      const line = w.out().trim().split('\n').pop() ?? '{}';
      stats.push(JSON.parse(line) as { done: number; busyMs: number });
    }
    return { ms, tasksPerSec: (completed / ms) * 1000, completed, inFlight: stats.map((s) => s.busyMs / ms), perWorker: stats.map((s) => s.done), workerCpuMsPerTask: cpu / n };
  } finally {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    await events.close();
    eventsConnection.disconnect();
    connection.disconnect();
    await deleteKeys(client, [`${RAW_PREFIX}:${queue}:*`]);
  }
}

// ---------------------------------------------------------------------------------------------
// Guild: submitter + k `guild worker` processes.

function workflowYaml(n: number, queue: string, cpu: number): string {
  const lines = [distributedHeader(queue).trimEnd(), 'name: bench-distributed-throughput', 'agents:', `  t: { memory: 1MB, cpu: ${cpu} }`, 'tasks:'];
  for (let i = 0; i < n; i++) lines.push(`  - { id: t${String(i).padStart(4, '0')}, agent: t, run: "true" }`);
  return `${lines.join('\n')}\n`;
}

async function runGuild(n: number, k: number, queue: string, taskCpu: number, client: Redis): Promise<Side> {
  // Outside any git repository: workers run the workflow at its absolute path.
  const dir = mkdtempSync(join(tmpdir(), 'guild-bench-dist-'));
  const workers: BenchWorker[] = [];
  try {
    writeFileSync(join(dir, 'throughput.yaml'), workflowYaml(n, queue, taskCpu));
    for (let i = 0; i < k; i++) workers.push(await startGuildWorker({ name: `w${i + 1}`, queue, budgetBytes: 2 * 1024 ** 3, workdir: dir }));
    const cpu0 = workers.map((w) => cpuMs(w.child.pid!));
    const { code, stderr, wallMs, report } = await runGuildCli(join(dir, 'throughput.yaml'), ['--progress', 'none', '--no-telemetry'], dir);
    const cpu = workers.reduce((sum, w, i) => sum + cpuMs(w.child.pid!) - cpu0[i]!, 0);
    if (code !== 0 || !report.ok) throw new Error(`guild run exited ${code}: ${stderr.slice(-1000)}`);
    const tasks = report.tasks as (RunReport['tasks'][number] & { worker?: string })[];
    const completed = tasks.filter((t) => t.status === 'succeeded').length;
    const ms = report.makespan_ms;
    const names = workers.map((w) => w.name);
    const busy = names.map((w) => tasks.filter((t) => t.worker === w).reduce((s, t) => s + t.duration_ms, 0));
    return {
      ms,
      tasksPerSec: (completed / ms) * 1000,
      completed,
      inFlight: busy.map((b) => b / ms),
      perWorker: names.map((w) => tasks.filter((t) => t.worker === w).length),
      workerCpuMsPerTask: cpu / n,
      wallMs,
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    rmSync(dir, { recursive: true, force: true });
    await deleteKeys(client, clusterPatterns(queue));
  }
}

// ---------------------------------------------------------------------------------------------

export interface DistributedThroughputResult {
  tasks: number;
  concurrency: number;
  cpuPerTask: number;
  rounds: Round[];
  summary: { workers: number; guildTps: number; rawTps: number; ratio: number; guildInFlight: number; rawInFlight: number; guildCpuMsPerTask: number; rawCpuMsPerTask: number; guildWallMs: number; allRan: boolean }[];
}

export async function main(): Promise<DistributedThroughputResult | null> {
  const n = argNumber('tasks', 400);
  const roundsN = Math.max(1, argNumber('rounds', 3));
  const counts = (process.argv.find((a) => a.startsWith('--workers='))?.slice('--workers='.length) ?? '1,2,4').split(',').map(Number);
  const client = await benchRedis();
  if (typeof client === 'string') {
    console.log(`distributed-throughput: skipped (${client})`);
    return null;
  }
  ensureClusterKey();
  // The worker's CPU cap, as it computes it; each task takes 1/CONCURRENCY of it.
  const probe = createSystemProbe();
  const cores = probe.cpu().cores;
  probe.close();
  const cpu = (cores * DEFAULTS.cpuShare) / CONCURRENCY;
  console.log(
    `distributed-throughput: ${n} tasks of \`true\`; Guild (guild run + guild worker) vs raw BullMQ Worker processes spawning /bin/sh -c true; ` +
      `${counts.join(', ')} worker(s), ${CONCURRENCY} at once per worker (Guild: cpu ${cpu.toFixed(3)} of a ${(cores * DEFAULTS.cpuShare).toFixed(2)} cap); ${roundsN} round(s), alternating order; Redis ${REDIS_URL}`,
  );
  const rounds: Round[] = [];
  try {
    for (let r = 0; r < roundsN; r++) {
      for (const k of counts) {
        const family = `bt${process.pid}r${r}k${k}`;
        const order: ('guild' | 'raw')[] = (r + k) % 2 === 0 ? ['guild', 'raw'] : ['raw', 'guild'];
        let g: Side | null = null;
        let raw: Side | null = null;
        for (const who of order) {
          process.stdout.write(`  round ${r + 1}/${roundsN}, ${k} worker(s): ${who} … `);
          if (who === 'guild') g = await runGuild(n, k, `${family}g`, cpu, client);
          else raw = await runRaw(n, k, `${family}raw`, client);
          const s = who === 'guild' ? g! : raw!;
          console.log(`${Math.round(s.tasksPerSec)} tasks/s (${fmtMs(s.ms)}; per worker ${s.perWorker.join('/')}; workers' CPU ${s.workerCpuMsPerTask.toFixed(1)} ms/task)`);
        }
        rounds.push({ round: r + 1, workers: k, guild: g!, raw: raw!, ratio: g!.tasksPerSec / raw!.tasksPerSec });
      }
    }
  } finally {
    client.disconnect();
  }

  const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const summary = counts.map((k) => {
    const rs = rounds.filter((x) => x.workers === k);
    return {
      workers: k,
      guildTps: median(rs.map((x) => x.guild.tasksPerSec)),
      rawTps: median(rs.map((x) => x.raw.tasksPerSec)),
      ratio: median(rs.map((x) => x.ratio)),
      guildInFlight: median(rs.map((x) => mean(x.guild.inFlight))),
      rawInFlight: median(rs.map((x) => mean(x.raw.inFlight))),
      guildCpuMsPerTask: median(rs.map((x) => x.guild.workerCpuMsPerTask)),
      rawCpuMsPerTask: median(rs.map((x) => x.raw.workerCpuMsPerTask)),
      guildWallMs: median(rs.map((x) => x.guild.wallMs ?? NaN)),
      allRan: rs.every((x) => x.guild.completed === n && x.raw.completed === n),
    };
  });
  console.log('');
  printTable(
    ['workers', 'Guild tasks/s', 'raw BullMQ tasks/s', 'Guild / raw', 'goal >= 0.85', 'in flight/worker G', 'in flight/worker raw', 'worker CPU/task G', 'worker CPU/task raw', 'Guild wall', 'all ran'],
    summary.map((s) => [
      String(s.workers),
      Math.round(s.guildTps).toLocaleString('en-US'),
      Math.round(s.rawTps).toLocaleString('en-US'),
      fmtRatio(s.ratio),
      s.ratio >= 0.85 ? 'met' : 'MISSED',
      s.guildInFlight.toFixed(1),
      s.rawInFlight.toFixed(1),
      `${s.guildCpuMsPerTask.toFixed(1)} ms`,
      `${s.rawCpuMsPerTask.toFixed(1)} ms`,
      fmtMs(s.guildWallMs),
      s.allRan ? 'yes' : 'NO',
    ]),
  );
  console.log(`(medians of ${roundsN} round(s); ${n} tasks; Guild timed by its report's makespan, raw from Queue creation to the N-th completion; "in flight" = Σ task durations on a worker / round time; worker CPU/task = the worker processes' own CPU time / N; Guild wall = spawn to exit of guild run)`);

  const result: DistributedThroughputResult = { tasks: n, concurrency: CONCURRENCY, cpuPerTask: cpu, rounds, summary };
  const file = writeResult('distributed-throughput', { benchmark: 'distributed-throughput', environment: environment(), ...result });
  console.log(`wrote ${file}`);
  return result;
}

const rawQueue = process.argv.find((a) => a.startsWith('--raw-worker='))?.slice('--raw-worker='.length);
if (rawQueue !== undefined) await rawWorkerMain(rawQueue);
else if (isMain(import.meta.url)) await main();
