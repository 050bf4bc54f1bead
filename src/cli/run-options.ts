import { DEFAULTS } from '../config/defaults.js';

/**
 * The options of `guild run`, once: commander's definition (run-definition.ts) and the plain
 * parser bin/guild.js uses for an ordinary command line (parseRunArgs) both read this table, so
 * that a waiting run need not load commander and the child_process it requires (~2 MB of its RSS;
 * bench/startup.ts). Whatever the plain parser does not take as it is (help, an unknown or
 * malformed option, a value it cannot parse) goes to commander, which says what is wrong as always.
 */
export interface RunOpts {
  budget?: string;
  maxParallel?: number;
  keepGoing?: boolean;
  cache: boolean;
  json?: boolean;
  progress: string;
  dashboard?: number | true;
  host?: string;
  token?: string;
  dashboardLinger?: number;
  telemetry: boolean;
  wait: boolean;
  redis?: string;
}

/** One option as commander spells it: `--name`, `--name <value>`, `--name [value]` or `--no-name`. */
export interface RunOptionSpec {
  flags: string;
  description: string;
  /** Turns the value into the option's; throws (a RangeError) with what was expected. */
  parse?: (value: string) => unknown;
  choices?: readonly string[];
  default?: string;
}

/** A whole number >= 1 (`--max-parallel`). */
export function parsePositiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`Expected a whole number >= 1, got '${v}'.`);
  return n;
}

/** A TCP port (`--dashboard`, `--port`). */
export function parsePort(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new RangeError(`Expected a port from 0 to 65535, got '${v}'.`);
  return n;
}

/** A number >= 0 (`--dashboard-linger`). */
export function parseNonNegative(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new RangeError(`Expected a number >= 0, got '${v}'.`);
  return n;
}

const { host: DASHBOARD_HOST, port: DASHBOARD_PORT } = DEFAULTS.dashboard;

export const RUN_OPTIONS: readonly RunOptionSpec[] = [
  { flags: '--budget <size>', description: 'memory budget for agents, e.g. 1.5GB (default: workflow, instructions.md, else 75% of the effective limit)' },
  { flags: '--max-parallel <n>', description: 'at most N tasks at once', parse: parsePositiveInt },
  { flags: '--keep-going', description: 'keep running independent tasks after a failure' },
  { flags: '--no-cache', description: 'run every task and store nothing (task memoization off for this run)' },
  { flags: '--json', description: 'print one JSON document with the results on stdout (progress goes to stderr)' },
  { flags: '--progress <mode>', description: 'progress display', choices: ['auto', 'tty', 'plain', 'none'], default: 'auto' },
  { flags: '--dashboard [port]', description: `serve the live dashboard, /metrics and the API (default port ${DASHBOARD_PORT})`, parse: parsePort },
  { flags: '--host <address>', description: `address the dashboard binds (default ${DASHBOARD_HOST}; any other needs a token)` },
  { flags: '--token <token>', description: 'token every dashboard request must carry (default: $GUILD_DASHBOARD_TOKEN)' },
  { flags: '--dashboard-linger <seconds>', description: 'keep serving the dashboard this long after the run ends', parse: parseNonNegative },
  { flags: '--no-telemetry', description: 'no KPIs, alerts or history for this run' },
  { flags: '--no-wait', description: 'if another run in this folder is still going, exit 1 (LOCKED) instead of waiting for it' },
  { flags: '--redis <url>', description: "run the tasks on guild workers through BullMQ on this Redis (default: the file's distributed.redis; needs GUILD_CLUSTER_KEY)" },
];

interface Parsed {
  name: string;
  key: string;
  kind: 'flag' | 'negated' | 'value' | 'optional-value';
  spec: RunOptionSpec;
}

/** `--dashboard-linger <seconds>` → name `--dashboard-linger`, key `dashboardLinger`, a value. */
function parsedSpec(spec: RunOptionSpec): Parsed {
  const [name, arg] = spec.flags.split(' ') as [string, string | undefined];
  const negated = name.startsWith('--no-');
  const key = name.slice(negated ? 5 : 2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  const kind = negated ? 'negated' : arg === undefined ? 'flag' : arg.startsWith('<') ? 'value' : 'optional-value';
  return { name, key, kind, spec };
}

const BY_NAME = new Map(RUN_OPTIONS.map((s) => [parsedSpec(s).name, parsedSpec(s)]));

/**
 * `guild run`'s arguments (after `run`) as commander would give them, or null for anything it
 * does not take as it is: help, an unknown or short option, `--`, a missing or malformed value,
 * no file or two. Null sends the command line to commander.
 */
export function parseRunArgs(args: readonly string[]): { file: string; opts: RunOpts } | null {
  const opts: Record<string, unknown> = {};
  for (const p of BY_NAME.values()) {
    if (p.kind === 'negated') opts[p.key] = true;
    else if (p.spec.default !== undefined) opts[p.key] = p.spec.default;
  }
  let file: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('-')) {
      if (file !== undefined) return null;
      file = a;
      continue;
    }
    const eq = a.indexOf('=');
    const p = BY_NAME.get(eq === -1 ? a : a.slice(0, eq));
    if (p === undefined) return null;
    let value = eq === -1 ? undefined : a.slice(eq + 1);
    if (p.kind === 'flag' || p.kind === 'negated') {
      if (value !== undefined) return null;
      opts[p.key] = p.kind === 'flag';
      continue;
    }
    if (value === undefined) {
      const next = args[i + 1];
      if (next !== undefined && !next.startsWith('-')) {
        value = next;
        i++;
      } else if (p.kind === 'value') return null;
    }
    if (value === undefined) {
      opts[p.key] = true; // `--dashboard` alone
      continue;
    }
    if (p.spec.choices && !p.spec.choices.includes(value)) return null;
    try {
      opts[p.key] = p.spec.parse ? p.spec.parse(value) : value;
    } catch {
      return null;
    }
  }
  return file === undefined ? null : { file, opts: opts as unknown as RunOpts };
}
