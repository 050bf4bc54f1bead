import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { connectRedis } from '../cache/redis-tier.js';
import type { ResolvedConfig } from '../config/resolve.js';
import { DEFAULTS } from '../config/defaults.js';
import { GuildError } from '../errors.js';
import type { Execution, ExecOutcome, Executor, KillReason } from '../executors/executor.js';
import type { ProcessRequest } from '../executors/process-executor.js';
import { formatBytes } from '../util/units.js';
import type { RunExecutors, RunServices, StartedServices } from '../workflow/execute-options.js';
import type { WorkerReport } from '../workflow/report.js';
import type { JobPayload, JobResult, JobWhere, RunMessage, TypeProfile, WorkerBeat } from './job.js';
import { BULL_PREFIX, bullPriority, clusterKeys, DEFAULT_QUEUE, typeQueueName } from './names.js';
import { clusterKey, signJob } from './signing.js';
import { locateWorkflow } from './where.js';

/** Options of a distributed run (`guild run --redis`, or `distributed:` in the file). */
export interface ClusterRunOptions {
  /** redis:// or rediss://, with a password where the server wants one. */
  redisUrl: string;
  /** The queue family the workers serve. @default the file's `distributed.queue`, else 'guild' */
  queue?: string;
  /** How long a task whose memory fits no live worker's budget waits for one to join, ms. @default the file's `distributed.grace`, else 30000 */
  graceMs?: number;
  /** The cluster key. @default GUILD_CLUSTER_KEY */
  key?: string;
}

/** What `runResolved` takes to run a workflow on the cluster. */
export interface ClusterRun {
  /** The workflow as it runs distributed (task memoization is off in this first version). */
  config: ResolvedConfig;
  executors: RunExecutors;
  services: RunServices;
  remoteAdmission: true;
  /** The queue family, and its live workers as last read (every 500 ms; empty before the run starts). */
  queue: string;
  workers: () => readonly WorkerBeat[];
}

const DEFAULT_GRACE_MS = 30_000;
/** After a cancel, how long past the kill grace a worker has to confirm before the attempt ends here without it. */
const CONFIRM_MS = 10_000;
/** How often live workers are read and placement checked. */
const WATCH_MS = 500;

/**
 * Prepares a workflow to run on a cluster: tasks become signed BullMQ jobs, one queue per agent
 * type, that `guild worker`s take when their own admission allows; the run loop (dependencies,
 * retries, fail-fast, the report) stays the local one, with every ready task handed over at once.
 * Throws CLUSTER_KEY without a key, USAGE for what this version cannot run distributed (`mcp:`).
 */
export function clusterRun(config: ResolvedConfig, options: ClusterRunOptions): ClusterRun {
  const key = options.key ?? clusterKey();
  if (config.mcp) throw new GuildError('USAGE', `${config.file}: a workflow with mcp: cannot run distributed yet (each worker would need its own gateway)`);
  const queue = options.queue ?? config.distributed?.queue ?? DEFAULT_QUEUE;
  const graceMs = options.graceMs ?? config.distributed?.graceMs ?? DEFAULT_GRACE_MS;
  const session = new ClusterSession(config, { redisUrl: options.redisUrl, queue, graceMs, key });
  // Outputs do not travel back yet: a result stored here could lack them, so nothing is memoized.
  const distributedConfig: ResolvedConfig = Object.freeze({ ...config, cache: Object.freeze({ ...config.cache, enabled: false, disabledBy: 'distributed' as const }) });
  return { config: distributedConfig, executors: { process: session.executor }, services: session, remoteAdmission: true, queue, workers: () => session.workers() };
}

interface SessionOptions {
  redisUrl: string;
  queue: string;
  graceMs: number;
  key: string;
}

/**
 * The submitter's side of one distributed run: its Redis connections, one BullMQ queue per agent
 * type, the run's channel, the live workers. It is the run's "service" (started before any task,
 * closed after the last, its `report()` adds `workers`) and owns the executor that enqueues.
 */
class ClusterSession implements RunServices, StartedServices {
  readonly env: Readonly<Record<string, string>> = {};
  readonly executor: Executor<ProcessRequest>;
  readonly #config: ResolvedConfig;
  readonly #o: SessionOptions;
  readonly #keys: ReturnType<typeof clusterKeys>;
  readonly #queues = new Map<string, Queue>();
  readonly #jobs = new Map<string, RemoteExecution>();
  readonly #workers = new Map<string, WorkerReport>();
  #live: WorkerBeat[] = [];
  #client: Redis | null = null;
  #sub: Redis | null = null;
  #runId = '';
  #where: JobWhere | null = null;
  #timer: NodeJS.Timeout | null = null;
  #watching = false;

  constructor(config: ResolvedConfig, options: SessionOptions) {
    this.#config = config;
    this.#o = options;
    this.#keys = clusterKeys(options.queue);
    this.executor = { start: (request) => this.#start(request) };
  }

  async start(context: { runId: string }): Promise<StartedServices> {
    this.#runId = context.runId;
    this.#where = locateWorkflow(this.#config.dir);
    this.#client = await connectRedis(this.#o.redisUrl, { redis: { maxRetriesPerRequest: null } });
    this.#sub = this.#client.duplicate();
    this.#sub.on('error', () => {});
    this.#sub.on('message', (_c, message) => this.#onMessage(message));
    await this.#sub.subscribe(this.#keys.run(this.#runId));
    const registry: Record<string, string> = {};
    for (const a of Object.values(this.#config.agents)) {
      const profile: TypeProfile = { memoryBytes: a.memoryBytes, cpu: a.cpu, concurrency: a.concurrency };
      registry[a.name] = JSON.stringify(profile);
      this.#queues.set(a.name, new Queue(typeQueueName(this.#o.queue, a.name), { connection: this.#client, prefix: BULL_PREFIX }));
    }
    await this.#client.hset(this.#keys.registry, registry);
    await this.#watch();
    this.#timer = setInterval(() => void this.#watch(), WATCH_MS);
    return this;
  }

  bytes(): number {
    return 0;
  }

  workers(): readonly WorkerBeat[] {
    return this.#live;
  }

  report(): Record<string, unknown> {
    return { workers: [...this.#workers.values()].sort((a, b) => a.name.localeCompare(b.name)) };
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    // Whatever is still out there (an interrupted run) is this run's no more.
    if (this.#client && [...this.#jobs.values()].some((j) => !j.settled)) await this.#publish({ kind: 'cancel', jobId: null });
    await Promise.allSettled([...this.#queues.values()].map((q) => q.close()));
    this.#sub?.disconnect();
    this.#client?.disconnect();
  }

  #start(request: ProcessRequest): Execution {
    const p = request.placement;
    if (!p) throw new GuildError('INVALID_OPTION', `Expected a placement (agent, memory, priority) for task '${request.taskId}', got none`);
    const jobId = `${this.#runId}.${request.taskId}.${request.attempt}`;
    const payload: JobPayload = {
      v: 1,
      jobId,
      runId: this.#runId,
      taskId: request.taskId,
      attempt: request.attempt,
      agent: p.agent,
      priority: p.priority,
      memoryBytes: p.memoryBytes,
      cpu: p.cpu,
      limitBytes: p.limitBytes,
      command: request.command,
      env: taskOnlyEnv(request.env),
      timeoutMs: request.timeoutMs,
      killGraceMs: request.killGraceMs,
      where: this.#where!,
      issuedAt: Date.now(),
    };
    const exec = new RemoteExecution(jobId, payload, (e) => this.#cancel(e));
    this.#jobs.set(jobId, exec);
    const queue = this.#queues.get(p.agent)!;
    queue
      .add(request.taskId, signJob(payload, this.#o.key), { jobId, priority: bullPriority(p.priority), removeOnComplete: { age: 3600 }, removeOnFail: { age: 24 * 3600 } })
      .then(() => (exec.queued = true), (e: Error) => exec.settle(failed(`could not enqueue on ${this.#o.redisUrl.replace(/\/\/[^@]*@/, '//***@')}: ${e.message}`)));
    return exec;
  }

  /** Stops a job: taken off its queue while it waits, else its worker is told to kill it. */
  async #cancel(e: RemoteExecution): Promise<void> {
    if (e.worker === null) {
      const removed = await this.#queues
        .get(e.payload.agent)!
        .remove(e.jobId)
        .catch(() => 0);
      if (removed === 1) {
        e.settle({ exitCode: null, signal: null, killedBy: e.killedBy, error: 'cancelled before a worker took it', durationMs: 0 });
        return;
      }
    }
    await this.#publish({ kind: 'cancel', jobId: e.jobId });
  }

  async #publish(m: RunMessage): Promise<void> {
    await this.#client?.publish(this.#keys.run(this.#runId), JSON.stringify(m)).catch(() => 0);
  }

  #onMessage(message: string): void {
    let m: RunMessage;
    try {
      m = JSON.parse(message) as RunMessage;
    } catch {
      return;
    }
    if (m.kind === 'cancel') return;
    const e = this.#jobs.get(m.jobId);
    if (!e) return;
    if (m.kind === 'started') e.worker = m.worker;
    else this.#ended(e, m.result);
  }

  #ended(e: RemoteExecution, r: JobResult): void {
    if (e.settled) return;
    const w = this.#worker(r.worker);
    w.tasks++;
    w.budget_bytes = r.workerBudgetBytes;
    w.peak_bytes = Math.max(w.peak_bytes, r.workerPeakBytes);
    e.settle({ exitCode: r.exitCode, signal: r.signal, killedBy: r.killedBy, error: r.error, durationMs: r.durationMs, peakBytes: r.peakBytes, ranOn: r.worker });
  }

  #worker(name: string): WorkerReport {
    let w = this.#workers.get(name);
    if (!w) this.#workers.set(name, (w = { name, host: null, budget_bytes: 0, peak_bytes: 0, tasks: 0, pressure: null, rejected: 0 }));
    return w;
  }

  /** Reads the live workers, fails what none of them could ever take, and reads results a lost message did not bring. */
  async #watch(): Promise<void> {
    if (this.#watching || !this.#client) return;
    this.#watching = true;
    try {
      this.#live = await liveWorkers(this.#client, this.#keys);
      for (const b of this.#live) {
        const w = this.#worker(b.name);
        [w.host, w.budget_bytes, w.pressure, w.rejected] = [b.host, b.budgetBytes, b.pressure, b.rejected];
        w.peak_bytes = Math.max(w.peak_bytes, b.peakBytes);
      }
      // Workers that sent nothing for this run and are gone are not part of its report.
      for (const [name, w] of this.#workers) if (w.tasks === 0 && !this.#live.some((b) => b.name === name)) this.#workers.delete(name);
      const now = Date.now();
      const largest = Math.max(0, ...this.#live.map((b) => b.budgetBytes));
      for (const e of this.#jobs.values()) {
        if (e.settled) continue;
        if (e.worker === null && e.queued) {
          const need = e.payload.memoryBytes * DEFAULTS.headroom;
          if (need <= largest) e.unplaceableSince = null;
          else if ((e.unplaceableSince ??= now) + this.#o.graceMs <= now) await this.#unplaceable(e, need, largest);
        }
        // A result whose message was lost (the submitter was reconnecting) is in the job's return
        // value; a job back in a queue (handed back, or recovered from a dead worker by BullMQ's
        // stall check) is waiting for placement again.
        if (e.queued && now - e.checkedAt > 2000) {
          e.checkedAt = now;
          const queue = this.#queues.get(e.payload.agent)!;
          const state = await queue.getJobState(e.jobId).catch(() => 'unknown');
          if (state === 'waiting' || state === 'prioritized') e.worker = null;
          else if (state === 'completed' || state === 'failed') {
            const job = await queue.getJob(e.jobId).catch(() => undefined);
            if (job?.returnvalue) this.#ended(e, job.returnvalue as JobResult);
            else if (job?.failedReason) e.settle(failed(`a worker refused it: ${job.failedReason}`));
          }
        }
      }
    } catch {
      /* Redis unreachable for a moment: the next look tries again */
    } finally {
      this.#watching = false;
    }
  }

  async #unplaceable(e: RemoteExecution, need: number, largest: number): Promise<void> {
    const removed = await this.#queues.get(e.payload.agent)!.remove(e.jobId).catch(() => 0);
    if (removed !== 1) return; // a worker took it meanwhile
    const who = this.#live.length === 0 ? 'no worker is live' : `the largest live worker budget is ${formatBytes(largest)} (${this.#live.map((b) => `${b.name} ${formatBytes(b.budgetBytes)}`).join(', ')})`;
    e.settle(failed(`no worker can take it: it needs ${formatBytes(need)} free (${formatBytes(e.payload.memoryBytes)} expected × ${DEFAULTS.headroom} headroom), but ${who}; waited ${Math.round(this.#o.graceMs / 1000)} s for one to join`));
  }
}

/** The workers whose heartbeat has not expired. */
export async function liveWorkers(client: Redis, keys: ReturnType<typeof clusterKeys>): Promise<WorkerBeat[]> {
  const names = await client.smembers(keys.workers);
  const out: WorkerBeat[] = [];
  for (const name of names) {
    const h = await client.hgetall(keys.worker(name));
    if (!h.name) {
      await client.srem(keys.workers, name);
      continue;
    }
    out.push({
      name: h.name,
      host: h.host ?? '',
      pid: Number(h.pid),
      budgetBytes: Number(h.budgetBytes),
      freeBytes: Number(h.freeBytes),
      running: Number(h.running),
      pressure: h.pressure ?? 'optimal',
      peakBytes: Number(h.peakBytes),
      rejected: Number(h.rejected),
      at: Number(h.at),
    });
  }
  return out;
}

function failed(error: string): ExecOutcome {
  return { exitCode: null, signal: null, killedBy: null, error, durationMs: 0 };
}

/**
 * What the task adds to an environment: the entries of its request that differ from this process's
 * own (its `env:`, GUILD_RUN_ID, GUILD_TASK_ID, GUILD_ATTEMPT, NODE_OPTIONS for node_heap). The
 * submitter's own environment (its secrets, the cluster key) never travels; GUILD_METRICS names a
 * file of this machine, so the worker sets its own.
 */
function taskOnlyEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== process.env[k] && k !== 'GUILD_METRICS') out[k] = v;
  return out;
}

/** One attempt handed to the cluster, as the run's supervisor holds it. */
class RemoteExecution implements Execution {
  readonly pid = null;
  readonly canPause = false;
  readonly canKill = true;
  readonly remote = true;
  readonly stdio = null;
  readonly lease = { cgroups: [], pid: null, startTime: null };
  readonly done: Promise<ExecOutcome>;
  readonly jobId: string;
  readonly payload: JobPayload;
  /** The worker that took it; null while it waits. */
  worker: string | null = null;
  queued = false;
  settled = false;
  killedBy: KillReason | null = null;
  unplaceableSince: number | null = null;
  checkedAt = Date.now();
  readonly #cancel: (e: RemoteExecution) => Promise<void>;
  #resolve!: (o: ExecOutcome) => void;
  #confirm: NodeJS.Timeout | null = null;

  constructor(jobId: string, payload: JobPayload, cancel: (e: RemoteExecution) => Promise<void>) {
    this.jobId = jobId;
    this.payload = payload;
    this.#cancel = cancel;
    this.done = new Promise((r) => (this.#resolve = r));
  }

  settle(o: ExecOutcome): void {
    if (this.settled) return;
    this.settled = true;
    if (this.#confirm) clearTimeout(this.#confirm);
    this.#resolve(this.killedBy !== null && o.killedBy === null && o.exitCode !== 0 ? { ...o, killedBy: this.killedBy } : o);
  }

  kill(reason: KillReason): void {
    if (this.settled || this.killedBy !== null) return;
    this.killedBy = reason;
    void this.#cancel(this);
    // A worker that died or lost Redis never confirms: the run must still end.
    const wait = this.payload.killGraceMs + CONFIRM_MS;
    this.#confirm = setTimeout(() => this.settle({ exitCode: null, signal: null, killedBy: reason, durationMs: 0, error: `cancelled; ${this.worker ? `worker ${this.worker} did not confirm it` : 'no worker confirmed it'} within ${Math.round(wait / 1000)} s` }), wait);
  }

  pause(): boolean {
    return false;
  }

  resume(): void {}

  /** Measured on its worker; the peak comes with the result. */
  memory(): null {
    return null;
  }
}
