import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { Job, type MinimalQueue } from 'bullmq';
import type { Redis } from 'ioredis';
import { connectRedis } from '../cache/redis-tier.js';
import { DEFAULTS } from '../config/defaults.js';
import { GuildError } from '../errors.js';
import type { ExecOutcome } from '../executors/executor.js';
import type { ProcessRequest } from '../executors/process-executor.js';
import type { AdmissionRule } from '../governor/governor.js';
import type { Capacity } from '../scheduler/admission.js';
import type { Executors } from '../supervisor/executors.js';
import { Supervisor } from '../supervisor/supervisor.js';
import type { Supervised } from '../supervisor/supervised.js';
import type { SystemProbe } from '../system/probe.js';
import { formatBytes } from '../util/units.js';
import type { JobPayload, JobResult, RunMessage, TypeProfile } from './job.js';
import { clusterKeys } from './names.js';
import { openTypeQueue, type TypeQueue } from './type-queue.js';
import { queueHeads } from './queue-heads.js';
import { verifyJob } from './signing.js';
import { LogTail } from './log-tail.js';
import { carryBack, jobLogFile, jobRequest, jobResult, submitterReadsLog } from './job-run.js';
import { admits, heldBytes, workerCapacity } from './worker-admission.js';
import { WorkerGateways } from './worker-gateways.js';
import { restoreBundle, type Bundle } from './outputs.js';
import { jobFolder } from './where.js';

/** Options of a `GuildWorker`. */
export interface GuildWorkerOptions {
  /** redis:// or rediss://, with a password where the server wants one. */
  redisUrl: string;
  /** The queue family it serves. */
  queue: string;
  /** Memory it may give to jobs at once, bytes. */
  budgetBytes: number;
  /** Its name in heartbeats and reports; unique in the cluster. */
  name: string;
  /** The checkout jobs from a git repository run in. */
  workdir: string;
  /** The cluster key jobs are checked with. */
  key: string;
  probe: SystemProbe;
  /** Executors (a test's); @default Guild's process executor */
  executors?: Executors;
  /** How often it looks for work while idle, ms. @default 100 */
  pollMs?: number;
  /** BullMQ lock of a job, extended every half of it; also the stalled-check interval: a worker that dies is noticed within about two of these. @default 30000 */
  lockDurationMs?: number;
  /** How often it heartbeats its capacity, ms; the heartbeat expires after 3 of these. @default 1000 */
  heartbeatMs?: number;
  /** Called with one line for the operator (taken, ended, rejected). @default none */
  log?: (line: string) => void;
}

interface RunningJob {
  job: Job;
  token: string;
  payload: JobPayload;
  handle: Supervised<ProcessRequest> | null;
  lockTimer: NodeJS.Timeout;
  observedBytes: number;
  /** Set when the job is to go back to waiting instead of completing (`stop({ handBack })`). */
  handBack: boolean;
}

/** Cancelled runs are remembered this long: a job of theirs fetched later is not started. */
const CANCEL_MEMORY_MS = 10 * 60_000;
/** Jobs of one type taken in a row before the heads of all types are read again. */
const BURST = 8;
/** A running job's memory goes to its submitter at most this often, ms. */
const SAMPLE_SEND_MS = 1000;
/** A fully loaded worker looks at newly enqueued work this much later than an idle one, ms. */
const PLACEMENT_DELAY_MS = 25;
/** A type whose job did not fit is not fetched from again for this long (unless memory is released first). */
const SKIP_MS = 2000;
/**
 * A finished job fetches the next of its type in the same round trip (BullMQ's fetchNext) only
 * while the last look at all heads, which found that type the most urgent, is this recent: the
 * heads of the other types are read again at least this often.
 */
const CHAIN_LOOK_MS = 250;

/**
 * A long-lived worker of a distributed Guild: it takes a job only when its own admission (the
 * same `denyReason` as a local run: budget with headroom, CPU share, per-type concurrency, and
 * its governor's cap and admission rule) says the job's agent type fits now, runs it through the
 * supervisor and the process executor (process group, cgroup where possible, tree reaped), and
 * reports the result. BullMQ's getNextJob cannot filter, so there is one queue per agent type and
 * the worker fetches only from types it can admit, the queue whose head is most urgent (then
 * oldest) first. Manual fetching means the worker extends each job's lock itself.
 *
 * Invariant: a job whose signature does not verify is never run: it is failed with the reason
 * and counted in the heartbeat (`rejected`).
 */
export class GuildWorker {
  readonly #o: Required<Omit<GuildWorkerOptions, 'executors' | 'log'>> & Pick<GuildWorkerOptions, 'executors'>;
  readonly #log: (line: string) => void;
  readonly #keys: ReturnType<typeof clusterKeys>;
  #client: Redis | null = null;
  #sub: Redis | null = null;
  #supervisor: Supervisor | null = null;
  #gateways: WorkerGateways | null = null;
  readonly #types = new Map<string, TypeQueue>();
  readonly #running = new Map<string, RunningJob>();
  readonly #cancelledRuns = new Map<string, number>();
  /** Commits found in the checkout (distributed/where.ts). */
  readonly #commits = new Map<string, string>();
  #cap: number | null = null;
  #rule: AdmissionRule = 'all';
  #cpuUsed = 0;
  /** The machine's available memory at the supervisor's last sample (every 200 ms): admission reads no file per look. */
  #available = 0;
  #peakBytes = 0;
  #rejected = 0;
  #stopping = false;
  #loop: Promise<void> | null = null;
  #beatTimer: NodeJS.Timeout | null = null;
  #wake: (() => void) | null = null;
  /** Set by a nudge: look again before sleeping. */
  #nudged = false;
  #registryAt = 0;
  /** The last look at the heads: when, the type it took from, whether a head was starving. */
  #lastLook: { at: number; took: TypeQueue | null; starving: boolean } = { at: 0, took: null, starving: false };

  constructor(options: GuildWorkerOptions) {
    if (!(options.budgetBytes > 0)) throw new GuildError('INVALID_OPTION', `Expected a worker budget > 0 bytes, got ${options.budgetBytes}`);
    this.#o = { pollMs: 100, lockDurationMs: 30_000, heartbeatMs: 1000, ...options };
    this.#log = options.log ?? (() => undefined);
    this.#keys = clusterKeys(options.queue);
  }

  get name(): string {
    return this.#o.name;
  }

  /** Jobs running now. */
  get running(): number {
    return this.#running.size;
  }

  /** Connects, starts heartbeating and fetching. Rejects (code CACHE) when Redis is not reachable. */
  async start(): Promise<void> {
    // BullMQ needs maxRetriesPerRequest: null on its connections (a command must wait out a reconnect, not fail).
    this.#client = await connectRedis(this.#o.redisUrl, { redis: { maxRetriesPerRequest: null } });
    // Redis restarting: commands wait for the reconnect; what fails meanwhile is logged where it is used.
    this.#client.on('error', () => undefined);
    this.#sub = this.#client.duplicate();
    this.#sub.on('error', () => {});
    this.#sub.on('pmessage', (_p, channel, message) => this.#onRunMessage(channel, message));
    await this.#sub.psubscribe(this.#keys.controls);
    const g = DEFAULTS;
    this.#supervisor = new Supervisor({
      probe: this.#o.probe,
      ...(this.#o.executors ? { executors: this.#o.executors } : {}),
      sampleIntervalMs: g.sampleIntervalMs,
      governance: {
        options: { thresholds: g.thresholds, margin: g.pressureMargin, holdMs: g.pressureHoldMs, cooldownMs: g.killCooldownMs },
        admission: {
          setCap: (cap) => void ((this.#cap = cap), this.#nudge()),
          setAdmission: (rule) => void ((this.#rule = rule), this.#nudge()),
          setCaching: () => undefined,
        },
        budgetBytes: this.#o.budgetBytes,
      },
      onMeasure: (m) => {
        if (m.totalBytes > this.#peakBytes) this.#peakBytes = m.totalBytes;
        this.#available = m.memory.availableBytes;
      },
    });
    this.#available = this.#o.probe.memory().availableBytes;
    this.#supervisor.startSampling();
    this.#gateways = new WorkerGateways(this.#supervisor, { budgetBytes: this.#o.budgetBytes, headroom: DEFAULTS.headroom, otherBytes: () => heldBytes(this.#running.values()) }, this.#log);
    await this.#beat();
    this.#beatTimer = setInterval(() => void this.#beat().catch(() => undefined), this.#o.heartbeatMs);
    this.#loop = this.#fetchLoop();
  }

  /**
   * Stops fetching; running jobs finish (or, with `handBack`, are stopped and moved back to
   * waiting for another worker), then everything is closed.
   */
  async stop(options: { handBack?: boolean } = {}): Promise<void> {
    this.#stopping = true;
    this.#nudge();
    await this.#loop;
    if (options.handBack) {
      for (const r of this.#running.values()) {
        r.handBack = true;
        r.handle?.kill('cancelled');
      }
    }
    while (this.#running.size > 0) await new Promise((r) => setTimeout(r, 50));
    await this.close();
  }

  /** Ends everything at once: running trees are killed and reaped, their jobs left to BullMQ's stall check. */
  async close(): Promise<void> {
    this.#stopping = true;
    this.#nudge();
    if (this.#beatTimer) clearInterval(this.#beatTimer);
    await this.#gateways?.closeAll();
    await this.#supervisor?.close();
    for (const r of this.#running.values()) clearInterval(r.lockTimer);
    await Promise.allSettled([...this.#types.values()].map((t) => t.worker.close(true)));
    try {
      await this.#client?.multi().del(this.#keys.worker(this.#o.name)).srem(this.#keys.workers, this.#o.name).exec();
    } catch {
      /* Redis gone: the heartbeat expires on its own */
    }
    this.#sub?.disconnect();
    this.#client?.disconnect();
  }

  /** Looks for work now (or as soon as the current look ends). */
  #nudge(): void {
    this.#nudged = true;
    this.#wake?.();
  }

  /**
   * Work was enqueued: look for it after a delay that grows with this worker's load, so that in a
   * pull model the worker with the most free budget is the likeliest to take it (placement).
   */
  #announced(): void {
    const delay = Math.round(PLACEMENT_DELAY_MS * Math.min(1, this.#load()));
    if (delay === 0) this.#nudge();
    else setTimeout(() => this.#nudge(), delay).unref();
  }

  /** Share of the budget its running jobs account for. */
  #load(): number {
    return this.#capacity().accountedBytes / this.#o.budgetBytes;
  }

  async #fetchLoop(): Promise<void> {
    while (!this.#stopping) {
      let took = false;
      try {
        took = await this.#fetchOnce();
      } catch (e) {
        this.#log(`fetch failed: ${(e as Error).message}`);
      }
      if (took || this.#stopping) continue;
      if (this.#nudged) {
        this.#nudged = false;
        continue;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, this.#o.pollMs);
        function done(): void {
          clearTimeout(t);
          resolve();
        }
        this.#wake = done;
      });
      this.#wake = null;
    }
  }

  /**
   * Looks at the heads of the types' queues and takes one job; true when it took one. The most
   * urgent head among the types it can admit now goes first (then the oldest), except that a head
   * waiting past its run's starvation limit goes before all: if it does not fit now but fits this
   * worker's budget at all, the worker takes nothing else until it does (so a stream of small
   * jobs cannot starve a large one).
   */
  async #fetchOnce(): Promise<boolean> {
    await this.#refreshRegistry();
    if (this.#rule !== 'all') return false; // under pressure nothing new: the priority of a job is known only once it is taken
    if (this.#cap !== null && this.#running.size >= this.#cap) return false;
    const now = Date.now();
    const candidates: { t: TypeQueue; rank: number; ts: number }[] = [];
    let starving: { t: TypeQueue; since: number } | null = null;
    const types = [...this.#types.values()].filter((t) => t.skipUntil <= now && this.#everFits(t.profile));
    // Full for every type: nothing to take, and the heads were read recently enough to have seen a starving one.
    if (!types.some((t) => this.#fits(t.profile, t)) && now - this.#lastLook.at < CHAIN_LOOK_MS) return false;
    const heads = await queueHeads(this.#client!, this.#o.queue, types.map((t) => t.agent));
    for (const [i, t] of types.entries()) {
      const head = heads[i];
      if (!head) continue;
      // Waiting since its head was added, or since this worker last served the type, whichever is
      // later: a backlog of one type the worker keeps serving is not starving (every one of 60
      // queued small jobs has waited long; the large one nobody takes is the one starving).
      const since = Math.max(head.since, t.lastStarted);
      if (now - since >= (t.profile.starvationMs ?? DEFAULTS.starvationLimitMs) && (starving === null || since < starving.since)) starving = { t, since };
      if (this.#fits(t.profile, t)) candidates.push({ t, rank: head.rank, ts: head.ts });
    }
    this.#lastLook = { at: now, took: null, starving: starving !== null };
    if (starving !== null) {
      if (!this.#fits(starving.t.profile, starving.t)) return false; // memory is being released for it
      return this.#takeFrom([starving.t]);
    }
    // Most urgent head first, then the one that has waited longest.
    candidates.sort((a, b) => a.rank - b.rank || a.ts - b.ts);
    return this.#takeFrom(candidates.map((c) => c.t));
  }

  /**
   * Whether `r`, finishing, may fetch the next job of its type with its completion (one round
   * trip instead of two): the last look took from this type and saw no starving head, recently,
   * and a job of the type fits in what `r` leaves.
   */
  #mayChain(t: TypeQueue, r: RunningJob): boolean {
    const look = this.#lastLook;
    if (this.#stopping || this.#rule !== 'all' || r.handBack || look.took !== t || look.starving || Date.now() - look.at > CHAIN_LOOK_MS) return false;
    if (this.#cap !== null && this.#running.size - 1 >= this.#cap) return false;
    const concurrency = t.profile.concurrency;
    if (concurrency !== null && t.running - 1 >= concurrency) return false;
    return t.skipUntil <= Date.now() && admits(t.profile, this.#capacity(r));
  }

  /**
   * Takes the head of the first of `types` that still has one, then more of that type while they
   * fit (up to BURST, without reading the heads again: BullMQ keeps one type's queue in priority
   * order, and a burst is short enough not to matter across types).
   */
  async #takeFrom(types: readonly TypeQueue[]): Promise<boolean> {
    for (const t of types) {
      let took = 0;
      while (took < BURST && !this.#stopping && this.#rule === 'all' && (this.#cap === null || this.#running.size < this.#cap) && (took === 0 || (t.skipUntil <= Date.now() && this.#fits(t.profile, t)))) {
        const token = `${this.#o.name}:${t.agent}:${randomUUID()}`; // BullMQ's lock token: unique per take
        const job = await t.worker.getNextJob(token, { block: false });
        if (!job) break;
        this.#lastLook.took = t;
        await this.#take(t, job, token);
        took++;
      }
      if (took > 0) return true;
    }
    return false;
  }

  /** Whether a job of this profile could ever be admitted here (alone: its expected memory within the budget). */
  #everFits(profile: TypeProfile): boolean {
    return profile.memoryBytes <= this.#o.budgetBytes;
  }

  async #refreshRegistry(): Promise<void> {
    const now = Date.now();
    if (now - this.#registryAt < 1000 && this.#types.size > 0) return;
    this.#registryAt = now;
    const all = await this.#client!.hgetall(this.#keys.registry);
    for (const [agent, json] of Object.entries(all)) {
      let profile: TypeProfile;
      try {
        profile = JSON.parse(json) as TypeProfile;
      } catch {
        continue;
      }
      const t = this.#types.get(agent);
      if (t) {
        if (t.profile.memoryBytes !== profile.memoryBytes) t.skipUntil = 0;
        t.profile = profile;
        continue;
      }
      this.#types.set(agent, openTypeQueue({ client: this.#client!, queue: this.#o.queue, agent, profile, lockDurationMs: this.#o.lockDurationMs, workerName: this.#o.name, log: this.#log }));
    }
  }

  /** Admission of one more job of `demand` now (distributed/worker-admission.ts), and its type under its `concurrency`. */
  #fits(demand: { memoryBytes: number; cpu: number }, t: TypeQueue, concurrency: number | null = t.profile.concurrency): boolean {
    if (concurrency !== null && t.running >= concurrency) return false;
    return admits(demand, this.#capacity());
  }

  /** What this worker holds now (without `leaving`, a job that is finishing). */
  #capacity(leaving: RunningJob | null = null): Capacity {
    const jobs = [...this.#running.values()].filter((r) => r !== leaving);
    // Jobs, and the MCP backends of runs served here.
    return workerCapacity({ budgetBytes: this.#o.budgetBytes, jobs, otherBytes: this.#gateways?.bytes() ?? 0, availableBytes: this.#available, cores: this.#o.probe.cpu().cores, cpuUsed: this.#cpuUsed });
  }

  /** A job was taken: checked, admitted with its own demand, started. */
  async #take(t: TypeQueue, job: Job, token: string): Promise<void> {
    let payload: JobPayload;
    try {
      payload = verifyJob<JobPayload>(job.data, this.#o.key);
      if (payload.jobId !== job.id) throw new GuildError('JOB_SIGNATURE', `rejected: a job signed as ${payload.jobId} was found under id ${job.id}`);
      if (payload.agent !== t.agent) throw new GuildError('JOB_SIGNATURE', `rejected: a job signed for agent type '${payload.agent}' was found in the queue of '${t.agent}'`);
    } catch (e) {
      this.#rejected++;
      const why = (e as Error).message;
      this.#log(`REJECTED job ${job.id} from queue '${t.agent}' (${why}); not run`);
      await job.moveToFailed(new Error(why), token, false).catch(() => undefined);
      void this.#beat().catch(() => undefined);
      return;
    }
    const cancelled = this.#cancelledRuns.get(payload.runId);
    if (cancelled !== undefined && Date.now() - cancelled < CANCEL_MEMORY_MS) {
      await this.#complete(job, token, payload, this.#result({ exitCode: null, signal: null, killedBy: 'cancelled', error: 'cancelled: the run was cancelled', durationMs: 0 }, null, null));
      return;
    }
    // The job's own estimate may be above what the registry said of its type (raised by the run).
    if (!this.#fits(payload, t)) {
      // Not again until memory is released here, or a while has passed (nothing may be running to release it).
      t.skipUntil = Date.now() + SKIP_MS;
      await job.moveToWait(token).catch(() => undefined);
      return;
    }
    let folder: string;
    let mcpUrl: string | null = null;
    try {
      folder = jobFolder(payload.where, this.#o.workdir, this.#commits);
      // What the tasks it needs left, from wherever they ran.
      for (const sha of payload.restore ?? []) await restoreBundle(this.#client!, this.#keys, sha, folder);
      // `mcp:`: the run's servers on this worker, through its own gateway.
      if (payload.mcp) mcpUrl = await this.#gateways!.acquire(payload.runId, payload.mcp, folder);
    } catch (e) {
      this.#log(`job ${job.id} (${payload.taskId}): ${(e as Error).message}`);
      await this.#complete(job, token, payload, this.#result({ exitCode: null, signal: null, killedBy: null, error: `on worker ${this.#o.name}: ${(e as Error).message}`, durationMs: 0 }, null, null));
      return;
    }
    this.#run(t, job, token, payload, folder, mcpUrl);
  }

  #run(t: TypeQueue, job: Job, token: string, payload: JobPayload, folder: string, mcpUrl: string | null): void {
    const logFile = jobLogFile(folder, payload);
    const lockTimer = setInterval(() => void job.extendLock(token, this.#o.lockDurationMs).catch((e: Error) => this.#log(`job ${job.id}: lock not extended: ${e.message}`)), this.#o.lockDurationMs / 2);
    const r: RunningJob = { job, token, payload, handle: null, lockTimer, observedBytes: 0, handBack: false };
    this.#running.set(job.id!, r);
    t.running++;
    t.lastStarted = Date.now();
    this.#cpuUsed += payload.cpu;
    let peak: number | null = null;
    let sentSampleAt = 0;
    // The log goes to the submitter as it grows, unless the submitter reads this very file (one machine, one folder).
    const tail = payload.logAt && !submitterReadsLog(payload, logFile) ? new LogTail(logFile, (text) => void this.#publish(payload.runId, { kind: 'log', jobId: job.id!, text })) : null;
    let outcome: Promise<ExecOutcome>;
    try {
      mkdirSync(dirname(logFile), { recursive: true });
      r.handle = this.#supervisor!.start('process', jobRequest(payload, folder, logFile, mcpUrl), {
        id: job.id!,
        priority: payload.priority,
        reservationBytes: payload.memoryBytes,
        limitBytes: payload.limitBytes,
        // Never paused: its submitter and lock are waiting on it. At an emergency it is killed and
        // reported killed by pressure with its observed peak: the submitter requeues it with that
        // estimate, as a local run does, not counted against its retries.
        onPressure: 'kill-requeue',
        onSample: (bytes) => {
          r.observedBytes = bytes;
          peak = Math.max(peak ?? 0, bytes);
          // The submitter shows it live (its own governor leaves remote memory alone).
          const now = Date.now();
          if (now - sentSampleAt >= SAMPLE_SEND_MS) {
            sentSampleAt = now;
            void this.#publish(payload.runId, { kind: 'sample', jobId: job.id!, bytes });
          }
        },
      });
      outcome = r.handle.done;
    } catch (e) {
      outcome = Promise.resolve({ exitCode: null, signal: null, killedBy: null, error: `could not start on worker ${this.#o.name}: ${(e as Error).message}`, durationMs: 0 });
    }
    this.#log(`took ${payload.taskId} (run ${payload.runId}, ${formatBytes(payload.memoryBytes)} expected)`);
    void this.#publish(payload.runId, { kind: 'started', jobId: job.id!, worker: this.#o.name });
    void outcome.then(async (ended) => {
      clearInterval(lockTimer);
      tail?.stop();
      let next: Job | null = null;
      try {
        if (r.handBack) {
          this.#log(`handed ${payload.taskId} back to the queue`);
          await job.moveToWait(token).catch((e: Error) => this.#log(`job ${job.id}: not handed back: ${e.message}`));
        } else {
          const { outcome: o, bundle } = await carryBack(this.#client!, this.#keys, { payload, folder, logFile, worker: this.#o.name }, ended);
          next = await this.#complete(job, token, payload, this.#result(o, peak, bundle), this.#mayChain(t, r) ? t : null);
          this.#log(`ended ${payload.taskId}: ${o.error ?? `exit ${o.exitCode}`}`);
        }
      } finally {
        this.#running.delete(job.id!);
        if (mcpUrl !== null) this.#gateways!.release(payload.runId);
        t.running--;
        this.#cpuUsed -= payload.cpu;
        for (const q of this.#types.values()) q.skipUntil = 0;
        // The job fetched with the completion takes the place this one left before the loop looks.
        if (next !== null) void this.#take(t, next, token).catch((e: Error) => this.#log(`job ${next?.id}: ${e.message}`));
        this.#nudge();
      }
    });
  }

  #result(o: ExecOutcome, peakBytes: number | null, bundle: Bundle | null): JobResult {
    return jobResult({ name: this.#o.name, budgetBytes: this.#o.budgetBytes, peakBytes: this.#peakBytes }, o, peakBytes, bundle);
  }

  /**
   * Marks the job completed and sends its result to the submitter (both written at once). With
   * `fetchNext`, the same call takes the next job of that type, under the same lock token, as
   * BullMQ's own Worker does: returned for the caller to start.
   */
  async #complete(job: Job, token: string, payload: JobPayload, result: JobResult, fetchNext: TypeQueue | null = null): Promise<Job | null> {
    const moved = job.moveToCompleted(result, token, fetchNext !== null);
    const published = this.#publish(payload.runId, { kind: 'ended', jobId: job.id!, result });
    let next: Job | null = null;
    try {
      const got = await moved;
      const [data, id] = Array.isArray(got) ? (got as [unknown, string | undefined]) : [];
      if (fetchNext !== null && data && id) next = Job.fromJSON(fetchNext.worker as unknown as MinimalQueue, data as Parameters<typeof Job.fromJSON>[1], id);
    } catch (e) {
      this.#log(`job ${job.id}: not marked completed: ${(e as Error).message}`);
    }
    await published;
    return next;
  }

  async #publish(runId: string, m: RunMessage): Promise<void> {
    try {
      await this.#client!.publish(this.#keys.run(runId), JSON.stringify(m));
    } catch {
      /* the submitter also reads the job's return value */
    }
  }

  #onRunMessage(channel: string, message: string): void {
    let m: RunMessage;
    try {
      m = JSON.parse(message) as RunMessage;
    } catch {
      return;
    }
    if (m.kind === 'enqueued') return this.#announced();
    if (m.kind !== 'cancel') return;
    const runId = channel.slice(channel.lastIndexOf(':') + 1);
    if (m.jobId === null) {
      this.#cancelledRuns.set(runId, Date.now());
      // The run is over (or cancelled): its gateway here goes once its jobs have ended.
      void this.#gateways?.close(runId);
    }
    for (const r of this.#running.values()) {
      if (r.payload.runId === runId && (m.jobId === null || m.jobId === r.job.id)) r.handle?.kill('cancelled');
    }
  }

  async #beat(): Promise<void> {
    const c = this.#capacity();
    const free = Math.max(0, Math.min(c.budgetBytes - c.accountedBytes, c.systemFreeBytes ?? Infinity));
    const key = this.#keys.worker(this.#o.name);
    await this.#client!
      .multi()
      .hset(key, {
        name: this.#o.name,
        host: hostname(),
        pid: process.pid,
        budgetBytes: this.#o.budgetBytes,
        freeBytes: free,
        running: this.#running.size,
        pressure: this.#supervisor?.governor?.level ?? 'optimal',
        peakBytes: this.#peakBytes,
        rejected: this.#rejected,
        jobs: [...this.#running.keys()].join(' '),
        at: Date.now(),
      })
      .pexpire(key, this.#o.heartbeatMs * 3)
      .sadd(this.#keys.workers, this.#o.name)
      .exec();
  }
}
