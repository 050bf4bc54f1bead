/**
 * The statistics `guild bench` decides with: sample summaries, Welch's t-test, the Mann–Whitney U
 * test, and confidence intervals of a ratio (relative metrics) or a difference (rates). Pure
 * math over arrays of finite numbers; no I/O, no dependency.
 *
 * The Student-t and normal distributions are computed here rather than taken from a package: they
 * need only the regularized incomplete beta and gamma functions (Numerical Recipes, 3rd ed.,
 * §6.1–6.4), about a hundred lines, accurate to ~1e-12 over the ranges a benchmark meets, where
 * the small npm statistics packages either pull in a whole numeric library or compute the t CDF
 * with series that lose precision in the tails.
 */
import { GuildError } from '../errors.js';
import type { SampleSummary } from './types.js';

/** A confidence interval around a point estimate. */
export interface Interval {
  value: number;
  low: number;
  high: number;
}

/** Summary of one side: n, mean, median (middle two averaged), sample standard deviation (n − 1), min, max. */
export function summarize(xs: readonly number[]): SampleSummary {
  check(xs, 1, 'xs');
  const sorted = [...xs].sort((p, q) => p - q);
  const n = sorted.length;
  const mid = n >> 1;
  // Not util/quantile's nearest rank: with the 10-run baselines bench uses, nearest rank would
  // take the lower of the two middle runs and bias every change upwards.
  const median = n % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { n, mean: mean(xs), median, stdev: Math.sqrt(variance(xs)), min: sorted[0]!, max: sorted[n - 1]! };
}

/**
 * Welch's two-sided t-test of equal means without assuming equal variances; `t` is
 * (mean(a) − mean(b)) / SE and `df` the Welch–Satterthwaite degrees of freedom.
 *
 * When both variances are 0 the test is undefined; the samples are then taken at their word:
 * p = 1 if the means are equal (t = 0), else p = 0 (t = ±Infinity), with df = n_a + n_b − 2.
 *
 * @throws GuildError `INVALID_OPTION` when a side has fewer than 2 samples (the caller reports
 *   p = null instead) or holds a non-finite value.
 */
export function welch(a: readonly number[], b: readonly number[]): { t: number; df: number; p: number } {
  check(a, 2, 'a');
  check(b, 2, 'b');
  const w = welchParts(a, b);
  const diff = mean(a) - mean(b);
  if (w.se === 0) {
    const df = a.length + b.length - 2;
    return diff === 0 ? { t: 0, df, p: 1 } : { t: diff > 0 ? Infinity : -Infinity, df, p: 0 };
  }
  const t = diff / w.se;
  return { t, df: w.df, p: Math.min(1, 2 * tUpperTail(Math.abs(t), w.df)) };
}

/** Both sides at most this long and no ties: the exact distribution of U (at most C(40, 20) ≈ 1.4e11 arrangements, exact in a double). */
const EXACT_MAX_N = 20;

/**
 * The two-sided Mann–Whitney U (Wilcoxon rank-sum) test. `u` counts the pairs where a's value is
 * above b's, ties counting one half (R's `W` for `wilcox.test(a, b)`). Exact when both sides have
 * at most 20 values and no value repeats; otherwise the normal approximation with the tie
 * correction of the variance and a continuity correction of 0.5, as R computes it. When every
 * value is equal there is nothing to rank: p = 1.
 *
 * @throws GuildError `INVALID_OPTION` when a side is empty or holds a non-finite value.
 */
export function mannWhitney(a: readonly number[], b: readonly number[]): { u: number; p: number } {
  check(a, 1, 'a');
  check(b, 1, 'b');
  const m = a.length;
  const n = b.length;
  const { rankSumA, tieTerm } = ranks(a, b);
  const u = rankSumA - (m * (m + 1)) / 2;
  if (m <= EXACT_MAX_N && n <= EXACT_MAX_N && tieTerm === 0) return { u, p: exactU(u, m, n) };
  const N = m + n;
  const sigma = Math.sqrt(((m * n) / 12) * (N + 1 - tieTerm / (N * (N - 1))));
  if (sigma === 0) return { u, p: 1 };
  const d = u - (m * n) / 2;
  const z = (d - Math.sign(d) * 0.5) / sigma;
  return { u, p: Math.min(1, 2 * normalUpperTail(Math.abs(z))) };
}

/**
 * Confidence interval of head / base for positive samples: the Welch t-interval of the difference
 * of the mean logs, exponentiated, so `value` is the ratio of the geometric means. Logs because a
 * slowdown multiplies times, and the interval of a ratio is then symmetric in log space.
 *
 * @param level confidence level in (0, 1). @default 0.95
 * @returns null when a value is ≤ 0 or a side has fewer than 2 samples.
 */
export function ratioInterval(base: readonly number[], head: readonly number[], level = 0.95): Interval | null {
  checkLevel(level);
  check(base, 0, 'base');
  check(head, 0, 'head');
  if (base.length < 2 || head.length < 2) return null;
  if (base.some((x) => x <= 0) || head.some((x) => x <= 0)) return null;
  const d = differenceInterval(base.map(Math.log), head.map(Math.log), level)!;
  return { value: Math.exp(d.value), low: Math.exp(d.low), high: Math.exp(d.high) };
}

/**
 * Welch confidence interval of mean(head) − mean(base), for rates compared in percentage points.
 * When both sides have zero variance the interval collapses to the difference.
 *
 * @param level confidence level in (0, 1). @default 0.95
 * @returns null when a side has fewer than 2 samples.
 */
export function differenceInterval(base: readonly number[], head: readonly number[], level = 0.95): Interval | null {
  checkLevel(level);
  check(base, 0, 'base');
  check(head, 0, 'head');
  if (base.length < 2 || head.length < 2) return null;
  const value = mean(head) - mean(base);
  const { se, df } = welchParts(head, base);
  if (se === 0) return { value, low: value, high: value };
  const half = tQuantile(1 - (1 - level) / 2, df) * se;
  return { value, low: value - half, high: value + half };
}

/**
 * The p-quantile of Student's t with `df` degrees of freedom (df may be fractional, as Welch's is;
 * Infinity gives the standard normal). Bisection on the upper tail, which stays precise where
 * 1 − CDF would cancel.
 *
 * @throws GuildError `INVALID_OPTION` unless 0 < p < 1 and df > 0.
 */
export function tQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new GuildError('INVALID_OPTION', `Expected p in (0, 1), got ${String(p)}`);
  if (!(df > 0)) throw new GuildError('INVALID_OPTION', `Expected df > 0, got ${String(df)}`);
  if (p === 0.5) return 0;
  if (p < 0.5) return -tQuantile(1 - p, df);
  const tail = 1 - p;
  let lo = 0;
  let hi = 1;
  // The tail falls monotonically in t; widen until it brackets (t quantiles grow fast for df < 1).
  while (tUpperTail(hi, df) > tail) {
    lo = hi;
    hi *= 2;
    if (!Number.isFinite(hi)) return Infinity;
  }
  for (let i = 0; i < 200 && hi - lo > 1e-12 * Math.max(1, hi); i++) {
    const mid = (lo + hi) / 2;
    if (tUpperTail(mid, df) > tail) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** P(T > t) for t ≥ 0: ½·I_x(df/2, ½) with x = df / (df + t²). */
function tUpperTail(t: number, df: number): number {
  // Past 1e7 degrees of freedom t and normal differ by < 1e-7, and the beta fraction would need ~√df steps.
  if (df > 1e7) return normalUpperTail(t);
  return 0.5 * betaRegularized(df / 2, 0.5, df / (df + t * t));
}

/** P(Z > z) for z ≥ 0: ½·erfc(z/√2), with erfc(y) = Q(½, y²). */
function normalUpperTail(z: number): number {
  return 0.5 * gammaQ(0.5, (z * z) / 2);
}

/** The standard error of mean(a) − mean(b) and its Welch–Satterthwaite degrees of freedom. */
function welchParts(a: readonly number[], b: readonly number[]): { se: number; df: number } {
  const va = variance(a) / a.length;
  const vb = variance(b) / b.length;
  const s2 = va + vb;
  return { se: Math.sqrt(s2), df: (s2 * s2) / ((va * va) / (a.length - 1) + (vb * vb) / (b.length - 1)) };
}

function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Sample variance (n − 1), two-pass so that a large common offset (times in ms) does not cancel; 0 for one value. */
function variance(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) * (x - m);
  return s / (xs.length - 1);
}

/** a's rank sum in the pooled sample (ties share their average rank) and Σ(t³ − t) over tie groups. */
function ranks(a: readonly number[], b: readonly number[]): { rankSumA: number; tieTerm: number } {
  const pooled = [...a.map((v) => ({ v, inA: true })), ...b.map((v) => ({ v, inA: false }))].sort((p, q) => p.v - q.v);
  let rankSumA = 0;
  let tieTerm = 0;
  for (let i = 0; i < pooled.length; ) {
    let j = i;
    while (j + 1 < pooled.length && pooled[j + 1]!.v === pooled[i]!.v) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (pooled[k]!.inA) rankSumA += rank;
    const t = j - i + 1;
    tieTerm += t * t * t - t;
    i = j + 1;
  }
  return { rankSumA, tieTerm };
}

/**
 * Two-sided exact p of U for sizes m, n: counts of arrangements by U from the recurrence
 * c(i, j, u) = c(i − 1, j, u − j) + c(i, j − 1, u) (the largest pooled value comes from a, adding
 * j pairs, or from b, adding none). Doubled smaller tail, as R's `wilcox.test`.
 */
function exactU(u: number, m: number, n: number): number {
  // row[j] holds c(i, j, ·) for the current i; c(0, j, ·) = [1].
  let row: number[][] = Array.from({ length: n + 1 }, () => [1]);
  for (let i = 1; i <= m; i++) {
    const next: number[][] = [[1]]; // c(i, 0, ·) = [1]: all of a below nothing.
    for (let j = 1; j <= n; j++) {
      const fromA = row[j]!; // c(i − 1, j, ·), shifted by j
      const fromB = next[j - 1]!; // c(i, j − 1, ·)
      const c = new Array<number>(i * j + 1).fill(0);
      for (let k = 0; k < fromA.length; k++) c[k + j]! += fromA[k]!;
      for (let k = 0; k < fromB.length; k++) c[k]! += fromB[k]!;
      next.push(c);
    }
    row = next;
  }
  const counts = row[n]!;
  let total = 0;
  for (const c of counts) total += c;
  let tail = 0;
  // U is symmetric about mn/2: take the tail on u's side of the centre.
  if (u > (m * n) / 2) for (let k = Math.ceil(u); k < counts.length; k++) tail += counts[k]!;
  else for (let k = 0; k <= Math.floor(u); k++) tail += counts[k]!;
  return Math.min(1, (2 * tail) / total);
}

/** log Γ(x) for x > 0 (Lanczos, g = 7, 9 terms: ~1e-15 relative). */
function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const y = x - 1;
  let a = LANCZOS[0]!;
  const t = y + 7.5;
  for (let i = 1; i < LANCZOS.length; i++) a += LANCZOS[i]! / (y + i);
  return 0.5 * Math.log(2 * Math.PI) + (y + 0.5) * Math.log(t) - t + Math.log(a);
}

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

const EPS = 1e-15;
const FPMIN = 1e-300;
const MAX_ITER = 10_000;

/** The regularized incomplete beta I_x(a, b), by its continued fraction on whichever side converges fast. */
function betaRegularized(a: number, b: number, x: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x));
  // The fraction converges quickly for x < (a + 1) / (a + b + 2); beyond, use I_x(a, b) = 1 − I_{1−x}(b, a).
  if (x < (a + 1) / (a + b + 2)) return (front * betaFraction(a, b, x)) / a;
  return 1 - (front * betaFraction(b, a, 1 - x)) / b;
}

/** The continued fraction of the incomplete beta, by the modified Lentz method (NR §6.4). */
function betaFraction(a: number, b: number, x: number): number {
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < FPMIN) d = FPMIN;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= MAX_ITER; m++) {
    const m2 = 2 * m;
    // Even step.
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = 1 + aa / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    h *= d * c;
    // Odd step.
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = 1 + aa / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) break;
  }
  return h;
}

/** The regularized upper incomplete gamma Q(a, x): series below a + 1, continued fraction above (NR §6.2). */
function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  const front = Math.exp(-x + a * Math.log(x) - logGamma(a));
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n <= MAX_ITER; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * EPS) break;
    }
    return 1 - sum * front;
  }
  let b = x + 1 - a;
  let c = 1 / FPMIN;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i <= MAX_ITER; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = b + an / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) break;
  }
  return front * h;
}

/** Every value finite and at least `min` of them: the boundary check of each exported function. */
function check(xs: readonly number[], min: number, name: string): void {
  if (xs.length < min) throw new GuildError('INVALID_OPTION', `Expected at least ${min} value(s) in ${name}, got ${xs.length}`);
  for (const x of xs) {
    if (!Number.isFinite(x)) throw new GuildError('INVALID_OPTION', `Expected finite numbers in ${name}, got ${String(x)}`);
  }
}

function checkLevel(level: number): void {
  if (!(level > 0 && level < 1)) throw new GuildError('INVALID_OPTION', `Expected level in (0, 1), got ${String(level)}`);
}
