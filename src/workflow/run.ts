import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ResolvedConfig } from '../config/resolve.js';
import type { ExecOutcome, Executor } from '../executors/executor.js';
import type { FunctionRequest, TaskFunction } from '../executors/function-executor.js';
import type { ProcessRequest } from '../executors/process-executor.js';
import { Scheduler } from '../scheduler/scheduler.js';
import { clockFromNow, realClock, type Clock } from '../supervisor/clock.js';
import { Supervisor, type Measurement } from '../supervisor/supervisor.js';
import type { KillNotice, WatchOptions } from '../supervisor/watch.js';
import type { SystemProbe } from '../system/probe.js';
import { SelfMonitor, type SelfHealth } from '../telemetry/self-monitor.js';
import type { LayeredCache } from '../cache/layered-cache.js';
import { formatBytes } from '../util/units.js';
import { baseRequest, processRequest } from './attempt-request.js';
import { TaskEstimates } from './estimates.js';
import type { RunEvent, RunningTaskView } from './events.js';
import type { RunReport, TaskStatus } from './report.js';
import { RunAlerts } from './run-alerts.js';
import { RunRecord } from './run-record.js';
import { round, runReport } from './run-report.js';
import { TaskCache } from './task-cache.js';
import { newTaskState, type TaskState } from './task-state.js';

/**
 * The executors a run starts attempts through. Each defaults to Guild's own. (A type, not an
 * interface: it must fit the supervisor's executors-by-kind map.)
 */
export type RunExecutors = {
  /** Shell tasks. @default a ProcessExecutor (process groups, tree RSS) */
  process?: Executor<ProcessRequest>;
  /** In-process functions (library use). @default a FunctionExecutor */
  function?: Executor<FunctionRequest>;
};

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
  /** What starts attempts (a remote executor plugs in here). @default Guild's process and function executors */
  executors?: RunExecutors;
  /** Time for sampling, retry backoff and every time the run reports. @default realClock */
  clock?: Clock;
}

/** A time-sortable run id: `20261122-041700-3fa2`. */
export function newRunId(date = new Date()): string {
  const iso = date.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${iso}-${randomBytes(2).toString('hex')}`;
}

/**
 * Runs a resolved workflow to the end. Tasks go through the scheduler as their dependencies
 * finish; the supervisor runs each attempt, measures every running tree on one timer, enforces
 * limits and carries out the governor's responses; results are written to the store as they arrive.
 */
export function executeWorkflow(config: ResolvedConfig, options: ExecuteOptions): Promise<RunReport> {
  return new WorkflowRun(config, options).run();
}

/**
 * The DAG loop: task states, dependencies, retries, fail-fast and stop. Everything else is
 * delegated: processes to the supervisor, memoization to TaskCache, the store to RunRecord,
 * the report to run-report.ts.
 */
class WorkflowRun {
  readonly #config: ResolvedConfig;
  readonly #opts: ExecuteOptions;
  readonly #probe: SystemProbe;
  readonly #emit: (e: RunEvent) => void;
  readonly #runId: string;
  /** Run time: 0 at the run's start; shared with the supervisor and the governor. */
  readonly #clock: Clock;
  readonly #startedAt = Date.now(); // wall clock, for the store only
  readonly #states = new Map<string, TaskState>();
  readonly #running = new Set<TaskState>();
  readonly #scheduler: Scheduler<TaskState>;
  readonly #supervisor: Supervisor;
  readonly #cache: TaskCache;
  readonly #alerts: RunAlerts;
  readonly #logDir: string | null;
  #record!: RunRecord;
  #estimates!: TaskEstimates;
  #done = 0;
  #stopping: 'failure' | 'interrupted' | null = null;
  #peakTotal = 0;
  #guildPeak = 0;
  #guildRss = 0;
  #samples = 0;
  #available = 0;
  #views: RunningTaskView[] = [];
  #paused = 0;
  #finish!: () => void;
  #guildKills = 0;
  #oomAtStart: number | null = null;
  readonly #self = new SelfMonitor();
  #health: SelfHealth | null = null;

  constructor(config: ResolvedConfig, options: ExecuteOptions) {
    this.#config = config;
    this.#opts = options;
    this.#probe = options.probe;
    this.#emit = options.onEvent ?? (() => undefined);
    this.#runId = options.runId ?? newRunId();
    this.#clock = clockFromNow(options.clock ?? realClock);
    const needsLogs = config.tasks.some((t) => !options.functions?.has(t.id));
    this.#logDir = needsLogs ? join(config.dir, '.guild', 'runs', this.#runId) : null;
    this.#alerts = new RunAlerts(this.#emit, () => this.#now());
    this.#cache = new TaskCache(config, options.cache, (id) => options.functions?.has(id) ?? false);
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
      cacheBytes: () => this.#cache.layered?.bytes() ?? 0,
      reclaim: () => this.#cache.layered?.reclaim(),
    });
    const g = config.governor;
    this.#supervisor = new Supervisor({
      probe: options.probe,
      ...(options.executors ? { executors: options.executors } : {}),
      clock: this.#clock,
      sampleIntervalMs: config.sampleIntervalMs,
      waiting: () => this.#scheduler.queued > 0,
      governance: {
        options: { thresholds: g.thresholds, margin: g.margin, holdMs: g.holdMs, cooldownMs: g.cooldownMs, onAction: (a, at) => this.#alerts.response(a, at, this.#governor.projected) },
        admission: {
          setCap: (cap) => this.#scheduler.setCap(cap),
          setAdmission: (rule) => this.#scheduler.setAdmission(rule),
          // Caches shrink, evict or switch off with pressure.
          setCaching: (mode) => this.#cache.layered?.onCacheMode(mode),
        },
        budgetBytes: config.budgetBytes,
        budgetShare: g.budgetShare,
      },
      onMeasure: (m) => this.#measured(m),
      onSampled: (m) => this.#sampled(m),
    });
  }

  get #governor() {
    return this.#supervisor.governor!;
  }

  #now(): number {
    return this.#clock.now();
  }

  async run(): Promise<RunReport> {
    const { signal } = this.#opts;
    if (this.#logDir) mkdirSync(this.#logDir, { recursive: true });
    this.#record = RunRecord.open(this.#config, this.#runId, this.#opts.store !== false);
    this.#estimates = new TaskEstimates(this.#config, this.#record.learned());
    this.#record.started(this.#config, this.#startedAt);
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

    await this.#cache.open(this.#record.db, (...a) => this.#alerts.raise(...a));
    const finished = new Promise<void>((resolve) => (this.#finish = resolve));
    const onAbort = (): void => this.#stop('interrupted', 'interrupted');
    signal?.addEventListener('abort', onAbort, { once: true });
    this.#oomAtStart = this.#probe.memory().oomKills;
    this.#self.start();
    try {
      this.#supervisor.startSampling();
      if (signal?.aborted) onAbort();
      else
        this.#scheduler.batch(() => {
          for (const s of this.#states.values()) if (s.waitingOn === 0) this.#ready(s);
        });
      this.#checkDone();
      await finished;
      // One last sample: what watchers see at the end (nothing running, every lookup counted).
      this.#supervisor.sample(true);
    } finally {
      this.#health = this.#self.stop();
      signal?.removeEventListener('abort', onAbort);
      // Nothing is left running after a normal end; after an error, this ends and reaps what is.
      await this.#supervisor.close();
    }
    const report = runReport(
      this.#config,
      this.#states,
      {
        runId: this.#runId,
        interrupted: this.#stopping === 'interrupted',
        makespanMs: this.#now(),
        memory: this.#probe.memory(),
        oomAtStart: this.#oomAtStart,
        peakTotal: this.#peakTotal,
        guildPeak: this.#guildPeak,
        health: this.#health,
        samples: this.#samples,
        guildKills: this.#guildKills,
        scheduler: this.#scheduler.stats,
        governor: this.#governor,
        responses: this.#alerts.responses,
        alerts: this.#alerts.alerts,
        logDir: this.#logDir,
        logFile: (s) => this.#logFile(s),
      },
      this.#estimates,
      this.#cache,
    );
    this.#record.flush();
    await this.#cache.close(report);
    this.#record.finished(report, Date.now());
    this.#record.close();
    this.#emit({ type: 'run-end', t: report.makespan_ms, report });
    return report;
  }

  #buildStates(): void {
    const { tasks, agents } = this.#config;
    const estimates = new Map(Object.values(agents).map((a) => [a.name, this.#estimates.of(a)]));
    for (const spec of tasks) this.#states.set(spec.id, newTaskState(spec, agents[spec.agent]!, estimates.get(spec.agent)!));
    for (const s of this.#states.values()) for (const d of s.spec.needs) this.#states.get(d)!.dependents.push(s);
  }

  /** A task whose dependencies are done: served from the cache when it can be, queued otherwise. */
  #ready(s: TaskState): void {
    const reason = this.#stopping ? null : this.#cache.uncacheable(s, this.#states);
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
    const entry = await this.#cache.lookup(s, this.#states, this.#logFile(s));
    if (s.phase !== 'hashing') return; // cancelled while hashing
    if (entry === undefined) {
      if (s.cache.fingerprint !== null) s.cache.status = 'miss';
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
    await this.#cache.save(s, this.#logFile(s), durationMs, (...a) => this.#alerts.raise(...a));
    this.#scheduler.batch(() => {
      this.#settle(s, 'succeeded');
      this.#releaseDependents(s);
    });
    this.#checkDone();
  }

  #releaseDependents(s: TaskState): void {
    for (const d of s.dependents) if (--d.waitingOn === 0 && d.phase === 'pending') this.#ready(d);
  }

  #enqueue(s: TaskState): void {
    if (this.#stopping) {
      this.#settle(s, 'cancelled', 'cancelled: the run is stopping');
      return;
    }
    s.phase = 'queued';
    s.memoryBytes = Math.max(s.memoryBytes, this.#estimates.floor(s.type));
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

  /** Admitted by the scheduler: the supervisor starts the attempt and watches it to its end. */
  #startAttempt(s: TaskState): void {
    s.phase = 'running';
    s.attempts++;
    const now = this.#now();
    s.startedMs ??= now;
    s.attemptStartedAt = now;
    s.lastRss = null;
    s.attemptPeak = null;
    const fn = this.#opts.functions?.get(s.id);
    const handle = fn
      ? this.#supervisor.start('function', { ...baseRequest(s, this.#config), fn }, this.#watch(s))
      : this.#supervisor.start('process', processRequest(s, this.#config, this.#runId, this.#logFile(s)!), this.#watch(s));
    s.handle = handle;
    this.#running.add(s);
    this.#record.attemptStarted(s, handle);
    this.#emit({ type: 'task-start', t: now, id: s.id, agent: s.type, attempt: s.attempts, pid: handle.pid });
    if (this.#stopping === 'interrupted') handle.kill('cancelled');
    void handle.done.then((o) => this.#attemptEnded(s, o));
  }

  /** A task attempt under supervision: paused or killed and requeued under pressure, killed over its limit. */
  #watch<R>(s: TaskState): WatchOptions<R> {
    return {
      id: s.id,
      priority: s.priority,
      reservationBytes: s.memoryBytes,
      limitBytes: s.profile.limitBytes,
      onPressure: 'pause',
      onSample: (bytes) => {
        s.lastRss = bytes;
        s.peakRss = Math.max(s.peakRss ?? 0, bytes);
        s.attemptPeak = Math.max(s.attemptPeak ?? 0, bytes);
        this.#scheduler.observe(s, bytes);
        // An agent above its type's estimate: tasks of that type not yet started now expect as much.
        if (bytes > s.memoryBytes) this.#estimates.raise(s.type, bytes, this.#states.values());
      },
      onKill: (n) => this.#killed(s, n),
    };
  }

  /** The supervisor is stopping an attempt: record the kill, alert, and at an emergency save the queue. */
  #killed(s: TaskState, n: KillNotice): void {
    const at = round(this.#now())!;
    if (n.reason === 'limit') {
      const message = `memory limit exceeded: ${formatBytes(n.bytes!)} > ${formatBytes(s.profile.limitBytes!)}`;
      s.kills.push({ reason: 'limit', level: null, attempt: s.attempts, at_ms: at, rss_bytes: n.bytes, message });
      this.#guildKills++;
      this.#alerts.raise('warning', `${s.id}: ${message}; killed`, 'memory-limit', `memory-limit:${s.type}`);
    } else if (n.reason === 'pressure') {
      const rss = s.lastRss;
      const message = `killed under memory pressure (${n.level}) at ${formatBytes(rss)}`;
      s.kills.push({ reason: 'pressure', level: n.level, attempt: s.attempts, at_ms: at, rss_bytes: rss, message });
      this.#guildKills++;
      this.#record.saveQueueState(this.#now(), `${n.level}: killed ${s.id}`, this.#states.values(), this.#running);
      this.#alerts.raise('critical', `memory ${n.level} (${Math.round(this.#governor.fraction * 100)}%): killed ${s.id} at ${formatBytes(rss)}; it will be requeued`, 'memory-pressure', `memory-kill:${s.id}`);
    }
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
    s.pausedMs += s.handle?.pausedMs ?? 0;
    s.handle = null;
    s.busyMs += o.durationMs;
    s.endedMs = this.#now();
    s.exitCode = o.exitCode;
    s.signal = o.signal;
    s.error = o.error;
    this.#scheduler.release(s);

    let status: TaskStatus | 'retrying' | 'requeued';
    if (o.error === null) status = 'succeeded';
    else if (o.killedBy === 'cancelled' || this.#stopping === 'interrupted') status = 'cancelled';
    else if (o.killedBy === 'pressure') status = this.#stopping ? 'cancelled' : this.#estimates.requeueAfterKill(s, this.#states.values());
    else if (!this.#stopping && s.attempts - s.requeues <= s.spec.retries) status = 'retrying';
    else status = 'failed';
    if (o.killedBy === 'limit') s.error = s.kills[s.kills.length - 1]?.message ?? o.error;
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
      s.retryTimer = this.#clock.setTimer(() => {
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
    this.#record.settled(s);
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
      if (s.phase === 'retry-wait') s.retryTimer?.cancel();
      if (s.phase === 'pending' || s.phase === 'hashing' || s.phase === 'queued' || s.phase === 'retry-wait') {
        this.#settle(s, 'cancelled', reason === 'interrupted' ? 'cancelled: run interrupted' : `cancelled: ${detail}`);
      }
    }
    if (reason === 'interrupted') for (const s of this.#running) s.handle?.kill('cancelled');
    this.#record.flush();
    this.#checkDone();
  }

  #checkDone(): void {
    if (this.#done === this.#states.size && this.#running.size === 0) this.#finish();
  }

  /** Every running tree and the machine were measured; the governor reads next. */
  #measured(m: Measurement): void {
    const views: RunningTaskView[] = [];
    let paused = 0;
    for (const s of this.#running) {
      if (s.handle?.paused) paused++;
      views.push({ id: s.id, agent: s.type, pid: s.handle?.pid ?? null, rssBytes: s.lastRss, elapsedMs: m.now - s.attemptStartedAt, attempt: s.attempts });
    }
    this.#views = views;
    this.#paused = paused;
    this.#samples++;
    if (m.totalBytes > this.#peakTotal) this.#peakTotal = m.totalBytes;
    this.#guildRss = this.#probe.selfRss();
    if (this.#guildRss > this.#guildPeak) this.#guildPeak = this.#guildRss;
    this.#available = m.memory.availableBytes;
    this.#scheduler.setSystemAvailable(m.memory.availableBytes);
    this.#scheduler.setLendBuffer(m.memory.usedBytes / m.memory.limitBytes < this.#config.governor.thresholds.moderate);
  }

  /** After the governor responded: settled rows to the store, the sample event, admissions. */
  #sampled(m: Measurement): void {
    this.#record.flush();
    this.#emit({
      type: 'sample',
      t: m.now,
      totalRssBytes: m.totalBytes,
      reservedBytes: this.#scheduler.accountedBytes,
      budgetBytes: this.#config.budgetBytes,
      availableBytes: this.#available,
      queued: this.#scheduler.queued,
      running: this.#views,
      done: this.#done,
      total: this.#states.size,
      blocked: this.#scheduler.blocked,
      level: this.#governor.level,
      paused: this.#paused,
      usedBytes: m.memory.usedBytes,
      limitBytes: m.memory.limitBytes,
      cpu: this.#probe.cpuUsage(),
      guildRssBytes: this.#guildRss,
      guildHealth: this.#self.read(),
      denied: { ...this.#scheduler.stats.denied },
      cacheRequests: this.#cache.layered?.requests() ?? [],
    });
    if (!m.final) this.#scheduler.pump();
  }
}
