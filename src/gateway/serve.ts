import { readFileSync } from 'node:fs';
import type { LayeredCache } from '../cache/layered-cache.js';
import type { GatewayConfig, ResolvedConfig } from '../config/resolve.js';
import type { ResolvedMcp } from '../config/mcp.js';
import { Supervisor } from '../supervisor/supervisor.js';
import type { SystemProbe } from '../system/probe.js';
import type { GatewayStatus, McpCallEvent } from '../telemetry/mcp-status.js';
import { Gateway, type GatewayBudget } from './gateway.js';
import { listenGateway, type GatewayHttp } from './http.js';
import type { ResultCache } from './result-cache.js';

// The gateway as a service: its supervisor (its own, governed, for `guild mcp serve`; a run's,
// for `guild run` with `mcp:`), its cache of tool results, its backends and its HTTP endpoint.

let version: string | undefined;
function guildVersion(): string {
  version ??= (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return version;
}

/** What `/status` adds to the gateway's own snapshot: latency per tool, from its telemetry. */
export type LatencyOf = () => GatewayStatus['latency'];

export interface RunningGateway {
  readonly gateway: Gateway;
  readonly http: GatewayHttp;
  readonly url: string;
  status(): GatewayStatus;
  /** Ends the HTTP endpoint and every backend; then the supervisor when it is the gateway's own. */
  close(): Promise<void>;
}

export interface ServeOptions {
  mcp: ResolvedMcp;
  /** The config's folder: the default project, home of `.guild/`. */
  dir: string;
  supervisor: Supervisor;
  budget: GatewayBudget;
  resultCache: ResultCache | null;
  host?: string;
  port: number;
  token?: string | null;
  runId?: string;
  /** Latency per tool for `/status` (the telemetry's). @default none */
  latency?: LatencyOf;
  /** `/metrics` text. @default none */
  metrics?: () => Promise<string>;
  onCall?: (e: McpCallEvent) => void;
  onError?: (e: Error) => void;
  /** Close the supervisor with the gateway (it is the gateway's own). @default false */
  ownsSupervisor?: boolean;
  sessionIdleMs?: number;
}

/** Starts every server's first instance, then listens. Nothing is left running if either fails. */
export async function serveGateway(o: ServeOptions): Promise<RunningGateway> {
  const gateway = await Gateway.start({
    config: o.mcp,
    supervisor: o.supervisor,
    budget: o.budget,
    defaultProject: o.dir,
    resultCache: o.resultCache,
    ...(o.runId !== undefined && { runId: o.runId }),
    ...(o.onError !== undefined && { onError: o.onError }),
  });
  if (o.onCall) gateway.onCall(o.onCall);
  const status = (url: string): GatewayStatus => ({ ...gateway.status(url), latency: o.latency?.() ?? [] });
  let http: GatewayHttp;
  try {
    http = await listenGateway({
      gateway,
      port: o.port,
      ...(o.host !== undefined && { host: o.host }),
      token: o.token ?? null,
      serverInfo: { name: 'guild', version: guildVersion() },
      status,
      ...(o.metrics !== undefined && { metrics: o.metrics }),
      ...(o.sessionIdleMs !== undefined && { sessionIdleMs: o.sessionIdleMs }),
    });
  } catch (e) {
    await gateway.close();
    throw e;
  }
  let closing: Promise<void> | null = null;
  return {
    gateway,
    http,
    url: http.url,
    status: () => status(http.url),
    close() {
      closing ??= (async () => {
        await http.close();
        await gateway.close();
        if (o.ownsSupervisor) await o.supervisor.close();
      })();
      return closing;
    },
  };
}

/**
 * The supervisor of a standalone gateway: sampling and governed by the config's governor. The
 * governor never pauses or kills a backend (their policy is `owner`): the gateway reads its level
 * and answers it; its caching response goes to the cache.
 */
export function gatewaySupervisor(config: ResolvedConfig, probe: SystemProbe, cache: LayeredCache | null): Supervisor {
  const g = config.governor;
  return new Supervisor({
    probe,
    sampleIntervalMs: config.sampleIntervalMs,
    governance: {
      options: { thresholds: g.thresholds, margin: g.margin, holdMs: g.holdMs, cooldownMs: g.cooldownMs },
      admission: { setCap: () => undefined, setAdmission: () => undefined, setCaching: (mode) => cache?.onCacheMode(mode) },
      budgetBytes: config.budgetBytes,
    },
  });
}

/** The budget of a standalone gateway: the config's, against the machine's available memory. */
export function gatewayBudget(config: Pick<GatewayConfig, 'budgetBytes' | 'headroom'>, probe: SystemProbe): GatewayBudget {
  return { budgetBytes: config.budgetBytes, headroom: config.headroom, systemFreeBytes: () => probe.memory().availableBytes };
}
