import { createRequire } from 'node:module';
import { tokensOf } from '../util/spend.js';
import type { Counter, Histogram, Registry } from 'prom-client';
import { LEVELS, levelRank } from '../governor/levels.js';
import type { RunEvent } from '../workflow/events.js';
import type { SelfHealth } from './self-monitor.js';
import type { WorkerRow } from './state.js';

type SampleEvent = Extract<RunEvent, { type: 'sample' }>;

/** Task durations from 50 ms (a cached task) to 30 min (a long agent session). */
const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

let prom: typeof import('prom-client') | undefined;
/**
 * prom-client, loaded by the first GuildMetrics: a run without a dashboard, and a library import,
 * never load it (1 MB after the rest of a run, 10 MB alone; `bench/startup.ts`). It is CommonJS,
 * so `require` loads it synchronously and the constructor stays synchronous.
 */
const promClient = (): typeof import('prom-client') => (prom ??= createRequire(import.meta.url)('prom-client') as typeof import('prom-client'));

/**
 * Guild's Prometheus metrics, in a registry of their own (a library must not fill the global one).
 *
 * Cost model: events that happen once per task (start, end) touch a counter or a histogram; the
 * sampling loop only stores its latest event, and every gauge is computed from it in `collect()`,
 * i.e. when something scrapes. Cumulative counts the run already keeps (admissions denied, cache
 * lookups) are added as deltas at scrape time too. Nobody scraping costs one pointer store.
 */
export class GuildMetrics {
  readonly registry: Registry;
  #last: SampleEvent | null = null;
  #budget = 0;
  readonly #agents: readonly string[];
  readonly #tasksTotal: Counter<'agent' | 'status'>;
  readonly #duration: Histogram<'agent'>;
  readonly #kills: Counter<'reason'>;
  readonly #tokens: Counter<'agent' | 'kind'>;
  readonly #cost: Counter<'agent'>;
  readonly #savedTokens: Counter<'agent'>;
  readonly #savedCost: Counter<'agent'>;
  #workers: (() => readonly WorkerRow[]) | null = null;

  /**
   * @param options.agents the workflow's agent types (their gauges read 0 while none runs)
   * @param options.processMetrics Guild's own RSS, heap, event-loop delay and GC pauses. @default true
   */
  constructor(options: { agents: readonly string[]; processMetrics?: boolean }) {
    const { Counter, Gauge, Histogram, Registry } = promClient();
    this.registry = new Registry();
    this.#agents = options.agents;
    const registers = [this.registry];
    const metrics = this;
    const last = (): SampleEvent | null => metrics.#last;

    new Gauge({
      name: 'guild_tasks_running',
      help: 'Tasks running now, by agent type (paused ones included).',
      labelNames: ['agent'],
      registers,
      collect() {
        const counts = new Map<string, number>(metrics.#agents.map((a) => [a, 0]));
        for (const r of last()?.running ?? []) counts.set(r.agent, (counts.get(r.agent) ?? 0) + 1);
        for (const [agent, n] of counts) this.labels(agent).set(n);
      },
    });
    new Gauge({
      name: 'guild_agent_rss_bytes',
      help: "Measured RSS of running agents' whole process trees, summed by agent type.",
      labelNames: ['agent'],
      registers,
      collect() {
        const sums = new Map<string, number>(metrics.#agents.map((a) => [a, 0]));
        for (const r of last()?.running ?? []) sums.set(r.agent, (sums.get(r.agent) ?? 0) + (r.rssBytes ?? 0));
        for (const [agent, n] of sums) this.labels(agent).set(n);
      },
    });
    const fromSample = (name: string, help: string, read: (s: SampleEvent) => number): void => sampleGauge(registers, last, name, help, read);
    fromSample('guild_tasks_queued', 'Tasks whose dependencies are done, waiting to be admitted.', (s) => s.queued);
    fromSample('guild_agents_paused', 'Agents stopped (SIGSTOP) by the memory governor.', (s) => s.paused);
    fromSample('guild_memory_used_bytes', "The machine's (cgroup's) used memory.", (s) => s.usedBytes);
    fromSample('guild_memory_limit_bytes', 'The effective memory limit (cgroup limit, else total memory).', (s) => s.limitBytes);
    fromSample('guild_memory_agents_bytes', "Σ measured tree RSS of the running agents.", (s) => s.totalRssBytes);
    fromSample('guild_memory_reserved_bytes', 'What admission counts as taken: Σ max(expected, measured) over running tasks.', (s) => s.reservedBytes);
    fromSample('guild_memory_pressure_level', 'Memory pressure: 0 optimal, 1 moderate, 2 high, 3 critical, 4 emergency.', (s) => levelRank(s.level));
    new Gauge({
      name: 'guild_memory_budget_bytes',
      help: 'Memory the run may give to agents.',
      registers,
      collect() {
        this.set(metrics.#budget);
      },
    });

    this.#tasksTotal = new Counter({ name: 'guild_tasks_total', help: 'Tasks finished, by agent type and final status.', labelNames: ['agent', 'status'], registers });
    this.#duration = new Histogram({ name: 'guild_task_duration_seconds', help: 'Run time of task attempts that ran a process or function (cached tasks excluded).', labelNames: ['agent'], buckets: DURATION_BUCKETS, registers });
    this.#kills = new Counter({ name: 'guild_agent_kills_total', help: 'Attempts Guild stopped, by reason: pressure (the governor), limit (hard limit), timeout.', labelNames: ['reason'], registers });
    this.#tokens = new Counter({ name: 'guild_task_tokens_total', help: 'Tokens tasks reported spending (GUILD_METRICS, usage:), by agent type and kind: in, out, cache_read.', labelNames: ['agent', 'kind'], registers });
    this.#cost = new Counter({ name: 'guild_task_cost_usd_total', help: 'US dollars tasks reported spending, by agent type.', labelNames: ['agent'], registers });
    this.#savedTokens = new Counter({ name: 'guild_cache_saved_tokens_total', help: 'Tokens (in + out) the stored runs of cache hits had spent, not spent again, by agent type.', labelNames: ['agent'], registers });
    this.#savedCost = new Counter({ name: 'guild_cache_saved_cost_usd_total', help: 'US dollars the stored runs of cache hits had spent, not spent again, by agent type.', labelNames: ['agent'], registers });

    const denied = { memory: 0, cpu: 0 };
    new Counter({
      name: 'guild_admissions_denied_total',
      help: 'Times the head of the queue could not start, by what was short (memory or cpu).',
      labelNames: ['reason'],
      registers,
      collect() {
        const s = last();
        for (const reason of ['memory', 'cpu'] as const) {
          const now = s?.denied[reason] ?? denied[reason];
          this.labels(reason).inc(now - denied[reason]);
          denied[reason] = now;
        }
      },
    });
    const seen = new Map<string, number>();
    new Counter({
      name: 'guild_cache_requests_total',
      help: 'Cache lookups that reached a tier, by tier, namespace and result (hit or miss).',
      labelNames: ['tier', 'namespace', 'result'],
      registers,
      collect() {
        for (const r of last()?.cacheRequests ?? []) {
          for (const result of ['hit', 'miss'] as const) {
            const key = `${r.tier}\0${r.namespace}\0${result}`;
            const n = r[result];
            this.labels(r.tier, r.namespace, result).inc(n - (seen.get(key) ?? 0));
            seen.set(key, n);
          }
        }
      },
    });
    if (options.processMetrics !== false) this.#processMetrics(registers);
  }

  /**
   * Guild's own health: RSS and heap read at scrape; event-loop delay and GC pauses from the run's
   * own monitor (each sample carries them), so nothing is measured twice. Written here rather than
   * taken from prom-client's `collectDefaultMetrics`, whose gauges named `*_total` fail `promtool
   * check metrics` and which reads a dozen /proc files per scrape Guild does not need.
   */
  #processMetrics(registers: Registry[]): void {
    const { Counter, Gauge } = promClient();
    const last = (): SampleEvent | null => this.#last;
    new Gauge({
      name: 'guild_rss_bytes',
      help: "Resident set size of Guild's own process.",
      registers,
      collect() {
        this.set(process.memoryUsage.rss());
      },
    });
    new Gauge({
      name: 'guild_heap_used_bytes',
      help: "V8 heap in use in Guild's own process.",
      registers,
      collect() {
        this.set(process.memoryUsage().heapUsed);
      },
    });
    const health = (name: string, help: string, read: (h: SelfHealth) => number): void => sampleGauge(registers, last, name, help, (s) => read(s.guildHealth));
    health('guild_event_loop_delay_p50_seconds', "Median delay of Guild's event loop over the run (10 ms resolution).", (h) => h.event_loop_delay_p50_ms / 1000);
    health('guild_event_loop_delay_p99_seconds', "99th percentile delay of Guild's event loop over the run.", (h) => h.event_loop_delay_p99_ms / 1000);
    health('guild_event_loop_delay_max_seconds', "Longest delay of Guild's event loop over the run.", (h) => h.event_loop_delay_max_ms / 1000);
    health('guild_gc_pause_max_seconds', "Longest garbage-collection pause of Guild's own process over the run.", (h) => h.gc_pause_max_ms / 1000);
    const seen = { count: 0, ms: 0 };
    new Counter({
      name: 'guild_gc_pauses_total',
      help: "Garbage-collection pauses of Guild's own process.",
      registers,
      collect() {
        const h = last()?.guildHealth;
        if (h) this.inc(h.gc_count - seen.count);
        seen.count = h?.gc_count ?? seen.count;
      },
    });
    new Counter({
      name: 'guild_gc_pause_seconds_total',
      help: "Time Guild's own process spent in garbage-collection pauses.",
      registers,
      collect() {
        const h = last()?.guildHealth;
        if (h) this.inc((h.gc_pause_total_ms - seen.ms) / 1000);
        seen.ms = h?.gc_pause_total_ms ?? seen.ms;
      },
    });
  }

  /**
   * Distributed mode: per-worker gauges (label `worker`), read from `read` at scrape time, so a
   * run nobody scrapes reads no heartbeat for them. Registered on the first call only: a local
   * run's exposition has no `guild_worker_*` families. A worker whose heartbeat expired leaves
   * every family at the next scrape.
   */
  watchWorkers(read: () => readonly WorkerRow[]): void {
    const first = this.#workers === null;
    this.#workers = read;
    if (!first) return;
    const { Counter, Gauge } = promClient();
    const registers = [this.registry];
    const metrics = this;
    // Each family reads the rows itself: a few workers' rows cost less than any cross-family cache.
    const rows = (): readonly WorkerRow[] => metrics.#workers?.() ?? [];
    const worker = (name: string, help: string, value: (w: WorkerRow) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['worker'],
        registers,
        collect() {
          this.reset();
          for (const w of rows()) this.labels(w.name).set(value(w));
        },
      });
    };
    worker('guild_worker_budget_bytes', 'Memory a live distributed worker may give to jobs at once.', (w) => w.budget_bytes);
    worker('guild_worker_used_bytes', "What a worker's admission counts as taken now (budget − free).", (w) => w.used_bytes);
    worker('guild_worker_peak_bytes', "Highest Σ of a worker's jobs' measured memory at one instant, since it started.", (w) => w.peak_bytes);
    worker('guild_worker_running', 'Jobs a worker runs now (of any run).', (w) => w.running);
    worker('guild_worker_pressure_level', "A worker's memory pressure: 0 optimal, 1 moderate, 2 high, 3 critical, 4 emergency.", (w) => pressureRank(w.pressure));
    worker('guild_worker_last_heartbeat_seconds', "Unix time of a worker's last heartbeat.", (w) => w.last_heartbeat / 1000);
    worker('guild_worker_heartbeat_age_seconds', "Age of a worker's last heartbeat when scraped (it expires after three missed beats).", (w) => w.heartbeat_age_ms / 1000);
    const seen = new Map<string, number>();
    new Counter({
      name: 'guild_worker_tasks_total',
      help: "Attempts of this run that ended on a worker.",
      labelNames: ['worker'],
      registers,
      collect() {
        for (const w of rows()) {
          const n = w.tasks ?? 0;
          this.labels(w.name).inc(Math.max(0, n - (seen.get(w.name) ?? 0)));
          seen.set(w.name, Math.max(n, seen.get(w.name) ?? 0));
        }
      },
    });
  }

  /** What one attempt added to a task's reported spending. A counter never goes down: a negative figure is left out. */
  #spent(agent: string, m: Readonly<Record<string, number>>): void {
    for (const [key, kind] of [['tokens_in', 'in'], ['tokens_out', 'out'], ['tokens_cache_read', 'cache_read']] as const) {
      if ((m[key] ?? 0) > 0) this.#tokens.labels(agent, kind).inc(m[key]!);
    }
    if ((m.cost_usd ?? 0) > 0) this.#cost.labels(agent).inc(m.cost_usd!);
  }

  /** Feeds one run event; cheap enough for every event. */
  onEvent(e: RunEvent): void {
    switch (e.type) {
      case 'sample':
        this.#last = e;
        break;
      case 'run-start':
        this.#budget = e.budgetBytes;
        break;
      case 'task-end':
        if (e.metrics !== undefined) this.#spent(e.agent, e.metrics);
        if (e.savedMetrics !== undefined) {
          const tokens = tokensOf(e.savedMetrics);
          if (tokens > 0) this.#savedTokens.labels(e.agent).inc(tokens);
          if ((e.savedMetrics.cost_usd ?? 0) > 0) this.#savedCost.labels(e.agent).inc(e.savedMetrics.cost_usd!);
        }
        if (e.killedBy === 'pressure' || e.killedBy === 'limit' || e.killedBy === 'timeout') this.#kills.labels(e.killedBy).inc();
        if (e.status === 'retrying' || e.status === 'requeued') {
          this.#duration.labels(e.agent).observe(e.durationMs / 1000);
          break;
        }
        this.#tasksTotal.labels(e.agent, e.status).inc();
        if (e.status !== 'cached') this.#duration.labels(e.agent).observe(e.durationMs / 1000);
        break;
      case 'task-settled':
        this.#tasksTotal.labels(e.agent, e.status).inc();
        break;
      default:
        break;
    }
  }

  /** The Prometheus text exposition of every metric. */
  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** A worker's pressure as a number (its heartbeat sends the level's name); an unknown name reads -1. */
function pressureRank(level: string): number {
  return (LEVELS as readonly string[]).indexOf(level);
}

/** A gauge set from the latest sample at scrape time; absent until the first sample. */
function sampleGauge(registers: Registry[], last: () => SampleEvent | null, name: string, help: string, read: (s: SampleEvent) => number): void {
  const { Gauge } = promClient();
  new Gauge({
    name,
    help,
    registers,
    collect() {
      const s = last();
      if (s) this.set(read(s));
    },
  });
}
