import { loadConfig, prepareWorkflow, resolveWith, type WorkflowDefinition } from '../config/load-config.js';
import type { ResolvedConfig } from '../config/resolve.js';
import type { TaskFunction } from '../executors/function-executor.js';
import { createSystemProbe, type SystemProbe } from '../system/probe.js';
import type { LayeredCache } from '../cache/layered-cache.js';
import type { RunEvent } from './events.js';
import type { RunReport } from './report.js';
import type { RunLockHolder } from '../store/lease.js';
import type { RunExecutors, RunServices } from './execute-options.js';
import type { Clock } from '../supervisor/clock.js';
import type { RunTelemetry } from '../telemetry/run-telemetry.js';
import { runResolved } from './run-resolved.js';

// loadConfig and WorkflowDefinition live in config/load-config.ts (the cache commands use them,
// below the workflow); re-exported here for the callers of this module, as is runResolved.
export { loadConfig, runResolved, type WorkflowDefinition };

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
  /** What starts attempts, by kind (a remote executor, a test's fake). @default Guild's process and function executors */
  executors?: RunExecutors;
  /** Give tasks GUILD_METRICS and read what they report spending. @default true */
  taskMetrics?: boolean;
  /** Time for sampling, retry backoff and every time the run reports (a test's fake clock). @default the real clock */
  clock?: Clock;
  /**
   * Services the tasks use, started before any task under the run's supervisor and budget: the
   * MCP gateway of a workflow with `mcp:` (Guild's `runWorkflow` from the package root passes it).
   * A function is given the resolved config. @default none
   */
  services?: RunServices | ((config: ResolvedConfig) => RunServices | null);
  /** Tasks are placed by distributed workers' admission, not this machine's (see `ExecuteOptions.remoteAdmission`). @default false */
  remoteAdmission?: boolean;
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
    const { config, functions } = prepareWorkflow(input, options);
    return await runResolved(resolveWith(config, probe, options), { ...options, probe }, functions);
  } finally {
    if (!options.probe) probe.close();
  }
}
