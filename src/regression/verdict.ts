/**
 * The verdict on one metric: a change counts only when it is past the metric's threshold AND
 * statistically significant, so neither a small real drift nor a large noisy one fails a build
 * (issue 13, item 3). Pure functions over samples; the numbers come from ./stats.ts.
 */
import { DEFAULTS } from '../config/defaults.js';
import { GuildError } from '../errors.js';
import { mannWhitney, ratioInterval, summarize, welch } from './stats.js';
import type { Comparison, MetricKind, MetricSpec, Severity, TestName, Verdict } from './types.js';

/**
 * The default threshold of each kind (DEFAULTS.bench.thresholds): the seed's figures (memory
 * +15 %, response time +25 %, throughput −20 %) and, for rates, +1 percentage point, because a
 * baseline error rate of 0 has no relative change. Relative for every kind but `rate`.
 */
export const DEFAULT_THRESHOLDS: Readonly<Record<MetricKind, number>> = DEFAULTS.bench.thresholds;

/** How `compare` decides significance. */
export interface CompareOptions {
  /**
   * Significance level: a change past its threshold counts only when p < alpha.
   * @default 0.05
   */
  alpha?: number;
  /**
   * The two-sided test. Mann–Whitney by default: benchmark samples are skewed (a slow outlier
   * now and then), and a rank test is not pulled by one outlier the way a mean is.
   * @default 'mann-whitney'
   */
  test?: TestName;
}

const DEFAULT_ALPHA = 0.05;
const DEFAULT_TEST: TestName = 'mann-whitney';
/** The confidence level of `Comparison.ratio` (issue 13: "a 95 % confidence interval"). */
const RATIO_LEVEL = 0.95;
/**
 * Slack for comparisons against a threshold or a severity bound, so that a change of exactly the
 * threshold (110 / 100 − 1 = 0.10000000000000009) reads as within it.
 */
const SLACK = 1e-9;

/**
 * Compares one metric's current samples with its baseline samples.
 *
 * - `change`: median(current) / median(baseline) − 1, or for `rate` median(current) −
 *   median(baseline) in percentage points; null for a relative kind whose baseline median is 0.
 * - `p`: the two-sided p of `o.test`; null when a side has fewer than 2 samples.
 * - `verdict`: `ok` within the threshold (or both medians 0); `noise` past it with p ≥ alpha or
 *   p null; else `regression` the bad way (per `spec.better`) or `improved` the good way.
 * - `severity` (regressions only): |change| / threshold up to 2 minor, up to 4 major, beyond
 *   critical; a relative metric rising from a baseline median of 0 is critical.
 * - `ratio`: head / base ratio of geometric means with its 95 % interval, relative kinds only.
 *
 * @throws GuildError `INVALID_OPTION` for an empty side, a non-finite value, a negative threshold
 *   or an option out of range.
 */
export function compare(
  spec: MetricSpec,
  baseline: readonly number[],
  current: readonly number[],
  o: CompareOptions = {},
): Comparison {
  const alpha = o.alpha ?? DEFAULT_ALPHA;
  const test = o.test ?? DEFAULT_TEST;
  if (!(alpha > 0 && alpha < 1)) throw new GuildError('INVALID_OPTION', `Expected alpha in (0, 1), got ${String(alpha)}`);
  if (test !== 'welch' && test !== 'mann-whitney') {
    throw new GuildError('INVALID_OPTION', `Expected test to be 'welch' or 'mann-whitney', got ${String(test)}`);
  }
  if (!(spec.threshold >= 0) || !Number.isFinite(spec.threshold)) {
    throw new GuildError('INVALID_OPTION', `Expected the threshold of ${spec.name} to be a finite number >= 0, got ${String(spec.threshold)}`);
  }
  const base = summarize(baseline);
  const cur = summarize(current);
  const relative = spec.kind !== 'rate';
  let change: number | null;
  if (!relative) change = cur.median - base.median;
  else change = base.median === 0 ? null : cur.median / base.median - 1;
  const p = baseline.length < 2 || current.length < 2 ? null : test === 'welch' ? welch(baseline, current).p : mannWhitney(baseline, current).p;
  const { verdict, severity } = judge(spec, change, cur.median - base.median, p, alpha);
  return {
    metric: spec.name,
    kind: spec.kind,
    better: spec.better,
    baseline: base,
    current: cur,
    change,
    threshold: spec.threshold,
    test,
    p,
    ratio: relative ? ratioInterval(baseline, current, RATIO_LEVEL) : null,
    verdict,
    severity,
  };
}

/**
 * Compares every metric of `specs` that has samples on both sides, in the order of `specs`;
 * a metric missing (or empty) on either side is skipped, since there is nothing to compare.
 */
export function judgeAll(
  specs: readonly MetricSpec[],
  baselineByMetric: Readonly<Record<string, readonly number[] | undefined>>,
  currentByMetric: Readonly<Record<string, readonly number[] | undefined>>,
  o: CompareOptions = {},
): Comparison[] {
  const out: Comparison[] = [];
  for (const spec of specs) {
    const base = baselineByMetric[spec.name];
    const cur = currentByMetric[spec.name];
    if (base === undefined || cur === undefined || base.length === 0 || cur.length === 0) continue;
    out.push(compare(spec, base, cur, o));
  }
  return out;
}

/** `regression` when any comparison is a regression, else `pass` (noise and improvements pass). */
export function scenarioStatus(comparisons: readonly Comparison[]): 'pass' | 'regression' {
  return comparisons.some((c) => c.verdict === 'regression') ? 'regression' : 'pass';
}

/** `delta` is median(current) − median(baseline): the direction when `change` is null. */
function judge(
  spec: MetricSpec,
  change: number | null,
  delta: number,
  p: number | null,
  alpha: number,
): { verdict: Verdict; severity: Severity | null } {
  const within = change === null ? delta === 0 : Math.abs(change) <= spec.threshold + SLACK;
  if (within) return { verdict: 'ok', severity: null };
  if (p === null || p >= alpha) return { verdict: 'noise', severity: null };
  const worse = spec.better === 'lower' ? delta > 0 : delta < 0;
  if (!worse) return { verdict: 'improved', severity: null };
  // From 0 to anything is an unbounded relative change: past every multiple of the threshold.
  if (change === null) return { verdict: 'regression', severity: 'critical' };
  const excess = Math.abs(change) / spec.threshold;
  return { verdict: 'regression', severity: excess <= 2 + SLACK ? 'minor' : excess <= 4 + SLACK ? 'major' : 'critical' };
}
