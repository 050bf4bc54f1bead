/**
 * The statistics and the verdict of `guild bench`: the tests' p-values against published
 * reference outputs, exact Mann–Whitney tails, confidence intervals that cover what they claim on
 * seeded synthetic data, and the issue's injected histories judged through `compare`.
 * Every synthetic sample comes from a seeded PRNG, so each run sees the same numbers.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GuildError } from '../src/errors.js';
import { differenceInterval, mannWhitney, ratioInterval, summarize, tQuantile, welch } from '../src/regression/stats.js';
import type { MetricSpec } from '../src/regression/types.js';
import { compare, DEFAULT_THRESHOLDS, judgeAll, scenarioStatus } from '../src/regression/verdict.js';
import { prng } from '../bench/lib.js';

/** mulberry32 (bench/lib.ts's): a 32-bit seeded PRNG, uniform in [0, 1). */
const mulberry32 = prng;

/** Standard normal draws (Box–Muller) from a seeded uniform source. */
function normals(seed: number): () => number {
  const u = mulberry32(seed);
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

/** n draws of center × (1 + cv · Z): a benchmark figure with relative noise cv. */
function noisy(seed: number, n: number, center: number, cv: number): number[] {
  const z = normals(seed);
  return Array.from({ length: n }, () => center * (1 + cv * z()));
}

function close(actual: number, expected: number, tol: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: expected ${expected} ± ${tol}, got ${actual}`);
}

function isInvalidOption(e: unknown): boolean {
  return e instanceof GuildError && e.code === 'INVALID_OPTION';
}

// Student's sleep data (R's `sleep` dataset): extra hours of sleep under drug 1 and drug 2.
const SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0];
const SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4];

describe('summarize', () => {
  test('gives n, mean, the median (middle two averaged), the sample stdev, min and max', () => {
    const s = summarize([4, 1, 3, 2]);
    assert.equal(s.n, 4);
    assert.equal(s.mean, 2.5);
    assert.equal(s.median, 2.5);
    close(s.stdev, Math.sqrt(5 / 3), 1e-12, 'stdev (n − 1)');
    assert.equal(s.min, 1);
    assert.equal(s.max, 4);
    assert.equal(summarize([5, 1, 9]).median, 5);
  });

  test('one value has stdev 0; no value or a non-finite one is refused', () => {
    assert.deepEqual(summarize([7]), { n: 1, mean: 7, median: 7, stdev: 0, min: 7, max: 7 });
    assert.throws(() => summarize([]), isInvalidOption);
    assert.throws(() => summarize([1, NaN]), isInvalidOption);
  });
});

describe("Welch's t-test", () => {
  test("matches R's t.test(extra ~ group, data = sleep): t = -1.8608, df = 17.776, p = 0.07939", () => {
    const r = welch(SLEEP_1, SLEEP_2);
    close(r.t, -1.8608, 5e-5, 't');
    close(r.df, 17.776, 5e-4, 'df');
    close(r.p, 0.07939, 5e-6, 'p');
    const swapped = welch(SLEEP_2, SLEEP_1);
    close(swapped.t, -r.t, 1e-12, 'swapped t');
    close(swapped.p, r.p, 1e-12, 'swapped p');
  });

  test('zero variance on both sides: p = 1 for equal means, 0 for different ones', () => {
    assert.deepEqual(welch([3, 3, 3], [3, 3]), { t: 0, df: 3, p: 1 });
    const r = welch([0, 0, 0], [3, 3, 3]);
    assert.equal(r.p, 0);
    assert.equal(r.t, -Infinity);
  });

  test('zero variance on one side only is an ordinary test', () => {
    const r = welch([10, 10, 10, 10], [11, 12, 13, 14]);
    assert.ok(r.p > 0 && r.p < 0.05, `p = ${r.p}`);
    close(r.df, 3, 1e-12, 'df falls to the varying side’s n − 1');
  });

  test('needs two samples a side', () => {
    assert.throws(() => welch([1], [1, 2, 3]), isInvalidOption);
    assert.throws(() => welch([1, 2], [3]), isInvalidOption);
  });
});

describe('Mann–Whitney U', () => {
  test('exact: [1, 2, 3] vs [4, 5, 6] gives U = 0 and two-sided p = 2 / C(6, 3) = 0.1', () => {
    assert.deepEqual(mannWhitney([1, 2, 3], [4, 5, 6]), { u: 0, p: 0.1 });
    assert.deepEqual(mannWhitney([4, 5, 6], [1, 2, 3]), { u: 9, p: 0.1 });
  });

  test('exact: one overlap among 4 + 4 gives P(U <= 1) = 2 / 70, doubled', () => {
    const r = mannWhitney([1, 2, 3, 5], [4, 6, 7, 8]);
    assert.equal(r.u, 1);
    close(r.p, 4 / 70, 1e-15, 'p');
  });

  test("exact: R's wilcox.test example (Hollander & Wolfe 1973, p. 69) gives W = 35, one-sided p = 0.1272", () => {
    // R's ?wilcox.test: wilcox.test(x, y, alternative = "g") prints W = 35, p-value = 0.1272; two-sided doubles it.
    const x = [0.8, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46];
    const y = [1.15, 0.88, 0.9, 0.74, 1.21];
    const r = mannWhitney(x, y);
    assert.equal(r.u, 35);
    close(r.p / 2, 0.1272, 5e-5, 'one-sided p');
  });

  test("with ties: R's wilcox.test(extra ~ group, data = sleep) gives W = 25.5, p = 0.06933 (normal, tie and continuity corrected)", () => {
    const r = mannWhitney(SLEEP_1, SLEEP_2);
    assert.equal(r.u, 25.5);
    close(r.p, 0.06933, 5e-6, 'p');
  });

  test('beyond 20 a side: the normal approximation (SciPy 1.17 mannwhitneyu, method="asymptotic", gives 0.756893)', () => {
    const a = Array.from({ length: 25 }, (_, i) => (i * 1.37) % 7.3);
    const b = Array.from({ length: 23 }, (_, i) => ((i * 2.11) % 5.9) + 0.4);
    const r = mannWhitney(a, b);
    assert.equal(r.u, 303);
    close(r.p, 0.756893, 5e-7, 'p');
  });

  test('the exact tail holds at 20 + 20: interleaved samples are far from significant, separated ones extremely so', () => {
    const evens = Array.from({ length: 20 }, (_, i) => 2 * i);
    const shifted = evens.map((x) => x + 1.5);
    // SciPy 1.17 mannwhitneyu(method="exact") gives U = 190, p = 0.799407187161697.
    const r = mannWhitney(evens, shifted);
    assert.equal(r.u, 190);
    close(r.p, 0.799407187161697, 1e-12, 'p');
    const apart = mannWhitney(evens, evens.map((x) => x + 100));
    close(apart.p, 2 / 137846528820, 1e-24, 'p = 2 / C(40, 20)');
  });

  test('all values equal: nothing to rank, p = 1', () => {
    assert.deepEqual(mannWhitney([2, 2, 2], [2, 2]), { u: 3, p: 1 });
  });
});

describe('tQuantile', () => {
  test("matches R's qt and qnorm", () => {
    close(tQuantile(0.975, 10), 2.228139, 5e-7, 'qt(0.975, 10)');
    close(tQuantile(0.975, 1), 12.7062, 5e-5, 'qt(0.975, 1)');
    close(tQuantile(0.995, 30), 2.749996, 5e-7, 'qt(0.995, 30)');
    close(tQuantile(0.975, Infinity), 1.959964, 5e-7, 'qnorm(0.975)');
    close(tQuantile(0.025, 10), -2.228139, 5e-7, 'symmetry');
    assert.equal(tQuantile(0.5, 4), 0);
  });

  test('refuses p outside (0, 1) and df <= 0', () => {
    assert.throws(() => tQuantile(1, 5), isInvalidOption);
    assert.throws(() => tQuantile(0.9, 0), isInvalidOption);
  });
});

describe('confidence intervals', () => {
  test("differenceInterval matches R's 95 % interval for the sleep data (-3.3654832, 0.2054832)", () => {
    const d = differenceInterval(SLEEP_2, SLEEP_1);
    assert.ok(d);
    close(d.value, -1.58, 1e-12, 'difference of means');
    close(d.low, -3.3654832, 5e-8, 'low');
    close(d.high, 0.2054832, 5e-8, 'high');
  });

  test('ratioInterval is the ratio of geometric means: a constant factor is recovered exactly', () => {
    const base = noisy(7, 8, 200, 0.1);
    const r = ratioInterval(base, base.map((x) => x * 1.5));
    assert.ok(r);
    close(r.value, 1.5, 1e-12, 'ratio');
    assert.ok(r.low < 1.5 && r.high > 1.5);
  });

  test('ratioInterval covers the true ratio about 95 % of the time (400 seeded trials of 10 + 10 log-normal runs)', () => {
    const truth = 1.2;
    let covered = 0;
    for (let seed = 1; seed <= 400; seed++) {
      const z = normals(seed);
      const base = Array.from({ length: 10 }, () => 100 * Math.exp(0.1 * z()));
      const head = Array.from({ length: 10 }, () => truth * 100 * Math.exp(0.15 * z()));
      const r = ratioInterval(base, head);
      assert.ok(r);
      if (r.low <= truth && truth <= r.high) covered++;
    }
    // Binomial(400, 0.95) lies in [366, 394] with probability > 0.999.
    assert.ok(covered >= 366 && covered <= 394, `covered ${covered} of 400`);
  });

  test('a task 35 % slower: the interval excludes 1.0 and covers 1.35', () => {
    const base = noisy(11, 10, 500, 0.05);
    const head = noisy(12, 10, 500 * 1.35, 0.05);
    const r = ratioInterval(base, head);
    assert.ok(r);
    assert.ok(r.low > 1 && r.low <= 1.35 && r.high >= 1.35, `[${r.low}, ${r.high}]`);
  });

  test('no interval with a value <= 0 or fewer than 2 samples a side; a degenerate level is refused', () => {
    assert.equal(ratioInterval([1, 0, 2], [1, 2, 3]), null);
    assert.equal(ratioInterval([1, 2, 3], [-1, 2, 3]), null);
    assert.equal(ratioInterval([1], [1, 2, 3]), null);
    assert.equal(differenceInterval([1, 2], [3]), null);
    assert.throws(() => ratioInterval([1, 2], [1, 2], 1), isInvalidOption);
  });

  test('zero variance on both sides collapses the interval to the point', () => {
    assert.deepEqual(differenceInterval([0, 0, 0], [3, 3]), { value: 3, low: 3, high: 3 });
  });
});

const MAKESPAN: MetricSpec = { name: 'makespan_ms', kind: 'time', better: 'lower', threshold: DEFAULT_THRESHOLDS.time };
const RSS: MetricSpec = { name: 'peak_rss_bytes', kind: 'memory', better: 'lower', threshold: DEFAULT_THRESHOLDS.memory };
const THROUGHPUT: MetricSpec = { name: 'tasks_per_s', kind: 'throughput', better: 'higher', threshold: DEFAULT_THRESHOLDS.throughput };
const ERROR_RATE: MetricSpec = { name: 'error_rate', kind: 'rate', better: 'lower', threshold: DEFAULT_THRESHOLDS.rate };

describe('default thresholds', () => {
  test("are the seed's figures, and the rate's is one percentage point", () => {
    assert.deepEqual(
      { ...DEFAULT_THRESHOLDS },
      { time: 0.25, memory: 0.15, throughput: 0.2, rate: 1, count: 0.15, ratio: 0.25 },
    );
  });
});

describe("compare: the issue's injected histories", () => {
  test('a clean history (10 runs of noise, then 5 more of the same) passes on every metric', () => {
    const baseline = { makespan_ms: noisy(101, 10, 1000, 0.03), peak_rss_bytes: noisy(102, 10, 300e6, 0.02), tasks_per_s: noisy(103, 10, 40, 0.03), error_rate: Array<number>(10).fill(0) };
    const current = { makespan_ms: noisy(201, 5, 1000, 0.03), peak_rss_bytes: noisy(202, 5, 300e6, 0.02), tasks_per_s: noisy(203, 5, 40, 0.03), error_rate: Array<number>(5).fill(0) };
    const all = judgeAll([MAKESPAN, RSS, THROUGHPUT, ERROR_RATE], baseline, current);
    assert.equal(all.length, 4);
    for (const c of all) assert.equal(c.verdict, 'ok', `${c.metric}: change ${String(c.change)}, p ${String(c.p)}`);
    assert.equal(scenarioStatus(all), 'pass');
  });

  test('+60 % response time fails as major (2.4 × the 25 % threshold), with a significant p and a ratio above 1', () => {
    const c = compare(MAKESPAN, noisy(301, 10, 1000, 0.03), noisy(302, 10, 1600, 0.03));
    assert.equal(c.verdict, 'regression');
    assert.equal(c.severity, 'major');
    assert.ok(c.change !== null && c.change > 0.5 && c.change <= 0.7, `change ${String(c.change)}`);
    assert.ok(c.p !== null && c.p < 0.05);
    assert.equal(c.test, 'mann-whitney');
    assert.ok(c.ratio && c.ratio.low > 1.5 && c.ratio.high < 1.7, JSON.stringify(c.ratio));
    assert.equal(scenarioStatus([c]), 'regression');
    // Welch's test, asked for, agrees.
    const w = compare(MAKESPAN, noisy(301, 10, 1000, 0.03), noisy(302, 10, 1600, 0.03), { test: 'welch' });
    assert.equal(w.test, 'welch');
    assert.equal(w.verdict, 'regression');
    assert.equal(w.severity, 'major');
  });

  test('a shift inside the noise passes: small and significant is ok, large and insignificant is noise', () => {
    // 8 % slower, 3 % noise: real, but within the 25 % threshold.
    const small = compare(MAKESPAN, noisy(401, 10, 1000, 0.03), noisy(402, 10, 1080, 0.03));
    assert.ok(small.p !== null && small.p < 0.05, 'the shift is detectable');
    assert.equal(small.verdict, 'ok');
    // 40 % noise: a 30 % shift over 5 runs is not told apart from chance. The seeds are ones whose
    // medians land past the threshold (about two seeds in three do), which the next line checks.
    const wide = compare(MAKESPAN, noisy(419, 10, 1000, 0.4), noisy(420, 5, 1300, 0.4));
    assert.ok(wide.change !== null && wide.change > 0.25, `change ${String(wide.change)}`);
    assert.ok(wide.p !== null && wide.p >= 0.05, `p ${String(wide.p)}`);
    assert.equal(wide.verdict, 'noise');
    assert.equal(wide.severity, null);
    assert.equal(scenarioStatus([small, wide]), 'pass');
  });

  test('an error rate from 0 % to 3 % is caught, in percentage points, with both tests', () => {
    for (const test of ['mann-whitney', 'welch'] as const) {
      const c = compare(ERROR_RATE, Array<number>(10).fill(0), Array<number>(5).fill(3), { test });
      assert.equal(c.change, 3);
      assert.equal(c.verdict, 'regression', test);
      assert.equal(c.severity, 'major', '3 points is 3 × the 1-point threshold');
      assert.equal(c.ratio, null, 'a rate has no ratio');
    }
  });

  test('thresholds per metric apply: +40 % is a minor regression at 25 %, ok at 50 %', () => {
    const base = noisy(501, 10, 1000, 0.03);
    const cur = noisy(502, 10, 1400, 0.03);
    const strict = compare(MAKESPAN, base, cur);
    assert.equal(strict.verdict, 'regression');
    assert.equal(strict.severity, 'minor');
    const loose = compare({ ...MAKESPAN, threshold: 0.5 }, base, cur);
    assert.equal(loose.verdict, 'ok');
    assert.equal(loose.threshold, 0.5);
    const rate = compare({ ...ERROR_RATE, threshold: 5 }, Array<number>(10).fill(0), Array<number>(5).fill(3));
    assert.equal(rate.verdict, 'ok');
  });
});

describe('compare: direction, severity and edge cases', () => {
  test('throughput: a 30 % drop is a regression, a 30 % rise an improvement', () => {
    const base = noisy(601, 10, 40, 0.03);
    const drop = compare(THROUGHPUT, base, noisy(602, 10, 28, 0.03));
    assert.equal(drop.verdict, 'regression');
    assert.equal(drop.severity, 'minor');
    const rise = compare(THROUGHPUT, base, noisy(603, 10, 52, 0.03));
    assert.equal(rise.verdict, 'improved');
    assert.equal(rise.severity, null);
    assert.equal(scenarioStatus([drop, rise]), 'regression');
    assert.equal(scenarioStatus([rise]), 'pass');
  });

  test('a faster time is an improvement, never a regression', () => {
    const c = compare(MAKESPAN, noisy(701, 10, 1000, 0.03), noisy(702, 10, 500, 0.03));
    assert.equal(c.verdict, 'improved');
    assert.equal(c.severity, null);
  });

  test('severity bounds: 2 × the threshold is minor, 4 × major, beyond critical', () => {
    const base = [99, 100, 101];
    const at = (factor: number) => compare(MAKESPAN, base, base.map((x) => x * factor), { test: 'welch' }).severity;
    assert.equal(at(1.5), 'minor');
    assert.equal(at(1.51), 'major');
    assert.equal(at(2), 'major');
    assert.equal(at(2.01), 'critical');
  });

  test('a change of exactly the threshold is within it', () => {
    const c = compare({ ...MAKESPAN, threshold: 0.1 }, [100, 100, 100], [110, 110, 110]);
    assert.equal(c.verdict, 'ok');
  });

  test('a relative metric from a zero baseline: null change; critical when it rises significantly, ok when it stays 0', () => {
    const tokens: MetricSpec = { name: 'tokens', kind: 'count', better: 'lower', threshold: DEFAULT_THRESHOLDS.count };
    const risen = compare(tokens, Array<number>(10).fill(0), [50, 52, 49, 51, 50]);
    assert.equal(risen.change, null);
    assert.equal(risen.verdict, 'regression');
    assert.equal(risen.severity, 'critical');
    assert.equal(risen.ratio, null, 'no ratio over zeros');
    const still = compare(tokens, Array<number>(10).fill(0), Array<number>(5).fill(0));
    assert.equal(still.change, null);
    assert.equal(still.verdict, 'ok');
  });

  test('one sample a side: p is null, so a change past the threshold is only noise', () => {
    const c = compare(MAKESPAN, [1000, 1010, 990], [2000]);
    assert.equal(c.p, null);
    assert.equal(c.verdict, 'noise');
    assert.equal(c.ratio, null);
  });

  test('alpha decides significance', () => {
    const base = noisy(801, 5, 1000, 0.1);
    const cur = noisy(802, 5, 1400, 0.1);
    const loose = compare(MAKESPAN, base, cur, { test: 'welch' });
    assert.ok(loose.p !== null && loose.p < 0.05 && loose.p > 1e-6, `p ${String(loose.p)}`);
    assert.equal(loose.verdict, 'regression');
    assert.equal(compare(MAKESPAN, base, cur, { test: 'welch', alpha: loose.p / 2 }).verdict, 'noise');
  });

  test('bad options are refused with INVALID_OPTION', () => {
    assert.throws(() => compare(MAKESPAN, [1, 2], [1, 2], { alpha: 0 }), isInvalidOption);
    assert.throws(() => compare(MAKESPAN, [1, 2], [1, 2], { test: 'z-score' as never }), isInvalidOption);
    assert.throws(() => compare({ ...MAKESPAN, threshold: -1 }, [1, 2], [1, 2]), isInvalidOption);
    assert.throws(() => compare(MAKESPAN, [], [1, 2]), isInvalidOption);
  });

  test('judgeAll keeps the order of the specs and skips metrics missing or empty on either side', () => {
    const all = judgeAll(
      [ERROR_RATE, MAKESPAN, RSS, THROUGHPUT],
      { makespan_ms: [1, 2, 3], error_rate: [0, 0], peak_rss_bytes: [5, 6] },
      { makespan_ms: [1, 2, 3], error_rate: [0, 0], peak_rss_bytes: [], tasks_per_s: [4, 5] },
    );
    assert.deepEqual(all.map((c) => c.metric), ['error_rate', 'makespan_ms']);
  });
});
