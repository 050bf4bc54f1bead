import type { CacheDisabledBy, ResolvedConfig } from './resolve.js';

// What a run reads from a resolved configuration, apart from resolving it: resolve.ts loads the
// schema (zod), YAML and instructions.md, which a run that was handed its configuration never needs.

/** How each reason reads in the summary, the Markdown report and a task's cache reason. */
export const CACHE_DISABLED_TEXT: Readonly<Record<CacheDisabledBy, string>> = { flag: '--no-cache', workflow: 'cache.enabled: false', 'no store': 'no store' };

/** The largest estimate a task may have and still start alone: budget ÷ headroom. */
export function aloneCapBytes(config: Pick<ResolvedConfig, 'budgetBytes' | 'headroom'>): number {
  return Math.floor(config.budgetBytes / config.headroom);
}
