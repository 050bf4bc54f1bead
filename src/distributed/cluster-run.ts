import { hostname } from 'node:os';
import { isAbsolute, relative, resolve } from 'node:path';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { connectRedis, maskPassword } from '../cache/redis-tier.js';
import type { ResolvedMcp } from '../config/mcp.js';
import type { ResolvedConfig, TaskSpec } from '../config/resolve.js';
import { GuildError } from '../errors.js';
import type { Execution, ExecOutcome, Executor } from '../executors/executor.js';
import type { ProcessRequest } from '../executors/process-executor.js';
import { formatBytes } from '../util/units.js';
import type { RunExecutors, RunServices, StartedServices } from '../workflow/execute-options.js';
import type { WorkerReport } from '../workflow/report.js';
import type { JobPayload, JobResult, JobWhere, RunMessage, TypeProfile, WorkerBeat } from './job.js';
import { liveWorkers } from './cluster-view.js';
import { BULL_PREFIX, bullPriority, clusterKeys, DEFAULT_QUEUE, typeQueueName } from './names.js';
import { restoreBundle, storeBundle } from './outputs.js';
import { RemoteExecution } from './remote-execution.js';
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
  /** The workflow as it runs distributed (its cache's shared tier on the cluster's Redis unless it names one). */
  config: ResolvedConfig;
  executors: RunExecutors;
  services: RunServices;
  remoteAdmission: true;
  /** The queue family, and its live workers as last read (every 500 ms; empty before the run starts). */
  queue: string;
  workers: () => readonly WorkerBeat[];
}

const DEFAULT_GRACE_MS = 30_000;
/** How long a job must be missing from Redis, and from every worker's heartbeat, before it is enqueued again, ms. */
const VANISHED_MS = 3000;
/** How often live workers are read and placement checked. */
const WATCH_MS = 500;

/**
 * Prepares a workflow to run on a cluster: tasks become signed BullMQ jobs, one queue per agent
 * type, that `guild worker`s take when their own admission allows; the run loop (dependencies,
 * retries, fail-fast, the report) stays the local one, with every ready task handed over at once.
 * A workflow's `mcp:` travels with its jobs: each worker serves it through a gateway of its own.
 * Throws CLUSTER_KEY without a key.
 */
export function clusterRun(config: ResolvedConfig, options: ClusterRunOptions): ClusterRun {
  const key = options.key ?? clusterKey();
  const queue = options.queue ?? config.distributed?.queue ?? DEFAULT_QUEUE;
  const graceMs = options.graceMs ?? config.distributed?.graceMs ?? DEFAULT_GRACE_MS;
  const session = new ClusterSession(config, { redisUrl: options.redisUrl, queue, graceMs, key });
  // One cache for the cluster: the run's Redis unless the file names another for its cache.
  const distributedConfig: ResolvedConfig = Object.freeze({ ...config, cache: Object.freeze({ ...config.cache, redisUrl: config.cache.redisUrl ?? options.redisUrl }) });
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
  readonly #specs: ReadonlyMap<string, TaskSpec>;
  /** `mcp:` as jobs carry it (each worker runs the servers through its own gateway); null without. */
  readonly #mcp: ResolvedMcp | null;
  /** Packs of tasks' files by task id (from results, or packed here for a dependent). */
  readonly #bundles = new Map<string, Promise<string | null>>();
  #live: WorkerBeat[] = [];
  #client: Redis | null = null;
  #sub: Redis | null = null;
  #runId = '';
  #where: JobWhere | null = null;
  #timer: NodeJS.Timeout | null = null;
  #watching = false;
  #announcing = false;
  /** Agent type → its profile (JSON), as written to the registry. */
  readonly #registry: Record<string, string> = {};
  /** Jobs Redis lost and this run enqueued again. */
  #reenqueued = 0;

  constructor(config: ResolvedConfig, options: SessionOptions) {
    this.#config = config;
    this.#specs = new Map(config.tasks.map((t) => [t.id, t]));
    // A server's folder inside the workflow's travels as a relative path: the worker's checkout differs.
    const within = (cwd: string): boolean => !relative(config.dir, cwd).startsWith('..') && !isAbsolute(relative(config.dir, cwd));
    this.#mcp = config.mcp && config.mcp.servers.length > 0 ? { ...config.mcp, servers: config.mcp.servers.map((s) => ({ ...s, env: { ...s.env }, cwd: s.cwd !== null && within(s.cwd) ? relative(config.dir, s.cwd) || '.' : s.cwd })) } : null;
    this.#o = options;
    this.#keys = clusterKeys(options.queue);
    this.executor = { start: (request) => this.#start(request) };
  }

  async start(context: { runId: string }): Promise<StartedServices> {
    this.#runId = context.runId;
    this.#where = locateWorkflow(this.#config.dir);
    this.#client = await connectRedis(this.#o.redisUrl, { redis: { maxRetriesPerRequest: null } });
    // Redis restarting: commands wait for the reconnect (maxRetriesPerRequest: null); #watch catches up.
    this.#client.on('error', () => undefined);
    this.#sub = this.#client.duplicate();
    this.#sub.on('error', () => {});
    this.#sub.on('message', (_c, message) => this.#onMessage(message));
    await this.#sub.subscribe(this.#keys.run(this.#runId));
    for (const a of Object.values(this.#config.agents)) {
      const profile: TypeProfile = { memoryBytes: a.memoryBytes, cpu: a.cpu, concurrency: a.concurrency, starvationMs: this.#config.starvationLimitMs };
      this.#registry[a.name] = JSON.stringify(profile);
      this.#queues.set(a.name, new Queue(typeQueueName(this.#o.queue, a.name), { connection: this.#client, prefix: BULL_PREFIX }));
    }
    await this.#client.hset(this.#keys.registry, this.#registry);
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
    return { workers: [...this.#workers.values()].sort((a, b) => a.name.localeCompare(b.name)), jobs_reenqueued: this.#reenqueued };
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    // The run is over: whatever is still out there (an interrupted run) is its no more, and each
    // worker's gateway for it (`mcp:`) closes.
    if (this.#client) await this.#publish({ kind: 'cancel', jobId: null });
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
      outputs: [...(this.#specs.get(request.taskId)?.outputs ?? [])],
      restore: [],
      logAt: request.logFile ? { host: hostname(), path: resolve(request.logFile) } : null,
      mcp: this.#mcp,
      issuedAt: Date.now(),
    };
    const exec = new RemoteExecution(jobId, payload, request.logFile ?? null, (e) => this.#cancel(e));
    this.#jobs.set(jobId, exec);
    void this.#enqueue(exec).catch((e: Error) => exec.settle(failed(`could not enqueue on ${maskPassword(this.#o.redisUrl)}: ${e.message}`)));
    return exec;
  }

  /** Names the packs of what the task needs (packing here what ran here or came from the cache), signs, enqueues. */
  async #enqueue(exec: RemoteExecution): Promise<void> {
    const payload = exec.payload;
    payload.restore = await this.#restoreList(payload.taskId);
    if (exec.settled) return; // cancelled meanwhile
    await this.#queues.get(payload.agent)!.add(payload.taskId, signJob(payload, this.#o.key), { jobId: payload.jobId, priority: bullPriority(payload.priority), removeOnComplete: { age: 3600 }, removeOnFail: { age: 24 * 3600 } });
    exec.queued = true;
    this.#announce();
  }

  /** Tells the workers there is work (once per burst of enqueues), instead of leaving it to their next poll. */
  #announce(): void {
    if (this.#announcing) return;
    this.#announcing = true;
    setImmediate(() => {
      this.#announcing = false;
      void this.#publish({ kind: 'enqueued' });
    });
  }

  /**
   * The packs a task's worker restores before it starts: its ancestors' (every task it needs,
   * directly or not) that declare outputs, dependencies first. An ancestor whose pack is not
   * known (served from the cache, or its files came some other way) is packed from this folder.
   */
  async #restoreList(taskId: string): Promise<string[]> {
    const order: string[] = [];
    const seen = new Set<string>();
    const visit = (id: string): void => {
      for (const need of this.#specs.get(id)?.needs ?? []) {
        if (seen.has(need)) continue;
        seen.add(need);
        visit(need);
        order.push(need);
      }
    };
    visit(taskId);
    const out: string[] = [];
    for (const id of order) {
      const spec = this.#specs.get(id)!;
      if (spec.outputs.length === 0) continue;
      let sha = this.#bundles.get(id);
      if (sha === undefined) {
        const packed = storeBundle(this.#client!, this.#keys, this.#config.dir, id, spec.outputs, null).then((b) => b?.sha ?? null);
        this.#bundles.set(id, (sha = packed));
      }
      const name = await sha;
      if (name !== null) out.push(name);
    }
    return out;
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
    await this.#client?.publish(this.#keys.control(this.#runId), JSON.stringify(m)).catch(() => 0);
  }

  #onMessage(message: string): void {
    let m: RunMessage;
    try {
      m = JSON.parse(message) as RunMessage;
    } catch {
      return;
    }
    if (m.kind === 'cancel' || m.kind === 'enqueued') return;
    const e = this.#jobs.get(m.jobId);
    if (!e) return;
    if (m.kind === 'started') e.worker = m.worker;
    else if (m.kind === 'sample') e.sample = { bytes: m.bytes, source: 'remote', pids: [] };
    else if (m.kind === 'log') e.appendLog(m.text);
    else void this.#ended(e, m.result);
  }

  /** A result: the attempt's files restored here first (the task is done only with its outputs in place), then settled. */
  async #ended(e: RemoteExecution, r: JobResult): Promise<void> {
    if (e.settled || e.ending) return;
    e.ending = true;
    const w = this.#worker(r.worker);
    w.tasks++;
    w.budget_bytes = r.workerBudgetBytes;
    w.peak_bytes = Math.max(w.peak_bytes, r.workerPeakBytes);
    let error = r.error;
    if (r.bundle) {
      try {
        await e.logWritten; // the pack's log replaces what was streamed
        await restoreBundle(this.#client!, this.#keys, r.bundle.sha, this.#config.dir);
        if (r.error === null) this.#bundles.set(e.payload.taskId, Promise.resolve(r.bundle.sha));
      } catch (err) {
        if (error === null) error = `its files from worker ${r.worker} could not be restored here: ${(err as Error).message}`;
      }
    }
    e.settle({ exitCode: r.exitCode, signal: r.signal, killedBy: r.killedBy, error, durationMs: r.durationMs, peakBytes: r.peakBytes, ranOn: r.worker });
  }

  #worker(name: string): WorkerReport {
    let w = this.#workers.get(name);
    if (!w) this.#workers.set(name, (w = { name, host: null, budget_bytes: 0, peak_bytes: 0, tasks: 0, pressure: null, rejected: 0, returned: 0 }));
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
      const due: RemoteExecution[] = [];
      for (const e of this.#jobs.values()) {
        if (e.settled) continue;
        if (e.worker === null && e.queued) {
          // A worker admits a job alone when its expected memory is within its budget.
          const need = e.payload.memoryBytes;
          if (need <= largest) e.unplaceableSince = null;
          else if ((e.unplaceableSince ??= now) + this.#o.graceMs <= now) await this.#unplaceable(e, need, largest);
        }
        if (e.queued && !e.settled && now - e.checkedAt > 2000) due.push(e);
      }
      await this.#check(due, now);
    } catch {
      /* Redis unreachable for a moment: the next look tries again */
    } finally {
      this.#watching = false;
    }
  }

  /**
   * Where the jobs not heard of for a while are. A result whose message was lost (the submitter
   * was reconnecting) is in the job's return value; a job back in a queue (handed back, or
   * recovered from a dead worker by BullMQ's stall check) is waiting for placement again; a job
   * Redis no longer has, that no worker runs, is enqueued again. A job its worker's heartbeat says
   * it runs needs no look; the others' job hashes are read in one round trip, and only a job taken
   * by a worker that no longer lists it has its state read on its own.
   */
  async #check(due: readonly RemoteExecution[], now: number): Promise<void> {
    const running = new Set(this.#live.flatMap((b) => b.jobs));
    const look: RemoteExecution[] = [];
    for (const e of due) {
      e.checkedAt = now;
      if (e.worker !== null && running.has(e.jobId)) e.vanishedSince = null;
      else look.push(e);
    }
    if (look.length === 0) return;
    const pipe = this.#client!.pipeline();
    for (const e of look) pipe.hmget(this.#queues.get(e.payload.agent)!.toKey(e.jobId), 'timestamp', 'finishedOn');
    const fields = (await pipe.exec()) ?? [];
    for (const [i, e] of look.entries()) {
      if (e.settled) continue;
      const [err, value] = fields[i] ?? [new Error('no reply'), null];
      if (err) continue;
      const [timestamp, finishedOn] = value as [string | null, string | null];
      const queue = this.#queues.get(e.payload.agent)!;
      if (timestamp === null) {
        // Not in Redis and no worker runs it: Redis came back empty (or lost it). Once that has
        // lasted past a heartbeat or two (a worker that runs it says so), enqueue it again.
        if (!running.has(e.jobId) && (e.vanishedSince ??= now) + VANISHED_MS <= now) await this.#reenqueue(e);
        continue;
      }
      e.vanishedSince = null;
      if (finishedOn !== null) {
        const job = await queue.getJob(e.jobId);
        if (job?.returnvalue) await this.#ended(e, job.returnvalue as JobResult);
        else if (job?.failedReason) e.settle(failed(`a worker refused it: ${job.failedReason}`));
      } else if (e.worker !== null) {
        const state = await queue.getJobState(e.jobId);
        if (state === 'waiting' || state === 'prioritized') {
          // Back in the queue after a worker took it: a stall (the worker died) or a hand-back.
          this.#worker(e.worker).returned++;
          e.worker = null;
        }
      }
    }
  }

  /** Enqueues again a job Redis lost, with the registry and the packs it needs (packed afresh here: Redis lost those too). */
  async #reenqueue(e: RemoteExecution): Promise<void> {
    e.vanishedSince = null;
    e.queued = false;
    e.worker = null;
    try {
      await this.#client!.hset(this.#keys.registry, this.#registry);
      for (const [id, sha] of this.#bundles) {
        const name = await sha;
        if (name === null || (await this.#client!.exists(this.#keys.bundle(name))) === 0) this.#bundles.delete(id);
      }
      await this.#enqueue(e);
      this.#reenqueued++;
    } catch {
      e.queued = true; // looked at again on the next watch
    }
  }

  async #unplaceable(e: RemoteExecution, need: number, largest: number): Promise<void> {
    const removed = await this.#queues.get(e.payload.agent)!.remove(e.jobId).catch(() => 0);
    if (removed !== 1) return; // a worker took it meanwhile
    const who = this.#live.length === 0 ? 'no worker is live' : `the largest live worker budget is ${formatBytes(largest)} (${this.#live.map((b) => `${b.name} ${formatBytes(b.budgetBytes)}`).join(', ')})`;
    e.settle(failed(`no worker can take it: it expects ${formatBytes(need)}, but ${who}; waited ${Math.round(this.#o.graceMs / 1000)} s for one to join`));
  }
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
