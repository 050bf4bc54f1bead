import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentProfile, ResolvedConfig, TaskSpec } from '../config/resolve.js';
import type { Execution, ExecOutcome } from '../executors/executor.js';
import { FunctionExecutor, type TaskFunction } from '../executors/function-executor.js';
import { ProcessExecutor } from '../executors/process-executor.js';
import { Scheduler, type SchedulerJob } from '../scheduler/scheduler.js';
import { openDatabase } from '../store/db.js';
import { RunHistory, type TaskRow } from '../store/runs.js';
import type { SystemProbe } from '../system/probe.js';
import type { RunEvent, RunningTaskView } from './events.js';
import { lowerBound, type RunReport, type TaskReport, type TaskStatus } from './report.js';

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
}

type Phase = 'pending' | 'queued' | 'running' | 'retry-wait' | TaskStatus;

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
}

const EARLY_SAMPLE_MS = 30;


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
    });
  }

  #now(): number {
    return performance.now() - this.#t0;
  }

  async run(): Promise<RunReport> {
    const { signal } = this.#opts;
    if (this.#logDir) mkdirSync(this.#logDir, { recursive: true });
    if (this.#opts.store !== false) {
      const db = openDatabase(join(this.#config.dir, '.guild', 'guild.db'));
      this.#history = new RunHistory(db);
      this.#closeDb = () => db.close();
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

    const finished = new Promise<void>((resolve) => (this.#finish = resolve));
    const onAbort = (): void => this.#stop('interrupted', 'interrupted');
    signal?.addEventListener('abort', onAbort, { once: true });
    this.#sample();
    const sampler = setInterval(() => this.#sample(), this.#config.sampleIntervalMs);
    try {
      if (signal?.aborted) onAbort();
      else
        this.#scheduler.batch(() => {
          for (const s of this.#states.values()) if (s.waitingOn === 0) this.#enqueue(s);
        });
      this.#checkDone();
      await finished;
    } finally {
      clearInterval(sampler);
      signal?.removeEventListener('abort', onAbort);
    }
    const report = this.#report();
    this.#flush();
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
    for (const spec of tasks) {
      const profile = agents[spec.agent]!;
      this.#states.set(spec.id, {
        id: spec.id,
        type: spec.agent,
        priority: spec.priority,
        memoryBytes: profile.memoryBytes,
        cpu: profile.cpu,
        expectedDurationMs: profile.durationMs ?? spec.timeoutMs,
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
      });
    }
    for (const s of this.#states.values()) for (const d of s.spec.needs) this.#states.get(d)!.dependents.push(s);
  }

  #enqueue(s: TaskState): void {
    if (this.#stopping) {
      this.#settle(s, 'cancelled', 'cancelled: the run is stopping');
      return;
    }
    s.phase = 'queued';
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
    const fn = this.#opts.functions?.get(s.id);
    const base = { taskId: s.id, attempt: s.attempts, timeoutMs: s.spec.timeoutMs, killGraceMs: this.#config.killGraceMs };
    s.exec = fn
      ? this.#functions.start({ ...base, fn })
      : this.#processes.start({
          ...base,
          command: s.spec.run,
          cwd: this.#config.dir,
          env: { ...process.env, ...s.spec.env, GUILD_RUN_ID: this.#runId, GUILD_TASK_ID: s.id, GUILD_ATTEMPT: String(s.attempts) },
          logFile: this.#logFile(s)!,
        });
    this.#running.add(s);
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
    s.exitCode = o.exitCode;
    s.signal = o.signal;
    s.error = o.error;
    this.#scheduler.release(s);

    const ok = o.error === null;
    let status: TaskStatus | 'retrying';
    if (ok) status = 'succeeded';
    else if (o.killedBy === 'cancelled' || this.#stopping === 'interrupted') status = 'cancelled';
    else if (!this.#stopping && s.attempts <= s.spec.retries) status = 'retrying';
    else status = 'failed';
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
      error: o.error,
    });

    if (status === 'retrying') {
      s.phase = 'retry-wait';
      const backoff = Math.min(this.#config.retryBackoffMs * 2 ** (s.attempts - 1), 30_000);
      s.retryTimer = setTimeout(() => {
        s.retryTimer = null;
        if (s.phase === 'retry-wait') this.#enqueue(s);
      }, backoff);
    } else {
      this.#settle(s, status);
      if (status === 'succeeded') {
        for (const d of s.dependents) if (--d.waitingOn === 0 && d.phase === 'pending') this.#enqueue(d);
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
      if (s.phase === 'pending' || s.phase === 'queued' || s.phase === 'retry-wait') {
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
  #sample(): void {
    let total = 0;
    const now = this.#now();
    const views: RunningTaskView[] = [];
    for (const s of this.#running) {
      total += this.#sampleTask(s);
      views.push({ id: s.id, agent: s.type, pid: s.exec?.pid ?? null, rssBytes: s.lastRss, elapsedMs: now - s.attemptStartedAt, attempt: s.attempts });
    }
    this.#samples++;
    if (total > this.#peakTotal) this.#peakTotal = total;
    const guildRss = this.#probe.selfRss();
    if (guildRss > this.#guildPeak) this.#guildPeak = guildRss;
    const mem = this.#probe.memory();
    this.#available = mem.availableBytes;
    this.#scheduler.setSystemAvailable(mem.availableBytes);
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
    });
    this.#scheduler.pump();
  }

  /** Measures one running tree; returns its RSS (0 for functions and trees already gone). */
  #sampleTask(s: TaskState): number {
    const pid = s.exec?.pid ?? null;
    if (pid === null) return 0;
    const tree = this.#probe.tree(pid);
    if (tree.pids.length === 0) return 0;
    for (const p of tree.pids) s.pids.add(p);
    s.lastRss = tree.rssBytes;
    s.peakRss = Math.max(s.peakRss ?? 0, tree.rssBytes);
    this.#scheduler.observe(s, tree.rssBytes);
    return tree.rssBytes;
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

  #report(): RunReport {
    const tasks: TaskReport[] = [];
    const counts: Record<TaskStatus, number> = { succeeded: 0, failed: 0, skipped: 0, cancelled: 0 };
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
        log_file: s.attempts > 0 ? this.#logFile(s) : null,
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
      ok: counts.succeeded === tasks.length,
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
      cores: this.#config.cores,
      cpu_cap: this.#config.cpuCap,
      max_parallel: this.#config.maxParallel,
      sample_interval_ms: this.#config.sampleIntervalMs,
      samples: this.#samples,
      admissions: { admitted: this.#scheduler.stats.admitted, backfilled: this.#scheduler.stats.backfilled, denied: { ...this.#scheduler.stats.denied } },
      counts,
      warnings: [...this.#config.warnings],
      log_dir: this.#logDir,
      tasks,
    };
  }
}

const round = (v: number | null): number | null => (v === null ? null : Math.round(v * 10) / 10);
