import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { ConfigError, ConfigErrors } from '../errors.js';
import { didYouMean } from '../util/did-you-mean.js';
import { findCycle } from '../util/dag.js';
import { formatSize } from '../util/units.js';
import { workflowSchema, type UserWorkflow } from './schema.js';
import { describeValue, YamlSource, type ConfigSource } from './source.js';
import { validateSource } from './validate.js';

/** A workflow that passed the schema and the graph checks, with its source for locations. */
export interface LoadedWorkflow {
  /** The workflow file; for a definition object, `<dir>/<definition>` (its folder is the workflow's). */
  file: string;
  source: ConfigSource;
  user: UserWorkflow;
}

/** Workflow files larger than this are refused unread (a real one is a few hundred KB at most). */
export const MAX_WORKFLOW_BYTES = 16 * 1024 ** 2;

/** Reads, parses and validates a workflow file. Throws ConfigError(s) naming file, line and key. */
export function loadWorkflowFile(file: string): LoadedWorkflow {
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
  return parseWorkflow(file, text);
}

/** Validates workflow YAML text; `file` is used in error messages. */
export function parseWorkflow(file: string, text: string): LoadedWorkflow {
  return checkWorkflow(file, YamlSource.parse(file, text));
}

/**
 * The schema, then the graph and cache checks, of a source of either kind: a YAML file, or an
 * object (an `ObjectSource`: errors name its key path, `<definition>: tasks[3].agent: …`).
 * `file` stands for the workflow in the resolved config: its folder is where tasks run.
 */
export function checkWorkflow(file: string, source: ConfigSource): LoadedWorkflow {
  if (source.data === null || typeof source.data !== 'object' || Array.isArray(source.data)) {
    throw new ConfigErrors([source.error([], `Expected a map with \`agents:\` and \`tasks:\`, got ${describeValue(source.data)}`)]);
  }
  const user = validateSource(source, workflowSchema);
  checkGraph(source, user);
  checkCacheKeys(source, user);
  return { file, source, user };
}

/** Duplicate ids, unknown agents, unknown dependencies and cycles, all reported together. */
function checkGraph(source: ConfigSource, user: UserWorkflow): void {
  const errors: ConfigError[] = [];
  const agentNames = Object.keys(user.agents);
  const firstIndex = new Map<string, number>();
  user.tasks.forEach((t, i) => {
    const prev = firstIndex.get(t.id);
    if (prev !== undefined) errors.push(source.error(['tasks', i, 'id'], `duplicate task id '${t.id}' (first declared at tasks[${prev}])`));
    else firstIndex.set(t.id, i);
    if (!Object.hasOwn(user.agents, t.agent)) errors.push(source.error(['tasks', i, 'agent'], unknownAgent(t.agent, agentNames)));
  });
  user.tasks.forEach((t, i) => {
    (t.needs ?? []).forEach((dep, j) => {
      if (dep === t.id) errors.push(source.error(['tasks', i, 'needs', j], `task '${t.id}' needs itself`));
      else if (!firstIndex.has(dep)) {
        const hint = didYouMean(dep, firstIndex.keys());
        errors.push(source.error(['tasks', i, 'needs', j], `unknown task '${dep}'${hint ? `; did you mean '${hint}'?` : ''}`));
      }
    });
  });
  if (errors.length === 0) {
    const cycle = findCycle(user.tasks.map((t) => ({ id: t.id, needs: t.needs ?? [] })));
    if (cycle) {
      const i = firstIndex.get(cycle[0]!)!;
      errors.push(source.error(['tasks', i, 'needs'], `dependency cycle: ${cycle.join(' → ')}`));
    }
  }
  if (errors.length > 0) throw new ConfigErrors(errors);
}

/** Globs that would write outside the workflow's folder, route patterns that do not compile, an unknown fallback. */
function checkCacheKeys(source: ConfigSource, user: UserWorkflow): void {
  const errors: ConfigError[] = [];
  user.tasks.forEach((t, i) => {
    for (const key of ['inputs', 'outputs'] as const) {
      (t[key] ?? []).forEach((g, j) => {
        if (isAbsolute(g)) errors.push(source.error(['tasks', i, key, j], `Expected a glob relative to the workflow's folder, got '${g}'`));
        // Restoring outputs writes files: never outside the folder the workflow owns.
        else if (key === 'outputs' && g.split(/[\\/]/).includes('..')) errors.push(source.error(['tasks', i, key, j], `Expected outputs inside the workflow's folder, got '${g}'`));
      });
    }
  });
  for (const [name, a] of Object.entries(user.agents)) {
    (a.route?.patterns ?? []).forEach((p, j) => {
      try {
        new RegExp(p, 'i');
      } catch (e) {
        errors.push(source.error(['agents', name, 'route', 'patterns', j], `Expected a regular expression, got '${p}' (${(e as Error).message})`));
      }
    });
  }
  const fallback = user.routing?.fallback;
  if (fallback !== undefined && !Object.hasOwn(user.agents, fallback)) errors.push(source.error(['routing', 'fallback'], unknownAgent(fallback, Object.keys(user.agents))));
  if (errors.length > 0) throw new ConfigErrors(errors);
}

function unknownAgent(name: string, declared: readonly string[]): string {
  const hint = didYouMean(name, declared);
  return `unknown agent '${name}'${hint ? `; did you mean '${hint}'?` : declared.length ? ` (declared: ${declared.join(', ')})` : ' (no agents are declared)'}`;
}
