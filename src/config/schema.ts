import { z } from 'zod';
import { formatDuration, MAX_DURATION_MS, parseDuration, parseSize } from '../util/units.js';
import { availableCodecs, CODEC_NAMES, HAS_ZSTD, LEVEL_RANGE } from './compression.js';

/** Task priorities, most urgent first. */
export const PRIORITIES = ['critical', 'high', 'medium', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];

const size = z.union([z.number(), z.string()], { error: 'a size such as 256MB' }).transform((v, ctx) => {
  const n = parseSize(v);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `Expected a size such as 256MB, 1.5GB or 512MiB, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return n;
});

/** Durations a timer can wait: up to 2^31 − 1 ms (Node fires a longer `setTimeout` at once), and at least `minMs`. */
function checkDuration(v: string | number, ctx: z.RefinementCtx, minMs: number): number {
  const n = parseDuration(v);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `Expected a duration such as 250ms, 45s, 2m or 1h, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  if (n > MAX_DURATION_MS) {
    ctx.addIssue({ code: 'custom', message: `Expected a duration of at most ${MAX_DURATION_MS} ms (about 596.5h, the longest timer Node.js can set), got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  if (n < minMs) {
    ctx.addIssue({ code: 'custom', message: `Expected a duration of at least ${formatDuration(minMs)}, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return n;
}

const durationAtLeast = (minMs: number) =>
  z.union([z.number(), z.string()], { error: 'a duration such as 45s' }).transform((v, ctx) => checkDuration(v, ctx, minMs));
const duration = durationAtLeast(0);

/** Sampling every process tree more often costs more CPU than it tells (0 ms: hundreds of samples a second). */
export const MIN_SAMPLE_INTERVAL_MS = 50;

/** `70%` or `0.7` as a fraction; `allowZero` for shares that may be empty (a pool). */
const percentage = (example: string, allowZero: boolean) =>
  z.union([z.number(), z.string()], { error: `a percentage such as ${example}` }).transform((v, ctx) => {
    const m = typeof v === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(v) : null;
    const n = typeof v === 'number' ? v : m ? Number(m[1]) / 100 : NaN;
    if (!((allowZero ? n >= 0 : n > 0) && n <= 1)) {
      ctx.addIssue({ code: 'custom', message: `Expected a percentage such as ${example} (or a fraction such as ${parseFloat(example) / 100}), got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return n;
  });
const fraction = percentage('70%', false);
const share = percentage('25%', true);

const positiveInt = z.number().int().min(1);
const globs = z.union([z.string().min(1).transform((v) => [v]), z.array(z.string().min(1))], { error: 'a glob or a list of globs' });
const nonNegativeInt = z.number().int().min(0);

/** One agent type as the user declares it. Sizes in bytes and durations in ms after parsing. */
export const agentSchema = z.strictObject({
  /** Expected peak RSS of one task's whole process tree. */
  memory: size.optional(),
  /** Hard memory limit (enforced by the governor). */
  limit: size.optional(),
  /** Expected cores. */
  cpu: z.number().min(0).optional(),
  /** At most this many tasks of this type at once. */
  concurrency: positiveInt.optional(),
  timeout: duration.optional(),
  retries: nonNegativeInt.optional(),
  /** Expected duration of one task; lets the scheduler backfill around a waiting task. */
  duration: duration.optional(),
  /** Node agents: `auto` passes --max-old-space-size (75% of `limit`) through NODE_OPTIONS, or a size. */
  node_heap: z.union([z.literal('auto'), size], { error: 'auto or a size such as 256MB' }).optional(),
  /** Rules the routing cache matches task descriptions against. */
  route: z
    .strictObject({
      keywords: z.array(z.string().min(1)).optional(),
      /** Regular expressions (case-insensitive). */
      patterns: z.array(z.string().min(1)).optional(),
    })
    .optional(),
  description: z.string().optional(),
  /** What the agent does, for its response-time KPI target: code-analysis 200 ms, knowledge 300 ms, coordination 500 ms, file-ops 100 ms. @default none (not scored) */
  kind: z.enum(['code-analysis', 'knowledge', 'coordination', 'file-ops'], { error: 'one of code-analysis, knowledge, coordination, file-ops' }).optional(),
  /** Response-time target of one task of this type (overrides the kind's). @default the kind's, else none */
  response_target: duration.optional(),
});

/** What a process can receive as its environment: names without `=` or NUL (execve splits on the first `=`), values without NUL. */
const envName = z.string().regex(/^[^=\0]+$/, 'Expected an environment variable name (not empty, no "=" and no NUL character)');
const envValue = z
  .union([z.string(), z.number(), z.boolean()], { error: 'a string, number or boolean' })
  .transform((v) => String(v))
  .refine((v) => !v.includes('\0'), 'Expected an environment value without a NUL character');

/** Agent names: anything readable (they appear in messages, metrics and the history), not empty. */
const agentName = z.string().regex(/^[^\x00-\x1f\x7f]+$/, 'Expected an agent name (not empty, no control characters)');

export const TASK_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** One task as the user declares it. */
export const taskSchema = z.strictObject({
  id: z.string().regex(TASK_ID_RE, 'Expected an id of letters, digits, ".", "_" or "-" (starting with a letter or digit)'),
  agent: z.string(),
  run: z.string().min(1).regex(/^[^\0]*$/, 'Expected a command without a NUL character'),
  priority: z.enum(PRIORITIES).optional(),
  needs: z.union([z.string().transform((s) => [s]), z.array(z.string())], { error: 'a task id or a list of task ids' }).optional(),
  env: z.record(envName, envValue).optional(),
  timeout: duration.optional(),
  retries: nonNegativeInt.optional(),
  /** Files whose content the result depends on (globs relative to the workflow's folder): declaring them makes the task cacheable. */
  inputs: globs.optional(),
  /** Files the task writes (globs): stored with the result and restored on a cache hit. */
  outputs: globs.optional(),
  /** `false`: always run, never store. @default true */
  cache: z.boolean().optional(),
  /**
   * Where else to read what the task spent (beside its GUILD_METRICS file): `claude-json`, the
   * final JSON of `claude -p --output-format json` in its output.
   */
  usage: z.enum(['claude-json']).optional(),
  description: z.string().optional(),
});

/** Budgets of a run in what its tasks report spending: crossing one stops admitting tasks (exit 1). */
export const limitsSchema = z.strictObject({
  /** US dollars, the sum of the tasks' `cost_usd`. */
  cost_usd: z.number({ error: 'Expected an amount in US dollars such as 2.50' }).positive().optional(),
  /** Tokens, the sum of the tasks' `tokens_in` and `tokens_out`. */
  tokens: positiveInt.optional(),
});

const tierName = z.enum(['memory', 'sqlite', 'redis']);

/** One cache namespace's policy. */
const namespaceSchema = z.strictObject({
  /** Time to live; `0` or `none`: until evicted. */
  ttl: z
    .union([z.number(), z.string()], { error: 'a duration such as 30m, or none' })
    .transform((v, ctx) => (v === 'none' ? ('none' as const) : checkDuration(v, ctx, 0)))
    .optional(),
  max_entries: positiveInt.optional(),
  /** After the TTL, serve the old value this long while one refresh runs. */
  stale_while_revalidate: duration.optional(),
  tiers: z.array(tierName).min(1).optional(),
});

/** How cache entries are compressed (cache/compression.ts). */
const compressionSchema = z.union([
  z.literal(false),
  z.literal('off'),
  z
    .strictObject({
      /** Values of at least this size are compressed. @default 4KB */
      threshold: size.optional(),
      /** @default brotli */
      codec: z.enum(CODEC_NAMES).optional(),
      /** The codec's level. @default 1 */
      level: z.number().int().optional(),
    })
    .superRefine((c, ctx) => {
      if (c.codec === 'zstd' && !HAS_ZSTD) {
        ctx.addIssue({ code: 'custom', path: ['codec'], message: `Expected a codec this Node.js (${process.version}) has: ${availableCodecs().join(', ')} (zstd needs Node.js 22.15 or 23.8), got "zstd"` });
      }
      const [lo, hi] = LEVEL_RANGE[c.codec ?? 'brotli'];
      if (c.level !== undefined && (c.level < lo || c.level > hi)) {
        ctx.addIssue({ code: 'custom', path: ['level'], message: `Expected a ${c.codec ?? 'brotli'} level from ${lo} to ${hi}, got ${c.level}` });
      }
    }),
], { error: 'off, or { threshold, codec, level }' });

/**
 * MCP server names become the prefix of every tool, resource and prompt name the gateway
 * exposes (`<server>__<tool>`), so they must read back unambiguously within MCP's 128-character
 * names: letters, digits, `_` and `-`, starting with a letter or digit, no `__` inside (the
 * separator) and no `_` at the end (`a_` + `__tool` would read as `a` + `_tool`), and at most 32
 * characters, so that `<server>__` leaves 94 characters: any tool name within the 64 that MCP
 * recommends fits.
 */
export const MCP_SERVER_NAME_MAX = 32;
export const MCP_NAME_MAX = 128;
const MCP_SERVER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

/** True when `name` can prefix tool names (see MCP_SERVER_NAME_MAX). */
export function isMcpServerName(name: string): boolean {
  return name.length <= MCP_SERVER_NAME_MAX && MCP_SERVER_NAME_RE.test(name) && !name.includes('__') && !name.endsWith('_');
}

export const MCP_SERVER_NAME_RULE =
  `Expected a server name of letters, digits, "_" and "-" (starting with a letter or digit, no "__", not ending in "_", at most ${MCP_SERVER_NAME_MAX} characters): ` +
  'tools are exposed as <server>__<tool>';

const mcpServerName = z.string().refine(isMcpServerName, MCP_SERVER_NAME_RULE);

/** A tool name as its server lists it (MCP: 1 to 128 characters); no spaces or control characters. */
const MCP_TOOL_RE = new RegExp(`^[^\\s\\x00-\\x1f\\x7f]{1,${MCP_NAME_MAX}}$`);
const toolName = z.string().regex(MCP_TOOL_RE, `Expected a tool name of 1 to ${MCP_NAME_MAX} characters without spaces or control characters`);
const argumentName = z.string().min(1).regex(/^[^\x00-\x1f\x7f]+$/, 'Expected an argument name (no control characters)');
const noNul = (what: string) => z.string().min(1).regex(/^[^\0]*$/, `Expected ${what} without a NUL character`);

/** Command-line arguments: YAML numbers and booleans are written as text (`--port`, `8080`). */
const argValue = z
  .union([z.string(), z.number(), z.boolean()], { error: 'a string (or a number)' })
  .transform((v) => String(v))
  .refine((v) => !v.includes('\0'), 'Expected an argument without a NUL character');

/** How far instances of a server are shared: by every client, by the clients of one project, or not at all. */
export const MCP_ISOLATIONS = ['shared', 'per-project', 'per-session'] as const;
export type McpIsolation = (typeof MCP_ISOLATIONS)[number];

/**
 * One MCP server: the shape of an `.mcp.json` `mcpServers` entry (command, args, env; `type:
 * stdio`), plus Guild's keys. Remote servers (`url`, `type: http|sse`) are sorted out before
 * this schema (config/mcp.ts): only stdio servers run under Guild for now.
 */
export const mcpServerSchema = z.strictObject({
  /** Written by clients for a stdio server; the only transport Guild runs. */
  type: z.literal('stdio').optional(),
  command: noNul('a command'),
  args: z.array(argValue).optional(),
  /** Added to Guild's environment. */
  env: z.record(envName, envValue).optional(),
  /** The server's working folder, relative to the file's folder. @default the project's folder */
  cwd: noNul('a folder').optional(),
  /** Expected peak RSS of one instance's process tree. @default 100MB */
  memory: size.optional(),
  /** An instance over this RSS is recycled (drained, then replaced). @default none */
  limit: size.optional(),
  instances: z
    .strictObject({
      /** Instances kept when idle, per project. @default 1 */
      min: nonNegativeInt.optional(),
      /** @default 5 (or `min` when larger) */
      max: positiveInt.optional(),
      /** Calls in flight per instance. @default no bound */
      concurrency: positiveInt.optional(),
    })
    .optional(),
  /** An instance idle this long is stopped (down to `instances.min`). @default 60s */
  idle_timeout: duration.optional(),
  /** @default per-project */
  isolation: z.enum(MCP_ISOLATIONS).optional(),
  /** Tools whose results may be cached: a name, or `{ tool, paths: [argument names] }` for tools whose arguments name files. */
  cacheable: z
    .array(
      z.union([toolName, z.strictObject({ tool: toolName, paths: z.array(argumentName).optional() })], {
        error: `a tool name (1 to ${MCP_NAME_MAX} characters, no spaces) or { tool: name, paths: [argument names] }`,
      }),
    )
    .optional(),
  /** Expose names as `<server>__<name>`. @default true with several servers, false with one */
  prefix: z.boolean().optional(),
  /** What the server is, for its response-time target (code-analysis 200 ms, knowledge 300 ms). @default none */
  kind: z.enum(['code-analysis', 'knowledge', 'coordination', 'file-ops'], { error: 'one of code-analysis, knowledge, coordination, file-ops' }).optional(),
});

/**
 * A regression threshold: `25%` (or 0.25) of relative change; for a rate (error_rate,
 * cache_hit_rate) the same figure counts percentage points (`1%`: one point). Up to 10000%.
 */
const benchThreshold = z.union([z.number(), z.string()], { error: 'a threshold such as 25%' }).transform((v, ctx) => {
  const m = typeof v === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(v) : null;
  const n = typeof v === 'number' ? v : m ? Number(m[1]) / 100 : NaN;
  if (!(n > 0 && n <= 100)) {
    ctx.addIssue({ code: 'custom', message: `Expected a threshold such as 25% (or 0.25), got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return n;
});
/** Thresholds by metric name (`makespan_ms`), pattern (`task.*.duration_ms`) or kind (`time`, `memory`, …). */
const benchThresholds = z.record(z.string().regex(/^[A-Za-z0-9_.*-]+$/, 'Expected a metric name, a pattern such as task.*.duration_ms, or a kind'), benchThreshold);

/** One `guild bench` scenario: the whole workflow, some of its tasks (`tasks`), or a command (`run`). */
export const benchScenarioSchema = z.strictObject({
  /** Only these tasks (and what they need). @default every task */
  tasks: z.array(z.string().min(1)).min(1).optional(),
  /** A plain command instead of the workflow's tasks (run as one task under Guild). */
  run: z.string().min(1).optional(),
  /** Measured runs. @default 5 */
  repeat: z.number().int().min(2).max(1000).optional(),
  /** Runs before measuring, not recorded. @default 1 */
  warmup: nonNegativeInt.optional(),
  /** The metrics that decide (names or patterns); every metric is stored. @default DEFAULTS.bench.metrics */
  metrics: z.array(z.string().regex(/^[A-Za-z0-9_.*-]+$/, 'Expected a metric name or a pattern such as task.*.duration_ms')).min(1).optional(),
  thresholds: benchThresholds.optional(),
  /** Serve tasks from the task cache (to measure the cache itself). @default false */
  cache: z.boolean().optional(),
  /** For `run`: the command's expected memory. @default an agent's default */
  memory: size.optional(),
  /** For `run`: its hard memory limit (the agent's `limit`). @default an agent's default */
  limit: size.optional(),
  /** For `run`: how long one run may take (the agent's `timeout`). @default an agent's default */
  timeout: duration.optional(),
});

export const benchSchema = z.strictObject({
  scenarios: z.record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'Expected a scenario name of letters, digits, ".", "_" or "-"'), benchScenarioSchema).optional(),
  /** Thresholds for every scenario (a scenario's own win). */
  thresholds: benchThresholds.optional(),
  /** Significance level. @default 0.05 */
  alpha: z.number().gt(0).lt(0.5).optional(),
  /** @default mann-whitney */
  test: z.enum(['mann-whitney', 'welch']).optional(),
  /** Baseline: the last this many comparable runs. @default 10 */
  baseline: z.number().int().min(2).max(1000).optional(),
  /** Fewer comparable runs than this: not enough baseline (exit 2). @default 5 */
  min_baseline: z.number().int().min(2).max(1000).optional(),
  /** Leave out iterations measured under outside pressure. @default false */
  exclude_disturbed: z.boolean().optional(),
});
export type UserBench = z.output<typeof benchSchema>;

/** `mcpServers` of a client's `.mcp.json`, or `mcp.servers` of a workflow file. */
export const mcpServersSchema = z.record(mcpServerName, mcpServerSchema);

/** The `mcp:` section of a workflow file. */
export const mcpSchema = z.strictObject({
  servers: mcpServersSchema,
  /** How long a cached tool result is served; at least 1 ms. @default 5m */
  tool_ttl: durationAtLeast(1).optional(),
});

export type UserMcpServer = z.output<typeof mcpServerSchema>;
export type UserMcp = z.output<typeof mcpSchema>;

/**
 * A Guild file (guild.yaml): every key of a workflow. `agents` and `tasks` are optional here
 * (a file with only `mcp:` serves the gateway); a run requires them (config/load.ts says so).
 * `mcp:` is checked on its own (config/mcp.ts), where a client's keys are sorted out first.
 */
export const fileSchema = z.strictObject({
  name: z.string().optional(),
  /** Memory Guild may give to agents. @default 75% of the effective memory limit */
  budget: size.optional(),
  /** Global cap on tasks running at once. @default no cap beyond memory and CPU */
  max_parallel: positiveInt.optional(),
  keep_going: z.boolean().optional(),
  /** How often process trees are sampled; at least 50ms. @default 200ms */
  sample_interval: durationAtLeast(MIN_SAMPLE_INTERVAL_MS).optional(),
  /** Time between TERM and KILL. @default 3s */
  kill_grace: duration.optional(),
  /** A waiting task gains one priority level per this much waiting. @default 60s */
  aging: duration.optional(),
  /** After the head of the queue has waited this long, smaller tasks stop backfilling. @default 30s */
  starvation_limit: duration.optional(),
  /** Shares of the budget (the seed's pools); they must add up to 100%. */
  pools: z
    .strictObject({
      critical: share.optional(),
      execution: share.optional(),
      caching: share.optional(),
      buffer: share.optional(),
    })
    .optional(),
  /** The memory governor's levels and timing. */
  governor: z
    .strictObject({
      moderate: fraction.optional(),
      high: fraction.optional(),
      critical: fraction.optional(),
      emergency: fraction.optional(),
      /** At or above this the cooldown between kills is skipped. @default 98% */
      ceiling: fraction.optional(),
      /** A level is left only this far below its start… @default 5% */
      margin: fraction.optional(),
      /** …for this long. @default 2s */
      hold: duration.optional(),
      /** Between two kills for pressure. @default 2s */
      cooldown: duration.optional(),
    })
    .optional(),
  /** Task memoization and the cache tiers. */
  cache: z
    .strictObject({
      /** Task memoization on or off (`--no-cache` turns it off for one run). @default true */
      enabled: z.boolean().optional(),
      /** L1 byte budget (in Guild's memory). @default 256MB */
      memory: size.optional(),
      /** L2 byte cap (the SQLite store on disk). @default 1GB */
      disk: size.optional(),
      /** L3: a Redis URL shared by machines, e.g. redis://127.0.0.1:6379. @default none */
      redis: z.string().regex(/^rediss?:\/\//, 'Expected a Redis URL such as redis://127.0.0.1:6379').optional(),
      /** A context preset, `auto` (from the git branch prefix) or `none`. @default auto */
      context: z.enum(['auto', 'none', 'feature_development', 'bug_fixing', 'code_review', 'refactoring']).optional(),
      namespaces: z.record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'Expected a namespace of letters, digits, ".", "_" or "-"'), namespaceSchema).optional(),
      /** Compressed storage of large entries; `off` (or false) stores every value as it is. @default { threshold: 4KB, codec: brotli, level: 1 } */
      compression: compressionSchema.optional(),
    })
    .optional(),
  /** The routing cache (library `route(description)`). */
  routing: z
    .strictObject({
      /** Trigram similarity from which a cached route is reused (see cache/routing.ts for why 0.7). @default 0.7 */
      similarity: z.number().gt(0).max(1).optional(),
      /** The agent type when no rule matches. @default none */
      fallback: z.string().optional(),
    })
    .optional(),
  /** Metrics, KPIs, alerts and history. */
  telemetry: z
    .strictObject({
      /** Metrics, KPIs, alerts and history for this workflow's runs. @default true */
      enabled: z.boolean().optional(),
      /** How often a metric snapshot goes to the store. @default 1s */
      snapshot_interval: duration.optional(),
      /** Runs whose metric snapshots are kept. @default 20 */
      keep_snapshots: positiveInt.optional(),
      /** Runs whose JSON and Markdown reports are kept (older runs keep their task rows). @default 200 */
      keep_reports: positiveInt.optional(),
      alerts: z
        .strictObject({
          /** A repeat of the same alert within this time is counted, not sent. @default 5m */
          cooldown: duration.optional(),
          /** POST each alert as JSON to this URL (retried). @default none */
          webhook: z.string().regex(/^https?:\/\//, 'Expected an http(s) URL such as https://hooks.example.com/guild').optional(),
          /** Extra headers for the webhook (e.g. Authorization); values may name an environment variable as ${VAR}. */
          webhook_headers: z
            .record(
              z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'Expected an HTTP header name such as Authorization'),
              z.string().regex(/^[^\r\n\0]*$/, 'Expected a header value on one line'),
              { error: (iss) => (iss.code === 'invalid_key' ? 'Expected an HTTP header name such as Authorization (letters, digits, - and no spaces)' : undefined) },
            )
            .optional(),
        })
        .optional(),
    })
    .optional(),
  /** Distributed mode: `guild run` hands the tasks to `guild worker`s through BullMQ on this Redis (`--redis` wins). */
  distributed: z
    .strictObject({
      /** The Redis the queues live in, e.g. redis://127.0.0.1:6379 or rediss://:password@host:6380. */
      redis: z.string().regex(/^rediss?:\/\//, 'Expected a Redis URL such as redis://127.0.0.1:6379'),
      /** The queue family the workers serve (`guild worker --queue`). @default guild */
      queue: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, 'Expected a queue name of letters, digits, "_" or "-"').optional(),
      /** How long a task whose memory fits no live worker's budget waits for one to join before it fails. @default 30s */
      grace: duration.optional(),
    })
    .optional(),
  /** MCP servers for the gateway (`guild mcp serve`), checked by config/mcp.ts against `mcpSchema`. */
  mcp: z.unknown().optional(),
  /** `guild bench`: scenarios, thresholds and the significance test (config/bench.ts resolves it). */
  bench: benchSchema.optional(),
  limits: limitsSchema.optional(),
  agents: z.record(agentName, agentSchema).optional(),
  tasks: z.array(taskSchema).min(1).optional(),
});

export type UserAgent = z.output<typeof agentSchema>;
export type UserTask = z.output<typeof taskSchema>;
/** Any Guild file as validated: agents and tasks may be absent (a gateway-only file). */
export type UserFile = Omit<z.output<typeof fileSchema>, 'mcp'>;
/** A workflow to run: a file with agents and tasks. */
export type UserWorkflow = UserFile & { agents: NonNullable<UserFile['agents']>; tasks: NonNullable<UserFile['tasks']> };

/** The `performance:` block of .guild/instructions.md (the seed's format). Unknown sections pass. */
export const instructionsSchema = z.looseObject({
  parallelization: z
    .looseObject({
      enabled: z.boolean().optional(),
      max_parallel: positiveInt.optional(),
    })
    .optional(),
  budget: size.optional(),
  timeout: duration.optional(),
});

export type UserInstructions = z.output<typeof instructionsSchema>;
