import { z } from 'zod';
import { formatDuration, MAX_DURATION_MS, parseDuration, parseSize } from '../util/units.js';

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
  description: z.string().optional(),
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

/** The workflow file (guild.yaml) after schema validation. */
export const workflowSchema = z.strictObject({
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
  agents: z.record(agentName, agentSchema),
  tasks: z.array(taskSchema).min(1),
});

export type UserAgent = z.output<typeof agentSchema>;
export type UserTask = z.output<typeof taskSchema>;
export type UserWorkflow = z.output<typeof workflowSchema>;

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
