import { DEFAULTS } from '../config/defaults.js';
import type { RunReport } from '../workflow/report.js';
import { tokensOf, WELL_KNOWN_METRICS } from '../util/spend.js';
import type { MetricKind, MetricSpec } from './types.js';


// Every figure a run report holds, as `guild bench` metrics, and what each one is: its kind
// (from its name's suffix, so that a metric a newer Guild adds needs no table), which way is
// better, and its threshold.

/** The figures of one run, by metric name. Rates are percentages (3 for 3 %). */
export function metricsOf(report: RunReport): Record<string, number> {
  const m: Record<string, number> = Object.create(null) as Record<string, number>;
  const put = (name: string, v: number | null | undefined): void => {
    if (v !== null && v !== undefined && Number.isFinite(v)) m[name] = v;
  };
  put('makespan_ms', report.makespan_ms);
  if (report.lower_bound_ms > 0) put('makespan_ratio', report.makespan_ms / report.lower_bound_ms);
  put('peak_rss_bytes', report.peak_rss_bytes);
  put('guild_rss_bytes', report.guild_peak_rss_bytes);
  const n = report.tasks.length;
  if (n > 0) {
    put('error_rate', (100 * report.tasks.filter((t) => t.status === 'failed').length) / n);
    const done = report.tasks.filter((t) => t.status === 'succeeded' || t.status === 'cached').length;
    if (report.makespan_ms > 0) put('throughput_tasks_per_s', done / (report.makespan_ms / 1000));
  }
  if (report.cache.hit_rate !== null) put('cache_hit_rate', 100 * report.cache.hit_rate);
  // What tasks reported spending: the well-known ones by their names, tokens in + out as `tokens`,
  // any other under `metric.` (so that a task's own `makespan_ms` cannot pass for Guild's).
  const spent = report.metrics ?? {};
  for (const [k, v] of Object.entries(spent)) put(WELL_KNOWN_METRICS.has(k) ? k : `metric.${k}`, v);
  if (spent.tokens_in !== undefined || spent.tokens_out !== undefined) put('tokens', tokensOf(spent));
  for (const t of report.tasks) {
    if (t.started_ms === null) continue;
    put(`task.${t.id}.duration_ms`, t.duration_ms);
    put(`task.${t.id}.peak_rss_bytes`, t.peak_rss_bytes);
    const m = t.metrics ?? {};
    if (m.tokens_in !== undefined || m.tokens_out !== undefined) put(`task.${t.id}.tokens`, tokensOf(m));
    put(`task.${t.id}.cost_usd`, m.cost_usd);
  }
  for (const l of report.mcp?.latency ?? []) {
    const key = `mcp.${l.server}.${l.name ?? l.method}`;
    put(`${key}.p50_ms`, l.p50Ms);
    put(`${key}.p95_ms`, l.p95Ms);
  }
  return m;
}

/**
 * A metric's kind from its name: `_ms` time, `_bytes` memory, `_per_s` throughput, `_rate` or
 * `_pct` rate, `_ratio` or `_speedup` ratio, else a count.
 */
export function metricKind(name: string): MetricKind {
  if (name.endsWith('_ms')) return 'time';
  if (name.endsWith('_bytes')) return 'memory';
  if (name.endsWith('_per_s')) return 'throughput';
  if (name.endsWith('_rate') || name.endsWith('_pct')) return 'rate';
  if (name.endsWith('_ratio') || name.endsWith('_speedup')) return 'ratio';
  return 'count';
}

/** Which way is better: more for throughputs, hit rates and speed-ups (a figure over its peer's); less for everything else. */
function better(name: string, kind: MetricKind): 'lower' | 'higher' {
  return kind === 'throughput' || name.endsWith('hit_rate') || name.endsWith('_speedup') ? 'higher' : 'lower';
}

/** `*` matches any run of characters; everything else literally. */
export function matches(pattern: string, name: string): boolean {
  if (!pattern.includes('*')) return pattern === name;
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return re.test(name);
}

/**
 * The spec of a metric: its threshold is the first of — the exact name, the longest matching
 * pattern, the kind — in `thresholds`, else the kind's default (DEFAULTS.bench.thresholds).
 */
export function metricSpec(name: string, thresholds: Readonly<Record<string, number>> = {}): MetricSpec {
  const kind = metricKind(name);
  let threshold: number | undefined = thresholds[name];
  if (threshold === undefined) {
    const patterns = Object.keys(thresholds)
      .filter((p) => p.includes('*') && matches(p, name))
      .sort((a, b) => b.length - a.length);
    threshold = patterns.length > 0 ? thresholds[patterns[0]!] : thresholds[kind];
  }
  return { name, kind, better: better(name, kind), threshold: threshold ?? DEFAULTS.bench.thresholds[kind] };
}

/** The metrics among `names` that `patterns` select, in the order of `names`. */
export function selectMetrics(patterns: readonly string[], names: Iterable<string>): string[] {
  return [...names].filter((n) => patterns.some((p) => matches(p, n)));
}
