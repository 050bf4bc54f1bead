import type { ResolvedConfig } from '../config/resolve.js';
import { loadConfig } from '../config/load-config.js';
import type { LayeredCache } from './layered-cache.js';
import { openCache } from './open.js';
import { RoutingCache, type RouteDecision, type RoutingRules, type RoutingStats } from './routing.js';

/** A workflow's router: its agents' `route:` rules over its cache's `routing` namespace. */
export interface Router {
  /** The agent type for a task description, from the cache when the same or a similar one was routed. */
  route(description: string): Promise<RouteDecision>;
  stats(): RoutingStats;
  /** Flushes and closes the cache the router opened. */
  close(): Promise<void>;
  readonly routing: RoutingCache;
  readonly cache: LayeredCache;
}

/** The rules of a resolved workflow: agents that declare `route:`. */
export function routingRules(config: ResolvedConfig): RoutingRules {
  const rules: Record<string, { keywords: readonly string[]; patterns: readonly string[] }> = {};
  for (const a of Object.values(config.agents)) if (a.route) rules[a.name] = a.route;
  return rules;
}

/**
 * Opens the routing cache of a workflow file (or of an already resolved config): decisions are
 * kept in its store (and Redis when configured), so they outlive the process, expire with the
 * `routing` namespace's TTL, change with the agents' rules, and go with `guild cache clear routing`.
 *
 * @example
 * const router = await openRouter('guild.yaml');
 * const { agent, source } = await router.route('review the diff of the auth module');
 * await router.close();
 */
export async function openRouter(workflow: string | ResolvedConfig): Promise<Router> {
  const config = typeof workflow === 'string' ? loadConfig(workflow) : workflow;
  const cache = await openCache(config.cache, config.dir);
  const routing = new RoutingCache({ cache, rules: routingRules(config), similarity: config.cache.routing.similarity, fallback: config.cache.routing.fallback });
  return {
    route: (d) => routing.route(d),
    stats: () => routing.stats(),
    close: () => cache.close(),
    routing,
    cache,
  };
}
