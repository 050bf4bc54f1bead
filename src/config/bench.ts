import { ConfigError } from '../errors.js';
import { didYouMean } from '../util/did-you-mean.js';
import { DEFAULTS } from './defaults.js';
import type { UserBench } from './schema.js';
import type { ConfigSource } from './source.js';

// The `bench:` section of a workflow file, for `guild bench`: scenarios with every default
// applied, thresholds merged once (scenario over file over the kind's default), and scenarios
// checked against the file's tasks.

/** Where a scenario's work comes from. */
export type ScenarioKind = 'workflow' | 'tasks' | 'command';

export interface ResolvedScenario {
  readonly name: string;
  readonly kind: ScenarioKind;
  /** For `tasks`: the ids named (what they need runs too). */
  readonly tasks: readonly string[];
  /** For `command`: the command line. */
  readonly run: string | null;
  readonly repeat: number;
  readonly warmup: number;
  /** Names or patterns (`*` any run of characters) of the metrics that decide. */
  readonly metrics: readonly string[];
  /**
   * By metric name, pattern or kind: relative (0.25) for every kind but rates, where it counts
   * percentage points (1 = one point). The scenario's own over the file's; kinds not named fall
   * back to DEFAULTS.bench.thresholds.
   */
  readonly thresholds: Readonly<Record<string, number>>;
  /** Tasks may be served from the task cache. */
  readonly cache: boolean;
  readonly memoryBytes: number | null;
  /** For `command`: its hard memory limit; null: an agent's default. */
  readonly limitBytes: number | null;
  /** For `command`: how long one run may take; null: an agent's default. */
  readonly timeoutMs: number | null;
}

export interface ResolvedBench {
  /** False when the file has no `bench:` scenarios: the whole workflow is the one scenario. */
  readonly declared: boolean;
  readonly scenarios: readonly ResolvedScenario[];
  readonly alpha: number;
  readonly test: 'mann-whitney' | 'welch';
  readonly baselineRuns: number;
  readonly minBaseline: number;
  readonly excludeDisturbed: boolean;
}

/** A threshold given as a percentage: for a rate the user's `1%` is one point. */
function thresholdMap(t: Readonly<Record<string, number>> | undefined): Record<string, number> {
  const out: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const [k, v] of Object.entries(t ?? {})) out[k] = k === 'rate' || /(^|\.)(error_rate|cache_hit_rate)$/.test(k) ? v * 100 : v;
  return out;
}

export function resolveBench(user: UserBench | undefined, taskIds: readonly string[], source: ConfigSource, errors: ConfigError[]): ResolvedBench {
  const b = user ?? {};
  const fileThresholds = thresholdMap(b.thresholds);
  const minBaseline = b.min_baseline ?? DEFAULTS.bench.minBaseline;
  const baselineRuns = b.baseline ?? DEFAULTS.bench.baselineRuns;
  if (minBaseline > baselineRuns) errors.push(source.error(['bench', 'min_baseline'], `Expected min_baseline <= baseline (${baselineRuns}), got ${minBaseline}`));
  const known = new Set(taskIds);
  const scenarios: ResolvedScenario[] = [];
  for (const [name, s] of Object.entries(b.scenarios ?? {})) {
    if (s.tasks !== undefined && s.run !== undefined) {
      errors.push(source.error(['bench', 'scenarios', name, 'run'], 'a scenario runs either some of the tasks (tasks) or a command (run), not both'));
      continue;
    }
    s.tasks?.forEach((id, i) => {
      if (known.has(id)) return;
      const hint = didYouMean(id, known);
      errors.push(source.error(['bench', 'scenarios', name, 'tasks', i], `names no task of this file: '${id}'${hint ? ` (did you mean '${hint}'?)` : ''}`));
    });
    if (s.run === undefined && taskIds.length === 0) errors.push(source.error(['bench', 'scenarios', name], 'the file has no tasks: give the scenario a command (run)'));
    scenarios.push({
      name,
      kind: s.run !== undefined ? 'command' : s.tasks !== undefined ? 'tasks' : 'workflow',
      tasks: s.tasks ?? [],
      run: s.run ?? null,
      repeat: s.repeat ?? DEFAULTS.bench.repeat,
      warmup: s.warmup ?? DEFAULTS.bench.warmup,
      metrics: s.metrics ?? DEFAULTS.bench.metrics,
      thresholds: { ...fileThresholds, ...thresholdMap(s.thresholds) },
      cache: s.cache ?? false,
      memoryBytes: s.memory ?? null,
      limitBytes: s.limit ?? null,
      timeoutMs: s.timeout ?? null,
    });
  }
  const declared = scenarios.length > 0;
  if (!declared && taskIds.length > 0) {
    scenarios.push({
      name: 'workflow',
      kind: 'workflow',
      tasks: [],
      run: null,
      repeat: DEFAULTS.bench.repeat,
      warmup: DEFAULTS.bench.warmup,
      metrics: DEFAULTS.bench.metrics,
      thresholds: fileThresholds,
      cache: false,
      memoryBytes: null,
      limitBytes: null,
      timeoutMs: null,
    });
  }
  return {
    declared,
    scenarios,
    alpha: b.alpha ?? DEFAULTS.bench.alpha,
    test: b.test ?? DEFAULTS.bench.test,
    baselineRuns,
    minBaseline,
    excludeDisturbed: b.exclude_disturbed ?? false,
  };
}
