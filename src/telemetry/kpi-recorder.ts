/**
 * Collects what the KPIs are computed from, fed by cheap calls from a run's events: every call is
 * a few array writes or counter bumps (O(1), no allocation once an agent type has been seen), so
 * recording costs nothing worth measuring whether or not anyone reads the KPIs.
 */
import type { TaskStatus } from '../workflow/report.js';
import { evaluateKpis, type AgentTypeInput, type KpiInput, type LatencyInput } from './kpi.js';
import { MovingAverage } from './moving-average.js';
import type { ComponentKind, KpiReport } from './state.js';

/** What the KPIs need to know about one agent type (from the resolved config). */
export interface KpiAgentProfile {
  kind: ComponentKind | null;
  /** Its response-time target; null: the kind's target applies, if it has a kind. */
  responseTargetMs: number | null;
  /** Declared expected peak (`memory:`). */
  declaredBytes: number;
}

/** How many of the newest values each moving average keeps (the seed's windows). */
export interface KpiWindows {
  /** Memory samples. @default 100 */
  memory: number;
  /** Task durations per agent type and per kind, queue waits, cache serve times. @default 1000 */
  responseTime: number;
  /**
   * Sampling instants the live CPU figures span at least (the agents' CPU time is read when KPIs
   * are evaluated, so the span starts at the newest reading this many samples back). @default 500
   */
  cpu: number;
  /** Task outcomes (failed or not). @default 1000 */
  errors: number;
}

/** The seed's windows. Throughput has none: its denominator is the whole makespan, so its numerator is the whole run too. */
export const KPI_WINDOWS: Readonly<KpiWindows> = Object.freeze({ memory: 100, responseTime: 1000, cpu: 500, errors: 1000 });

export interface KpiRecorderOptions {
  /** The workflow's agent types. Tasks of a type not listed are recorded with no kind, no target and no declaration. */
  agents: Readonly<Record<string, KpiAgentProfile>>;
  /** The task cache held nothing for this workflow yet (its first run): the hit rate is shown, not graded. @default false */
  cold?: boolean;
  /** Window sizes. @default KPI_WINDOWS */
  windows?: Partial<KpiWindows>;
  /**
   * The CPU capacity the agents' share is of: `ResolvedConfig.cores` (the cgroup quota if lower
   * than the online CPUs). Absent: the CPU KPI has no value. @default none
   */
  cores?: number;
}

/**
 * CPU seconds used since the run began, read at one instant: by Guild's agents (the trees it
 * supervises, running or reaped) and by Guild itself (null when unknown).
 */
export interface CpuReading {
  /** ms from the run's start. */
  t: number;
  agentsSeconds: number;
  guildSeconds: number | null;
}

/** A CPU reading with the machine's running totals at its instant: the two ends of a span are two marks. */
interface CpuMark {
  t: number;
  agents: number;
  guild: number | null;
  /** Σ machine busy share × interval (ms) of the samples so far. */
  busy: number;
  /** Σ intervals (ms) with a machine reading. */
  covered: number;
  /** Samples with a machine reading so far. */
  samples: number;
}

/** The run's start: nothing used, nothing sampled. */
const RUN_START: Readonly<CpuMark> = Object.freeze({ t: 0, agents: 0, guild: 0, busy: 0, covered: 0, samples: 0 });

/** One task that reached a final status. */
export interface FinishedTask {
  agent: string;
  /** Run time; for a cached task, the time Guild took to serve the stored result. */
  durationMs: number;
  status: TaskStatus;
  /** Peak RSS of the task's process tree; null when not measured (cached, skipped). */
  peakRssBytes: number | null;
}

interface AgentState {
  readonly profile: KpiAgentProfile;
  readonly durations: MovingAverage;
  /** The window of the agent's kind, shared by every agent type of that kind; null without a kind. */
  readonly kindDurations: MovingAverage | null;
  peak: number | null;
  measured: number;
}

const UNKNOWN_AGENT: Readonly<KpiAgentProfile> = Object.freeze({ kind: null, responseTargetMs: null, declaredBytes: 0 });

/**
 * Moving windows over a run's task durations, queue waits, memory and CPU samples, outcomes and
 * cache lookups; `input()` aggregates them for `evaluateKpis`, `report()` does both.
 */
export class KpiRecorder {
  readonly #windows: KpiWindows;
  readonly #cold: boolean;
  readonly #agents = new Map<string, AgentState>();
  readonly #kinds = new Map<ComponentKind, MovingAverage>();
  readonly #queueWait: MovingAverage;
  readonly #cacheServe: MovingAverage;
  readonly #memory: MovingAverage;
  /** When each memory sample in the window was taken (ms from the run's start). */
  readonly #memoryTimes: MovingAverage;
  readonly #cores: number | null;
  /** Marks of the CPU readings, oldest first: the newest, and those a live span may still start from. */
  #cpuMarks: CpuMark[] = [];
  /** 1 per failed task, 0 per succeeded or cached one: its mean is the error rate. */
  readonly #outcomes: MovingAverage;
  #serialMs = 0;
  #ran = 0;
  #hits = 0;
  #tokensSpent = 0;
  #tokensSaved = 0;
  /** Task ends that reported tokens. */
  #tokenTasks = 0;
  #misses = 0;
  /** Whole-run figures beside the windows: a final report grades the whole run, not its last window. */
  readonly #run = { samples: 0, maxUsed: 0, lastT: 0 };
  /** The machine's CPU so far, time-weighted: running totals a mark copies. */
  readonly #machine = { busy: 0, covered: 0, samples: 0, lastT: 0 };

  constructor(options: KpiRecorderOptions) {
    const windows = { ...KPI_WINDOWS, ...options.windows };
    for (const [key, n] of Object.entries(windows)) {
      if (!Number.isInteger(n) || n < 1) throw new RangeError(`Expected windows.${key} to be a positive integer, got ${String(n)}`);
    }
    this.#windows = windows;
    this.#cold = options.cold ?? false;
    this.#queueWait = new MovingAverage(windows.responseTime);
    this.#cacheServe = new MovingAverage(windows.responseTime);
    this.#memory = new MovingAverage(windows.memory);
    this.#memoryTimes = new MovingAverage(windows.memory);
    if (options.cores !== undefined && !(options.cores > 0)) throw new RangeError(`Expected cores to be a positive number, got ${String(options.cores)}`);
    this.#cores = options.cores ?? null;
    this.#outcomes = new MovingAverage(windows.errors);
    for (const [name, profile] of Object.entries(options.agents)) this.#agent(name, profile);
  }

  /** A task reached a final status. Cancelled and skipped tasks do not count for the error rate. */
  taskFinished(task: FinishedTask): void {
    const a = this.#agents.get(task.agent) ?? this.#agent(task.agent, UNKNOWN_AGENT);
    if (task.peakRssBytes !== null) {
      if (a.peak === null || task.peakRssBytes > a.peak) a.peak = task.peakRssBytes;
      a.measured++;
    }
    switch (task.status) {
      case 'succeeded':
        a.durations.push(task.durationMs);
        a.kindDurations?.push(task.durationMs);
        this.#outcomes.push(0);
        this.#ran++;
        this.#serialMs += task.durationMs;
        break;
      case 'failed':
        // Its time counts for throughput (it held a slot), not for response time: a crash after
        // 50 ms or a 30 s timeout says nothing about how long the agent's work takes.
        this.#outcomes.push(1);
        this.#ran++;
        this.#serialMs += task.durationMs;
        break;
      case 'cached':
        this.#cacheServe.push(task.durationMs);
        this.#outcomes.push(0);
        break;
      case 'cancelled':
        // Stopped while running: it held a slot that long. Cancelled while waiting: it never ran.
        if (task.durationMs > 0) {
          this.#ran++;
          this.#serialMs += task.durationMs;
        }
        break;
      case 'skipped':
        break;
    }
  }

  /** How long a task waited between becoming ready (its needs met) and starting. */
  taskQueuedToStart(ms: number): void {
    this.#queueWait.push(ms);
  }

  /**
   * One system sample at `t` (ms from the run's start): used fraction of the effective memory
   * limit, the machine's CPU use since the previous sample (0..1, null when unreadable).
   */
  sample(s: { t: number; usedFraction: number; cpu: number | null }): void {
    this.#memory.push(s.usedFraction);
    this.#memoryTimes.push(s.t);
    const run = this.#run;
    run.samples++;
    run.lastT = s.t;
    if (s.usedFraction > run.maxUsed) run.maxUsed = s.usedFraction;
    const m = this.#machine;
    if (s.cpu !== null && Number.isFinite(s.cpu)) {
      // Weighted by the interval it covers: under pressure the sampler runs faster.
      const dt = Math.max(0, s.t - m.lastT);
      m.busy += s.cpu * dt;
      m.covered += dt;
      m.samples++;
    }
    m.lastT = s.t;
  }

  /**
   * A reading of the CPU time used since the run began (see `CpuReading`). Taken when KPIs are
   * evaluated and at the end, not per sample: a counter needs no more, and reading trees costs.
   */
  cpuTime(r: CpuReading): void {
    const m = this.#machine;
    const mark: CpuMark = { t: r.t, agents: r.agentsSeconds, guild: r.guildSeconds, busy: m.busy, covered: m.covered, samples: m.samples };
    const marks = this.#cpuMarks;
    // No sample since the last reading: this one replaces it (so marks stay ≤ window + 1).
    if (marks.length > 0 && marks[marks.length - 1]!.samples === mark.samples) marks[marks.length - 1] = mark;
    else marks.push(mark);
    // The oldest mark is no longer a live span's start once the next one is a window old.
    while (marks.length > 2 && marks[1]!.samples <= mark.samples - this.#windows.cpu) marks.shift();
  }

  /** Tokens (in + out) one attempt reported spending, or a cache hit did not spend again. */
  tokens(spent: number, saved: number): void {
    this.#tokensSpent += spent;
    this.#tokensSaved += saved;
    if (spent + saved > 0) this.#tokenTasks++;
  }

  /** A cacheable task was looked up in the task cache. */
  cacheLookup(hit: boolean): void {
    if (hit) this.#hits++;
    else this.#misses++;
  }

  /**
   * The figures `evaluateKpis` grades.
   * @param makespanMs wall time of the run so far
   * @param chainMs the workflow's longest dependency chain in ms (0 when unknown)
   * @param cache the run's own cache totals, when the caller has them (the run report at the end):
   *   they replace what `cacheLookup` counted
   * @param scope `window`: memory over its moving window, CPU from the newest reading at least a
   *   CPU window back (live); `run`: both over the whole run (a final report). @default 'window'
   */
  input(makespanMs: number, chainMs: number, cache?: { hits: number; misses: number }, scope: 'window' | 'run' = 'window'): KpiInput {
    const agents: AgentTypeInput[] = [];
    for (const [agent, a] of this.#agents) {
      agents.push({
        agent,
        kind: a.profile.kind,
        responseTargetMs: a.profile.responseTargetMs,
        declaredBytes: a.profile.declaredBytes,
        peakRssBytes: a.peak,
        measuredTasks: a.measured,
        ...latency(a.durations),
      });
    }
    const run = this.#run;
    const whole = scope === 'run';
    const maxUsed = whole ? (run.samples === 0 ? null : run.maxUsed) : this.#memory.max();
    // The window spans the run from its start until it first drops a sample.
    const memoryFrom = whole || this.#memory.count === run.samples ? 0 : (this.#memoryTimes.min() ?? 0);
    return {
      agents,
      kinds: [...this.#kinds].map(([kind, w]) => ({ kind, ...latency(w) })),
      queueWait: latency(this.#queueWait),
      cacheServe: latency(this.#cacheServe),
      throughput: { serialMs: this.#serialMs, makespanMs, chainMs, tasks: this.#ran },
      // Outcomes are 0 or 1, so the sum is an exact count however the mean is computed.
      errors: { finished: this.#outcomes.count, failed: Math.round(this.#outcomes.sum()) },
      cache: { hits: cache?.hits ?? this.#hits, misses: cache?.misses ?? this.#misses, cold: this.#cold },
      tokens: { spent: this.#tokensSpent, saved: this.#tokensSaved, tasks: this.#tokenTasks },
      memory: { samples: whole ? run.samples : this.#memory.count, seconds: Math.max(0, run.lastT - memoryFrom) / 1000, lowestFreeShare: maxUsed === null ? null : 1 - maxUsed },
      cpu: this.#cpuInput(whole),
    };
  }

  /** CPU over the span from a start mark (the run's start, or a window back) to the newest reading. */
  #cpuInput(whole: boolean): KpiInput['cpu'] {
    const to = this.#cpuMarks.at(-1);
    const cores = this.#cores;
    if (to === undefined) {
      const m = this.#machine;
      return { samples: m.samples, seconds: this.#run.lastT / 1000, mean: null, machine: m.covered > 0 ? m.busy / m.covered : null, guild: null, cores };
    }
    let from: Readonly<CpuMark> = RUN_START;
    if (!whole) for (const k of this.#cpuMarks) if (k !== to && k.samples <= to.samples - this.#windows.cpu) from = k;
    const ms = to.t - from.t;
    const capacity = cores === null ? 0 : (ms / 1000) * cores;
    const share = (a: number | null, b: number | null): number | null => (a === null || b === null || capacity <= 0 ? null : Math.max(0, a - b) / capacity);
    const covered = to.covered - from.covered;
    return {
      samples: to.samples - from.samples,
      seconds: Math.max(0, ms) / 1000,
      mean: share(to.agents, from.agents),
      machine: covered > 0 ? (to.busy - from.busy) / covered : null,
      guild: share(to.guild, from.guild),
      cores,
    };
  }

  /** `evaluateKpis(this.input(makespanMs, chainMs, cache))`. */
  report(makespanMs: number, chainMs: number, cache?: { hits: number; misses: number }): KpiReport {
    return evaluateKpis(this.input(makespanMs, chainMs, cache));
  }

  #agent(name: string, profile: Readonly<KpiAgentProfile>): AgentState {
    let kindDurations: MovingAverage | null = null;
    if (profile.kind !== null) {
      kindDurations = this.#kinds.get(profile.kind) ?? new MovingAverage(this.#windows.responseTime);
      this.#kinds.set(profile.kind, kindDurations);
    }
    const state: AgentState = { profile: { ...profile }, durations: new MovingAverage(this.#windows.responseTime), kindDurations, peak: null, measured: 0 };
    this.#agents.set(name, state);
    return state;
  }
}

function latency(w: MovingAverage): LatencyInput {
  return { samples: w.count, meanMs: w.mean(), p90Ms: w.quantile(0.9) };
}
