import type { ResolvedConfig } from '../config/resolve.js';
import { levelRank, type PressureLevel } from '../governor/levels.js';
import type { RunEvent } from '../workflow/events.js';
import type { AgentRow, DashboardState, RunInfo, SeriesPoint, TaskRow } from './state.js';
import { roundSpend, tokensOf } from '../util/spend.js';

type SampleEvent = Extract<RunEvent, { type: 'sample' }>;

/** Points `/api/state` carries (the page keeps every point it receives after that). */
const STATE_POINTS = 1500;

interface AgentTotals {
  done: number;
  failed: number;
  peak: number | null;
  durationSum: number;
  durations: number;
  /** Tokens (in + out) and US dollars its tasks reported spending. */
  tokens: number;
  cost: number;
}

/**
 * What a run looks like now, kept from its events: task rows, per-type totals, the newest series
 * points. Rows that changed since the last `takeChanged()` are remembered so that a tick carries
 * only those.
 */
export class LiveState {
  readonly #config: ResolvedConfig;
  readonly #tasks = new Map<string, TaskRow>();
  readonly #changed = new Set<TaskRow>();
  readonly #totals = new Map<string, AgentTotals>();
  /** Ring of the newest points: `#series[#head]` is the oldest once full. */
  readonly #series: SeriesPoint[] = [];
  #head = 0;
  #last: SampleEvent | null = null;
  #info: RunInfo | null = null;
  #queuedAt = new Map<string, number>();
  readonly #levelMs: Record<PressureLevel, number> = { optimal: 0, moderate: 0, high: 0, critical: 0, emergency: 0 };
  #highest: PressureLevel = 'optimal';
  /** Distributed mode: attempts that ended on each worker. */
  readonly #workerTasks = new Map<string, number>();

  constructor(config: ResolvedConfig) {
    this.#config = config;
    for (const t of config.tasks) {
      this.#tasks.set(t.id, { id: t.id, agent: t.agent, status: 'pending', started_ms: null, ended_ms: null, duration_ms: null, rss_bytes: null, peak_rss_bytes: null, attempts: 0, error: null });
    }
    for (const name of Object.keys(config.agents)) this.#totals.set(name, { done: 0, failed: 0, peak: null, durationSum: 0, durations: 0, tokens: 0, cost: 0 });
  }

  /** The run, its elapsed time read now while it goes. */
  get info(): RunInfo | null {
    if (this.#info?.status === 'running') this.#info.elapsed_ms = Date.now() - this.#info.started_at;
    return this.#info;
  }

  get lastSample(): SampleEvent | null {
    return this.#last;
  }

  /** Applies one event. Returns the queue wait (ms) when a task's first attempt starts. */
  apply(e: RunEvent, startedAt: number): number | null {
    switch (e.type) {
      case 'run-start':
        this.#info = { id: e.runId, workflow: this.#config.file, name: this.#config.name, started_at: startedAt, elapsed_ms: 0, status: 'running', total_tasks: e.tasks, cores: this.#config.cores };
        return null;
      case 'task-queued':
        this.#queuedAt.set(e.id, e.t);
        this.#update(e.id, (r) => (r.status = 'queued'));
        return null;
      case 'task-start': {
        this.#update(e.id, (r) => {
          r.status = 'running';
          r.started_ms ??= e.t;
          r.attempts = e.attempt;
          r.ended_ms = null;
        });
        const queued = this.#queuedAt.get(e.id);
        this.#queuedAt.delete(e.id);
        return queued === undefined ? null : e.t - queued;
      }
      case 'task-end': {
        const final = e.status !== 'retrying' && e.status !== 'requeued';
        this.#update(e.id, (r) => {
          r.status = e.status === 'requeued' ? 'queued' : e.status;
          r.ended_ms = e.t;
          // Run time over every attempt, as the report counts it; a cached task's is its serve time.
          r.duration_ms = (e.status === 'cached' ? 0 : (r.duration_ms ?? 0)) + e.durationMs;
          if (e.peakRssBytes !== null) r.peak_rss_bytes = Math.max(r.peak_rss_bytes ?? 0, e.peakRssBytes);
          r.rss_bytes = null;
          r.error = e.error;
          if (e.status === 'cached') r.started_ms ??= e.t - e.durationMs;
          if (e.worker !== undefined) r.worker = e.worker;
        });
        if (e.worker !== undefined) this.#workerTasks.set(e.worker, (this.#workerTasks.get(e.worker) ?? 0) + 1);
        if (e.status === 'requeued') this.#queuedAt.set(e.id, e.t);
        const tot = this.#totals.get(e.agent);
        if (tot && final) {
          tot.done++;
          if (e.status === 'failed') tot.failed++;
          if (e.status !== 'cached') {
            tot.durationSum += e.durationMs;
            tot.durations++;
          }
        }
        if (tot && e.peakRssBytes !== null) tot.peak = Math.max(tot.peak ?? 0, e.peakRssBytes);
        if (tot && e.metrics !== undefined) {
          tot.tokens += tokensOf(e.metrics);
          tot.cost = roundSpend(tot.cost + (e.metrics.cost_usd ?? 0));
        }
        return null;
      }
      case 'task-settled':
        this.#update(e.id, (r) => {
          r.status = e.status;
          r.error = e.error;
        });
        return null;
      case 'governor':
        if (e.action.type === 'pause' || e.action.type === 'resume') {
          const paused = e.action.type === 'pause';
          this.#update(e.action.id, (r) => (r.status = paused ? 'paused' : 'running'));
        }
        return null;
      case 'sample':
        if (this.#last) this.#levelMs[this.#last.level] += e.t - this.#last.t;
        if (levelRank(e.level) > levelRank(this.#highest)) this.#highest = e.level;
        this.#last = e;
        for (const v of e.running) {
          const r = this.#tasks.get(v.id);
          if (r && r.rss_bytes !== v.rssBytes) {
            r.rss_bytes = v.rssBytes;
            if (v.rssBytes !== null) r.peak_rss_bytes = Math.max(r.peak_rss_bytes ?? 0, v.rssBytes);
            this.#changed.add(r);
          }
          // A remote task runs somewhere only once a worker said it took it; back in a queue (handed
          // back, its worker lost) it runs nowhere again. A local task never names one.
          if (r && r.worker !== v.worker) {
            if (v.worker === undefined) delete r.worker;
            else r.worker = v.worker;
            this.#changed.add(r);
          }
        }
        return null;
      case 'run-end':
        if (this.#info) {
          this.#info.elapsed_ms = e.report.makespan_ms;
          this.#info.status = e.report.interrupted ? 'interrupted' : e.report.ok ? 'succeeded' : 'failed';
        }
        return null;
      default:
        return null;
    }
  }

  #update(id: string, f: (r: TaskRow) => void): void {
    const r = this.#tasks.get(id);
    if (!r) return;
    f(r);
    this.#changed.add(r);
  }

  /** Appends a point to the bounded series. */
  push(point: SeriesPoint): void {
    if (this.#series.length < STATE_POINTS) this.#series.push(point);
    else {
      this.#series[this.#head] = point;
      this.#head = (this.#head + 1) % STATE_POINTS;
    }
  }

  series(): SeriesPoint[] {
    return this.#head === 0 ? this.#series.slice() : [...this.#series.slice(this.#head), ...this.#series.slice(0, this.#head)];
  }

  /** Rows changed since the previous call. */
  takeChanged(): TaskRow[] {
    const rows = [...this.#changed];
    this.#changed.clear();
    return rows;
  }

  /** Distributed mode: attempts of this run that ended on each worker. */
  workerTasks(): ReadonlyMap<string, number> {
    return this.#workerTasks;
  }

  tasks(): TaskRow[] {
    return [...this.#tasks.values()];
  }

  agents(): AgentRow[] {
    const running = new Map<string, { n: number; rss: number }>();
    for (const v of this.#last?.running ?? []) {
      const a = running.get(v.agent) ?? { n: 0, rss: 0 };
      a.n++;
      a.rss += v.rssBytes ?? 0;
      running.set(v.agent, a);
    }
    return Object.values(this.#config.agents).map((p) => {
      const t = this.#totals.get(p.name)!;
      const r = running.get(p.name);
      return {
        name: p.name,
        kind: p.kind,
        running: r?.n ?? 0,
        done: t.done,
        failed: t.failed,
        rss_bytes: r?.rss ?? 0,
        peak_rss_bytes: t.peak,
        declared_bytes: p.memoryBytes,
        mean_duration_ms: t.durations === 0 ? null : Math.round(t.durationSum / t.durations),
        tokens: t.tokens,
        cost_usd: t.cost,
      };
    });
  }

  /** Memory as last sampled; null before the first sample (nothing measured yet). */
  memory(): DashboardState['memory'] {
    const s = this.#last;
    if (!s) return null;
    const th = this.#config.governor.thresholds;
    return {
      used_bytes: s.usedBytes,
      limit_bytes: s.limitBytes,
      available_bytes: s.availableBytes,
      agents_rss_bytes: s.totalRssBytes,
      reserved_bytes: s.reservedBytes,
      budget_bytes: this.#config.budgetBytes,
      level: s.level,
      thresholds: { moderate: th.moderate, high: th.high, critical: th.critical, emergency: th.emergency, kill: th.ceiling },
    };
  }

  pressure(): DashboardState['pressure'] {
    if (!this.#last) return null;
    const time_ms = { ...this.#levelMs };
    for (const k of Object.keys(time_ms) as PressureLevel[]) time_ms[k] = Math.round(time_ms[k]);
    return { level: this.#last.level, highest: this.#highest, time_ms };
  }

  queue(): DashboardState['queue'] {
    // From the rows, which every event updates (a sample may be up to an interval old).
    const s = this.#last;
    let done = 0;
    let running = 0;
    let paused = 0;
    let queued = 0;
    for (const r of this.#tasks.values()) {
      if (r.status === 'running') running++;
      else if (r.status === 'paused') paused++;
      else if (r.status === 'queued' || r.status === 'retrying') queued++;
      else if (r.status !== 'pending') done++;
    }
    return {
      queued,
      running: running + paused,
      paused,
      done,
      total: this.#tasks.size,
      blocked: s?.blocked ? { id: s.blocked.id, reason: s.blocked.reason, waited_ms: Math.round(s.blocked.waitedMs) } : null,
    };
  }
}
