import { dirname, resolve } from 'node:path';
import { ConfigError, ConfigErrors, GuildError } from '../errors.js';
import type { SystemProbe } from '../system/probe.js';
import { formatBytes } from '../util/units.js';
import { DEFAULTS } from './defaults.js';
import { findInstructions, loadInstructions, type LoadedInstructions } from './instructions.js';
import type { LoadedFile, LoadedGatewayFile } from './load.js';
import { resolveBench, type ResolvedBench } from './bench.js';
import { resolveMcp, type ResolvedMcp } from './mcp.js';
import type { Priority, UserWorkflow } from './schema.js';
import type { Thresholds } from '../governor/levels.js';
import { poolLimitShare, type Pools } from './pools.js';
import { namespacePolicies, presetForBranch, type ContextPreset, type NamespacePolicy } from './cache-policy.js';
import type { CompressionOptions } from './compression.js';
import { currentBranch } from './git-branch.js';
import type { ComponentKind } from '../telemetry/state.js';

const pct = (f: number): string => `${Math.round(f * 1000) / 10}%`;

/** An agent type with every default applied. Sizes in bytes, durations in ms. */
export interface AgentProfile {
  readonly name: string;
  /** Expected peak RSS of one task's process tree. */
  readonly memoryBytes: number;
  /** Hard limit, recorded for the governor; null when not declared. */
  readonly limitBytes: number | null;
  readonly cpu: number;
  /** Null: no per-type cap. */
  readonly concurrency: number | null;
  readonly timeoutMs: number;
  readonly retries: number;
  /** Expected duration of one task, when declared. */
  readonly durationMs: number | null;
  /** `--max-old-space-size` in MiB passed through NODE_OPTIONS (`node_heap`), or null. */
  readonly nodeHeapMb: number | null;
  /** What the routing cache matches descriptions against. */
  readonly route: { readonly keywords: readonly string[]; readonly patterns: readonly string[] } | null;
  /** Component kind for the response-time KPI, when declared. */
  readonly kind: ComponentKind | null;
  /** Response-time target of one task: `response_target`, else the kind's; null = not scored. */
  readonly responseTargetMs: number | null;
}

/** Metrics, KPIs, alerts and history. */
export interface ResolvedTelemetry {
  readonly enabled: boolean;
  readonly snapshotIntervalMs: number;
  readonly keepSnapshots: number;
  readonly keepReports: number;
  readonly alertCooldownMs: number;
  readonly webhook: { readonly url: string; readonly headers: Readonly<Record<string, string>> } | null;
}

/** The cache as configured: tiers, namespaces, and whether tasks are memoized. */
export interface ResolvedCache {
  /** Task memoization (off with `--no-cache` or `cache.enabled: false`). */
  readonly enabled: boolean;
  /** Why memoization is off, when it is. */
  readonly disabledBy: 'flag' | 'workflow' | null;
  readonly memoryBytes: number;
  readonly diskBytes: number;
  readonly redisUrl: string | null;
  /** The context preset in force and where it came from. */
  readonly context: { readonly preset: ContextPreset | null; readonly source: 'workflow' | 'branch' | 'none'; readonly branch: string | null };
  readonly namespaces: Readonly<Record<string, NamespacePolicy>>;
  readonly routing: { readonly similarity: number; readonly fallback: string | null };
  /** How large entries are compressed; null: stored as they are (`compression: off`). */
  readonly compression: CompressionOptions | null;
}

/** Why task memoization is off: `--no-cache`, `cache.enabled: false`, or a run without a store. */
export type CacheDisabledBy = NonNullable<ResolvedCache['disabledBy']> | 'no store';

export { CACHE_DISABLED_TEXT } from './resolved.js';

/** Shares of the budget. See `config/pools.ts` for who may use which. */
export type PoolShares = Readonly<Pools>;

/** The memory governor's settings. */
export interface GovernorConfig {
  readonly thresholds: Thresholds;
  readonly margin: number;
  readonly holdMs: number;
  readonly cooldownMs: number;
  /** The budget view counts the budget as this share of a limit (default budgets are 75 % of the effective limit). */
  readonly budgetShare: number;
}

/** A task ready to schedule. */
export interface TaskSpec {
  readonly id: string;
  readonly agent: string;
  readonly run: string;
  readonly priority: Priority;
  readonly needs: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly retries: number;
  /** Globs relative to the workflow's folder. A task with inputs is cacheable. */
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** False: never memoized (`cache: false`). */
  readonly cache: boolean;
  /** Where else its spending is read from (besides GUILD_METRICS). */
  readonly usage: 'claude-json' | null;
}

/** Where the budget came from, for `doctor` and the summary. */
export type BudgetSource = 'flag' | 'workflow' | 'instructions' | 'default';

/** The whole configuration of one run, after precedence: flags, file, instructions.md, defaults. */
export interface ResolvedConfig {
  readonly file: string;
  /** The workflow's folder: the cwd of every task and the home of `.guild/`. */
  readonly dir: string;
  readonly name: string;
  readonly budgetBytes: number;
  readonly budgetSource: BudgetSource;
  /** The effective memory limit the default budget was derived from. */
  readonly effectiveLimitBytes: number;
  readonly maxParallel: number | null;
  readonly keepGoing: boolean;
  readonly cores: number;
  readonly cpuCap: number;
  readonly headroom: number;
  readonly sampleIntervalMs: number;
  readonly killGraceMs: number;
  readonly agingMs: number;
  readonly starvationLimitMs: number;
  readonly retryBackoffMs: number;
  readonly governor: GovernorConfig;
  readonly pools: PoolShares;
  readonly agents: Readonly<Record<string, AgentProfile>>;
  readonly tasks: readonly TaskSpec[];
  readonly cache: ResolvedCache;
  readonly telemetry: ResolvedTelemetry;
  readonly instructionsFile: string | null;
  /** The MCP gateway's backends (`mcp:`, or a client's `.mcp.json`); null when the file declares none. */
  readonly mcp: ResolvedMcp | null;
  /** `guild bench`'s scenarios (the whole workflow when the file declares none). */
  readonly bench: ResolvedBench;
  /** Budgets in what tasks report spending (`limits:`); null where none is set. */
  readonly limits: { readonly costUsd: number | null; readonly tokens: number | null };
  /** Things worth telling the user that do not stop the run. */
  readonly warnings: readonly string[];
  /** `distributed:`; null when the file has none (`guild run --redis` may still ask for it). */
  readonly distributed?: ResolvedDistributed | null;
}

/** Distributed mode as the file asks for it. */
export interface ResolvedDistributed {
  readonly redisUrl: string;
  /** The queue family (`guild worker --queue`); null: the CLI's default. */
  readonly queue: string | null;
  /** How long a task that fits no live worker waits for one; null: the default. */
  readonly graceMs: number | null;
}

/**
 * What the MCP gateway runs with: a whole configuration (budget, governor, pools, cache,
 * telemetry; the dashboard's defaults are in DEFAULTS.dashboard) whose `mcp` is there. Agents
 * and tasks are empty when the file declares none.
 */
export interface GatewayConfig extends ResolvedConfig {
  readonly mcp: ResolvedMcp;
}

/** Values from the command line; they win over everything else. */
export interface ConfigFlags {
  budgetBytes?: number;
  maxParallel?: number;
  keepGoing?: boolean;
  /** `--no-cache`: run every task, store nothing. */
  noCache?: boolean;
}

export { aloneCapBytes } from './resolved.js';

/** The memory the default budget is a share of: the cgroup limit, else MemAvailable + Guild's own RSS. */
export function effectiveLimit(probe: SystemProbe): number {
  const mem = probe.memory();
  return mem.source === 'meminfo' ? mem.hostAvailableBytes + probe.selfRss() : mem.limitBytes;
}

/**
 * Applies precedence once and checks what needs the budget: a task (or an MCP server's
 * instance) that can never fit is an error here, before anything starts.
 */
export function resolveConfig(loaded: LoadedGatewayFile, probe: SystemProbe, flags?: ConfigFlags, instructions?: LoadedInstructions | null): GatewayConfig;
export function resolveConfig(loaded: LoadedFile, probe: SystemProbe, flags?: ConfigFlags, instructions?: LoadedInstructions | null): ResolvedConfig;
export function resolveConfig(loaded: LoadedFile, probe: SystemProbe, flags: ConfigFlags = {}, instructions?: LoadedInstructions | null): ResolvedConfig {
  const { user, source } = loaded;
  const dir = dirname(resolve(loaded.file));
  const instr = instructions === undefined ? loadNearestInstructions(dir) : instructions;
  const perf = instr?.performance;

  const limit = effectiveLimit(probe);
  let budgetBytes: number;
  let budgetSource: BudgetSource;
  if (flags.budgetBytes !== undefined) [budgetBytes, budgetSource] = [flags.budgetBytes, 'flag'];
  else if (user.budget !== undefined) [budgetBytes, budgetSource] = [user.budget, 'workflow'];
  else if (perf?.budget !== undefined) [budgetBytes, budgetSource] = [perf.budget, 'instructions'];
  else [budgetBytes, budgetSource] = [Math.floor(limit * DEFAULTS.budgetShare), 'default'];
  if (budgetBytes <= 0) throw source.error(['budget'], `Expected a budget above 0, got ${budgetBytes}`);

  const instrParallel = perf?.parallelization?.enabled === false ? 1 : perf?.parallelization?.max_parallel;
  const maxParallel = flags.maxParallel ?? user.max_parallel ?? instrParallel ?? null;
  const defaultTimeout = perf?.timeout ?? DEFAULTS.timeoutMs;

  // Keyed by names the user chose: no prototype, so `agents['toString']` is an agent or nothing.
  const agents = nameMap<AgentProfile>();
  for (const [name, a] of Object.entries(user.agents ?? {})) {
    agents[name] = {
      name,
      memoryBytes: a.memory ?? DEFAULTS.agentMemoryBytes,
      limitBytes: a.limit ?? null,
      cpu: a.cpu ?? DEFAULTS.agentCpu,
      concurrency: a.concurrency ?? null,
      timeoutMs: a.timeout ?? defaultTimeout,
      retries: a.retries ?? DEFAULTS.retries,
      durationMs: a.duration ?? null,
      nodeHeapMb: null,
      route: a.route ? { keywords: a.route.keywords ?? [], patterns: a.route.patterns ?? [] } : null,
      kind: a.kind ?? null,
      responseTargetMs: a.response_target ?? (a.kind ? DEFAULTS.kindTargetsMs[a.kind] : null),
    };
  }

  const headroom = DEFAULTS.headroom;
  const errors: ConfigError[] = [];
  const warnings: string[] = [...loaded.warnings];
  // zod leaves keys the user did not write absent, so a spread applies defaults key by key.
  const pools: PoolShares = { ...DEFAULTS.pools, ...user.pools };
  const poolSum = pools.critical + pools.execution + pools.caching + pools.buffer;
  if (Math.abs(poolSum - 1) > 0.005) {
    errors.push(source.error(['pools'], `Expected the pools to add up to 100%, got ${pct(poolSum)}`, { key: true }));
  }
  const busyShare = poolLimitShare(pools, false, false);
  for (const [name, a] of Object.entries(agents)) {
    const need = a.memoryBytes * headroom;
    // Every pool is open to any task at some moment (critical idle, machine calm), so "never" means
    // more than the whole budget; what usually fits is the pools' business at run time.
    if (need > budgetBytes) {
      errors.push(
        source.error(
          ['agents', name, 'memory'],
          `agent '${name}' expects ${formatBytes(a.memoryBytes)}; with ${headroom}× headroom a task needs ${formatBytes(need)} free, ` +
            `but the budget is ${formatBytes(budgetBytes)} (${budgetSource}): its tasks can never start. Raise the budget or lower the estimate.`,
        ),
      );
    } else if (need > budgetBytes * busyShare) {
      warnings.push(
        `agent '${name}' needs ${formatBytes(need)} with headroom, more than the ${pct(busyShare)} of the budget that tasks below critical may use while the machine is busy: ` +
          'its tasks start only while the buffer pool is lent (the machine calm) or if they are critical',
      );
    }
    if (a.limitBytes !== null && a.limitBytes < a.memoryBytes) {
      errors.push(source.error(['agents', name, 'limit'], `Expected a limit >= memory (${formatBytes(a.memoryBytes)}), got ${formatBytes(a.limitBytes)}`));
    }
    const heap = user.agents![name]!.node_heap;
    if (heap === 'auto' && a.limitBytes === null) {
      errors.push(source.error(['agents', name, 'node_heap'], 'node_heap: auto derives the heap from `limit`; declare a limit or give a size'));
    } else if (heap !== undefined) {
      const bytes = heap === 'auto' ? a.limitBytes! * DEFAULTS.nodeHeapShare : heap;
      agents[name] = { ...a, nodeHeapMb: Math.max(16, Math.floor(bytes / 1024 ** 2)) };
    }
  }
  const g = user.governor ?? {};
  const { margin: _m, hold: _h, cooldown: _c, ...levels } = g;
  const thresholds: Thresholds = { ...DEFAULTS.thresholds, ...levels };
  const order = ['moderate', 'high', 'critical', 'emergency', 'ceiling'] as const;
  for (let i = 1; i < order.length; i++) {
    if (thresholds[order[i]!] <= thresholds[order[i - 1]!]) {
      errors.push(source.error(['governor', order[i]!], `Expected ${order[i]} above ${order[i - 1]} (${Math.round(thresholds[order[i - 1]!] * 100)}%), got ${Math.round(thresholds[order[i]!] * 100)}%`));
    }
  }
  const mcp = loaded.mcp ? resolveMcp(loaded.mcp, source, dir, errors) : null;
  if (mcp) checkMcpBudget(mcp, loaded.mcp!.serversPath, source, budgetBytes, budgetSource, headroom, errors, warnings);
  const bench = resolveBench(user.bench, (user.tasks ?? []).map((t) => t.id), source, errors);
  if (errors.length > 0) throw new ConfigErrors(errors);

  const tasks: TaskSpec[] = (user.tasks ?? []).map((t) => {
    const a = agents[t.agent]!;
    return {
      id: t.id,
      agent: t.agent,
      run: t.run,
      priority: t.priority ?? 'medium',
      needs: t.needs ?? [],
      env: Object.assign(nameMap<string>(), t.env),
      timeoutMs: t.timeout ?? a.timeoutMs,
      retries: t.retries ?? a.retries,
      inputs: t.inputs ?? [],
      outputs: t.outputs ?? [],
      cache: t.cache ?? true,
      usage: t.usage ?? null,
    };
  });

  const cores = probe.cpu().cores;
  if (budgetBytes > limit) {
    warnings.push(
      `the budget ${formatBytes(budgetBytes)} (${budgetSource}) exceeds the effective memory limit ${formatBytes(limit)}: ` +
        'admission also checks live available memory, so tasks will wait for memory that is really there',
    );
  }
  return Object.freeze({
    file: resolve(loaded.file),
    dir,
    name: user.name ?? dirname(resolve(loaded.file)).split('/').pop() ?? 'workflow',
    budgetBytes,
    budgetSource,
    effectiveLimitBytes: limit,
    maxParallel,
    keepGoing: flags.keepGoing ?? user.keep_going ?? false,
    cores,
    cpuCap: cores * DEFAULTS.cpuShare,
    headroom,
    sampleIntervalMs: user.sample_interval ?? DEFAULTS.sampleIntervalMs,
    killGraceMs: user.kill_grace ?? DEFAULTS.killGraceMs,
    agingMs: user.aging ?? DEFAULTS.agingMs,
    starvationLimitMs: user.starvation_limit ?? DEFAULTS.starvationLimitMs,
    retryBackoffMs: DEFAULTS.retryBackoffMs,
    pools,
    governor: {
      thresholds,
      margin: g.margin ?? DEFAULTS.pressureMargin,
      holdMs: g.hold ?? DEFAULTS.pressureHoldMs,
      cooldownMs: g.cooldown ?? DEFAULTS.killCooldownMs,
      budgetShare: DEFAULTS.budgetShare,
    },
    agents,
    tasks,
    cache: resolveCache(user.cache, user.routing, dir, flags),
    telemetry: resolveTelemetry(user.telemetry, source),
    instructionsFile: instr?.file ?? null,
    mcp,
    bench,
    limits: { costUsd: user.limits?.cost_usd ?? null, tokens: user.limits?.tokens ?? null },
    warnings,
    distributed: user.distributed ? { redisUrl: user.distributed.redis, queue: user.distributed.queue ?? null, graceMs: user.distributed.grace ?? null } : null,
  });
}

/**
 * An MCP server whose one instance cannot be admitted under the budget (its memory × headroom
 * above it) can never start: an error. First instances of every server that do not fit together
 * are a warning: they start as memory frees, and calls wait meanwhile.
 */
function checkMcpBudget(
  mcp: ResolvedMcp,
  serversPath: readonly (string | number)[],
  source: LoadedFile['source'],
  budgetBytes: number,
  budgetSource: BudgetSource,
  headroom: number,
  errors: ConfigError[],
  warnings: string[],
): void {
  let kept = 0;
  let largest = 0;
  for (const s of mcp.servers) {
    const need = s.memoryBytes * headroom;
    if (need > budgetBytes) {
      errors.push(
        source.error(
          [...serversPath, s.name, 'memory'],
          `MCP server '${s.name}' expects ${formatBytes(s.memoryBytes)} per instance; with ${headroom}× headroom an instance needs ${formatBytes(need)} free, ` +
            `but the budget is ${formatBytes(budgetBytes)} (${budgetSource}): it can never start. Raise the budget or lower the estimate.`,
        ),
      );
    }
    kept += s.memoryBytes * Math.max(1, s.instances.min);
    largest = Math.max(largest, s.memoryBytes);
  }
  const together = kept + largest * (headroom - 1);
  if (mcp.servers.length > 1 && together > budgetBytes && errors.length === 0) {
    warnings.push(
      `the first instances of the ${mcp.servers.length} MCP servers expect ${formatBytes(kept)} together (${formatBytes(together)} with headroom), more than the budget ${formatBytes(budgetBytes)} (${budgetSource}): ` +
        'they cannot all run at once, and calls to a server that is not admitted wait for memory',
    );
  }
}

/** The cache section with every default applied (also what `guild cache` uses where there is no workflow file). */
export function resolveCache(cache: UserWorkflow['cache'], routing: UserWorkflow['routing'], dir: string, flags: ConfigFlags = {}): ResolvedCache {
  const c = cache ?? {};
  const choice = c.context ?? 'auto';
  let context: ResolvedCache['context'];
  if (choice === 'auto') {
    const branch = currentBranch(dir);
    const preset = presetForBranch(branch);
    context = { preset, source: preset ? 'branch' : 'none', branch };
  } else context = { preset: choice === 'none' ? null : choice, source: choice === 'none' ? 'none' : 'workflow', branch: null };
  const user_ns = nameMap<Partial<NamespacePolicy>>();
  for (const [ns, p] of Object.entries(c.namespaces ?? {})) {
    user_ns[ns] = {
      ...(p.ttl !== undefined ? { ttlMs: p.ttl === 'none' || p.ttl === 0 ? null : p.ttl } : {}),
      ...(p.max_entries !== undefined ? { maxEntries: p.max_entries } : {}),
      ...(p.stale_while_revalidate !== undefined ? { staleWhileRevalidateMs: p.stale_while_revalidate || null } : {}),
      ...(p.tiers !== undefined ? { tiers: p.tiers } : {}),
    };
  }
  const disabledBy = flags.noCache ? 'flag' : c.enabled === false ? 'workflow' : null;
  return {
    enabled: disabledBy === null,
    disabledBy,
    memoryBytes: c.memory ?? DEFAULTS.cache.memoryBytes,
    diskBytes: c.disk ?? DEFAULTS.cache.diskBytes,
    redisUrl: c.redis ?? null,
    context,
    namespaces: namespacePolicies(context.preset, user_ns),
    routing: { similarity: routing?.similarity ?? DEFAULTS.cache.routingSimilarity, fallback: routing?.fallback ?? null },
    compression: resolveCompression(c.compression),
  };
}

function resolveCompression(c: NonNullable<UserWorkflow['cache']>['compression']): CompressionOptions | null {
  if (c === false || c === 'off') return null;
  const d = DEFAULTS.cache.compression;
  const codec = c?.codec ?? d.codec;
  return {
    thresholdBytes: c?.threshold ?? d.thresholdBytes,
    codec,
    // A codec chosen alone gets its own default level, not brotli's.
    level: c?.level ?? (c?.codec === undefined ? d.level : DEFAULTS.cache.compressionLevels[codec]),
  };
}

function resolveTelemetry(t: UserWorkflow['telemetry'], source: LoadedFile['source']): ResolvedTelemetry {
  const a = t?.alerts ?? {};
  // Header values may name an environment variable (${VAR}) so that secrets stay out of the file.
  const errors: ConfigError[] = [];
  const headers = nameMap<string>();
  for (const [k, v] of Object.entries(a.webhook_headers ?? {})) {
    headers[k] = v.replace(/\$\{(\w+)\}/g, (_, name: string) => {
      const value = process.env[name];
      if (value === undefined || /[\r\n\0]/.test(value)) errors.push(source.error(['telemetry', 'alerts', 'webhook_headers', k], `${value === undefined ? 'names an unset environment variable' : 'reads an environment variable with a line break:'} \${${name}}`));
      return value ?? '';
    });
  }
  if (errors.length > 0) throw new ConfigErrors(errors);
  return {
    enabled: t?.enabled ?? true,
    snapshotIntervalMs: t?.snapshot_interval ?? DEFAULTS.telemetry.snapshotIntervalMs,
    keepSnapshots: t?.keep_snapshots ?? DEFAULTS.telemetry.keepSnapshots,
    keepReports: t?.keep_reports ?? DEFAULTS.telemetry.keepReports,
    alertCooldownMs: a.cooldown ?? DEFAULTS.telemetry.alertCooldownMs,
    webhook: a.webhook ? { url: a.webhook, headers } : null,
  };
}

/** A map keyed by user-chosen names, with no prototype: `__proto__`, `constructor` or `toString` are keys like any other (or absent). */
function nameMap<V>(): Record<string, V> {
  return Object.create(null) as Record<string, V>;
}

function loadNearestInstructions(dir: string): LoadedInstructions | null {
  const file = findInstructions(dir);
  if (!file) return null;
  try {
    return loadInstructions(file);
  } catch (e) {
    if (e instanceof GuildError) throw e;
    throw new ConfigError({ file }, `cannot read instructions: ${String(e)}`, { cause: e });
  }
}
