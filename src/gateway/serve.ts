import type { Registry } from 'prom-client';
import type { LayeredCache } from '../cache/layered-cache.js';
import type { GatewayConfig, ResolvedConfig } from '../config/resolve.js';
import type { ResolvedMcp } from '../config/mcp.js';
import { openDatabase, storeFile, type Db } from '../store/db.js';
import { saveCatalog } from '../store/mcp-catalog.js';
import { Supervisor } from '../supervisor/supervisor.js';
import { guildVersion } from '../util/version.js';
import type { SystemProbe } from '../system/probe.js';
import { latencyTargets, McpTelemetry } from '../telemetry/mcp-metrics.js';
import type { GatewayStatus } from '../telemetry/mcp-status.js';
import { Gateway, type GatewayBudget } from './gateway.js';
import { listenGateway, type GatewayHttp } from './http.js';
import { ToolResultCache } from './tool-cache.js';

// The gateway as a service: its supervisor (its own, governed, for `guild mcp serve`; a run's,
// for `guild run` with `mcp:`), its cache of tool results, its telemetry, its backends and its
// HTTP endpoint.


export interface RunningGateway {
  readonly gateway: Gateway;
  readonly http: GatewayHttp;
  readonly telemetry: McpTelemetry;
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
  /** Where tool results are cached (namespace `mcp`); null: not cached. */
  cache: LayeredCache | null;
  host?: string;
  port: number;
  token?: string | null;
  runId?: string;
  /** The registry the gateway's metrics join (a run's); @default its own */
  registry?: Registry;
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
    resultCache: o.cache === null ? null : new ToolResultCache({ cache: o.cache, ttlMs: o.mcp.toolTtlMs }),
    ...(o.runId !== undefined && { runId: o.runId }),
    ...(o.onError !== undefined && { onError: o.onError }),
  });
  let url = '';
  const telemetry = new McpTelemetry({ ...(o.registry !== undefined && { registry: o.registry }), status: () => gateway.status(url) });
  const declare = (server: string): void => {
    const offer = gateway.catalog.offer(server);
    if (offer !== undefined) telemetry.declareNames(server, [...offer.tools.map((t) => t.name), ...offer.prompts.map((p) => p.name)]);
  };
  // What each server offers is kept in the folder's store, as learned and whenever it changes.
  const store: { db: Db | null } = { db: null };
  const keep = (server: string): void => {
    const offer = gateway.catalog.offer(server);
    const s = o.mcp.servers.find((x) => x.name === server);
    if (offer === undefined || s === undefined) return;
    try {
      store.db ??= openDatabase(storeFile(o.dir));
      saveCatalog(store.db, server, [s.command, ...s.args], offer);
    } catch (e) {
      o.onError?.(new Error(`mcp: cannot keep ${server}'s catalog in the store: ${(e as Error).message}`));
    }
  };
  for (const s of o.mcp.servers) {
    declare(s.name);
    keep(s.name);
  }
  gateway.onLearned((server) => {
    declare(server);
    keep(server);
  });
  gateway.onCall((e) => telemetry.record(e));
  const targets = latencyTargets(o.mcp.servers);
  const status = (at: string): GatewayStatus => ({ ...gateway.status(at), latency: telemetry.latency(targets) });
  let http: GatewayHttp;
  try {
    http = await listenGateway({
      gateway,
      port: o.port,
      ...(o.host !== undefined && { host: o.host }),
      token: o.token ?? null,
      serverInfo: { name: 'guild', version: guildVersion() },
      status,
      metrics: async () => (await telemetry.metrics()).body,
      ...(o.sessionIdleMs !== undefined && { sessionIdleMs: o.sessionIdleMs }),
    });
  } catch (e) {
    await gateway.close();
    store.db?.close();
    throw e;
  }
  url = http.url;
  let closing: Promise<void> | null = null;
  return {
    gateway,
    http,
    telemetry,
    url,
    status: () => status(url),
    close() {
      closing ??= (async () => {
        await http.close();
        await gateway.close();
        store.db?.close();
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
