import { resolve } from 'node:path';
import { stringify } from 'yaml';
import { loadWorkflowFile, parseWorkflow, type LoadedWorkflow } from '../config/load.js';
import { resolveConfig, type ResolvedConfig } from '../config/resolve.js';
import { GuildError } from '../errors.js';
import type { TaskFunction } from '../executors/function-executor.js';
import { createSystemProbe, type SystemProbe } from '../system/probe.js';
import { parseSize } from '../util/units.js';
import type { LayeredCache } from '../cache/layered-cache.js';
import type { RunEvent } from './events.js';
import type { RunReport } from './report.js';
import type { RunLockHolder } from '../store/lease.js';
import { executeWorkflow } from './run.js';
import { RunTelemetry } from '../telemetry/run-telemetry.js';

/** A workflow given as an object: the keys of guild.yaml; a task's `run` may be an async function. */
export interface WorkflowDefinition {
  name?: string;
  budget?: string | number;
  max_parallel?: number;
  keep_going?: boolean;
  sample_interval?: string | number;
  kill_grace?: string | number;
  aging?: string | number;
  starvation_limit?: string | number;
  agents: Record<string, Record<string, unknown>>;
  tasks: (Record<string, unknown> & { id: string; agent: string; run: string | TaskFunction })[];
}

/** Options of `runWorkflow`. Flags given here win over the file and instructions.md. */
export interface RunWorkflowOptions {
  /** Memory budget: bytes or a size such as `1.5GB`. @default workflow's, else 75% of the effective limit */
  budget?: number | string;
  /** @default workflow's, else instructions.md's, else no cap */
  maxParallel?: number;
  /** Keep running independent tasks after a failure. @default false (fail fast) */
  keepGoing?: boolean;
  /** Run every task and store nothing in the task cache. @default false */
  noCache?: boolean;
  /** Aborting cancels queued tasks and kills running trees; the report says `interrupted`. */
  signal?: AbortSignal;
  /** Every event of the run, synchronously. */
  onEvent?: (event: RunEvent) => void;
  /** @default the machine's probe (cgroup v2, v1, /proc/meminfo) */
  probe?: SystemProbe;
  /** Record history in `<dir>/.guild/guild.db`. @default true */
  store?: boolean;
  /** For a definition object: the folder tasks run in and `.guild/` lives in. @default process.cwd() */
  dir?: string;
  /** The cache task results are memoized in (it is flushed, not closed). @default the workflow's own, per its `cache:` config */
  cache?: LayeredCache;
  /**
   * While another live run holds the folder's run lock (its store): wait for it to end (true), or
   * reject at once with `RunLockedError`, code LOCKED (false). A run whose owner died is taken
   * over at once, whatever this says. @default true
   */
  wait?: boolean;
  /** Called once when the run has to wait for the folder's run lock (to say so). */
  onWait?: (holder: RunLockHolder) => void;
  /**
   * KPIs, alerts and history: `false` turns them off for this run; a `RunTelemetry` you made (to
   * serve a dashboard from it) is fed and finished, not closed. @default on, per the workflow's `telemetry.enabled`
   */
  telemetry?: boolean | RunTelemetry;
}

/**
 * Loads, validates and runs a workflow. Resolves with the run's report whatever the tasks did;
 * rejects only on bad configuration (a `ConfigError`/`ConfigErrors`, code CONFIG_INVALID) or
 * an unusable store.
 *
 * @example
 * const report = await runWorkflow('guild.yaml', { budget: '2GB' });
 * if (!report.ok) console.log(report.tasks.filter((t) => t.status !== 'succeeded'));
 */
export async function runWorkflow(input: string | WorkflowDefinition, options: RunWorkflowOptions = {}): Promise<RunReport> {
  const probe = options.probe ?? createSystemProbe();
  try {
    const { config, functions } = prepare(input, options);
    return await runResolved(resolveWith(config, probe, options), { ...options, probe }, functions);
  } finally {
    if (!options.probe) probe.close();
  }
}

/**
 * Runs a configuration that `loadConfig` already resolved (what `guild run` does, so that every
 * config error surfaces before anything starts, and the file is read once).
 */
export async function runResolved(config: ResolvedConfig, options: Omit<RunWorkflowOptions, 'budget' | 'maxParallel' | 'keepGoing' | 'noCache' | 'dir'> & { probe: SystemProbe }, functions?: ReadonlyMap<string, TaskFunction>): Promise<RunReport> {
  const given = options.telemetry instanceof RunTelemetry ? options.telemetry : null;
  const telemetry = given ?? (options.telemetry !== false && config.telemetry.enabled ? new RunTelemetry(config, { store: options.store !== false }) : null);
  const user = options.onEvent;
  const onEvent = telemetry
    ? (e: RunEvent): void => {
        telemetry.onEvent(e);
        user?.(e);
      }
    : user;
  try {
    const report = await executeWorkflow(config, {
      probe: options.probe,
      ...(functions ? { functions } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(onEvent ? { onEvent } : {}),
      ...(options.store !== undefined ? { store: options.store } : {}),
      ...(options.cache ? { cache: options.cache } : {}),
      ...(options.wait !== undefined ? { wait: options.wait } : {}),
      ...(options.onWait ? { onWait: options.onWait } : {}),
    });
    return telemetry ? await telemetry.finish(report) : report;
  } finally {
    if (telemetry && !given) telemetry.close();
  }
}

/** Loads and resolves without running: what `guild run` checks before anything starts. */
export function loadConfig(input: string | WorkflowDefinition, options: RunWorkflowOptions = {}, probe?: SystemProbe): ResolvedConfig {
  if (probe) return resolveWith(prepare(input, options).config, probe, options);
  // A probe made here is closed here (it keeps /proc files open).
  const own = createSystemProbe();
  try {
    return resolveWith(prepare(input, options).config, own, options);
  } finally {
    own.close();
  }
}

function resolveWith(loaded: LoadedWorkflow, probe: SystemProbe, options: RunWorkflowOptions): ResolvedConfig {
  let budgetBytes: number | undefined;
  if (options.budget !== undefined) {
    budgetBytes = parseSize(options.budget);
    if (budgetBytes === undefined || budgetBytes <= 0) {
      throw new GuildError('USAGE', `Expected a budget such as 600MB or 1.5GB, got ${JSON.stringify(options.budget)}`);
    }
  }
  return resolveConfig(loaded, probe, {
    ...(budgetBytes !== undefined ? { budgetBytes } : {}),
    ...(options.maxParallel !== undefined ? { maxParallel: options.maxParallel } : {}),
    ...(options.keepGoing !== undefined ? { keepGoing: options.keepGoing } : {}),
    ...(options.noCache ? { noCache: true } : {}),
  });
}

function prepare(input: string | WorkflowDefinition, options: RunWorkflowOptions): { config: LoadedWorkflow; functions: Map<string, TaskFunction> } {
  const functions = new Map<string, TaskFunction>();
  if (typeof input === 'string') return { config: loadWorkflowFile(input), functions };
  // Functions cannot live in YAML: validate a copy with a placeholder command, then reattach them.
  const copy = {
    ...input,
    tasks: input.tasks.map((t) => {
      if (typeof t.run !== 'function') return t;
      functions.set(t.id, t.run);
      return { ...t, run: `<function ${t.id}>` };
    }),
  };
  const dir = resolve(options.dir ?? process.cwd());
  const loaded = parseWorkflow(resolve(dir, '<definition>'), stringify(copy));
  return { config: loaded, functions };
}
