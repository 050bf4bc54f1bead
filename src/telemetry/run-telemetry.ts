import { TASKS_NAMESPACE } from '../cache/memo.js';
import type { ResolvedConfig } from '../config/resolve.js';
import { shareDatabase, storeFile } from '../store/db.js';
import { AmbiguousRunIdError, TelemetryHistory } from '../store/telemetry.js';
import { levelRank } from '../governor/levels.js';
import { createCpuTimes, type CpuTimes } from '../system/cpu-times.js';
import { longestChain } from '../util/dag.js';
import type { RunEvent } from '../workflow/events.js';
import type { Alert, RunReport } from '../workflow/report.js';
import { agentFailure, highMemory, lowCacheHitRate, slowExecution } from './alert-rules.js';
import { AlertManager } from './alerts.js';
import { evaluateKpis } from './kpi.js';
import { KpiRecorder } from './kpi-recorder.js';
import { LiveState } from './live-state.js';
import type { GuildMetrics } from './metrics.js';
import { renderReportMarkdown } from './report-markdown.js';
import { storedReport } from './reports.js';
import type { AlertRecord, DashboardState, KpiReport, RunSummary, SeriesPoint, TickEvent, WorkersSnapshot } from './state.js';
import { workersSnapshot, type WorkerHeartbeat } from './workers.js';
import { tokensOf } from '../util/spend.js';

type SampleEvent = Extract<RunEvent, { type: 'sample' }>;

/** A tick at most this often (the sampler may run at 100 ms). */
const TICK_MS = 200;
/** KPIs re-evaluated at most this often while a run goes. */
const KPI_MS = 2000;
/** How long the run's end waits for webhook deliveries. */
const WEBHOOK_FLUSH_MS = 10_000;

/** Options of {@link RunTelemetry}. */
export interface RunTelemetryOptions {
  /** Record metric snapshots and the report in `<dir>/.guild/guild.db`. @default true */
  store?: boolean;
  /** Each alert actually sent (after de-duplication): the log. @default ignore */
  onAlert?: (alert: AlertRecord) => void;
  /** Told when a webhook delivery finally fails. @default ignore */
  onWebhookError?: (message: string) => void;
  /**
   * Prometheus metrics to feed (what `/metrics` serves). Passed in, not built here, so that a run
   * without a dashboard never loads prom-client. @default none
   */
  metrics?: GuildMetrics | null;
  /**
   * Where the CPU time of the run's agents (and of Guild) is read, for the CPU KPI; null: not read,
   * the CPU KPI has no value. @default the /proc reader (system/cpu-times.ts)
   */
  cpuTimes?: CpuTimes | null;
}

/**
 * A run's telemetry: Prometheus metrics, live state for the dashboard, KPIs, alerts and history,
 * all derived from the run's events (the run itself knows nothing of it). Feed `onEvent`, then
 * call `finish(report)` with the run's report: it adds the KPIs and alerts, stores the report
 * (JSON and Markdown) and prunes history.
 *
 * It is also the dashboard's `DashboardSource`. With no subscriber, an event costs a few field
 * updates; ticks and KPI evaluations are only built while someone listens.
 */
export class RunTelemetry {
  readonly #metrics: GuildMetrics | null;
  readonly #config: ResolvedConfig;
  readonly #live: LiveState;
  readonly #kpi: KpiRecorder;
  readonly #listeners = new Set<(event: string, data: string) => void>();
  readonly #history: TelemetryHistory | null = null;
  readonly #closeDb: (() => void) | null = null;
  readonly #onAlert: (a: AlertRecord) => void;
  readonly #onWebhookError: (m: string) => void;
  /** Epoch ms of the run's start (set again from the run-start event). */
  #startedAt = Date.now();
  #broken: string | null = null;
  readonly #targets: ReadonlyMap<string, number>;
  #alerts: AlertManager;
  #runId: string | null = null;
  #lastTick = -Infinity;
  #lastSnapshot = -Infinity;
  #kpis: KpiReport | null = null;
  #final: DashboardState | null = null;
  #cold = true;
  /** Tasks already alerted as slow while running. */
  readonly #slow = new Set<string>();
  /** High memory was alerted and pressure has not fallen below high since. */
  #memoryAlerted = false;
  #cacheLow = false;
  #kpisAt = -Infinity;
  /** Σ over cached tasks of (stored run time − serve time), as the report counts it. */
  #savedMs = 0;
  readonly #cpuTimes: CpuTimes | null;
  /** Distributed mode: the queue family and where the live workers' heartbeats are read from. */
  #cluster: { queue: string; read: () => readonly WorkerHeartbeat[] } | null = null;
  /** Guild's own and reaped CPU seconds when the run began: what the run's readings subtract. */
  #cpuBase: { ownSeconds: number; reapedSeconds: number } | null;

  constructor(config: ResolvedConfig, options: RunTelemetryOptions = {}) {
    this.#config = config;
    this.#metrics = options.metrics ?? null;
    this.#live = new LiveState(config);
    this.#onAlert = options.onAlert ?? (() => undefined);
    this.#onWebhookError = options.onWebhookError ?? (() => undefined);
    this.#cpuTimes = options.cpuTimes === undefined ? createCpuTimes() : options.cpuTimes;
    this.#cpuBase = this.#cpuTimes?.self() ?? null;
    this.#targets = new Map(Object.values(config.agents).flatMap((a) => (a.responseTargetMs !== null ? [[a.name, a.responseTargetMs] as const] : [])));
    if (options.store !== false) {
      const db = shareDatabase(storeFile(config.dir));
      this.#history = new TelemetryHistory(db);
      this.#closeDb = () => db.close();
      // A workflow with no earlier finished run starts with an empty cache: misses say nothing.
      this.#cold = this.#history.resolveRunId('last', config.file) === null;
    }
    this.#kpi = new KpiRecorder({
      agents: Object.fromEntries(Object.values(config.agents).map((a) => [a.name, { kind: a.kind, responseTargetMs: a.responseTargetMs, declaredBytes: a.memoryBytes }])),
      cold: this.#cold,
      cores: config.cores,
    });
    this.#alerts = this.#newAlerts(null);
  }

  #newAlerts(runId: string | null): AlertManager {
    const w = this.#config.telemetry.webhook;
    return new AlertManager({
      cooldownMs: this.#config.telemetry.alertCooldownMs,
      runStart: this.#startedAt,
      runInfo: runId ? { run_id: runId, workflow: this.#config.file } : null,
      webhook: w ? { url: w.url, headers: w.headers, onError: (m) => this.#onWebhookError(m) } : null,
      onAlert: (a) => {
        this.#onAlert(a);
        this.#broadcast('alert', a);
      },
    });
  }

  /** Feeds one run event (synchronously, in the run's order). */
  onEvent(e: RunEvent): void {
    if (this.#broken !== null) return;
    try {
      this.#apply(e);
    } catch (err) {
      this.#fail(err);
    }
  }

  /**
   * Telemetry must never take a run down: on its first error (a full disk under the store, say) it
   * stops, and the report says so in `warnings`. The run and its results go on.
   */
  #fail(err: unknown): void {
    this.#broken ??= err instanceof Error ? err.message : String(err);
  }

  #apply(e: RunEvent): void {
    this.#metrics?.onEvent(e);
    if (e.type === 'run-start') this.#startedAt = Date.now() - e.t;
    const waited = this.#live.apply(e, this.#startedAt);
    switch (e.type) {
      case 'run-start':
        this.#runId = e.runId;
        // Whatever Guild reaped before (a run earlier in this process) is not this run's.
        this.#cpuBase = this.#cpuTimes?.self() ?? null;
        // Now the webhook payloads can name the run (nothing was raised before the run started).
        this.#alerts.close();
        this.#alerts = this.#newAlerts(e.runId);
        this.#broadcast('state', this.state());
        break;
      case 'task-start':
        if (waited !== null && e.attempt === 1) this.#kpi.taskQueuedToStart(waited);
        break;
      case 'task-end':
        this.#taskEnded(e);
        break;
      case 'task-settled':
        this.#kpi.taskFinished({ agent: e.agent, durationMs: 0, status: e.status, peakRssBytes: null });
        break;
      case 'alert':
        this.#alerts.raise({ rule: e.rule, key: e.key, severity: e.severity, message: e.message });
        break;
      case 'sample':
        this.#sampled(e);
        break;
      default:
        break;
    }
  }

  #taskEnded(e: Extract<RunEvent, { type: 'task-end' }>): void {
    if (e.status === 'retrying' || e.status === 'failed') this.#raise(agentFailure({ taskId: e.id, agent: e.agent, error: e.error, ...(e.error === null ? { exitCode: e.exitCode, signal: e.signal } : {}) }));
    this.#kpi.tokens(tokensOf(e.metrics ?? {}), tokensOf(e.savedMetrics ?? {}));
    if (e.status === 'requeued' || e.status === 'retrying') return;
    if (e.status === 'cached') this.#savedMs += Math.max(0, (e.savedMs ?? 0) - e.durationMs);
    this.#kpi.taskFinished({ agent: e.agent, durationMs: e.durationMs, status: e.status, peakRssBytes: e.peakRssBytes });
    if (e.status !== 'cached' && !this.#slow.has(e.id)) this.#raise(slowExecution({ taskId: e.id, agent: e.agent, elapsedMs: e.durationMs, targetMs: this.#targets.get(e.agent) ?? null, finished: true }));
  }

  #sampled(e: SampleEvent): void {
    const used = e.limitBytes > 0 ? e.usedBytes / e.limitBytes : 0;
    this.#kpi.sample({ t: e.t, usedFraction: used, cpu: e.cpu });
    const cache = this.#taskCache(e);
    const point: SeriesPoint = {
      t: Math.round(e.t),
      used_bytes: e.usedBytes,
      limit_bytes: e.limitBytes,
      agents_rss_bytes: e.totalRssBytes,
      reserved_bytes: e.reservedBytes,
      budget_bytes: e.budgetBytes,
      level: e.level,
      running: e.running.length,
      queued: e.queued,
      paused: e.paused,
      done: e.done,
      cpu: e.cpu === null ? null : Math.round(e.cpu * 1000) / 1000,
      guild_rss_bytes: e.guildRssBytes,
      cache_hit_rate: hitRate(cache),
    };
    this.#live.push(point);
    // Conditions are alerted when they begin (or worsen), not at every sample they last: a repeat
    // counted by the alert manager is a new occurrence.
    // Critical and emergency are alerted by the run itself (memory-pressure, with what the governor did).
    const high = levelRank(e.level) >= levelRank('high');
    if (high && !this.#memoryAlerted) this.#raise(highMemory({ usedFraction: used, level: e.level, limitBytes: e.limitBytes, agentsBytes: e.totalRssBytes, budgetBytes: e.budgetBytes }));
    this.#memoryAlerted = high;
    for (const r of e.running) {
      const target = this.#targets.get(r.agent);
      if (target === undefined || this.#slow.has(r.id)) continue;
      const hit = slowExecution({ taskId: r.id, agent: r.agent, elapsedMs: r.elapsedMs, targetMs: target });
      if (hit) this.#slow.add(r.id);
      this.#raise(hit);
    }
    this.#checkCacheRate(cache.hits, cache.misses);
    if (this.#history && e.t - this.#lastSnapshot >= this.#config.telemetry.snapshotIntervalMs && this.#runId) {
      this.#lastSnapshot = e.t;
      this.#history.addSnapshot(this.#runId, point);
    }
    if (this.#listeners.size === 0) return;
    if (e.t - this.#lastTick >= TICK_MS) {
      this.#lastTick = e.t;
      const tick: TickEvent = {
        point,
        memory: this.#live.memory()!, // a sample has just been applied
        pressure: this.#live.pressure()!,
        queue: this.#live.queue(),
        tasks: this.#live.takeChanged(),
        agents: this.#live.agents(),
        cache: this.#cacheState(e),
        guild: this.#guild(e),
        elapsed_ms: Math.round(e.t),
      };
      this.#broadcast('tick', tick);
    }
    if (performance.now() - this.#kpisAt >= KPI_MS) this.#broadcast('kpis', this.#freshKpis());
  }

  /** Task-result lookups so far: hits in any tier, misses past the last. */
  #taskCache(e: SampleEvent | null): { hits: number; misses: number } {
    let hits = 0;
    let misses = 0;
    for (const r of e?.cacheRequests ?? []) {
      if (r.namespace !== TASKS_NAMESPACE) continue;
      hits += r.hit;
      misses = r.miss; // the rows run fastest tier first: the last one's misses missed everywhere
    }
    return { hits, misses };
  }

  #cacheState(e: SampleEvent | null): DashboardState['cache'] {
    const c = this.#taskCache(e);
    return { ...c, hit_rate: hitRate(c), saved_ms: Math.round(this.#savedMs) };
  }

  #guild(e: SampleEvent | null): DashboardState['guild'] {
    return { rss_bytes: e?.guildRssBytes ?? process.memoryUsage.rss(), event_loop_delay_p99_ms: e ? e.guildHealth.event_loop_delay_p99_ms : null, gc_pause_total_ms: e?.guildHealth.gc_pause_total_ms ?? 0 };
  }

  /** Alerts when the hit rate falls under the line, again only after it has been back above. */
  #checkCacheRate(hits: number, misses: number): void {
    const hit = lowCacheHitRate({ hits, misses, cold: this.#cold });
    if (hit && !this.#cacheLow) this.#raise(hit);
    this.#cacheLow = hit !== null;
  }

  #raise(hit: ReturnType<typeof slowExecution>): void {
    if (hit) this.#alerts.raise(hit);
  }

  /** The KPIs, re-evaluated when the last evaluation is older than KPI_MS. */
  #freshKpis(): KpiReport {
    const now = performance.now();
    if (this.#kpis === null || now - this.#kpisAt >= KPI_MS) {
      this.#kpisAt = now;
      return this.kpis();
    }
    return this.#kpis;
  }

  /** KPIs over the run so far (moving averages over their windows). */
  kpis(): KpiReport {
    const last = this.#live.lastSample;
    // The reading is of now; a run replayed from recorded events has only its samples' clock.
    this.#readCpu(Math.max(Date.now() - this.#startedAt, last?.t ?? 0), last?.running ?? []);
    // The task cache's lookups are counted by the cache itself (read from the latest sample).
    this.#kpis = evaluateKpis(this.#kpi.input(last?.t ?? 0, this.#chainSoFar(), this.#taskCache(last)));
    return this.#kpis;
  }

  /**
   * Reads the CPU seconds used since the run began: by its agents (what Guild reaped since, plus
   * the trees still running) and by Guild itself. Reaped first: a tree that ends in between is
   * missed by this reading only, never counted twice.
   */
  #readCpu(t: number, running: readonly { pid: number | null }[]): void {
    const base = this.#cpuBase;
    const now = base === null ? null : this.#cpuTimes!.self();
    if (base === null || now === null) return;
    let agents = Math.max(0, now.reapedSeconds - base.reapedSeconds);
    // pid 1 or Guild's own would be the whole machine or Guild: never a task's root.
    for (const r of running) if (r.pid !== null && r.pid > 1 && r.pid !== process.pid) agents += this.#cpuTimes!.tree(r.pid);
    this.#kpi.cpuTime({ t, agentsSeconds: agents, guildSeconds: Math.max(0, now.ownSeconds - base.ownSeconds) });
  }

  /** The longest dependency chain of the durations measured so far. */
  #chainSoFar(): number {
    const durations = new Map(this.#live.tasks().map((t) => [t.id, t.status === 'cached' ? 0 : (t.duration_ms ?? 0)]));
    return longestChain(this.#config.tasks, (id) => durations.get(id) ?? 0);
  }

  /**
   * Distributed mode: where the cluster's live workers are read (the heartbeats the submitter
   * reads anyway); from now on `workers()` shows them, and `/metrics` has per-worker gauges.
   */
  watchWorkers(queue: string, read: () => readonly WorkerHeartbeat[]): void {
    this.#cluster = { queue, read };
    this.#metrics?.watchWorkers(() => this.workers()?.workers ?? []);
  }

  /** The dashboard's `workers` feed: the live workers beside what this run counted of each; null when the run is not distributed. */
  workers(): WorkersSnapshot | null {
    if (this.#cluster === null) return null;
    return workersSnapshot(this.#cluster.queue, this.#cluster.read(), Date.now(), this.#live.workerTasks());
  }

  /** What the dashboard draws with that only the run knows: how often KPIs are re-scored. */
  settings(): { kpi_interval_ms: number } {
    return { kpi_interval_ms: KPI_MS };
  }

  /** `/api/state`. */
  state(): DashboardState {
    if (this.#final) return this.#final;
    const e = this.#live.lastSample;
    return {
      version: 1,
      mode: 'run',
      run: this.#live.info ? { ...this.#live.info } : null,
      memory: this.#live.memory(),
      pressure: this.#live.pressure(),
      queue: this.#live.queue(),
      tasks: this.#live.tasks(),
      agents: this.#live.agents(),
      series: this.#live.series(),
      cache: this.#cacheState(e),
      kpis: e ? this.#freshKpis() : null,
      alerts: this.#alerts.alerts(),
      guild: this.#guild(e),
    };
  }

  /**
   * Completes the report: KPIs from the whole run, every alert (de-duplicated, with repeats),
   * stored with its Markdown; history pruned; pending webhook deliveries awaited (bounded).
   */
  async finish(report: RunReport): Promise<RunReport> {
    let full: RunReport = report;
    try {
      if (this.#broken === null) full = this.#complete(report);
    } catch (err) {
      this.#fail(err);
    }
    await this.#alerts.flush(WEBHOOK_FLUSH_MS);
    if (this.#broken === null) return full;
    return { ...full, warnings: [...full.warnings, `telemetry stopped: ${this.#broken}; KPIs, alerts and history of this run may be incomplete`] };
  }

  #complete(report: RunReport): RunReport {
    this.#checkCacheRate(report.cache.hits, report.cache.misses);
    // Every tree has ended and been reaped by now: Guild's reaped time holds them all.
    this.#readCpu(report.makespan_ms, []);
    // The report grades the whole run, not the last window of it.
    const kpis = evaluateKpis(this.#kpi.input(report.makespan_ms, report.lower_bound.chain_ms, report.cache, 'run'));
    this.#kpis = kpis;
    const alerts: Alert[] = this.#alerts.alerts().map((a) => ({ at_ms: a.at_ms, severity: a.severity, message: a.message, rule: a.rule, repeats: a.repeats }));
    const full: RunReport = { ...report, kpis, alerts };
    if (this.#history) {
      this.#history.saveReport(report.run_id, full, renderReportMarkdown(full, { name: this.#config.name, startedAt: this.#startedAt }));
      const t = this.#config.telemetry;
      this.#history.prune({ snapshotRuns: t.keepSnapshots, reportRuns: t.keepReports });
    }
    const final = this.state();
    final.cache = { hits: report.cache.hits, misses: report.cache.misses, hit_rate: report.cache.hit_rate, saved_ms: report.cache.saved_ms };
    final.guild = { ...final.guild, event_loop_delay_p99_ms: report.guild_health.event_loop_delay_p99_ms, gc_pause_total_ms: report.guild_health.gc_pause_total_ms };
    final.kpis = kpis;
    this.#final = final;
    this.#broadcast('kpis', kpis);
    this.#broadcast('end', final);
    return full;
  }

  /** `/metrics`: the Prometheus text exposition. */
  async metrics(): Promise<{ contentType: string; body: string }> {
    if (this.#metrics) return this.#metrics.text();
    return { contentType: 'text/plain; version=0.0.4; charset=utf-8', body: '' };
  }

  subscribe(listener: (event: string, data: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Serialized once, whatever the number of listeners. */
  #broadcast(event: string, data: unknown): void {
    if (this.#listeners.size === 0) return;
    const json = JSON.stringify(data);
    for (const l of this.#listeners) l(event, json);
  }

  runs(limit: number): RunSummary[] {
    return this.#history?.runs(limit) ?? [];
  }

  run(ref: string): { report: unknown; markdown: string; series: SeriesPoint[] } | null {
    return runFromHistory(this.#history, ref);
  }

  /** Closes the store connection and stops webhook deliveries. */
  close(): void {
    this.#alerts.close();
    this.#closeDb?.();
  }
}

/** A past run for `/api/runs/<id>`: its report, Markdown and stored series. */
export function runFromHistory(history: TelemetryHistory | null, ref: string): { report: unknown; markdown: string; series: SeriesPoint[] } | null {
  if (!history) return null;
  let id: string | null;
  try {
    id = history.resolveRunId(ref);
  } catch (e) {
    if (e instanceof AmbiguousRunIdError) return null; // not one run: not found
    throw e;
  }
  const r = id ? storedReport(history, id) : null;
  return r && id ? { report: r.json, markdown: r.markdown, series: history.snapshots(id) } : null;
}

const hitRate = (c: { hits: number; misses: number }): number | null => (c.hits + c.misses === 0 ? null : c.hits / (c.hits + c.misses));
