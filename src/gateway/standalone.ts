import { dirname } from 'node:path';
import { openCache } from '../cache/open.js';
import { loadGatewayConfig } from '../config/load-config.js';
import { GuildError } from '../errors.js';
import { createSystemProbe } from '../system/probe.js';
import type { GatewayStatus } from '../telemetry/mcp-status.js';
import { gatewayBudget, gatewaySupervisor, serveGateway, type RunningGateway } from './serve.js';

// `guild mcp serve` and `guild mcp stdio` as functions: a gateway of its own (probe, supervisor,
// cache, telemetry) for the servers a file declares, and the state file that lets others find it.

export interface StandaloneOptions {
  file: string;
  port: number;
  host?: string;
  token: string | null;
  budget?: string;
  onWarning?: (w: string) => void;
}

export interface Standalone extends RunningGateway {
  readonly servers: string[];
}

export async function startStandalone(o: StandaloneOptions): Promise<Standalone> {
  const probe = createSystemProbe();
  let cache: Awaited<ReturnType<typeof openCache>> | null = null;
  let running: RunningGateway | null = null;
  try {
    const config = loadGatewayConfig(o.file, o.budget !== undefined ? { budget: o.budget } : {}, probe);
    for (const w of config.warnings) o.onWarning?.(w);
    cache = await openCache(config.cache, config.dir);
    const supervisor = gatewaySupervisor(config, probe, cache);
    supervisor.startSampling();
    running = await serveGateway({
      mcp: config.mcp,
      dir: config.dir,
      supervisor,
      ownsSupervisor: true,
      budget: gatewayBudget(config, probe),
      resultCache: null,
      port: o.port,
      ...(o.host !== undefined && { host: o.host }),
      token: o.token,
    });
    const r = running;
    const c = cache;
    let closing: Promise<void> | null = null;
    return {
      ...r,
      servers: config.mcp.servers.map((s) => s.name),
      close() {
        closing ??= (async () => {
          await r.close();
          await c.close();
          probe.close();
        })();
        return closing;
      },
    };
  } catch (e) {
    await running?.close();
    await cache?.close();
    probe.close();
    throw e;
  }
}

export async function stdioGateway(_o: { file: string; budget?: string; token: string | null; onWarning?: (w: string) => void }): Promise<void> {
  throw new GuildError('UNAVAILABLE', 'guild mcp stdio: not built yet');
}

export async function fetchGatewayStatus(o: { file: string; url: string | null; token: string | null }): Promise<GatewayStatus> {
  const url = o.url ?? null;
  if (url === null) throw new GuildError('NOT_FOUND', `no gateway is running for ${dirname(o.file)}`);
  const res = await fetch(new URL('/status', url), { headers: o.token ? { authorization: `Bearer ${o.token}` } : {} });
  if (!res.ok) throw new GuildError('UNAVAILABLE', `${url}: /status answered ${res.status}`);
  return (await res.json()) as GatewayStatus;
}
