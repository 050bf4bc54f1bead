import { resolve } from 'node:path';
import { ConfigError, ConfigErrors } from '../errors.js';
import { didYouMean } from '../util/did-you-mean.js';
import { formatBytes } from '../util/units.js';
import { DEFAULTS } from './defaults.js';
import { mcpSchema, mcpServerSchema, mcpServersSchema, type McpIsolation, type UserMcp, type UserMcpServer } from './schema.js';
import { describeValue, type ConfigSource, type KeyPath } from './source.js';
import { validateSource } from './validate.js';

// The MCP servers a file declares, for the gateway: `mcp: { servers: … }` in a workflow file, or
// `mcpServers` in a client's `.mcp.json` read as it is. Both are checked here with the same
// server schema; errors name the file, the line and the key as the user wrote it
// (`mcp.servers.serena.command`, `mcpServers.serena.command`).

/** One MCP server with every default applied. Sizes in bytes, durations in ms. */
export interface ResolvedMcpServer {
  readonly name: string;
  /** `${VAR}` and `${VAR:-default}` expanded (as Claude Code does in `.mcp.json`). */
  readonly command: string;
  readonly args: readonly string[];
  /** Added to the gateway's environment; a map with no prototype. */
  readonly env: Readonly<Record<string, string>>;
  /** Absolute; null = the project's folder. */
  readonly cwd: string | null;
  readonly memoryBytes: number;
  /** Recycled above this RSS; null = no limit. */
  readonly limitBytes: number | null;
  /** Per (server, project), or per session for `per-session`. `concurrency`: calls in flight per instance, null = no bound. */
  readonly instances: { readonly min: number; readonly max: number; readonly concurrency: number | null };
  readonly idleTimeoutMs: number;
  readonly isolation: McpIsolation;
  /** Tools listed in `cacheable`, by the name the server gives them; `paths`: arguments that name files. */
  readonly cacheable: readonly { readonly tool: string; readonly paths: readonly string[] }[];
  /** Final: names are `<server>__<name>` when true (default: true with several servers, false with one). */
  readonly prefix: boolean;
  /** For the response-time target (DEFAULTS.kindTargetsMs); null: none. */
  readonly kind: 'code-analysis' | 'knowledge' | 'coordination' | 'file-ops' | null;
}

/** The gateway's backends. */
export interface ResolvedMcp {
  /** In the order the file declares them. */
  readonly servers: readonly ResolvedMcpServer[];
  readonly toolTtlMs: number;
}

/** The servers of a file after the schema, with where they stand in it. */
export interface LoadedMcp {
  readonly servers: Readonly<Record<string, UserMcpServer>>;
  readonly toolTtlMs: number | undefined;
  /** Where the servers map stands: `['mcp', 'servers']` or `['mcpServers']`. */
  readonly serversPath: KeyPath;
  /** `workflow`: an `mcp:` section; `client`: a client's `.mcp.json`. */
  readonly format: 'workflow' | 'client';
}

/** Transports of remote servers as clients write them (`type:`); Guild runs only stdio servers for now. */
const REMOTE_TYPES = new Set(['http', 'sse', 'streamable-http', 'streamableHttp', 'streamable_http', 'ws', 'websocket']);
/** Keys only remote servers have. */
const REMOTE_KEYS = ['url', 'headers'] as const;
const SERVER_KEYS = Object.keys(mcpServerSchema.shape);

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What makes `entry` a remote server, for the message; null for a stdio server (or not a map). */
function remoteOf(entry: unknown): { key: string; what: string } | null {
  if (!isMap(entry)) return null;
  const type = Object.hasOwn(entry, 'type') ? entry.type : undefined;
  const remoteType = typeof type === 'string' && REMOTE_TYPES.has(type) ? type : null;
  for (const key of REMOTE_KEYS) {
    if (Object.hasOwn(entry, key)) return { key: remoteType ? 'type' : key, what: remoteType ? `type: ${remoteType}` : `\`${key}\`` };
  }
  return remoteType ? { key: 'type', what: `type: ${remoteType}` } : null;
}

const REMOTE_TEXT = 'only stdio servers (command, args, env) are supported for now';

/**
 * Checks the `mcp:` section of a workflow file (at `path`, usually `['mcp']`). Strict like the
 * rest of the file: an unknown key is an error, and so is a remote server (`url`, `type: http`),
 * with a message that says only stdio servers are supported. Problems are added to `errors`.
 */
export function checkMcpSection(source: ConfigSource, raw: unknown, path: KeyPath, errors: ConfigError[]): LoadedMcp | null {
  if (!isMap(raw)) {
    errors.push(source.error(path, `Expected a map with \`servers:\` (and \`tool_ttl:\`), got ${describeValue(raw)}`));
    return null;
  }
  const serversPath = [...path, 'servers'];
  let data: unknown = raw;
  let remote = 0;
  const servers = Object.hasOwn(raw, 'servers') ? raw.servers : undefined;
  if (isMap(servers)) {
    const kept = nameMap<unknown>();
    for (const [name, entry] of Object.entries(servers)) {
      const r = remoteOf(entry);
      if (r) {
        remote++;
        errors.push(source.error([...serversPath, name, r.key], `${REMOTE_TEXT}; '${name}' is a remote server (${r.what}): connect your client to it directly`));
      } else kept[name] = entry;
    }
    data = Object.assign(nameMap<unknown>(), raw, { servers: kept });
  }
  let user: UserMcp;
  try {
    user = validateSource(source, mcpSchema, data, path);
  } catch (e) {
    if (!(e instanceof ConfigErrors)) throw e;
    errors.push(...e.errors);
    return null;
  }
  if (Object.keys(user.servers).length === 0) {
    if (remote === 0) errors.push(source.error(serversPath, 'Expected at least one server, such as `serena: { command: uvx, args: [...] }`'));
    return null;
  }
  return { servers: user.servers, toolTtlMs: user.tool_ttl, serversPath, format: 'workflow' };
}

/**
 * Reads `mcpServers` of a client's `.mcp.json` (at `path`) as the gateway's servers, with
 * Guild's defaults. The file belongs to a client, which may know more than Guild does, so what
 * Guild does not run is set aside with a warning instead of refused: a remote server (`url`,
 * `type: http|sse`), an entry with `disabled: true` (Cline, Roo Code), and keys Guild does not
 * know (`autoApprove`, `timeout`, …). Guild's own keys (`memory`, `instances`, …) may be added to
 * an entry. Every value Guild reads is checked as in a workflow file. Warnings are located
 * like errors (`file:line:col: key: …`).
 */
export function checkClientServers(source: ConfigSource, raw: unknown, path: KeyPath, errors: ConfigError[], warnings: ConfigError[]): LoadedMcp | null {
  if (!isMap(raw)) {
    errors.push(source.error(path, `Expected a map of servers, such as "serena": { "command": "uvx", "args": [...] }, got ${describeValue(raw)}`));
    return null;
  }
  const warn = (p: KeyPath, message: string): void => {
    warnings.push(source.error(p, message, { key: true }));
  };
  const kept = nameMap<unknown>();
  let skipped = 0;
  for (const [name, entry] of Object.entries(raw)) {
    const r = remoteOf(entry);
    if (r) {
      skipped++;
      warn([...path, name], `skipped: ${REMOTE_TEXT}, and this is a remote server (${r.what}); your client can keep connecting to it directly`);
      continue;
    }
    if (isMap(entry) && Object.hasOwn(entry, 'disabled') && entry.disabled === true) {
      skipped++;
      warn([...path, name], 'skipped: disabled: true');
      continue;
    }
    if (!isMap(entry)) {
      kept[name] = entry; // the schema says what it should be
      continue;
    }
    const own = nameMap<unknown>();
    for (const [key, value] of Object.entries(entry)) {
      if (SERVER_KEYS.includes(key)) own[key] = value;
      else if (key !== 'disabled') {
        const hint = didYouMean(key, SERVER_KEYS);
        warn([...path, name, key], `ignored: Guild does not read this key${hint ? `; did you mean '${hint}'?` : ''}`);
      }
    }
    kept[name] = own;
  }
  let servers: Record<string, UserMcpServer>;
  try {
    servers = validateSource(source, mcpServersSchema, kept, path);
  } catch (e) {
    if (!(e instanceof ConfigErrors)) throw e;
    errors.push(...e.errors);
    return null;
  }
  if (Object.keys(servers).length === 0) {
    errors.push(source.error(path, `Expected at least one stdio server (a \`command\`)${skipped ? `; ${skipped} skipped (see the warnings above)` : ''}`, { key: true }));
    return null;
  }
  return { servers, toolTtlMs: undefined, serversPath: path, format: 'client' };
}

/** `${VAR}` and `${VAR:-default}`, as Claude Code expands them in `.mcp.json`; `$VAR` is left as written. */
const VAR_RE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Applies the defaults to checked servers: `${VAR}` expanded from `env` in command, args, env
 * values and cwd (an unset variable without a default is an error), cwd made absolute against
 * `dir` (the file's folder), `limit >= memory`, `instances.min <= max`, `cacheable` without a
 * tool twice. Problems are added to `errors`.
 */
export function resolveMcp(
  loaded: LoadedMcp,
  source: ConfigSource,
  dir: string,
  errors: ConfigError[],
  env: NodeJS.ProcessEnv = process.env,
): ResolvedMcp {
  const names = Object.keys(loaded.servers);
  const servers: ResolvedMcpServer[] = [];
  for (const name of names) {
    const s = loaded.servers[name]!;
    const at = (...rest: (string | number)[]): KeyPath => [...loaded.serversPath, name, ...rest];
    const expand = (text: string, path: KeyPath): string =>
      text.replace(VAR_RE, (whole, v: string, fallback: string | undefined) => {
        const value = Object.hasOwn(env, v) ? env[v] : undefined;
        if (value !== undefined && value !== '') return value;
        if (fallback !== undefined) return fallback;
        if (value === '') return '';
        errors.push(source.error(path, `names an unset environment variable ${whole} (give a default: \${${v}:-value})`));
        return whole;
      });
    const memoryBytes = s.memory ?? DEFAULTS.mcp.memoryBytes;
    const limitBytes = s.limit ?? null;
    if (limitBytes !== null && limitBytes < memoryBytes) {
      errors.push(source.error(at('limit'), `Expected a limit >= memory (${formatBytes(memoryBytes)}${s.memory === undefined ? ', the default' : ''}), got ${formatBytes(limitBytes)}`));
    }
    const i = s.instances ?? {};
    const min = i.min ?? DEFAULTS.mcp.instances.min;
    const max = i.max ?? Math.max(DEFAULTS.mcp.instances.max, min);
    if (min > max) errors.push(source.error(at('instances', 'min'), `Expected instances.min <= max (${max}), got ${min}`));
    const cacheable: { tool: string; paths: string[] }[] = [];
    const seen = new Map<string, number>();
    (s.cacheable ?? []).forEach((c, j) => {
      const entry = typeof c === 'string' ? { tool: c, paths: [] } : { tool: c.tool, paths: [...new Set(c.paths ?? [])] };
      const first = seen.get(entry.tool);
      if (first !== undefined) errors.push(source.error(at('cacheable', j), `tool '${entry.tool}' is listed twice (first at cacheable[${first}])`));
      else {
        seen.set(entry.tool, j);
        cacheable.push(entry);
      }
    });
    const serverEnv = nameMap<string>();
    for (const [k, v] of Object.entries(s.env ?? {})) serverEnv[k] = expand(v, at('env', k));
    servers.push({
      name,
      command: expand(s.command, at('command')),
      args: (s.args ?? []).map((a, j) => expand(a, at('args', j))),
      env: serverEnv,
      cwd: s.cwd === undefined ? null : resolve(dir, expand(s.cwd, at('cwd'))),
      memoryBytes,
      limitBytes,
      instances: { min, max, concurrency: i.concurrency ?? null },
      idleTimeoutMs: s.idle_timeout ?? DEFAULTS.mcp.idleTimeoutMs,
      isolation: s.isolation ?? DEFAULTS.mcp.isolation,
      cacheable,
      prefix: s.prefix ?? names.length > 1,
      kind: s.kind ?? null,
    });
  }
  return { servers, toolTtlMs: loaded.toolTtlMs ?? DEFAULTS.mcp.toolTtlMs };
}

/** A map keyed by user-chosen names, with no prototype. */
function nameMap<V>(): Record<string, V> {
  return Object.create(null) as Record<string, V>;
}
