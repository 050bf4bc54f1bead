import { existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join, relative, resolve } from 'node:path';
import type { ResolvedScenario } from '../config/bench.js';
import { loadBenchConfig, loadConfig } from '../config/load-config.js';
import type { ResolvedConfig } from '../config/resolve.js';
import { UsageError } from '../errors.js';
import { gatewayServices } from '../gateway/run-services.js';
import { openDatabase, storeFile, type Db } from '../store/db.js';
import { baselineRuns, saveBenchRun } from '../store/bench.js';
import { acquireBenchLock } from '../system/bench-lock.js';
import { createSystemProbe, type SystemProbe } from '../system/probe.js';
import { guildVersion } from '../util/version.js';
import { runResolved } from '../workflow/run-workflow.js';
import { fingerprintHash, machineFingerprint } from './fingerprint.js';
import { addWorktree, commitOf } from './git.js';
import { metricSpec, metricsOf, selectMetrics } from './metrics.js';
import { MachineWatch } from './quiet.js';
import type { BenchResult, BenchRunRecord, Comparison, Fingerprint, Iteration, ScenarioResult } from './types.js';
import { summarize } from './stats.js';
import { compare, scenarioStatus } from './verdict.js';

// `guild bench` as a function: each scenario measured `repeat` times under the machine-wide bench
// lock, stored with its commit, Guild's version and the machine's fingerprint, and judged against
// the last comparable runs — or, with `against`, against a revision measured in the same session,
// the two sides taking turns.

/** What `guild bench` reports while it works. */
export type BenchProgress =
  | { type: 'waiting'; holderPid: number }
  | { type: 'iteration'; scenario: string; side: 'base' | 'head' | null; index: number; of: number; warmup: boolean; ms: number; disturbed: boolean };

export interface BenchOptions {
  /** The workflow file. */
  file: string;
  /** Only this scenario. @default every scenario of the file */
  scenario?: string;
  /** Only these scenarios, in the file's order (with `scenario`, both count). */
  scenarios?: readonly string[];
  /** A git revision of the repository that holds the workflow: measure it against the working tree, interleaved. */
  against?: string;
  /** Re-run a scenario that regressed once; keep only what repeats. @default false */
  confirm?: boolean;
  /** Leave out iterations measured under outside pressure. @default the file's `bench.exclude_disturbed` */
  excludeDisturbed?: boolean;
  /** Measured runs per scenario (and side). @default each scenario's `repeat` */
  repeat?: number;
  signal?: AbortSignal;
  onProgress?: (p: BenchProgress) => void;
  /** @default the machine's */
  probe?: SystemProbe;
}

/** Runs the benchmark; resolves with every scenario's verdict (exitCode 0 pass, 1 regression, 2 not enough baseline). */
export async function runBench(o: BenchOptions): Promise<BenchResult> {
  const probe = o.probe ?? createSystemProbe();
  let db: Db | null = null;
  try {
    const file = resolve(o.file);
    const config = loadBenchConfig(file, {}, probe);
    const scenarios = pickScenarios(config, [...(o.scenario !== undefined ? [o.scenario] : []), ...(o.scenarios ?? [])]);
    if (o.repeat !== undefined && !(Number.isInteger(o.repeat) && o.repeat >= 2)) throw new UsageError(`--repeat: expected an integer of at least 2, got ${o.repeat}`);
    const fingerprint = machineFingerprint(probe);
    const hash = fingerprintHash(fingerprint);
    const git = commitOf(config.dir);
    db = openDatabase(storeFile(config.dir));
    const excludeDisturbed = o.excludeDisturbed ?? config.bench.excludeDisturbed;
    const lock = await acquireBenchLock({ wait: true, onWait: (h) => o.onProgress?.({ type: 'waiting', holderPid: h.pid }), ...(o.signal && { signal: o.signal }) });
    const ctx: Ctx = { o, probe, db, fingerprint, hash, git, excludeDisturbed };
    const results: ScenarioResult[] = [];
    try {
      if (o.against !== undefined) {
        if (git === null) throw new UsageError(`--against needs the workflow in a git repository; ${config.dir} is not in one`);
        results.push(...(await againstRevision(ctx, config, scenarios, o.against, git.root)));
      } else {
        for (const s of scenarios) results.push(await againstBaseline(ctx, config, s));
      }
    } finally {
      lock.release();
    }
    const exitCode = results.some((r) => r.status === 'regression') ? 1 : results.some((r) => r.status === 'not-enough-baseline') ? 2 : 0;
    return { exitCode, workflow: file, guildVersion: guildVersion(), fingerprint, scenarios: results };
  } finally {
    db?.close();
    if (!o.probe) probe.close();
  }
}

interface Ctx {
  o: BenchOptions;
  probe: SystemProbe;
  db: Db;
  fingerprint: Fingerprint;
  hash: string;
  git: { sha: string; dirty: boolean; root: string } | null;
  excludeDisturbed: boolean;
}

function pickScenarios(config: ResolvedConfig, names: readonly string[]): readonly ResolvedScenario[] {
  const all = config.bench.scenarios;
  if (all.length === 0) throw new UsageError(`${config.file} has no tasks and no bench scenarios: nothing to measure`);
  if (names.length === 0) return all;
  const unknown = names.filter((n) => !all.some((x) => x.name === n));
  if (unknown.length > 0) throw new UsageError(`no scenario ${unknown.map((n) => `'${n}'`).join(', ')} in ${config.file}; it has: ${all.map((x) => x.name).join(', ')}`);
  return all.filter((x) => names.includes(x.name));
}

/** The configuration one scenario runs: the tasks it names and what they need, or its command as one task. */
function scenarioConfig(config: ResolvedConfig, s: ResolvedScenario, probe: SystemProbe): ResolvedConfig {
  const base = s.cache ? config : loadBenchConfig(config.file, { noCache: true }, probe);
  if (s.kind === 'workflow') return base;
  if (s.kind === 'command') {
    return loadConfig(
      {
        budget: config.budgetBytes,
        agents: {
          bench: {
            ...(s.memoryBytes !== null && { memory: s.memoryBytes }),
            ...(s.limitBytes !== null && { limit: s.limitBytes }),
            ...(s.timeoutMs !== null && { timeout: s.timeoutMs }),
          },
        },
        tasks: [{ id: s.name, agent: 'bench', run: s.run! }],
      },
      { dir: config.dir, noCache: !s.cache },
      probe,
    );
  }
  const byId = new Map(base.tasks.map((t) => [t.id, t]));
  const keep = new Set<string>();
  const visit = (id: string): void => {
    if (keep.has(id)) return;
    keep.add(id);
    for (const d of byId.get(id)?.needs ?? []) visit(d);
  };
  s.tasks.forEach(visit);
  return { ...base, tasks: base.tasks.filter((t) => keep.has(t.id)) };
}

/** One run of a scenario's configuration, measured. */
async function iterate(ctx: Ctx, cfg: ResolvedConfig, index: number): Promise<Iteration> {
  const watch = new MachineWatch();
  watch.start();
  let machine;
  let report;
  try {
    report = await runResolved(cfg, {
      probe: ctx.probe,
      store: false,
      telemetry: false,
      services: (c) => gatewayServices(c),
      ...(ctx.o.signal && { signal: ctx.o.signal }),
    });
  } finally {
    machine = watch.stop();
  }
  if (report.interrupted) throw new UsageError('guild bench was interrupted');
  return { index, metrics: metricsOf(report), machine };
}

/** Warm-ups, then `repeat` measured runs of each side, the sides taking turns (ABBA order, so neither always goes first). */
async function measure(ctx: Ctx, scenario: ResolvedScenario, sides: { side: 'base' | 'head' | null; cfg: ResolvedConfig }[]): Promise<Iteration[][]> {
  const repeat = ctx.o.repeat ?? scenario.repeat;
  const out: Iteration[][] = sides.map(() => []);
  const progress = (side: 'base' | 'head' | null, index: number, of: number, warmup: boolean, it: Iteration, ms: number): void =>
    ctx.o.onProgress?.({ type: 'iteration', scenario: scenario.name, side, index, of, warmup, ms, disturbed: it.machine.disturbed });
  for (let w = 0; w < scenario.warmup; w++) {
    for (const s of sides) {
      const t0 = performance.now();
      const it = await iterate(ctx, s.cfg, -1);
      progress(s.side, w + 1, scenario.warmup, true, it, performance.now() - t0);
    }
  }
  for (let i = 0; i < repeat; i++) {
    const order = i % 2 === 0 ? sides.map((_, k) => k) : sides.map((_, k) => sides.length - 1 - k);
    for (const k of order) {
      const t0 = performance.now();
      const it = await iterate(ctx, sides[k]!.cfg, i);
      out[k]!.push(it);
      progress(sides[k]!.side, i + 1, repeat, false, it, performance.now() - t0);
    }
  }
  return out;
}

function record(ctx: Ctx, scenario: string, workflow: string, git: { sha: string; dirty: boolean } | null, mode: 'baseline' | 'against', side: 'base' | 'head' | null, iterations: Iteration[]): BenchRunRecord {
  return {
    id: randomUUID(),
    scenario,
    workflow,
    startedAt: new Date(),
    commit: git?.sha ?? null,
    dirty: git?.dirty ?? false,
    guildVersion: guildVersion(),
    fingerprint: ctx.fingerprint,
    fingerprintHash: ctx.hash,
    mode,
    side,
    iterations,
  };
}

/** Samples of each metric over iterations (disturbed ones left out when asked). */
function samples(iterations: readonly Iteration[], excludeDisturbed: boolean): Map<string, number[]> {
  const by = new Map<string, number[]>();
  for (const it of iterations) {
    if (excludeDisturbed && it.machine.disturbed) continue;
    for (const [k, v] of Object.entries(it.metrics)) {
      let list = by.get(k);
      if (list === undefined) by.set(k, (list = []));
      list.push(v);
    }
  }
  return by;
}

/** The median of every metric's samples. */
function medians(iterations: readonly Iteration[], excludeDisturbed: boolean): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, xs] of samples(iterations, excludeDisturbed)) out[k] = summarize(xs).median;
  return out;
}

/** Every selected metric present on both sides, judged. */
function judge(ctx: Ctx, config: ResolvedConfig, scenario: ResolvedScenario, base: Map<string, number[]>, head: Map<string, number[]>): Comparison[] {
  const names = selectMetrics(scenario.metrics, [...head.keys()].filter((k) => base.has(k)));
  return names.map((n) => compare(metricSpec(n, scenario.thresholds), base.get(n)!, head.get(n)!, { alpha: config.bench.alpha, test: config.bench.test }));
}

async function againstBaseline(ctx: Ctx, config: ResolvedConfig, scenario: ResolvedScenario): Promise<ScenarioResult> {
  const cfg = scenarioConfig(config, scenario, ctx.probe);
  const previous = baselineRuns(ctx.db, { scenario: scenario.name, workflow: config.file, fingerprintHash: ctx.hash, limit: config.bench.baselineRuns });
  const [iterations] = await measure(ctx, scenario, [{ side: null, cfg }]);
  const run = record(ctx, scenario.name, config.file, ctx.git, 'baseline', null, iterations!);
  const result: ScenarioResult = {
    scenario: scenario.name,
    runId: run.id,
    commit: run.commit,
    repeat: iterations!.length,
    mode: 'baseline',
    baselineRuns: previous.length,
    baselineNeeded: config.bench.minBaseline,
    against: null,
    comparisons: [],
    current: medians(iterations!, ctx.excludeDisturbed),
    disturbed: iterations!.filter((i) => i.machine.disturbed).length,
    excludedDisturbed: ctx.excludeDisturbed,
    status: 'not-enough-baseline',
    confirmed: null,
  };
  if (previous.length >= config.bench.minBaseline) {
    const base = samples(previous.flatMap((r) => r.iterations), ctx.excludeDisturbed);
    let comparisons = judge(ctx, config, scenario, base, samples(iterations!, ctx.excludeDisturbed));
    let confirmed: boolean | null = null;
    if (ctx.o.confirm && scenarioStatus(comparisons) === 'regression') {
      // A second measurement on the same baseline: a regression stands only if it repeats, which
      // takes a false alarm's chance from p to about p² (the confirmation rerun of react_on_rails).
      const [again] = await measure(ctx, { ...scenario, warmup: 0 }, [{ side: null, cfg }]);
      const second = judge(ctx, config, scenario, base, samples(again!, ctx.excludeDisturbed));
      comparisons = comparisons.map((c) => {
        const c2 = second.find((x) => x.metric === c.metric);
        return c.verdict === 'regression' && c2?.verdict !== 'regression' ? { ...c, verdict: 'noise', severity: null } : c;
      });
      confirmed = scenarioStatus(comparisons) === 'regression';
    }
    Object.assign(result, { comparisons, confirmed, status: scenarioStatus(comparisons) });
  }
  saveBenchRun(ctx.db, run);
  return result;
}

async function againstRevision(ctx: Ctx, config: ResolvedConfig, scenarios: readonly ResolvedScenario[], rev: string, root: string): Promise<ScenarioResult[]> {
  const wt = addWorktree(root, rev, join(config.dir, '.guild', 'bench-worktrees'));
  try {
    const baseFile = join(wt.dir, relative(root, config.file));
    if (!existsSync(baseFile)) throw new UsageError(`${relative(root, config.file)} does not exist at ${rev} (${wt.sha.slice(0, 7)})`);
    const baseConfig = loadBenchConfig(baseFile, {}, ctx.probe);
    const out: ScenarioResult[] = [];
    for (const scenario of scenarios) {
      const baseScenario = baseConfig.bench.scenarios.find((s) => s.name === scenario.name);
      if (baseScenario === undefined) throw new UsageError(`scenario '${scenario.name}' does not exist at ${rev}`);
      const [base, head] = await measure(ctx, scenario, [
        { side: 'base', cfg: scenarioConfig(baseConfig, baseScenario, ctx.probe) },
        { side: 'head', cfg: scenarioConfig(config, scenario, ctx.probe) },
      ]);
      const baseRun = record(ctx, scenario.name, baseFile, { sha: wt.sha, dirty: false }, 'against', 'base', base!);
      const headRun = record(ctx, scenario.name, config.file, ctx.git, 'against', 'head', head!);
      const comparisons = judge(ctx, config, scenario, samples(base!, ctx.excludeDisturbed), samples(head!, ctx.excludeDisturbed));
      saveBenchRun(ctx.db, baseRun);
      saveBenchRun(ctx.db, headRun);
      out.push({
        scenario: scenario.name,
        runId: headRun.id,
        commit: headRun.commit,
        repeat: head!.length,
        mode: 'against',
        baselineRuns: 0,
        baselineNeeded: 0,
        against: { rev, commit: wt.sha },
        comparisons,
        current: medians(head!, ctx.excludeDisturbed),
        disturbed: [...base!, ...head!].filter((i) => i.machine.disturbed).length,
        excludedDisturbed: ctx.excludeDisturbed,
        status: scenarioStatus(comparisons),
        confirmed: null,
      });
    }
    return out;
  } finally {
    wt.remove();
  }
}
