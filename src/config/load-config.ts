import { resolve } from 'node:path';
import { GuildError } from '../errors.js';
import type { TaskFunction } from '../executors/function-executor.js';
import { createSystemProbe, type SystemProbe } from '../system/probe.js';
import { parseSize } from '../util/units.js';
import { checkWorkflow, loadBenchFile, loadGatewayFile, loadWorkflowFile, type LoadedFile, type LoadedGatewayFile, type LoadedWorkflow } from './load.js';
import { ObjectSource } from './source.js';
import { resolveConfig, type GatewayConfig, type ResolvedConfig } from './resolve.js';

// Loading and resolving a workflow, from a file or an object: what `guild run` checks before
// anything starts, and what the cache commands read. It sits in config, below the cache and the
// workflow that both use it.

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
  /** MCP servers for the gateway, as in guild.yaml's `mcp:`. */
  mcp?: { servers: Record<string, Record<string, unknown>>; tool_ttl?: string | number };
}

/** What loading reads of `RunWorkflowOptions`: the flags that win over the file, and the folder. */
export interface LoadConfigOptions {
  /** Memory budget: bytes or a size such as `1.5GB`. @default workflow's, else 75% of the effective limit */
  budget?: number | string;
  /** @default workflow's, else instructions.md's, else no cap */
  maxParallel?: number;
  /** Keep running independent tasks after a failure. @default false (fail fast) */
  keepGoing?: boolean;
  /** Run every task and store nothing in the task cache. @default false */
  noCache?: boolean;
  /** For a definition object: the folder tasks run in and `.guild/` lives in. @default process.cwd() */
  dir?: string;
}

/** Loads and resolves without running: what `guild run` checks before anything starts. */
export function loadConfig(input: string | WorkflowDefinition, options: LoadConfigOptions = {}, probe?: SystemProbe): ResolvedConfig {
  return withProbe(probe, (p) => resolveWith(prepareWorkflow(input, options).config, p, options));
}

/** Loads and resolves a file for `guild bench`: a workflow, or a file of command scenarios alone (see loadBenchFile). */
export function loadBenchConfig(file: string, options: LoadConfigOptions = {}, probe?: SystemProbe): ResolvedConfig {
  const loaded = loadBenchFile(file);
  return withProbe(probe, (p) => resolveWith(loaded, p, options));
}

/**
 * Loads and resolves a file for the MCP gateway (`guild mcp serve FILE`): a workflow file with
 * `mcp:` (tasks are not needed) or a client's `.mcp.json` read as it is. Everything a run has
 * besides (budget, governor, pools, cache, telemetry) is resolved the same way; `options.budget`
 * wins over the file's. Config errors are ConfigError(s) naming file, line and key (exit 2).
 */
export function loadGatewayConfig(file: string, options: Pick<LoadConfigOptions, 'budget'> = {}, probe?: SystemProbe): GatewayConfig {
  const loaded = loadGatewayFile(file);
  return withProbe(probe, (p) => resolveWith(loaded, p, options));
}

/** Calls `f` with the given probe, or with one made here and closed here (it keeps /proc files open). */
function withProbe<T>(given: SystemProbe | undefined, f: (probe: SystemProbe) => T): T {
  if (given) return f(given);
  const own = createSystemProbe();
  try {
    return f(own);
  } finally {
    own.close();
  }
}

/** Resolves a loaded workflow with the flags of `options` (a bad `budget` is an `INVALID_OPTION` error). */
export function resolveWith(loaded: LoadedGatewayFile, probe: SystemProbe, options: LoadConfigOptions): GatewayConfig;
export function resolveWith(loaded: LoadedFile, probe: SystemProbe, options: LoadConfigOptions): ResolvedConfig;
export function resolveWith(loaded: LoadedFile, probe: SystemProbe, options: LoadConfigOptions): ResolvedConfig {
  let budgetBytes: number | undefined;
  if (options.budget !== undefined) {
    budgetBytes = parseSize(options.budget);
    if (budgetBytes === undefined || budgetBytes <= 0) {
      throw new GuildError('INVALID_OPTION', `Expected a budget such as 600MB or 1.5GB, got ${JSON.stringify(options.budget)}`);
    }
  }
  return resolveConfig(loaded, probe, {
    ...(budgetBytes !== undefined ? { budgetBytes } : {}),
    ...(options.maxParallel !== undefined ? { maxParallel: options.maxParallel } : {}),
    ...(options.keepGoing !== undefined ? { keepGoing: options.keepGoing } : {}),
    ...(options.noCache ? { noCache: true } : {}),
  });
}

/**
 * Reads a workflow file, or validates a definition object as it is (the same schema and checks;
 * errors name its key path, `<definition>: tasks[3].agent: …`). A definition's task functions
 * are returned apart, by task id; a function anywhere but a task's `run` is a config error.
 */
export function prepareWorkflow(input: string | WorkflowDefinition, options: Pick<LoadConfigOptions, 'dir'>): { config: LoadedWorkflow; functions: Map<string, TaskFunction> } {
  const functions = new Map<string, TaskFunction>();
  if (typeof input === 'string') return { config: loadWorkflowFile(input), functions };
  // A plain copy: whatever else the object holds (a class, a cycle, a getter) is refused here.
  const source = new ObjectSource(input);
  const data = source.data as { tasks?: unknown } | null;
  const tasks = typeof data === 'object' && data !== null && Array.isArray(data.tasks) ? (data.tasks as unknown[]) : [];
  for (const t of tasks) {
    if (typeof t !== 'object' || t === null) continue;
    const task = t as { id?: unknown; run?: unknown };
    if (typeof task.run !== 'function') continue;
    // The schema checks a placeholder command (and the id); the function is reattached by id.
    if (typeof task.id === 'string' && !functions.has(task.id)) functions.set(task.id, task.run as TaskFunction);
    task.run = `<function ${typeof task.id === 'string' ? task.id : '?'}>`;
  }
  const dir = resolve(options.dir ?? process.cwd());
  return { config: checkWorkflow(resolve(dir, '<definition>'), source), functions };
}
