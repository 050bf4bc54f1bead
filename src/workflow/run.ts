import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ResolvedConfig } from '../config/resolve.js';
import type { ExecOutcome } from '../executors/executor.js';
import { clockFromNow, realClock, type Clock } from '../supervisor/clock.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { Measurement, Supervisor } from '../supervisor/supervisor.js';
import { storeFile } from '../store/db.js';
import { RunLease } from '../store/lease.js';
import type { SystemProbe } from '../system/probe.js';
import { SelfMonitor, type SelfHealth } from '../telemetry/self-monitor.js';
import { attemptStatus, retryBackoffMs, taskEndEvent } from './attempt-outcome.js';
import { baseRequest, processRequest } from './attempt-request.js';
import { newRunId, type ExecuteOptions, type StartedServices } from './execute-options.js';
import type { RunEvent } from './events.js';
import type { RunReport, TaskStatus } from './report.js';
import type { TaskEstimates } from './estimates.js';
import type { RunAlerts } from './run-alerts.js';
import type { RunGauges } from './run-gauges.js';
import { runParts } from './run-parts.js';
import type { RunRecord } from './run-record.js';
import { limitExceeded, runReport } from './run-report.js';
import type { TaskCache } from './task-cache.js';
import type { TaskWatches } from './task-watch.js';
import { metricsDelta, metricsFileFor, readTaskMetrics } from './task-metrics.js';
import { addMetrics, tokensOf } from '../util/spend.js';
import { newTaskState, type TaskState } from './task-state.js';

export { newRunId, type ExecuteOptions, type RunExecutors } from './execute-options.js';

/**
 * Runs a resolved workflow to the end. Tasks go through the scheduler as their dependencies
 * finish; the supervisor runs each attempt, measures every running tree on one timer, enforces
 * limits and carries out the governor's responses; results are written to the store as they arrive.
 */
export async function executeWorkflow(config: ResolvedConfig, options: ExecuteOptions): Promise<RunReport> {
  const runId = options.runId ?? newRunId();
  // The folder's run lock before anything else: a run that waits for another neither counts the
  // wait as its own time nor reads learned profiles the other is still writing.
  const lease =
    options.store === false
      ? null
      : await RunLease.acquire(storeFile(config.dir), { id: runId, workflow: config.file, name: config.name, budget_bytes: config.budgetBytes }, {
          ...(options.wait !== undefined ? { wait: options.wait } : {}),
          ...(options.onWait ? { onWait: options.onWait } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
        });
  try {
    return await new WorkflowRun(config, { ...options, runId }, lease).run();
  } finally {
    lease?.release();
  }
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
  readonly #record: RunRecord;
  readonly #estimates: TaskEstimates;
  readonly #watches: TaskWatches;
  readonly #self = new SelfMonitor();
  readonly #gauges: RunGauges;
  #done = 0;
  #stopping: 'failure' | 'interrupted' | null = null;
  #finish!: () => void;
  #oomAtStart: number | null = null;
  /** What the run's tasks reported spending so far (for `limits:`), added to as each attempt ends. */
  #spent: Record<string, number> = {};
  /** The run's services (the MCP gateway), once started. */
  #services: StartedServices | null = null;

  constructor(config: ResolvedConfig, options: ExecuteOptions, lease: RunLease | null) {
    this.#config = config;
    this.#opts = options;
    this.#probe = options.probe;
    this.#emit = options.onEvent ?? (() => undefined);
    this.#runId = options.runId ?? newRunId();
    this.#clock = clockFromNow(options.clock ?? realClock);
    const needsLogs = config.tasks.some((t) => !options.functions?.has(t.id));
    this.#logDir = needsLogs ? join(config.dir, '.guild', 'runs', this.#runId) : null;
    ({
      alerts: this.#alerts,
      gauges: this.#gauges,
      record: this.#record,
      estimates: this.#estimates,
      cache: this.#cache,
      scheduler: this.#scheduler,
      supervisor: this.#supervisor,
      watches: this.#watches,
    } = runParts(
      config,
      options,
      { runId: this.#runId, lease, clock: this.#clock, emit: this.#emit, self: this.#self, states: this.#states, running: this.#running },
      {
        now: () => this.#now(),
        logFile: (s) => this.#logFile(s),
        enqueue: (s) => this.#enqueue(s),
        served: (s, storedMs) => this.#served(s, storedMs),
        stored: (s) => this.#doneWithout(s, 'succeeded'),
        startAttempt: (s) => this.#startAttempt(s),
        measured: (m) => this.#measured(m),
        sampled: (m) => this.#sampled(m),
        servicesBytes: () => this.#services?.bytes() ?? 0,
      },
    ));
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
      warnings: [...this.#config.warnings, ...this.#record.notes],
    });

    await this.#cache.open(this.#record.db);
    const finished = new Promise<void>((resolve) => (this.#finish = resolve));
    const onAbort = (): void => this.#stop('interrupted', 'interrupted');
    signal?.addEventListener('abort', onAbort, { once: true });
    this.#oomAtStart = this.#probe.memory().oomKills;
    this.#self.start();
    let health: SelfHealth;
    let servicesReport: Record<string, unknown> | null = null;
    try {
      this.#supervisor.startSampling();
      // Services first (each MCP server's first instance admitted before any task), so tasks are
      // admitted against what they leave, and find them running.
      if (this.#opts.services && !signal?.aborted) {
        this.#services = await this.#opts.services.start({ supervisor: this.#supervisor, runId: this.#runId, tasksBytes: () => this.#scheduler.accountedBytes, cache: this.#cache.layered ?? null });
      }
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
      health = this.#self.stop();
      signal?.removeEventListener('abort', onAbort);
      servicesReport = this.#services?.report() ?? null;
      await this.#services?.close();
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
        peakTotal: this.#gauges.peakTotal,
        guildPeak: this.#gauges.guildPeak,
        health,
        samples: this.#gauges.samples,
        failedSamples: { count: this.#gauges.failedSamples + this.#supervisor.sampleFailures.count, first: this.#supervisor.sampleFailures.first },
        guildKills: this.#watches.kills,
        scheduler: this.#scheduler.stats,
        governor: this.#governor,
        responses: this.#alerts.responses,
        alerts: this.#alerts.alerts,
        logDir: this.#logDir,
        logFile: (s) => this.#logFile(s),
        notes: this.#record.notes,
      },
      this.#estimates,
      this.#cache,
    );
    if (servicesReport !== null) Object.assign(report, servicesReport);
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

  /** A task whose dependencies are done: memoization serves it or hands it back to be queued. */
  #ready(s: TaskState): void {
    this.#cache.ready(s, this.#stopping !== null);
  }

  /** A cache hit was restored: it ends as `cached`, saying how long the stored run took. */
  #served(s: TaskState, storedMs: number): void {
    const t0 = s.startedMs!;
    const now = s.endedMs!;
    this.#emit({ type: 'task-end', t: now, id: s.id, agent: s.type, attempt: 0, status: 'cached', exitCode: 0, signal: null, durationMs: now - t0, peakRssBytes: null, error: null, killedBy: null, savedMs: storedMs, savedMetrics: s.cache.saved_metrics ?? {} });
    this.#doneWithout(s, 'cached');
  }

  /** Done without running (a cache hit), or done after its result was stored: dependents may start. */
  #doneWithout(s: TaskState, status: 'cached' | 'succeeded'): void {
    this.#scheduler.batch(() => {
      this.#settle(s, status);
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
    let handle;
    try {
      handle = fn
        ? this.#supervisor.start('function', { ...baseRequest(s, this.#config), fn }, this.#watches.of(s))
        : this.#supervisor.start('process', processRequest(s, this.#config, this.#runId, this.#logFile(s)!, this.#services?.env, this.#opts.taskMetrics !== false), this.#watches.of(s));
    } catch (e) {
      // Not started (EMFILE opening its log, …): a failed attempt, retried as any other, never a
      // crashed run. It ends on the next tick: this may run inside the scheduler's pump.
      this.#running.add(s);
      this.#emit({ type: 'task-start', t: now, id: s.id, agent: s.type, attempt: s.attempts, pid: null });
      const outcome = { exitCode: null, signal: null, killedBy: null, error: `could not start: ${(e as Error).message}`, durationMs: 0 };
      void Promise.resolve().then(() => this.#attemptEnded(s, outcome));
      return;
    }
    s.handle = handle;
    this.#running.add(s);
    this.#record.attemptStarted(s, handle);
    this.#emit({ type: 'task-start', t: now, id: s.id, agent: s.type, attempt: s.attempts, pid: handle.pid });
    if (this.#stopping === 'interrupted') handle.kill('cancelled');
    void handle.done.then((o) => this.#attemptEnded(s, o));
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
    if (o.ranOn !== undefined) s.worker = o.ranOn;
    // Measured where it ran (a distributed worker): its samples may never have reached this process.
    if (o.peakBytes != null && o.peakBytes > (s.peakRss ?? 0)) [s.peakRss, s.memorySource, s.attemptPeak] = [o.peakBytes, 'remote', Math.max(s.attemptPeak ?? 0, o.peakBytes)];
    this.#scheduler.release(s);
    const spent = this.#readMetrics(s);

    const status = attemptStatus(s, o, this.#stopping, () => this.#estimates.requeueAfterKill(s, this.#states.values()));
    if (o.killedBy === 'limit') s.error = s.kills[s.kills.length - 1]?.message ?? o.error;
    this.#emit(taskEndEvent(s, o, status, spent));

    if (status === 'requeued') {
      this.#enqueue(s);
    } else if (status === 'retrying') {
      s.phase = 'retry-wait';
      s.retryTimer = this.#clock.setTimer(() => {
        s.retryTimer = null;
        if (s.phase === 'retry-wait') this.#enqueue(s);
      }, retryBackoffMs(this.#config.retryBackoffMs, s.attempts));
    } else if (status === 'succeeded' && s.cache.fingerprint !== null) {
      s.phase = 'saving';
      void this.#cache.save(s, o.durationMs);
    } else {
      this.#settle(s, status);
      if (status === 'succeeded') {
        this.#releaseDependents(s);
      } else if (status === 'failed') {
        this.#skipDependents(s);
        if (!this.#config.keepGoing) this.#stop('failure', `task '${s.id}' failed: ${o.error ?? 'unknown error'}`);
      }
    }
    if (Object.keys(spent).length > 0) {
      this.#spent = addMetrics(this.#spent, spent);
      this.#checkLimits();
    }
  }

  /** Reads what the task reported spending so far (its metrics file and, for `usage:`, its log); returns what this attempt added. */
  #readMetrics(s: TaskState): Record<string, number> {
    const log = this.#logFile(s);
    if (log === null || this.#opts.taskMetrics === false) return {};
    const m = readTaskMetrics(metricsFileFor(log), log, s.spec.usage);
    const added = metricsDelta(m.values, s.metrics);
    s.metrics = m.values;
    s.metricsMalformed = m.malformed;
    return added;
  }

  /** Once the tasks' spending reaches a `limits:` budget, no task is admitted any more: those running finish, the run fails. */
  #checkLimits(): void {
    if (this.#stopping !== null || (this.#config.limits.costUsd === null && this.#config.limits.tokens === null)) return;
    const totals = this.#spent;
    const hit = limitExceeded(this.#config, totals);
    if (hit === null) return;
    const detail =
      hit === 'cost_usd'
        ? `the run's cost limit of $${this.#config.limits.costUsd} is reached ($${(totals.cost_usd ?? 0).toFixed(4)} spent)`
        : `the run's token limit of ${this.#config.limits.tokens} is reached (${tokensOf(totals)} tokens spent)`;
    this.#stop('failure', `${detail}: no new task is started`);
  }

  #settle(s: TaskState, status: TaskStatus, error?: string): void {
    s.phase = status;
    if (error !== undefined) s.error = error;
    this.#cache.settled(s);
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
    this.#gauges.measured(m, this.#running);
    // Placed elsewhere: this machine's free memory says nothing about where tasks run.
    if (this.#opts.remoteAdmission !== true) this.#scheduler.setSystemAvailable(m.memory.availableBytes);
  }

  /** After the governor responded: settled rows to the store, the sample event, admissions. */
  #sampled(m: Measurement): void {
    // The buffer pool is lent while nothing is near a limit as the governor judges it: memory
    // that admission reserved and paid for is no sign of that (used ÷ limit would count it, and
    // in a tight cgroup a full budget alone would hold the buffer back).
    if (!m.final) this.#scheduler.setLendBuffer(this.#governor.level === 'optimal');
    this.#record.flush();
    this.#emit(
      this.#gauges.event(m, {
        reservedBytes: this.#scheduler.accountedBytes,
        budgetBytes: this.#config.budgetBytes,
        queued: this.#scheduler.queued,
        done: this.#done,
        total: this.#states.size,
        blocked: this.#scheduler.blocked,
        level: this.#governor.level,
        denied: { ...this.#scheduler.stats.denied },
        cacheRequests: this.#cache.layered?.requests() ?? [],
      }),
    );
    if (!m.final) this.#scheduler.pump();
  }
}
