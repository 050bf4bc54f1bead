import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { ConfigError, ConfigErrors } from '../errors.js';
import { didYouMean } from '../util/did-you-mean.js';
import { findCycle } from '../util/dag.js';
import { formatSize } from '../util/units.js';
import { checkClientServers, checkMcpSection, type LoadedMcp } from './mcp.js';
import { fileSchema, type UserFile, type UserWorkflow } from './schema.js';
import { describeValue, YamlSource, type ConfigSource } from './source.js';
import { validateSource } from './validate.js';

/** A Guild file that passed the schema and the graph checks, with its source for locations. */
export interface LoadedFile {
  /** The file; for a definition object, `<dir>/<definition>` (its folder is the workflow's). */
  file: string;
  source: ConfigSource;
  /** Agents and tasks may be absent (a file for the gateway). */
  user: UserFile;
  /** The MCP servers it declares (`mcp:`, or a client's `mcpServers`); null when none. */
  mcp: LoadedMcp | null;
  /** Located notes that do not stop loading (keys of a client's `.mcp.json` Guild does not read). */
  warnings: readonly string[];
}

/** A workflow to run: agents and tasks are there. */
export interface LoadedWorkflow extends LoadedFile {
  user: UserWorkflow;
}

/** A file for the gateway: its MCP servers are there. */
export interface LoadedGatewayFile extends LoadedFile {
  mcp: LoadedMcp;
}

/** Workflow files larger than this are refused unread (a real one is a few hundred KB at most). */
export const MAX_WORKFLOW_BYTES = 16 * 1024 ** 2;

/** Reads, parses and validates a workflow file to run. Throws ConfigError(s) naming file, line and key. */
export function loadWorkflowFile(file: string): LoadedWorkflow {
  return parseWorkflow(file, readConfigText(file));
}

/**
 * Reads, parses and validates a file for the MCP gateway: a workflow file with `mcp:` (agents
 * and tasks optional, checked when present), or a client's `.mcp.json` (a `*.json` file with
 * `mcpServers`), read as it is. Throws ConfigError(s) naming file, line and key.
 */
export function loadGatewayFile(file: string): LoadedGatewayFile {
  return checkFile(file, YamlSource.parse(file, readConfigText(file)), 'gateway') as LoadedGatewayFile;
}

/** The text of a Guild file, at most MAX_WORKFLOW_BYTES. */
function readConfigText(file: string): string {
  const abs = resolve(file);
  let text: string;
  let fd: number | undefined;
  try {
    fd = openSync(abs, 'r');
    const tooBig = (bytes: number): ConfigError =>
      new ConfigError({ file, line: 1 }, `Expected a workflow file of at most ${MAX_WORKFLOW_BYTES / 1024 ** 2} MB, got ${formatSize(bytes)}`);
    const st = fstatSync(fd);
    if (st.isFile() && st.size > MAX_WORKFLOW_BYTES) throw tooBig(st.size);
    text = readFileSync(fd, 'utf8'); // a pipe (/dev/stdin) has no size to check first
    if (text.length > MAX_WORKFLOW_BYTES) throw tooBig(text.length);
  } catch (cause) {
    if (cause instanceof ConfigError) throw cause;
    throw new ConfigError({ file }, `cannot read the workflow file (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, {
      cause,
      code: 'CONFIG_NOT_FOUND',
    });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return text;
}

/** Validates workflow YAML text to run; `file` is used in error messages. */
export function parseWorkflow(file: string, text: string): LoadedWorkflow {
  return checkWorkflow(file, YamlSource.parse(file, text));
}

/**
 * The schema, then the graph and cache checks, of a workflow to run from a source of either
 * kind: a YAML file, or an object (an `ObjectSource`: errors name its key path,
 * `<definition>: tasks[3].agent: …`). `file` stands for the workflow in the resolved config: its
 * folder is where tasks run. A file without tasks is an error that says so.
 */
export function checkWorkflow(file: string, source: ConfigSource): LoadedWorkflow {
  return checkFile(file, source, 'run') as LoadedWorkflow;
}

/**
 * Reads, parses and validates a file for `guild bench`: a workflow, or a file whose `bench:`
 * scenarios are all commands (`run`), which needs no tasks. Throws ConfigError(s) naming file,
 * line and key.
 */
export function loadBenchFile(file: string): LoadedFile {
  return checkFile(file, YamlSource.parse(file, readConfigText(file)), 'bench');
}

/** A client's MCP configuration: a `*.json` file whose top level has `mcpServers` (Claude Code's `.mcp.json`, Claude Desktop's config, …). */
function isClientConfig(file: string, data: Record<string, unknown>): boolean {
  return /\.json$/i.test(file) && Object.hasOwn(data, 'mcpServers');
}

/** The checks for a run (agents and tasks required) or for the gateway (`mcp:` required). */
function checkFile(file: string, source: ConfigSource, purpose: 'run' | 'bench' | 'gateway'): LoadedFile {
  const data = source.data;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    const what = purpose !== 'gateway' ? '`agents:` and `tasks:`' : '`mcp:` (or a client\'s `mcpServers`)';
    throw new ConfigErrors([source.error([], `Expected a map with ${what}, got ${describeValue(data)}`)]);
  }
  const map = data as Record<string, unknown>;
  const errors: ConfigError[] = [];

  if (isClientConfig(source.file, map)) {
    if (purpose !== 'gateway') {
      throw new ConfigErrors([
        source.error(['mcpServers'], "no tasks to run: this is a client's MCP configuration (`mcpServers`); serve its servers with `guild mcp serve FILE`", { key: true }),
      ]);
    }
    const notes: ConfigError[] = [];
    for (const key of Object.keys(map)) {
      if (key !== 'mcpServers') notes.push(source.error([key], "ignored: a client's MCP configuration is read for `mcpServers` only", { key: true }));
    }
    const mcp = checkClientServers(source, map.mcpServers, ['mcpServers'], errors, notes);
    if (errors.length > 0) throw new ConfigErrors(errors);
    // In file order, as errors are.
    notes.sort((a, b) => (a.location.line ?? 0) - (b.location.line ?? 0) || (a.location.column ?? 0) - (b.location.column ?? 0));
    return { file, source, user: Object.create(null) as UserFile, mcp, warnings: notes.map((n) => n.message) };
  }

  let checked: Record<string, unknown> = map;
  if (Object.hasOwn(map, 'mcpServers')) {
    // A client's key in a Guild file: say where the servers go instead of a bare "unknown key".
    errors.push(source.error(['mcpServers'], "unknown key: declare MCP servers under `mcp: { servers: … }` (`mcpServers` is read only from a client's `.json` file)", { key: true }));
    checked = Object.assign(Object.create(null) as Record<string, unknown>, map);
    delete checked.mcpServers;
  }
  let user: UserFile | undefined;
  try {
    user = validateSource(source, fileSchema, checked);
  } catch (e) {
    if (!(e instanceof ConfigErrors)) throw e;
    errors.push(...e.errors);
  }
  const mcp = Object.hasOwn(map, 'mcp') ? checkMcpSection(source, map.mcp, ['mcp'], errors) : null;
  const has = (key: string): boolean => Object.hasOwn(map, key) && map[key] !== undefined;
  // Scenarios that all run commands need no tasks (resolveBench checks each scenario).
  const benchOnly = purpose === 'bench' && !has('tasks') && !has('agents') && typeof map.bench === 'object' && map.bench !== null && Object.hasOwn(map.bench, 'scenarios');
  if (purpose !== 'gateway' && !benchOnly) {
    if (!has('tasks')) {
      const why = has('mcp') ? '; its `mcp:` servers are served by `guild mcp serve FILE`' : '';
      errors.push(source.error(['tasks'], `no tasks to run: \`guild run\` needs \`tasks:\` (and \`agents:\`)${why}`, { key: true }));
    } else if (!has('agents')) errors.push(source.error(['agents'], 'required key is missing (expected record)'));
  } else if (purpose === 'gateway' && !has('mcp')) {
    errors.push(source.error(['mcp'], 'no MCP servers: the gateway needs `mcp: { servers: { <name>: { command, args } } }`', { key: true }));
  }
  if (errors.length > 0 || user === undefined) throw new ConfigErrors(errors);
  if (user.tasks !== undefined) {
    checkGraph(source, user);
    checkCacheKeys(source, user);
  }
  return { file, source, user, mcp, warnings: [] };
}

/** Duplicate ids, unknown agents, unknown dependencies and cycles, all reported together. */
function checkGraph(source: ConfigSource, user: UserFile): void {
  const errors: ConfigError[] = [];
  const agents = user.agents ?? {};
  const tasks = user.tasks ?? [];
  const agentNames = Object.keys(agents);
  const firstIndex = new Map<string, number>();
  tasks.forEach((t, i) => {
    const prev = firstIndex.get(t.id);
    if (prev !== undefined) errors.push(source.error(['tasks', i, 'id'], `duplicate task id '${t.id}' (first declared at tasks[${prev}])`));
    else firstIndex.set(t.id, i);
    if (!Object.hasOwn(agents, t.agent)) errors.push(source.error(['tasks', i, 'agent'], unknownAgent(t.agent, agentNames)));
  });
  tasks.forEach((t, i) => {
    (t.needs ?? []).forEach((dep, j) => {
      if (dep === t.id) errors.push(source.error(['tasks', i, 'needs', j], `task '${t.id}' needs itself`));
      else if (!firstIndex.has(dep)) {
        const hint = didYouMean(dep, firstIndex.keys());
        errors.push(source.error(['tasks', i, 'needs', j], `unknown task '${dep}'${hint ? `; did you mean '${hint}'?` : ''}`));
      }
    });
  });
  if (errors.length === 0) {
    const cycle = findCycle(tasks.map((t) => ({ id: t.id, needs: t.needs ?? [] })));
    if (cycle) {
      const i = firstIndex.get(cycle[0]!)!;
      errors.push(source.error(['tasks', i, 'needs'], `dependency cycle: ${cycle.join(' → ')}`));
    }
  }
  if (errors.length > 0) throw new ConfigErrors(errors);
}

/** Globs that would write outside the workflow's folder, route patterns that do not compile, an unknown fallback. */
function checkCacheKeys(source: ConfigSource, user: UserFile): void {
  const errors: ConfigError[] = [];
  const agents = user.agents ?? {};
  (user.tasks ?? []).forEach((t, i) => {
    for (const key of ['inputs', 'outputs'] as const) {
      (t[key] ?? []).forEach((g, j) => {
        if (isAbsolute(g)) errors.push(source.error(['tasks', i, key, j], `Expected a glob relative to the workflow's folder, got '${g}'`));
        // Restoring outputs writes files: never outside the folder the workflow owns.
        else if (key === 'outputs' && g.split(/[\\/]/).includes('..')) errors.push(source.error(['tasks', i, key, j], `Expected outputs inside the workflow's folder, got '${g}'`));
      });
    }
  });
  for (const [name, a] of Object.entries(agents)) {
    (a.route?.patterns ?? []).forEach((p, j) => {
      try {
        new RegExp(p, 'i');
      } catch (e) {
        errors.push(source.error(['agents', name, 'route', 'patterns', j], `Expected a regular expression, got '${p}' (${(e as Error).message})`));
      }
    });
  }
  const fallback = user.routing?.fallback;
  if (fallback !== undefined && !Object.hasOwn(agents, fallback)) errors.push(source.error(['routing', 'fallback'], unknownAgent(fallback, Object.keys(agents))));
  if (errors.length > 0) throw new ConfigErrors(errors);
}

function unknownAgent(name: string, declared: readonly string[]): string {
  const hint = didYouMean(name, declared);
  return `unknown agent '${name}'${hint ? `; did you mean '${hint}'?` : declared.length ? ` (declared: ${declared.join(', ')})` : ' (no agents are declared)'}`;
}
