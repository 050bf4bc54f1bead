// The cache's namespace policies and context presets. Configuration resolves them (`cache:` in
// guild.yaml, the git branch for `context: auto`), and the cache applies what it is handed, so
// they live below both.
import type { TierName } from '../cache/tier.js';

/** How one namespace is cached. */
export interface NamespacePolicy {
  /** Time to live in ms; null keeps entries until evicted. */
  readonly ttlMs: number | null;
  /** At most this many entries per tier, least recently used dropped first; null: no cap. */
  readonly maxEntries: number | null;
  /** After the TTL, serve the old value this long while one refresh runs; null: off. */
  readonly staleWhileRevalidateMs: number | null;
  /** The tiers this namespace lives in (of those configured). */
  readonly tiers: readonly TierName[];
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const ALL: readonly TierName[] = ['memory', 'sqlite', 'redis'];

/**
 * The seed's namespaces. `process` lives as long as the process (memory only); `agent` as long as
 * the project; `research` an hour, last 50; `routing` 30 minutes, last 100; `tasks` holds task
 * results (memoization) on disk and in Redis only: a run reads each once, so L1 would only cost
 * Guild memory.
 */
export const DEFAULT_NAMESPACES: Readonly<Record<string, NamespacePolicy>> = Object.freeze(
  // No prototype: looked up by namespace names, `DEFAULT_NAMESPACES['constructor']` is no policy.
  Object.assign(Object.create(null) as Record<string, NamespacePolicy>, {
    process: { ttlMs: null, maxEntries: 100, staleWhileRevalidateMs: null, tiers: ['memory'] },
    agent: { ttlMs: null, maxEntries: null, staleWhileRevalidateMs: null, tiers: ALL },
    research: { ttlMs: HOUR, maxEntries: 50, staleWhileRevalidateMs: null, tiers: ALL },
    routing: { ttlMs: 30 * MINUTE, maxEntries: 100, staleWhileRevalidateMs: null, tiers: ALL },
    tasks: { ttlMs: null, maxEntries: null, staleWhileRevalidateMs: null, tiers: ['sqlite', 'redis'] },
    // MCP tool results (the gateway's): this machine's files and processes, so never Redis.
    mcp: { ttlMs: 5 * MINUTE, maxEntries: 10_000, staleWhileRevalidateMs: null, tiers: ['memory', 'sqlite'] },
  } satisfies Record<string, NamespacePolicy>),
);

/** For namespaces nobody configured. */
export const FALLBACK_POLICY: NamespacePolicy = Object.freeze({ ttlMs: null, maxEntries: null, staleWhileRevalidateMs: null, tiers: ALL });

export const CONTEXT_PRESETS = ['feature_development', 'bug_fixing', 'code_review', 'refactoring'] as const;
export type ContextPreset = (typeof CONTEXT_PRESETS)[number];

/**
 * What each development context changes (the seed's context-aware caching), and why:
 * - feature_development: broad exploration; the seed's defaults.
 * - bug_fixing: quick iterations on code that changes under the fix; research and routes go stale
 *   fast, so shorter lives, and stale answers are never served.
 * - code_review: the same diff is read again and again and does not change during the review;
 *   longer lives and more entries.
 * - refactoring: code moves, so research ages quickly, while which agent handles which kind of
 *   task does not: routes live longer.
 */
export const PRESET_OVERRIDES: Readonly<Record<ContextPreset, Readonly<Record<string, Partial<NamespacePolicy>>>>> = Object.freeze({
  feature_development: {},
  bug_fixing: {
    research: { ttlMs: 15 * MINUTE, maxEntries: 50, staleWhileRevalidateMs: null },
    routing: { ttlMs: 10 * MINUTE, maxEntries: 100, staleWhileRevalidateMs: null },
  },
  code_review: {
    research: { ttlMs: 4 * HOUR, maxEntries: 200 },
    routing: { ttlMs: HOUR, maxEntries: 200 },
  },
  refactoring: {
    research: { ttlMs: 30 * MINUTE, maxEntries: 100 },
    routing: { ttlMs: 2 * HOUR, maxEntries: 100 },
  },
});

/** Branch prefixes that pick a preset when `context: auto`. */
const BRANCH_PREFIXES: readonly [string, ContextPreset][] = [
  ['feat/', 'feature_development'],
  ['feature/', 'feature_development'],
  ['fix/', 'bug_fixing'],
  ['bugfix/', 'bug_fixing'],
  ['hotfix/', 'bug_fixing'],
  ['review/', 'code_review'],
  ['refactor/', 'refactoring'],
];

export function presetForBranch(branch: string | null): ContextPreset | null {
  if (branch === null) return null;
  for (const [prefix, preset] of BRANCH_PREFIXES) if (branch.startsWith(prefix)) return preset;
  return null;
}

/** The namespaces in force: defaults, then the preset's changes, then the user's own. */
export function namespacePolicies(
  preset: ContextPreset | null,
  user: Readonly<Record<string, Partial<NamespacePolicy>>> = {},
): Record<string, NamespacePolicy> {
  // Namespaces are names users choose: no prototype, so `constructor` is a namespace like any other.
  const out = Object.assign(Object.create(null) as Record<string, NamespacePolicy>, DEFAULT_NAMESPACES);
  const base = (ns: string): NamespacePolicy => (Object.hasOwn(out, ns) ? out[ns]! : FALLBACK_POLICY);
  if (preset !== null) for (const [ns, o] of Object.entries(PRESET_OVERRIDES[preset])) out[ns] = { ...base(ns), ...o };
  for (const [ns, o] of Object.entries(user)) out[ns] = { ...base(ns), ...o };
  return out;
}
