import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { aloneCapBytes, type AgentProfile, type ResolvedConfig, type TaskSpec } from '../config/resolve.js';
import type { Execution, ExecOutcome } from '../executors/executor.js';
import { FunctionExecutor, type TaskFunction } from '../executors/function-executor.js';
import { ProcessExecutor } from '../executors/process-executor.js';
import { Scheduler, type SchedulerJob } from '../scheduler/scheduler.js';
import { openDatabase, storeFile } from '../store/db.js';
import { RunHistory, type TaskRow } from '../store/runs.js';
import { SelfMonitor, type SelfHealth } from '../telemetry/self-monitor.js';
import { estimateFor, learnedProfiles, type Estimate, type LearnedProfile } from '../store/profiles.js';
import type { SystemProbe } from '../system/probe.js';
import { Governor, type CacheMode, type GovernedAgent, type GovernorAction } from '../governor/governor.js';
import type { PressureLevel } from '../governor/levels.js';
import { pressureReading, type ExecutionMemory } from '../governor/reading.js';
import { formatBytes } from '../util/units.js';
import type { AlertRule } from '../telemetry/state.js';
import type { RunEvent, RunningTaskView } from './events.js';
import { poolReport } from './pool-report.js';
import type { LayeredCache } from '../cache/layered-cache.js';
import { TaskMemo, type MemoEntry } from '../cache/memo.js';
import { openCache } from '../cache/open.js';
import { GuildError } from '../errors.js';
import { CACHE_DISABLED_TEXT, lowerBound, type Alert, type CacheDisabledBy, type CacheReport, type ResponseRecord, type RunReport, type TaskCacheReport, type TaskKill, type TaskReport, type TaskStatus } from './report.js';

/** Options of one run, beyond what the resolved config says. */
export interface ExecuteOptions {
  /** The probe that measures memory and process trees. */
  probe: SystemProbe;
  /** Aborting stops the run: queued tasks are cancelled, running trees are killed and reaped. */
  signal?: AbortSignal;
  /** Every event of the run, synchronously, in order. Keep it cheap. */
  onEvent?: (event: RunEvent) => void;
  /** Record the run in `<workflow dir>/.guild/guild.db`. @default true */
  store?: boolean;
  /** In-process functions for tasks, by id (library use); such tasks ignore `run`. */
  functions?: ReadonlyMap<string, TaskFunction>;
  /** @default a time-sortable id */
  runId?: string;
  /**
   * The cache task results are memoized in; the governor also tells it to shrink, evict or stop
   * caching as pressure rises (it is the run's `MemoryConsumer`). @default the workflow's own (memory, its SQLite store,
   * Redis when configured), opened for the run and closed after it; none when `store` is false.
   */
  cache?: LayeredCache;
}

/** `hashing`: fingerprinting inputs and looking up the cache; `saving`: storing a result before dependents start. */
type Phase = 'pending' | 'hashing' | 'queued' | 'running' | 'retry-wait' | 'saving' | TaskStatus;

interface TaskState extends SchedulerJob {
  readonly spec: TaskSpec;
  readonly profile: AgentProfile;
  phase: Phase;
  attempts: number;
  waitingOn: number;
  firstQueuedAt: number;
  exitCode: number | null;
  signal: string | null;
  startedMs: number | null;
  endedMs: number | null;
  busyMs: number;
  peakRss: number | null;
  error: string | null;
  exec: Execution | null;
  attemptStartedAt: number;
  lastRss: number | null;
  pids: Set<number>;
  retryTimer: NodeJS.Timeout | null;
  dependents: TaskState[];
  /** Highest RSS of the current attempt. */
  attemptPeak: number | null;
  paused: boolean;
  pausedAt: number;
  pausedMs: number;
  kills: TaskKill[];
  /** Attempts ended by a pressure kill: requeued, and not counted against `retries`. */
  requeues: number;
  /** `cache.fingerprint`: null until fingerprinted, and for tasks that are not cacheable. */
  cache: TaskCacheReport;
}

const EARLY_SAMPLE_MS = 30;
/** Sampling near the limits; between this and the configured interval otherwise. */
const FAST_SAMPLE_MS = 100;
/** Within this much of the first pressure line (moderate), sampling goes fast. */
const NEAR_MARGIN = 0.15;
/** Nothing running and nothing queued (retry backoff): look less often. */
const IDLE_SAMPLE_MS = 1000;
/** Grace between TERM and KILL when memory is short: there is no time to wait for a clean exit. */
const MEMORY_KILL_GRACE_MS = 500;
/** A task killed for pressure this many times fails instead of being requeued again. */
const MAX_REQUEUES = 5;
/** At most this many governor responses are kept for the report (the events carry all). */
const MAX_RESPONSES = 1000;


/** A time-sortable run id: `20261122-041700-3fa2`. */
export function newRunId(date = new Date()): string {
  const iso = date.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${iso}-${randomBytes(2).toString('hex')}`;
}

/**
 * Runs a resolved workflow to the end. Tasks go through the scheduler as their dependencies
 * finish; one sampler measures every running process tree at the configured interval, feeds the
 * scheduler and records peaks; results are written to the store as they arrive.
 */
export function executeWorkflow(config: ResolvedConfig, options: ExecuteOptions): Promise<RunReport> {
  return new WorkflowRun(config, options).run();
}

class WorkflowRun {
  readonly #config: ResolvedConfig;
  readonly #opts: ExecuteOptions;
  readonly #probe: SystemProbe;
  readonly #emit: (e: RunEvent) => void;
  readonly #runId: string;
  readonly #t0 = performance.now();
  readonly #startedAt = Date.now();
  readonly #states = new Map<string, TaskState>();
  readonly #running = new Set<TaskState>();
  readonly #scheduler: Scheduler<TaskState>;
  readonly #processes = new ProcessExecutor();
  readonly #functions = new FunctionExecutor();
  readonly #logDir: string | null;
  #history: RunHistory | null = null;
  #closeDb: (() => void) | null = null;
  readonly #unsaved: TaskRow[] = [];
  #done = 0;
  #stopping: 'failure' | 'interrupted' | null = null;
  #peakTotal = 0;
  #guildPeak = 0;
  #samples = 0;
  #available = 0;
  #finish!: () => void;
  readonly #governor: Governor;
  readonly #responses: ResponseRecord[] = [];
  readonly #alerts: Alert[] = [];
  #guildKills = 0;
  #oomAtStart: number | null = null;
  #sampleTimer: NodeJS.Timeout | null = null;
  #sampleDelay = 0;
  #learned = new Map<string, LearnedProfile>();
  readonly #self = new SelfMonitor();
  #health: SelfHealth | null = null;
  #nearLimit = false;
  #cache: LayeredCache | null = null;
  #ownsCache = false;
  #memo: TaskMemo | null = null;
  /** Per agent type, the highest estimate raised to so far: a sample above it raises the rest. */
  readonly #raised = new Map<string, number>();

  constructor(config: ResolvedConfig, options: ExecuteOptions) {
    this.#config = config;
    this.#opts = options;
    this.#probe = options.probe;
    this.#emit = options.onEvent ?? (() => undefined);
    this.#runId = options.runId ?? newRunId();
    const needsLogs = config.tasks.some((t) => !options.functions?.has(t.id));
    this.#logDir = needsLogs ? join(config.dir, '.guild', 'runs', this.#runId) : null;
    this.#scheduler = new Scheduler<TaskState>({
      budgetBytes: config.budgetBytes,
      cpuCap: config.cpuCap,
      maxParallel: config.maxParallel,
      headroom: config.headroom,
      agingMs: config.agingMs,
      starvationLimitMs: config.starvationLimitMs,
      concurrency: (type) => config.agents[type]?.concurrency ?? null,
      now: () => this.#now(),
      start: (s) => this.#startAttempt(s),
      pools: config.pools,
      cacheBytes: () => this.#cache?.bytes() ?? 0,
      reclaim: () => this.#cache?.reclaim(),
    });
    const g = config.governor;
    this.#governor = new Governor({
      thresholds: g.thresholds,
      margin: g.margin,
      holdMs: g.holdMs,
      cooldownMs: g.cooldownMs,
      now: () => this.#now(),
      target: {
        agents: () => this.#governedAgents(),
        setCap: (cap) => this.#scheduler.setCap(cap),
        setAdmission: (rule) => this.#scheduler.setAdmission(rule),
        setCaching: (mode) => this.#setCaching(mode),
        pause: (id) => this.#pause(this.#states.get(id)!),
        resume: (id) => this.#resume(this.#states.get(id)!),
        kill: (id, level) => this.#pressureKill(this.#states.get(id)!, level),
      },
      onAction: (a, at) => this.#recordResponse(a, at),
    });
  }

  #now(): number {
    return performance.now() - this.#t0;
  }

  async run(): Promise<RunReport> {
    const { signal } = this.#opts;
    if (this.#logDir) mkdirSync(this.#logDir, { recursive: true });
    if (this.#opts.store !== false) {
      const db = openDatabase(storeFile(this.#config.dir));
      this.#history = new RunHistory(db);
      this.#closeDb = () => db.close();
      this.#learned = learnedProfiles(db);
      this.#history.startRun({
        id: this.#runId,
        workflow: this.#config.file,
        name: this.#config.name,
        started_at: this.#startedAt,
        budget_bytes: this.#config.budgetBytes,
      });
    }
    this.#buildStates();
    this.#emit({
      type: 'run-start',
      runId: this.#runId,
      t: 0,
      tasks: this.#states.size,
      budgetBytes: this.#config.budgetBytes,
      logDir: this.#logDir,
      instructionsFile: this.#config.instructionsFile,
      warnings: this.#config.warnings,
    });

    await this.#openCache();
    const finished = new Promise<void>((resolve) => (this.#finish = resolve));
    const onAbort = (): void => this.#stop('interrupted', 'interrupted');
    signal?.addEventListener('abort', onAbort, { once: true });
    this.#oomAtStart = this.#probe.memory().oomKills;
    this.#self.start();
    this.#sample();
    this.#scheduleSample();
    try {
      if (signal?.aborted) onAbort();
      else
        this.#scheduler.batch(() => {
          for (const s of this.#states.values()) if (s.waitingOn === 0) this.#ready(s);
        });
      this.#checkDone();
      await finished;
      // One last sample: what watchers see at the end (nothing running, every lookup counted).
      this.#sample(true);
    } finally {
      this.#health = this.#self.stop();
      if (this.#sampleTimer) clearTimeout(this.#sampleTimer);
      this.#sampleTimer = null;
      signal?.removeEventListener('abort', onAbort);
    }
    const report = this.#report();
    this.#flush();
    await this.#closeCache(report);
    this.#history?.finishRun({
      id: this.#runId,
      status: report.interrupted ? 'interrupted' : report.ok ? 'succeeded' : 'failed',
      ended_at: Date.now(),
      makespan_ms: report.makespan_ms,
      lower_bound_ms: report.lower_bound_ms,
      peak_rss_bytes: report.peak_rss_bytes,
      report: JSON.stringify(report),
    });
    this.#closeDb?.();
    this.#emit({ type: 'run-end', t: report.makespan_ms, report });
    return report;
  }

  #buildStates(): void {
    const { tasks, agents } = this.#config;
    const estimates = new Map(Object.values(agents).map((a) => [a.name, this.#estimate(a)]));
    for (const spec of tasks) {
      const profile = agents[spec.agent]!;
      const estimate = estimates.get(spec.agent)!;
      this.#states.set(spec.id, {
        id: spec.id,
        type: spec.agent,
        priority: spec.priority,
        memoryBytes: estimate.memoryBytes,
        cpu: profile.cpu,
        expectedDurationMs: estimate.durationMs ?? spec.timeoutMs,
        key: 0,
        seq: 0,
        spec,
        profile,
        phase: 'pending',
        attempts: 0,
        waitingOn: spec.needs.length,
        firstQueuedAt: -1,
        exitCode: null,
        signal: null,
        startedMs: null,
        endedMs: null,
        busyMs: 0,
        peakRss: null,
        error: null,
        exec: null,
        attemptStartedAt: 0,
        lastRss: null,
        pids: new Set(),
        retryTimer: null,
        dependents: [],
        attemptPeak: null,
        paused: false,
        pausedAt: 0,
        pausedMs: 0,
        kills: [],
        requeues: 0,
        cache: { status: 'off', reason: null, fingerprint: null, saved_ms: 0, serve_ms: null },
      });
    }
    for (const s of this.#states.values()) for (const d of s.spec.needs) this.#states.get(d)!.dependents.push(s);
  }

  /** The task cache: the caller's, or the workflow's own when memoization is on and there is a store. */
  async #openCache(): Promise<void> {
    const cfg = this.#config.cache;
    if (!cfg.enabled) return;
    if (this.#opts.cache) this.#cache = this.#opts.cache;
    else if (this.#history) {
      try {
        this.#cache = await openCache(cfg, this.#config.dir, { db: this.#history.db });
      } catch (e) {
        if (!(e instanceof GuildError && e.code === 'CACHE')) throw e;
        // The shared tier is down: memoize locally rather than refuse to run, and say so.
        this.#alert('warning', `${e.message}; caching in memory and on disk only`, 'cache', 'cache:redis');
        this.#cache = await openCache({ ...cfg, redisUrl: null }, this.#config.dir, { db: this.#history.db });
      }
      this.#ownsCache = true;
    } else return;
    this.#memo = new TaskMemo(this.#cache, this.#config.dir);
  }

  async #closeCache(report: RunReport): Promise<void> {
    if (!this.#cache) return;
    try {
      if (this.#ownsCache) await this.#cache.close();
      else await this.#cache.flush();
    } catch (e) {
      report.warnings.push(`the cache could not be written at the end of the run: ${(e as Error).message}`);
    }
  }

  /** Why a task will not be looked up in (or stored to) the cache; null when it will. */
  #uncacheable(s: TaskState): string | null {
    if (!this.#memo) return `caching off (${CACHE_DISABLED_TEXT[this.#cacheDisabledBy()!]})`;
    if (!s.spec.cache) return 'cache: false';
    if (this.#opts.functions?.has(s.id)) return 'an in-process function';
    if (s.spec.inputs.length === 0) return 'no inputs declared';
    for (const id of s.spec.needs) if (this.#states.get(id)!.cache.fingerprint === null) return `needs '${id}', which is not cached`;
    return null;
  }

  /** A task whose dependencies are done: served from the cache when it can be, queued otherwise. */
  #ready(s: TaskState): void {
    const reason = this.#stopping ? null : this.#uncacheable(s);
    if (this.#stopping || reason !== null) {
      s.cache.reason = reason;
      this.#enqueue(s);
      return;
    }
    s.phase = 'hashing';
    void this.#serveFromCache(s);
  }

  async #serveFromCache(s: TaskState): Promise<void> {
    const t0 = this.#now();
    let entry: MemoEntry | undefined;
    try {
      const needs = new Map(s.spec.needs.map((id) => [id, this.#states.get(id)!.cache.fingerprint!]));
      const fp = await this.#memo!.fingerprint(s.spec, s.profile, needs);
      s.cache.fingerprint = fp.key;
      if (s.phase !== 'hashing') return;
      entry = await this.#memo!.lookup(fp.key);
      if (entry && s.phase === 'hashing') await this.#memo!.restore(entry, this.#logFile(s));
    } catch (e) {
      // Unreadable inputs or a failed restore: the task runs, and the summary says why.
      s.cache.reason = `cache: ${(e as Error).message}`;
      entry = undefined;
    }
    if (s.phase !== 'hashing') return; // cancelled while hashing
    if (entry === undefined) {
      if (s.cache.fingerprint !== null) {
        s.cache.status = 'miss';
      }
      this.#enqueue(s);
      return;
    }
    const now = this.#now();
    s.cache.status = 'hit';
    s.cache.serve_ms = round(now - t0)!;
    s.cache.saved_ms = round(Math.max(0, entry.durationMs - (now - t0)))!;
    s.startedMs = t0;
    s.endedMs = now;
    this.#emit({ type: 'task-end', t: now, id: s.id, agent: s.type, attempt: 0, status: 'cached', exitCode: 0, signal: null, durationMs: now - t0, peakRssBytes: null, error: null, killedBy: null, savedMs: entry.durationMs });
    this.#scheduler.batch(() => {
      this.#settle(s, 'cached');
      this.#releaseDependents(s);
    });
    this.#checkDone();
  }

  /** Stores a fresh result (outputs as the task left them) before its dependents may touch them. */
  async #saveResult(s: TaskState, durationMs: number): Promise<void> {
    try {
      await this.#memo!.save(s.cache.fingerprint!, s.spec, this.#logFile(s), durationMs, s.peakRss);
    } catch (e) {
      s.cache.reason = `not stored: ${(e as Error).message}`;
      this.#alert('warning', `${s.id}: result not cached: ${(e as Error).message}`, 'cache', 'cache:store');
    }
    this.#scheduler.batch(() => {
      this.#settle(s, 'succeeded');
      this.#releaseDependents(s);
    });
    this.#checkDone();
  }

  #releaseDependents(s: TaskState): void {
    for (const d of s.dependents) if (--d.waitingOn === 0 && d.phase === 'pending') this.#ready(d);
  }

  #estimate(a: AgentProfile): Estimate {
    return estimateFor(a, this.#learned.get(a.name) ?? null, aloneCapBytes(this.#config));
  }

  #enqueue(s: TaskState): void {
    if (this.#stopping) {
      this.#settle(s, 'cancelled', 'cancelled: the run is stopping');
      return;
    }
    s.phase = 'queued';
    s.memoryBytes = Math.max(s.memoryBytes, this.#raised.get(s.type) ?? 0);
    const now = this.#now();
    this.#emit({ type: 'task-queued', t: now, id: s.id });
    if (s.firstQueuedAt < 0) {
      s.firstQueuedAt = now;
      this.#scheduler.enqueue(s);
    } else {
      // A retried task keeps its place: it was admitted once already.
      this.#scheduler.enqueue(s, s.firstQueuedAt);
    }
  }

  #startAttempt(s: TaskState): void {
    s.phase = 'running';
    s.attempts++;
    const now = this.#now();
    s.startedMs ??= now;
    s.attemptStartedAt = now;
    s.lastRss = null;
    s.attemptPeak = null;
    const fn = this.#opts.functions?.get(s.id);
    const base = { taskId: s.id, attempt: s.attempts, timeoutMs: s.spec.timeoutMs, killGraceMs: this.#config.killGraceMs };
    s.exec = fn
      ? this.#functions.start({ ...base, fn })
      : this.#processes.start({
          ...base,
          command: s.spec.run,
          cwd: this.#config.dir,
          env: this.#env(s),
          logFile: this.#logFile(s)!,
        });
    this.#running.add(s);
    // Waking from idle: the next sample must not wait the idle interval.
    if (this.#sampleTimer !== null && this.#sampleDelay > this.#config.sampleIntervalMs) {
      clearTimeout(this.#sampleTimer);
      this.#scheduleSample();
    }
    if (s.exec.pid !== null) {
      s.pids.add(s.exec.pid);
      // One early look, so that a task shorter than the sampling interval still gets a measured peak.
      const exec = s.exec;
      setTimeout(() => s.exec === exec && this.#sampleTask(s), EARLY_SAMPLE_MS).unref();
    }
    this.#emit({ type: 'task-start', t: now, id: s.id, agent: s.type, attempt: s.attempts, pid: s.exec.pid });
    if (this.#stopping === 'interrupted') s.exec.kill('cancelled');
    s.exec.done.then(
      (outcome) => this.#attemptEnded(s, outcome),
      (e: unknown) => this.#attemptEnded(s, { exitCode: null, signal: null, killedBy: null, error: String(e), durationMs: 0 }),
    );
  }

  #env(s: TaskState): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, ...s.spec.env, GUILD_RUN_ID: this.#runId, GUILD_TASK_ID: s.id, GUILD_ATTEMPT: String(s.attempts) };
    // node_heap: V8 collects before the agent's hard limit is reached, instead of growing into it.
    if (s.profile.nodeHeapMb !== null) env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --max-old-space-size=${s.profile.nodeHeapMb}`.trim();
    return env;
  }

  #logFile(s: TaskState): string | null {
    return this.#logDir && !this.#opts.functions?.has(s.id) ? join(this.#logDir, `${s.id}.log`) : null;
  }

  #attemptEnded(s: TaskState, o: ExecOutcome): void {
    // Release, fail-fast and newly ready dependents take effect together, so that nothing
    // lower in priority slips into the freed slot first.
    this.#scheduler.batch(() => this.#settleAttempt(s, o));
    this.#checkDone();
  }

  #settleAttempt(s: TaskState, o: ExecOutcome): void {
    this.#running.delete(s);
    for (const pid of s.pids) this.#probe.forget(pid);
    s.pids.clear();
    s.exec = null;
    s.busyMs += o.durationMs;
    s.endedMs = this.#now();
    if (s.paused) {
      s.pausedMs += s.endedMs - s.pausedAt;
      s.paused = false;
    }
    s.exitCode = o.exitCode;
    s.signal = o.signal;
    s.error = o.error;
    this.#scheduler.release(s);

    let status: TaskStatus | 'retrying' | 'requeued';
    if (o.error === null) status = 'succeeded';
    else if (o.killedBy === 'cancelled' || this.#stopping === 'interrupted') status = 'cancelled';
    else if (o.killedBy === 'pressure') status = this.#stopping ? 'cancelled' : this.#requeueAfterKill(s);
    else if (!this.#stopping && s.attempts - s.requeues <= s.spec.retries) status = 'retrying';
    else status = 'failed';
    if (o.killedBy === 'limit') s.error = s.kills[s.kills.length - 1]?.message ?? o.error;
    if (o.killedBy === 'pressure') this.#governor.killSettled(s.id);
    this.#emit({
      type: 'task-end',
      t: s.endedMs,
      id: s.id,
      agent: s.type,
      attempt: s.attempts,
      status,
      exitCode: o.exitCode,
      signal: o.signal,
      durationMs: o.durationMs,
      peakRssBytes: s.peakRss,
      error: s.error,
      killedBy: o.killedBy,
    });

    if (status === 'requeued') {
      this.#enqueue(s);
    } else if (status === 'retrying') {
      s.phase = 'retry-wait';
      const backoff = Math.min(this.#config.retryBackoffMs * 2 ** (s.attempts - 1), 30_000);
      s.retryTimer = setTimeout(() => {
        s.retryTimer = null;
        if (s.phase === 'retry-wait') this.#enqueue(s);
      }, backoff);
    } else if (status === 'succeeded' && s.cache.fingerprint !== null) {
      s.phase = 'saving';
      void this.#saveResult(s, o.durationMs);
    } else {
      this.#settle(s, status);
      if (status === 'succeeded') {
        this.#releaseDependents(s);
      } else if (status === 'failed') {
        this.#skipDependents(s);
        if (!this.#config.keepGoing) this.#stop('failure', `task '${s.id}' failed: ${o.error ?? 'unknown error'}`);
      }
    }
  }

  #settle(s: TaskState, status: TaskStatus, error?: string): void {
    s.phase = status;
    if (error !== undefined) s.error = error;
    this.#done++;
    this.#unsaved.push(this.#row(s));
    // Settled without an attempt ending (skipped, or cancelled while waiting): say so too.
    if (error !== undefined) this.#emit({ type: 'task-settled', t: this.#now(), id: s.id, agent: s.type, status, error });
  }

  #skipDependents(failed: TaskState): void {
    const stack = [...failed.dependents];
    while (stack.length > 0) {
      const d = stack.pop()!;
      if (d.phase !== 'pending') continue;
      this.#settle(d, 'skipped', `dependency '${failed.id}' ${failed.phase}`);
      stack.push(...d.dependents);
    }
  }

  /** Fail-fast or interruption: nothing new starts; on interruption running trees are killed too. */
  #stop(reason: 'failure' | 'interrupted', detail: string): void {
    if (this.#stopping === 'interrupted' || this.#stopping === reason) return;
    this.#stopping = reason;
    this.#emit({ type: 'run-stopping', t: this.#now(), reason, detail });
    this.#scheduler.stop();
    this.#scheduler.drain();
    for (const s of this.#states.values()) {
      if (s.phase === 'retry-wait' && s.retryTimer) clearTimeout(s.retryTimer);
      if (s.phase === 'pending' || s.phase === 'hashing' || s.phase === 'queued' || s.phase === 'retry-wait') {
        this.#settle(s, 'cancelled', reason === 'interrupted' ? 'cancelled: run interrupted' : `cancelled: ${detail}`);
      }
    }
    if (reason === 'interrupted') for (const s of this.#running) s.exec?.kill('cancelled');
    this.#flush();
    this.#checkDone();
  }

  #checkDone(): void {
    if (this.#done === this.#states.size && this.#running.size === 0) this.#finish();
  }

  /** One sampling instant: every running tree, the machine's memory, Guild's own RSS. */
  /** `final`: the run is over; measure and report, but the governor and the scheduler have nothing left to act on. */
  #sample(final = false): void {
    let total = 0;
    const now = this.#now();
    this.#nearLimit = false;
    const views: RunningTaskView[] = [];
    let paused = 0;
    for (const s of this.#running) {
      total += this.#sampleTask(s);
      if (s.paused) paused++;
      views.push({ id: s.id, agent: s.type, pid: s.exec?.pid ?? null, rssBytes: s.lastRss, elapsedMs: now - s.attemptStartedAt, attempt: s.attempts });
    }
    this.#samples++;
    if (total > this.#peakTotal) this.#peakTotal = total;
    const guildRss = this.#probe.selfRss();
    if (guildRss > this.#guildPeak) this.#guildPeak = guildRss;
    const mem = this.#probe.memory();
    this.#available = mem.availableBytes;
    this.#scheduler.setSystemAvailable(mem.availableBytes);
    const system = mem.usedBytes / mem.limitBytes;
    this.#scheduler.setLendBuffer(system < this.#config.governor.thresholds.moderate);
    if (!final) {
      // Each running task's reservation is the estimate admission reserved for it (s.memoryBytes).
      const agents: ExecutionMemory[] = [];
      for (const s of this.#running) agents.push({ measured: s.lastRss, reserved: s.memoryBytes, peak: s.attemptPeak });
      this.#governor.observe(pressureReading({ used: mem.usedBytes, limit: mem.limitBytes, budget: this.#config.budgetBytes, psi: this.#probe.psi()?.fullAvg10 ?? null, agents }));
    }
    this.#flush();
    this.#emit({
      type: 'sample',
      t: now,
      totalRssBytes: total,
      reservedBytes: this.#scheduler.accountedBytes,
      budgetBytes: this.#config.budgetBytes,
      availableBytes: this.#available,
      queued: this.#scheduler.queued,
      running: views,
      done: this.#done,
      total: this.#states.size,
      blocked: this.#scheduler.blocked,
      level: this.#governor.level,
      paused,
      usedBytes: mem.usedBytes,
      limitBytes: mem.limitBytes,
      cpu: this.#probe.cpuUsage(),
      guildRssBytes: guildRss,
      guildHealth: this.#self.read(),
      denied: { ...this.#scheduler.stats.denied },
      cacheRequests: this.#cache?.requests() ?? [],
    });
    if (!final) this.#scheduler.pump();
  }

  /** Measures one running tree; returns its RSS (0 for functions and trees already gone). */
  #sampleTask(s: TaskState): number {
    const pid = s.exec?.pid ?? null;
    if (pid === null) return 0;
    const tree = this.#probe.tree(pid);
    if (tree.pids.length === 0) return 0;
    for (const p of tree.pids) s.pids.add(p);
    const rss = tree.rssBytes;
    s.lastRss = rss;
    s.peakRss = Math.max(s.peakRss ?? 0, rss);
    s.attemptPeak = Math.max(s.attemptPeak ?? 0, rss);
    this.#scheduler.observe(s, rss);
    // An agent above its type's estimate: tasks of that type not yet started now expect as much.
    if (rss > s.memoryBytes) this.#raiseEstimate(s.type, rss);
    const limit = s.profile.limitBytes;
    if (limit !== null) {
      if (rss > limit) this.#limitKill(s, rss, limit);
      else if (rss > limit * 0.8) this.#nearLimit = true;
    }
    return rss;
  }

  /**
   * Raises the estimate of every not-yet-running task of `type` (never past what could run alone).
   * Only a new high scans the tasks; a task queued later takes the high in #enqueue.
   */
  #raiseEstimate(type: string, bytes: number): void {
    const estimate = Math.min(bytes, aloneCapBytes(this.#config));
    if (estimate <= (this.#raised.get(type) ?? 0)) return;
    this.#raised.set(type, estimate);
    for (const t of this.#states.values()) {
      if (t.type === type && t.memoryBytes < estimate && (t.phase === 'pending' || t.phase === 'queued' || t.phase === 'retry-wait')) t.memoryBytes = estimate;
    }
  }

  /** A tree above its agent's hard limit dies at once: TERM, then KILL after a short grace. */
  #limitKill(s: TaskState, rss: number, limit: number): void {
    if (!s.exec || s.kills.some((k) => k.attempt === s.attempts)) return;
    const message = `memory limit exceeded: ${formatBytes(rss)} > ${formatBytes(limit)}`;
    s.kills.push({ reason: 'limit', level: null, attempt: s.attempts, at_ms: round(this.#now())!, rss_bytes: rss, message });
    this.#guildKills++;
    s.exec.kill('limit', MEMORY_KILL_GRACE_MS);
    this.#alert('warning', `${s.id}: ${message}; killed`, 'memory-limit', `memory-limit:${s.type}`);
  }

  /** The governor's emergency: kill, requeue with what was observed, save the queue, alert. */
  #pressureKill(s: TaskState, level: PressureLevel): void {
    if (!s.exec) return;
    const rss = s.lastRss;
    const message = `killed under memory pressure (${level}) at ${formatBytes(rss)}`;
    s.kills.push({ reason: 'pressure', level, attempt: s.attempts, at_ms: round(this.#now())!, rss_bytes: rss, message });
    this.#guildKills++;
    s.exec.kill('pressure', MEMORY_KILL_GRACE_MS);
    this.#saveQueueState(`${level}: killed ${s.id}`);
    this.#alert('critical', `memory ${level} (${Math.round(this.#governor.fraction * 100)}%): killed ${s.id} at ${formatBytes(rss)}; it will be requeued`, 'memory-pressure', `memory-kill:${s.id}`);
  }

  /** After a pressure kill: requeue with the observed peak as the estimate, unless it can never fit. */
  #requeueAfterKill(s: TaskState): 'requeued' | 'failed' {
    s.requeues++;
    const observed = Math.max(s.memoryBytes, s.attemptPeak ?? 0);
    if (observed > aloneCapBytes(this.#config)) {
      s.error = `needs ${formatBytes(observed)} (observed before Guild killed it) but with ${this.#config.headroom}× headroom that exceeds the budget ${formatBytes(this.#config.budgetBytes)}`;
      return 'failed';
    }
    if (s.requeues > MAX_REQUEUES) {
      s.error = `killed under memory pressure ${s.requeues} times`;
      return 'failed';
    }
    s.memoryBytes = observed;
    this.#raiseEstimate(s.type, observed);
    return 'requeued';
  }

  #governedAgents(): GovernedAgent[] {
    const out: GovernedAgent[] = [];
    for (const s of this.#running) {
      out.push({ id: s.id, priority: s.priority, startedAt: s.attemptStartedAt, paused: s.paused, controllable: s.exec?.pid != null, rssBytes: s.lastRss });
    }
    return out;
  }

  #pause(s: TaskState): void {
    if (!s.exec || s.paused || !s.exec.pause()) return;
    s.paused = true;
    s.pausedAt = this.#now();
  }

  #resume(s: TaskState): void {
    if (!s.exec || !s.paused) return;
    s.exec.resume();
    s.paused = false;
    s.pausedMs += this.#now() - s.pausedAt;
  }

  /** Caches shrink, evict or switch off with pressure. */
  #setCaching(mode: CacheMode): void {
    this.#cache?.onCacheMode(mode);
  }

  #recordResponse(a: GovernorAction, at: number): void {
    const rec = { at_ms: round(at)!, ...a } as ResponseRecord;
    if (this.#responses.length < MAX_RESPONSES) this.#responses.push(rec);
    this.#emit({ type: 'governor', t: at, action: a });
    if (a.type === 'level' && (a.to === 'critical' || a.to === 'emergency')) {
      const heading = this.#governor.projected > a.fraction + 0.005 ? `, heading for ${Math.round(this.#governor.projected * 100)}%` : '';
      this.#alert(a.to === 'emergency' ? 'critical' : 'warning', `memory pressure ${a.to} (${Math.round(a.fraction * 100)}% of the limit${heading})`, 'memory-pressure', `memory-pressure:${a.to}`);
    }
  }

  #alert(severity: Alert['severity'], message: string, rule: AlertRule, key: string): void {
    const alert: Alert = { at_ms: round(this.#now())!, severity, message, rule };
    this.#alerts.push(alert);
    this.#emit({ type: 'alert', t: alert.at_ms, severity, message, rule, key });
  }

  /** Writes what is queued, running and finished to the store: readable after an emergency. */
  #saveQueueState(reason: string): void {
    this.#flush();
    if (!this.#history) return;
    const by = (phases: Phase[]) => [...this.#states.values()].filter((t) => phases.includes(t.phase));
    const state = {
      running: [...this.#running].map((t) => ({ id: t.id, agent: t.type, priority: t.priority, rss_bytes: t.lastRss, estimate_bytes: t.memoryBytes, paused: t.paused })),
      queued: by(['queued', 'retry-wait']).map((t) => ({ id: t.id, agent: t.type, priority: t.priority, estimate_bytes: t.memoryBytes })),
      pending: by(['pending']).map((t) => t.id),
      finished: by(['succeeded', 'failed', 'skipped', 'cancelled']).map((t) => ({ id: t.id, status: t.phase })),
    };
    this.#history.saveQueueState(this.#runId, round(this.#now())!, reason, JSON.stringify(state));
  }

  #scheduleSample(): void {
    this.#sampleDelay = this.#nextInterval();
    this.#sampleTimer = setTimeout(() => {
      this.#sample();
      if (this.#sampleTimer !== null) this.#scheduleSample();
    }, this.#sampleDelay);
  }

  /**
   * About every 100 ms near the limits (any pressure, within 15 points of the moderate line or
   * heading there, or a task above 80 % of its hard limit); the configured interval (≤ 250 ms) while agents run with headroom; 1 s when idle.
   */
  #nextInterval(): number {
    if (this.#running.size === 0 && this.#scheduler.queued === 0) return IDLE_SAMPLE_MS;
    const g = this.#governor;
    const near = this.#config.governor.thresholds.moderate - NEAR_MARGIN;
    if (g.level !== 'optimal' || g.projected >= near || this.#nearLimit) return Math.min(FAST_SAMPLE_MS, this.#config.sampleIntervalMs);
    return this.#config.sampleIntervalMs;
  }

  /** Writes finished tasks in one transaction (each tick and at the end). */
  #flush(): void {
    if (this.#unsaved.length === 0 || !this.#history) return;
    this.#history.recordTasks(this.#unsaved.splice(0));
  }

  #row(s: TaskState): TaskRow {
    return {
      run_id: this.#runId,
      id: s.id,
      agent: s.type,
      status: s.phase,
      exit_code: s.exitCode,
      signal: s.signal,
      started_ms: s.startedMs,
      ended_ms: s.endedMs,
      duration_ms: s.busyMs,
      peak_rss_bytes: s.peakRss,
      attempts: s.attempts,
      error: s.error,
    };
  }

  #cacheDisabledBy(): CacheDisabledBy | null {
    return this.#memo ? null : (this.#config.cache.disabledBy ?? 'no store');
  }

  #cacheReport(): CacheReport {
    let hits = 0;
    let misses = 0;
    let savedMs = 0;
    let notCacheable = 0;
    for (const { cache: c } of this.#states.values()) {
      if (c.status === 'hit') {
        hits++;
        savedMs += c.saved_ms;
      } else if (c.status === 'miss') misses++;
      else if (c.reason !== null) notCacheable++;
    }
    const cfg = this.#config.cache;
    return {
      enabled: this.#memo !== null,
      disabled_by: this.#cacheDisabledBy(),
      hits,
      misses,
      hit_rate: hits + misses === 0 ? null : Math.round((hits / (hits + misses)) * 1000) / 1000,
      saved_ms: round(savedMs)!,
      not_cacheable: notCacheable,
      tiers: this.#cache?.tiers.map((t) => t.name) ?? [],
      context: cfg.context.preset,
    };
  }

  #report(): RunReport {
    const tasks: TaskReport[] = [];
    const counts: Record<TaskStatus, number> = { succeeded: 0, cached: 0, failed: 0, skipped: 0, cancelled: 0 };
    for (const s of this.#states.values()) {
      const status = s.phase as TaskStatus;
      counts[status]++;
      tasks.push({
        id: s.id,
        agent: s.type,
        priority: s.priority,
        status,
        exit_code: s.exitCode,
        signal: s.signal,
        started_ms: round(s.startedMs),
        ended_ms: round(s.endedMs),
        duration_ms: round(s.busyMs)!,
        peak_rss_bytes: s.peakRss,
        attempts: s.attempts,
        error: s.error,
        log_file: s.attempts > 0 || s.cache.status === 'hit' ? this.#logFile(s) : null,
        memory_estimate_bytes: s.memoryBytes,
        paused_ms: round(s.pausedMs)!,
        kills: s.kills,
        cache: s.cache,
      });
    }
    const lb = lowerBound(
      [...this.#states.values()].map((s) => ({ id: s.id, needs: s.spec.needs, durationMs: s.busyMs, peakRssBytes: s.peakRss, cpu: s.cpu })),
      this.#config.budgetBytes,
      this.#config.cores,
    );
    const makespan = this.#now();
    const mem = this.#probe.memory();
    return {
      ok: counts.succeeded + counts.cached === tasks.length,
      run_id: this.#runId,
      workflow: this.#config.file,
      interrupted: this.#stopping === 'interrupted',
      makespan_ms: round(makespan)!,
      lower_bound_ms: round(Math.max(lb.chain_ms, lb.memory_ms, lb.cpu_ms))!,
      lower_bound: { chain_ms: round(lb.chain_ms)!, memory_ms: round(lb.memory_ms)!, cpu_ms: round(lb.cpu_ms)! },
      budget_bytes: this.#config.budgetBytes,
      budget_source: this.#config.budgetSource,
      effective_limit_bytes: this.#config.effectiveLimitBytes,
      memory_source: mem.source,
      peak_rss_bytes: this.#peakTotal,
      guild_peak_rss_bytes: this.#guildPeak,
      guild_health: { rss_peak_bytes: this.#guildPeak, ...this.#health! }, // stopped before the report
      cores: this.#config.cores,
      cpu_cap: this.#config.cpuCap,
      max_parallel: this.#config.maxParallel,
      sample_interval_ms: this.#config.sampleIntervalMs,
      samples: this.#samples,
      admissions: { admitted: this.#scheduler.stats.admitted, backfilled: this.#scheduler.stats.backfilled, denied: { ...this.#scheduler.stats.denied } },
      pools: poolReport(this.#config.pools, this.#config.budgetBytes, this.#scheduler.stats.peakReserved),
      counts,
      pressure: { highest: this.#governor.highest, time_ms: Object.fromEntries(Object.entries(this.#governor.timeAtMs).map(([k, v]) => [k, round(v)])) as Record<PressureLevel, number> },
      guild_kills: this.#guildKills,
      oom_kills: mem.oomKills === null || this.#oomAtStart === null ? null : mem.oomKills - this.#oomAtStart,
      responses: this.#responses,
      profiles: Object.fromEntries(
        Object.values(this.#config.agents).map((a) => {
          const e = this.#estimate(a);
          return [
            a.name,
            { declared_bytes: a.memoryBytes, learned_p90_bytes: e.learned?.peakP90Bytes ?? null, samples: e.learned?.samples ?? 0, estimate_bytes: e.memoryBytes, source: e.source },
          ];
        }),
      ),
      cache: this.#cacheReport(),
      alerts: this.#alerts,
      kpis: null,
      warnings: [...this.#config.warnings],
      log_dir: this.#logDir,
      tasks,
    };
  }
}

const round = (v: number | null): number | null => (v === null ? null : Math.round(v * 10) / 10);
