// The shapes `guild bench` passes between its parts: metric specs, comparisons, stored runs and
// results. Type-only: every module of regression/ (and the CLI) imports them.

/**
 * What a metric measures, which fixes its unit, its default threshold and which way is better:
 * time (ms; lower is better; +25 %), memory (bytes; lower; +15 %), throughput (per second;
 * higher; −20 %), rate (a percentage, compared in percentage points: error rate lower, +1 point;
 * cache hit rate higher, −10 points), count (tokens, money, …; lower; +15 %), ratio (dimensionless,
 * like makespan / lower bound; lower; +25 %).
 */
export type MetricKind = 'time' | 'memory' | 'throughput' | 'rate' | 'count' | 'ratio';

export interface MetricSpec {
  /** e.g. `makespan_ms`, `task.build.duration_ms`, `error_rate`. */
  name: string;
  kind: MetricKind;
  better: 'lower' | 'higher';
  /** Relative (0.25 = 25 %) for every kind but `rate`, where it is percentage points (1 = 1 point). */
  threshold: number;
}

/** Summary of one side's samples. */
export interface SampleSummary {
  n: number;
  mean: number;
  median: number;
  stdev: number;
  min: number;
  max: number;
}

/**
 * ok: within the threshold; noise: past it but not significant; regression: past it the bad way
 * and significant; improved: past it the good way and significant.
 */
export type Verdict = 'ok' | 'noise' | 'regression' | 'improved';
/** How far past its threshold a regression is: up to 2 ×, up to 4 ×, beyond. */
export type Severity = 'minor' | 'major' | 'critical';
export type TestName = 'welch' | 'mann-whitney';

export interface Comparison {
  metric: string;
  kind: MetricKind;
  better: 'lower' | 'higher';
  baseline: SampleSummary;
  current: SampleSummary;
  /**
   * Relative change of the medians (current / baseline − 1), or for `rate` the difference in
   * percentage points; null when the baseline median is 0 for a relative metric.
   */
  change: number | null;
  threshold: number;
  test: TestName;
  /** Two-sided p-value; null when a side has fewer than 2 samples. */
  p: number | null;
  /** current / baseline with its 95 % confidence interval (relative kinds; null for rate or zeros). */
  ratio: { value: number; low: number; high: number } | null;
  verdict: Verdict;
  severity: Severity | null;
}

/** The machine while one iteration was measured (regression/quiet.ts). */
export interface MachineRecord {
  load1: number;
  memAvailableBytes: number;
  /** CPU used by processes outside Guild's own tree, in cores, averaged over the iteration. */
  outsideCpuCores: number;
  /** Share of the iteration's wall time some task stalled on memory / CPU (PSI `some`), 0..1; null without PSI. */
  psiMemorySome: number | null;
  psiCpuSome: number | null;
  disturbed: boolean;
  /** Why it was marked disturbed (empty when it was not). */
  reasons: string[];
}

/** Which machine a run was measured on: runs are comparable only on the same fingerprint. */
export interface Fingerprint {
  node: string;
  cpuModel: string;
  cores: number;
  /** The effective memory limit (cgroup limit, else physical memory). */
  memoryLimitBytes: number;
}

/** One measured iteration of a scenario: its metrics and the machine meanwhile. */
export interface Iteration {
  index: number;
  metrics: Record<string, number>;
  machine: MachineRecord;
}

/** One stored `guild bench` run of one scenario (one side, for `--against`). */
export interface BenchRunRecord {
  id: string;
  scenario: string;
  /** The workflow file, absolute. */
  workflow: string;
  startedAt: Date;
  commit: string | null;
  dirty: boolean;
  guildVersion: string;
  fingerprint: Fingerprint;
  /** Hash of the fingerprint (16 hex): what "comparable" means, with the scenario. */
  fingerprintHash: string;
  /** 'baseline': a run that joins the history; 'against': one side of an A/B (not a baseline for later runs). */
  mode: 'baseline' | 'against';
  /** For `--against`: 'base' (REV) or 'head' (the working tree). */
  side: 'base' | 'head' | null;
  iterations: Iteration[];
}

export type ScenarioStatus = 'pass' | 'regression' | 'not-enough-baseline';

export interface ScenarioResult {
  scenario: string;
  /** The stored run (for `--against`: the head side). */
  runId: string;
  commit: string | null;
  repeat: number;
  mode: 'baseline' | 'against';
  /** Stored runs the baseline was made of (baseline mode). */
  baselineRuns: number;
  /** Comparable runs a baseline needs (`bench.min_baseline`, 5). */
  baselineNeeded: number;
  against: { rev: string; commit: string } | null;
  comparisons: Comparison[];
  /** Every metric this run measured (for `--against`, the head side), by name: the median of its samples. */
  current: Record<string, number>;
  /** Iterations marked disturbed (excluded when asked). */
  disturbed: number;
  excludedDisturbed: boolean;
  status: ScenarioStatus;
  /** `--confirm`: whether the regression repeated on the re-run (null when not re-run). */
  confirmed: boolean | null;
}

export interface BenchResult {
  /** 0 pass, 1 regression, 2 not enough baseline. */
  exitCode: 0 | 1 | 2;
  workflow: string;
  guildVersion: string;
  fingerprint: Fingerprint;
  scenarios: ScenarioResult[];
}
