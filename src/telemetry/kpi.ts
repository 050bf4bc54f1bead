/**
 * KPI evaluation: a pure function from measured figures (see `KpiInput`, which `KpiRecorder`
 * aggregates from a run's events) to scores, an overall grade and recommendations. Nothing here
 * reads a clock or a probe, so the dashboard, the report and the tests all get the same answer
 * from the same figures.
 */
import { formatSize } from '../util/units.js';
import { DEFAULTS } from '../config/defaults.js';
import { MIN_SAMPLES } from '../store/profiles.js';
import type { ComponentKind, KpiMinimum, KpiReport, KpiScore, Score } from './state.js';

/** The lines a value is graded against (as `KpiScore.thresholds` carries them). */
export type KpiThresholds = KpiScore['thresholds'];

/**
 * The seed's thresholds. A value better than `good` is excellent, better than `acceptable` good,
 * better than `poor` poor, else critical ("better" is strict: a value on a line takes the lower grade).
 */
export const KPI_THRESHOLDS: Readonly<Record<'responseTimeMs' | 'memoryEfficiency' | 'throughput' | 'cpu' | 'errorRate' | 'cacheHitRate' | 'tokenEfficiency', Readonly<KpiThresholds>>> = Object.freeze({
  /** Unscaled; a target T scales all three by T / 300, so the target becomes the `good` line. */
  responseTimeMs: Object.freeze({ good: 300, acceptable: 800, poor: 2000, higher_is_better: false }),
  /*
   * Memory efficiency is the lowest free share of the effective memory limit over the window
   * (1 − the highest used fraction), higher is better. The seed's 0.02 / 0.01 / 0.005 "free
   * fraction" thresholds were taken on a machine at 99 % use: against them a run that came within
   * a hair of the OOM killer would be excellent. Guild grades against its own lines instead:
   * 15 % free is the seed's target state (75–85 % used), 5 % free is Guild's 95 % emergency line
   * (where it starts killing agents), 2 % free its 98 % ceiling.
   */
  memoryEfficiency: Object.freeze({ good: 0.15, acceptable: 0.05, poor: 0.02, higher_is_better: true }),
  /** Parallel speed-up (Σ task durations / makespan); scaled down when the dependency chain caps it. */
  throughput: Object.freeze({ good: 3.5, acceptable: 2.0, poor: 1.0, higher_is_better: true }),
  /** Guild's agents' share of the CPU capacity (cores, or the cgroup quota) over the run. */
  cpu: Object.freeze({ good: 0.6, acceptable: 0.8, poor: 0.95, higher_is_better: false }),
  /** Failed / finished tasks. */
  errorRate: Object.freeze({ good: 0.01, acceptable: 0.05, poor: 0.15, higher_is_better: false }),
  /** Hits / lookups; the seed's target is "> 70 %". */
  cacheHitRate: Object.freeze({ good: 0.9, acceptable: 0.7, poor: 0.4, higher_is_better: true }),
  /**
   * Tokens the cache saved / tokens the run would have spent without it (spent + saved). The
   * seed's target, a 32.3 % reduction maintained, is the line of `good`; half saved is excellent.
   */
  tokenEfficiency: Object.freeze({ good: 0.5, acceptable: 0.323, poor: 0.1, higher_is_better: true }),
});

/** What a minimum counts, per entry of `DEFAULTS.kpiMinimums`. */
type MinimumKey = keyof typeof DEFAULTS.kpiMinimums;
const COUNTS: Readonly<Record<MinimumKey, string>> = {
  response_time: 'tasks',
  memory_efficiency: 'samples',
  throughput: 'tasks',
  cpu: 'samples',
  error_rate: 'finished tasks',
  cache_hit_rate: 'lookups',
  token_efficiency: 'tasks reporting tokens',
  memory_declaration: 'measured tasks',
};

/**
 * The least evidence each KPI is graded on (numbers in `DEFAULTS.kpiMinimums`, reasons there).
 * Below either figure the value is still shown, the score is null with the note "not scored: too
 * little data (4 of 10 samples, 0.3 of 5 s)", and nothing is recommended from it. What one sample
 * is: response time, a task of that subject (agent type, kind, a queue wait, a cache serve);
 * memory efficiency and CPU, a sampling instant, and `seconds` the run time those cover; throughput,
 * a task that ran, and `seconds` the makespan; error rate, a finished task; cache hit rate, a
 * lookup; token efficiency, a task that reported tokens; `memory_declaration` (advice, not a KPI),
 * a task whose peak was measured. A plain frozen object: `/api/state` serves it in `kpis.minimums`.
 */
export const KPI_MINIMUMS: Readonly<Record<MinimumKey, Readonly<KpiMinimum>>> = Object.freeze(
  Object.fromEntries((Object.keys(COUNTS) as MinimumKey[]).map((k) => [k, Object.freeze({ ...DEFAULTS.kpiMinimums[k], of: COUNTS[k] })])) as Record<MinimumKey, KpiMinimum>,
);

/**
 * From this busy share the CPU counts as saturated: the machine's (time-weighted over the span),
 * or Guild's agents and Guild itself together against their capacity (which is what a cgroup quota
 * saturates, where the host's figure cannot tell). Only then is lowering max_parallel advised:
 * below it the cores had room, and fewer tasks at once would only make the run longer.
 */
export const KPI_CPU_SATURATED = 0.9;

/** Points per grade; the overall score is their mean. */
export const KPI_POINTS: Readonly<Record<Score, number>> = Object.freeze({ excellent: 100, good: 75, poor: 40, critical: 0 });

/** Below this bound (serial sum / longest chain) the workflow cannot run anything in parallel. */
const NO_PARALLELISM_BOUND = 1.05;
/** A declared size is "too low" above this multiple of it, "too high" below the other. */
const UNDER_DECLARED = 1.2;
const OVER_DECLARED = 0.5;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/** One latency series (a moving window of ms values). */
export interface LatencyInput {
  /** Observations in the window. */
  samples: number;
  /** Mean of the window; null when empty. */
  meanMs: number | null;
  /** 90th percentile of the window; null when empty. */
  p90Ms: number | null;
}

/** One agent type: its task durations, its memory, what it declared. */
export interface AgentTypeInput extends LatencyInput {
  agent: string;
  kind: ComponentKind | null;
  /** Its own target (`response_target`); null: the kind's target applies, if it has a kind. */
  responseTargetMs: number | null;
  /** Declared expected peak (`memory:`); 0 when unknown. */
  declaredBytes: number;
  /** Highest peak RSS of any of its tasks; null when none was measured. */
  peakRssBytes: number | null;
  /** Tasks whose peak was measured. */
  measuredTasks: number;
}

/** Everything `evaluateKpis` grades. Every figure was measured or counted. */
export interface KpiInput {
  /** Per agent type; durations of succeeded tasks. */
  agents: AgentTypeInput[];
  /** Per component kind: the durations of all agent types of that kind, pooled. */
  kinds: Array<LatencyInput & { kind: ComponentKind }>;
  /** Built-in 'coordination': how long ready tasks waited to start. */
  queueWait: LatencyInput;
  /** Built-in 'file-ops': how long serving a cached result took. */
  cacheServe: LatencyInput;
  throughput: {
    /** Σ durations of the tasks that ran (not cached ones). */
    serialMs: number;
    /** Wall time of the run so far. */
    makespanMs: number;
    /** The workflow's longest dependency chain (ms); 0 when unknown. */
    chainMs: number;
    /** How many tasks ran. */
    tasks: number;
  };
  errors: { finished: number; failed: number };
  cache: { hits: number; misses: number; cold: boolean };
  /**
   * Tokens (in + out) tasks reported spending, and those cache hits did not spend again; `tasks`:
   * the task ends that reported any. Absent: not counted.
   */
  tokens?: { spent: number; saved: number; tasks: number };
  /** The lowest free share of the effective memory limit over the window; null without samples. `seconds`: run time the samples cover. */
  memory: { samples: number; seconds: number; lowestFreeShare: number | null };
  /** CPU over a span of the run (the whole run in a final report). */
  cpu: {
    /** Sampling instants in the span with a reading of the machine's CPU. */
    samples: number;
    /** Run time the span covers. */
    seconds: number;
    /** Guild's agents' (their process trees') CPU time / (seconds × cores): the graded value; null without a reading. */
    mean: number | null;
    /** The machine's busy share over the span (time-weighted, /proc/stat); null without samples. */
    machine: number | null;
    /** Guild's own CPU time / (seconds × cores); null when unknown. */
    guild: number | null;
    /** The capacity the shares are of (the cgroup quota if lower than the online CPUs); null when unknown. */
    cores: number | null;
  };
}

type Unit = KpiScore['unit'];
/** How a recommendation ranks: critical first, then poor, then advice. */
type Urgency = 0 | 1 | 2;
interface Recommendation {
  urgency: Urgency;
  text: string;
}

/** Grades measured figures: one score per KPI (and per subject for response time), an overall grade, recommendations. */
export function evaluateKpis(input: KpiInput): KpiReport {
  const scores: KpiScore[] = [];
  const recs: Recommendation[] = [];

  responseTimes(input, scores, recs);
  memoryEfficiency(input.memory, scores, recs);
  throughput(input.throughput, scores, recs);
  cpu(input.cpu, scores, recs);
  errorRate(input.errors, scores, recs);
  cacheHitRate(input.cache, scores, recs);
  tokenEfficiency(input.tokens, input.cache.cold, scores, recs);
  memoryDeclarations(input.agents, recs);

  // Array#sort is stable: within one urgency the order above holds.
  recs.sort((a, b) => a.urgency - b.urgency);
  return { overall: overall(scores), scores, recommendations: recs.map((r) => r.text), minimums: KPI_MINIMUMS };
}

// ── grading ──────────────────────────────────────────────────────────────────────────────────────

/** Grades a value against thresholds (strict: on a line, the lower grade). */
export function gradeValue(value: number, t: KpiThresholds): Score {
  const better = t.higher_is_better ? (a: number, b: number) => a > b : (a: number, b: number) => a < b;
  if (better(value, t.good)) return 'excellent';
  if (better(value, t.acceptable)) return 'good';
  if (better(value, t.poor)) return 'poor';
  return 'critical';
}

/** The overall grade for a number of points (the mean of the KPIs' points). */
export function gradePoints(points: number): Score {
  if (points >= 90) return 'excellent';
  if (points >= 70) return 'good';
  if (points >= 40) return 'poor';
  return 'critical';
}

/**
 * Rounds to what a reader sees (0.1 ms, 0.01 %, 0.01×) and grades that, so the value shown and its
 * grade agree and float noise (1 − 0.85 = 0.15000000000000002) does not cross a line.
 */
function round(value: number, unit: Unit): number {
  const f = unit === 'ms' ? 10 : unit === 'ratio' ? 10_000 : 100;
  return Math.round(value * f) / f;
}

function scaled(t: KpiThresholds, factor: number, unit: Unit): KpiThresholds {
  // Rounded like the value: 300 × (200 / 300) is 199.99999999999997, and the target must be the line.
  return { good: round(t.good * factor, unit), acceptable: round(t.acceptable * factor, unit), poor: round(t.poor * factor, unit), higher_is_better: t.higher_is_better };
}

interface Measured {
  kpi: string;
  subject: string | null;
  label: string;
  unit: Unit;
  value: number | null;
  samples: number;
  thresholds: KpiThresholds;
  /** Why the value is not graded (the value may still be shown); null: graded. */
  skip: string | null;
  /** Said alongside a grade (the target, a scaling). */
  note?: string | null;
}

function scoreOf(m: Measured): KpiScore {
  const value = m.value === null ? null : round(m.value, m.unit);
  const graded = value !== null && m.skip === null;
  return {
    kpi: m.kpi,
    subject: m.subject,
    label: m.label,
    value,
    unit: m.unit,
    score: graded ? gradeValue(value, m.thresholds) : null,
    thresholds: { ...m.thresholds },
    samples: m.samples,
    note: graded ? (m.note ?? null) : m.skip,
  };
}

/** Mean points per KPI id first (ten agent types must not outvote the other five KPIs), then the mean of those. */
function overall(scores: readonly KpiScore[]): KpiReport['overall'] {
  const byKpi = new Map<string, number[]>();
  for (const s of scores) {
    if (s.score === null) continue;
    const list = byKpi.get(s.kpi) ?? [];
    list.push(KPI_POINTS[s.score]);
    byKpi.set(s.kpi, list);
  }
  if (byKpi.size === 0) return { score: null, points: null };
  let sum = 0;
  for (const list of byKpi.values()) sum += list.reduce((a, b) => a + b, 0) / list.length;
  const points = Math.round(sum / byKpi.size);
  return { score: gradePoints(points), points };
}

/**
 * Why a KPI with a value is not graded yet: "not scored: too little data (4 of 10 samples, 0.3 of
 * 5 s)", naming only what falls short; null when the evidence suffices. `seconds`: the run time the
 * samples cover, where the KPI's minimum asks for one.
 */
export function tooLittleData(key: MinimumKey, samples: number, seconds = 0): string | null {
  const m = KPI_MINIMUMS[key];
  const short: string[] = [];
  if (samples < m.samples) short.push(`${samples} of ${m.samples} ${m.of}`);
  // Floored: 4.96 s is short of 5 s and must not read "5 of 5 s".
  if (seconds < m.seconds) short.push(`${trim((Math.floor(Math.max(0, seconds) * 10) / 10).toFixed(1))} of ${m.seconds} s`);
  return short.length === 0 ? null : `not scored: too little data (${short.join(', ')})`;
}

const urgencyOf = (s: Score | null): Urgency => (s === 'critical' ? 0 : s === 'poor' ? 1 : 2);
const isBad = (s: Score | null): s is 'poor' | 'critical' => s === 'poor' || s === 'critical';

// ── the KPIs ─────────────────────────────────────────────────────────────────────────────────────

function responseTimes(input: KpiInput, scores: KpiScore[], recs: Recommendation[]): void {
  const base = KPI_THRESHOLDS.responseTimeMs;
  const kindTarget = (k: ComponentKind): number => DEFAULTS.kindTargetsMs[k];
  const forTarget = (target: number): KpiThresholds => scaled(base, target / base.good, 'ms');

  for (const a of input.agents) {
    const target = a.responseTargetMs ?? (a.kind ? kindTarget(a.kind) : null);
    // The resolved config folds the kind's target into responseTargetMs; name the kind when it is the kind's.
    const from = a.kind !== null && target === kindTarget(a.kind) ? `kind ${a.kind}` : 'response_target';
    const s = scoreOf({
      kpi: 'response_time',
      subject: a.agent,
      label: `response time · ${a.agent}`,
      unit: 'ms',
      value: a.meanMs,
      samples: a.samples,
      thresholds: target === null ? { ...base } : forTarget(target),
      skip: a.samples === 0 || a.meanMs === null ? 'no succeeded run yet' : target === null ? 'no target declared (set kind or response_target)' : tooLittleData('response_time', a.samples),
      note: target === null ? null : `target ${fmtMs(target)} (${from}); p90 ${fmtMs(a.p90Ms)}`,
    });
    scores.push(s);
    if (isBad(s.score) && s.value !== null && target !== null) {
      recs.push({
        urgency: urgencyOf(s.score),
        text:
          `${a.agent} tasks take ${fmtMs(s.value)} (mean, p90 ${fmtMs(a.p90Ms)}) against a ${fmtMs(target)} target: ` +
          `if the work simply takes that long, declare a response_target: that says so; otherwise find what the agent waits on`,
      });
    }
  }

  for (const k of input.kinds) {
    if (k.samples === 0 || k.meanMs === null) continue;
    const target = kindTarget(k.kind);
    // No recommendation per kind: its agent types already got theirs, against their own targets.
    scores.push(scoreOf({
      kpi: 'response_time',
      subject: k.kind,
      label: `response time · ${k.kind}`,
      unit: 'ms',
      value: k.meanMs,
      samples: k.samples,
      thresholds: forTarget(target),
      skip: tooLittleData('response_time', k.samples),
      note: `target ${fmtMs(target)}; p90 ${fmtMs(k.p90Ms)}`,
    }));
  }

  const builtIns = [
    {
      series: input.queueWait,
      subject: 'queue-wait',
      kind: 'coordination',
      label: 'response time · coordination (queue wait)',
      advice: (mean: string, target: string) =>
        `ready tasks wait ${mean} (mean) before they start, against a ${target} target: memory or CPU admission or max_parallel holds them back; guild status shows what blocks the queue`,
    },
    {
      series: input.cacheServe,
      subject: 'cache-serve',
      kind: 'file-ops',
      label: 'response time · file-ops (cache serve)',
      advice: (mean: string, target: string) =>
        `serving a cached result takes ${mean} (mean) against a ${target} target: its outputs are restored on every hit; keep outputs small, or cache.memory large enough to hold them`,
    },
  ] as const;
  for (const b of builtIns) {
    if (b.series.samples === 0 || b.series.meanMs === null) continue;
    const target = kindTarget(b.kind);
    const s = scoreOf({
      kpi: 'response_time',
      subject: b.subject,
      label: b.label,
      unit: 'ms',
      value: b.series.meanMs,
      samples: b.series.samples,
      thresholds: forTarget(target),
      skip: tooLittleData('response_time', b.series.samples),
      note: `target ${fmtMs(target)}; p90 ${fmtMs(b.series.p90Ms)}`,
    });
    scores.push(s);
    if (isBad(s.score) && s.value !== null) recs.push({ urgency: urgencyOf(s.score), text: b.advice(fmtMs(s.value), fmtMs(target)) });
  }
}

function memoryEfficiency(m: KpiInput['memory'], scores: KpiScore[], recs: Recommendation[]): void {
  // Past the limit (a cgroup can be over it for a moment) there is simply nothing free.
  const free = m.lowestFreeShare === null ? null : Math.min(1, Math.max(0, m.lowestFreeShare));
  const s = scoreOf({
    kpi: 'memory_efficiency',
    subject: null,
    label: 'memory efficiency',
    unit: 'ratio',
    value: free,
    samples: m.samples,
    thresholds: KPI_THRESHOLDS.memoryEfficiency,
    skip: free === null ? 'no memory sample yet' : tooLittleData('memory_efficiency', m.samples, m.seconds),
    note: 'lowest free share of the memory limit',
  });
  scores.push(s);
  if (isBad(s.score) && s.value !== null) {
    recs.push({
      urgency: urgencyOf(s.score),
      text:
        `the machine came within ${fmtPct(s.value)} of its memory limit (${fmtPct(1 - s.value)} used at the worst moment): ` +
        `lower budget: or max_parallel so runs stay clear of the 95 % line where Guild starts killing agents`,
    });
  }
}

function throughput(t: KpiInput['throughput'], scores: KpiScore[], recs: Recommendation[]): void {
  const base = KPI_THRESHOLDS.throughput;
  const ran = t.tasks > 0 && t.serialMs > 0 && t.makespanMs > 0;
  const speedUp = ran ? t.serialMs / t.makespanMs : null;
  // What the dependency graph allows at best: everything off the longest chain runs beside it.
  const bound = ran && t.chainMs > 0 ? t.serialMs / t.chainMs : null;
  let thresholds: KpiThresholds = { ...base };
  let skip: string | null = null;
  let note: string | null = null;
  if (!ran) skip = 'no task ran yet';
  else if (t.tasks === 1 || (bound !== null && bound <= NO_PARALLELISM_BOUND)) skip = 'one task / one chain: no parallelism possible';
  else {
    if (bound !== null && bound < base.good) {
      thresholds = scaled(base, bound / base.good, 'x');
      note = `the dependency chain allows at most ${fmtX(bound)}: thresholds scaled by ${(bound / base.good).toFixed(2)}`;
    }
    skip = tooLittleData('throughput', t.tasks, t.makespanMs / 1000);
  }
  const s = scoreOf({ kpi: 'throughput', subject: null, label: 'throughput (parallel speed-up)', unit: 'x', value: speedUp, samples: t.tasks, thresholds, skip, note });
  scores.push(s);
  if (isBad(s.score) && s.value !== null) {
    const of = bound !== null ? `of a possible ${fmtX(bound)}` : `against a ${fmtX(base.good)} target`;
    recs.push({
      urgency: urgencyOf(s.score),
      text:
        `speed-up ${fmtX(s.value)} ${of}: tasks that could run side by side ran one after another; ` +
        `if admission held them back (guild status shows why), lower over-declared memory: or raise budget:, else raise max_parallel`,
    });
  }
}

function cpu(c: KpiInput['cpu'], scores: KpiScore[], recs: Recommendation[]): void {
  // Measured busy shares only: an unknown figure adds nothing, and none at all judges nothing.
  const known = [c.machine, c.mean === null ? null : c.mean + (c.guild ?? 0)].filter((v): v is number => v !== null);
  const busiest = known.length === 0 ? null : Math.max(...known);
  const saturated = busiest !== null && busiest >= KPI_CPU_SATURATED;
  const cores = c.cores === null ? 'the cores' : `${trim(c.cores.toFixed(2))} core${c.cores === 1 ? '' : 's'}`;
  const machine = c.machine === null ? 'machine busy unknown' : `machine busy ${fmtPct(c.machine)}`;
  const s = scoreOf({
    kpi: 'cpu',
    subject: null,
    label: 'CPU use',
    unit: 'ratio',
    value: c.mean,
    samples: c.samples,
    thresholds: KPI_THRESHOLDS.cpu,
    skip: c.mean === null ? "no reading of the agents' CPU time" : tooLittleData('cpu', c.samples, c.seconds),
    note: `share of ${cores} used by Guild's agents; ${machine}${saturated ? ' (saturated)' : ''}`,
  });
  scores.push(s);
  if (isBad(s.score) && s.value !== null && saturated && busiest !== null) {
    // Raising a declared cpu: (to what the agent really uses) is what makes admission keep fewer on the cores.
    recs.push({
      urgency: urgencyOf(s.score),
      text:
        `CPU use averaged ${fmtPct(s.value)} of ${cores} by Guild's agents, on a saturated machine (${fmtPct(busiest)} busy): ` +
        `lower max_parallel, or declare each agent's real cpu: so admission keeps fewer tasks on the cores at once`,
    });
  }
}

function errorRate(e: KpiInput['errors'], scores: KpiScore[], recs: Recommendation[]): void {
  const s = scoreOf({
    kpi: 'error_rate',
    subject: null,
    label: 'error rate',
    unit: 'ratio',
    value: e.finished > 0 ? e.failed / e.finished : null,
    samples: e.finished,
    thresholds: KPI_THRESHOLDS.errorRate,
    skip: e.finished > 0 ? tooLittleData('error_rate', e.finished) : 'no task finished yet',
  });
  scores.push(s);
  // Any grade short of excellent: even a few failures are worth a look.
  if (s.score !== null && s.score !== 'excellent' && s.value !== null) {
    recs.push({
      urgency: urgencyOf(s.score),
      text: `${e.failed} of ${e.finished} tasks failed (${fmtPct(s.value)}): read their errors in guild status or the run report; retries: helps only when failures are flaky`,
    });
  }
}

function cacheHitRate(c: KpiInput['cache'], scores: KpiScore[], recs: Recommendation[]): void {
  const lookups = c.hits + c.misses;
  const s = scoreOf({
    kpi: 'cache_hit_rate',
    subject: null,
    label: 'cache hit rate',
    unit: 'ratio',
    value: lookups > 0 ? c.hits / lookups : null,
    samples: lookups,
    thresholds: KPI_THRESHOLDS.cacheHitRate,
    skip: lookups === 0 ? 'no cacheable task looked up' : c.cold ? 'cold cache: first run of this workflow' : tooLittleData('cache_hit_rate', lookups),
  });
  scores.push(s);
  if (isBad(s.score) && s.value !== null) {
    const line = KPI_THRESHOLDS.cacheHitRate.acceptable;
    recs.push({
      urgency: urgencyOf(s.score),
      text:
        `cache hit rate ${fmtPct(s.value)} ${s.value < line ? 'is under' : 'is not above'} ${fmtPct(line)} (${c.hits} hits in ${lookups} lookups): ` +
        `declare each cacheable task's inputs: and outputs:, and check what changes between runs (timestamps, generated files, env)`,
    });
  }
}

function tokenEfficiency(t: KpiInput['tokens'], cold: boolean, scores: KpiScore[], recs: Recommendation[]): void {
  const total = t === undefined ? 0 : t.spent + t.saved;
  const s = scoreOf({
    kpi: 'token_efficiency',
    subject: null,
    label: 'tokens saved by the cache',
    unit: 'ratio',
    value: t !== undefined && total > 0 ? t.saved / total : null,
    samples: total,
    thresholds: KPI_THRESHOLDS.tokenEfficiency,
    skip: total === 0 ? 'no task reported tokens (GUILD_METRICS, usage:)' : cold ? 'cold cache: first run of this workflow' : tooLittleData('token_efficiency', t?.tasks ?? 0),
  });
  scores.push(s);
  if (isBad(s.score) && s.value !== null) {
    recs.push({
      urgency: urgencyOf(s.score),
      text: `the cache saved ${fmtPct(s.value)} of the tokens (target ${fmtPct(KPI_THRESHOLDS.tokenEfficiency.acceptable)}): give the agent tasks that spend tokens inputs: and outputs:, so that an unchanged task is served instead of asked again`,
    });
  }
}

/**
 * From each agent type's measured peak against its declaration; not a KPI, so no score. One task
 * over its declaration is evidence enough (admission under-reserved it); "declare less" waits for
 * `KPI_MINIMUMS.memory_declaration` measured tasks.
 */
function memoryDeclarations(agents: readonly AgentTypeInput[], recs: Recommendation[]): void {
  for (const a of agents) {
    if (a.peakRssBytes === null || a.declaredBytes <= 0) continue;
    const peak = a.peakRssBytes;
    const suggestion = fmtConfigSize(suggestBytes(peak));
    if (peak > UNDER_DECLARED * a.declaredBytes) {
      recs.push({
        urgency: 1,
        text: `${a.agent} tasks peak at ${formatSize(peak)} but declare ${formatSize(a.declaredBytes)}: declare memory: ${suggestion} (Guild also learns it after ${MIN_SAMPLES} runs)`,
      });
    } else if (peak < OVER_DECLARED * a.declaredBytes && a.measuredTasks >= KPI_MINIMUMS.memory_declaration.samples) {
      recs.push({
        urgency: 2,
        text: `${a.agent} declares ${formatSize(a.declaredBytes)} but peaks at ${formatSize(peak)} over ${a.measuredTasks} tasks: a lower memory: (${suggestion}) lets more run at once`,
      });
    }
  }
}

// ── formatting for sentences ─────────────────────────────────────────────────────────────────────
// Spaced units ("610 MB", "1.4 s") read better in prose than util/units' compact table forms.

/** ~10 % above the peak, rounded up to a 50 MB step. */
function suggestBytes(peak: number): number {
  const step = 50 * MiB;
  return Math.max(step, Math.ceil((peak * 1.1) / step) * step);
}

/** As a user writes it in guild.yaml: `700MB`, `1.5GB`. */
function fmtConfigSize(bytes: number): string {
  return bytes >= GiB && bytes % (GiB / 2) === 0 ? `${bytes / GiB}GB` : `${Math.round(bytes / MiB)}MB`;
}

function fmtMs(ms: number | null): string {
  if (ms === null) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${trim((ms / 1000).toFixed(1))} s`;
  return `${trim((ms / 60_000).toFixed(1))} min`;
}

function fmtPct(ratio: number): string {
  const p = ratio * 100;
  // One decimal only where it matters: 0.4 % is not 0 %, 41.3 % is 41 %.
  return p > 0 && p < 10 && !Number.isInteger(Math.round(p * 10) / 10) ? `${(Math.round(p * 10) / 10).toFixed(1)} %` : `${Math.round(p)} %`;
}

/** As the value is shown (0.01×): `1.2×`, `2.96×`, `3×`. */
function fmtX(x: number): string {
  return `${trim(x.toFixed(2))}×`;
}

/** Drops trailing fractional zeros: `1.50` → `1.5`, `2.0` → `2`. */
const trim = (s: string): string => (s.includes('.') ? s.replace(/\.?0+$/, '') : s);
