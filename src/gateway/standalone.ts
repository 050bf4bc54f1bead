import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { openCache } from '../cache/open.js';
import { loadGatewayConfig } from '../config/load-config.js';
import { GuildError } from '../errors.js';
import { openDatabase, storeFile } from '../store/db.js';
import { loadCatalog } from '../store/mcp-catalog.js';
import { createSystemProbe } from '../system/probe.js';
import type { Offer } from './catalog.js';
import type { GatewayStatus } from '../telemetry/mcp-status.js';
import { gatewayBudget, gatewaySupervisor, serveGateway, type RunningGateway } from './serve.js';
import { liveGatewayState, removeGatewayState, writeGatewayState } from './state-file.js';
import { bridgeStdio } from './stdio-bridge.js';

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
    const other = liveGatewayState(config.dir);
    if (other !== null) throw new GuildError('LOCKED', `a gateway already serves ${config.dir} at ${other.url} (pid ${other.pid}); \`guild mcp status\` shows it`);
    cache = await openCache(config.cache, config.dir);
    const supervisor = gatewaySupervisor(config, probe, cache);
    supervisor.startSampling();
    running = await serveGateway({
      mcp: config.mcp,
      dir: config.dir,
      supervisor,
      ownsSupervisor: true,
      budget: gatewayBudget(config, probe),
      cache,
      port: o.port,
      ...(o.host !== undefined && { host: o.host }),
      token: o.token,
    });
    const r = running;
    const c = cache;
    writeGatewayState(config.dir, { pid: process.pid, url: r.url, configFile: resolve(o.file), startedAt: r.gateway.startedAt.toISOString(), token: o.token });
    let closing: Promise<void> | null = null;
    return {
      ...r,
      servers: config.mcp.servers.map((s) => s.name),
      close() {
        closing ??= (async () => {
          removeGatewayState(config.dir, process.pid);
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

export interface StdioOptions {
  file: string;
  budget?: string;
  token: string | null;
  onWarning?: (w: string) => void;
  /** @default process.stdin */
  input?: NodeJS.ReadableStream;
  /** @default process.stdout */
  output?: NodeJS.WritableStream;
}

/**
 * `guild mcp stdio`: relays a stdio client to the gateway serving the file's folder (its state
 * file names it), or to one started here, on a free loopback port, for as long as the client
 * stays (others may join it meanwhile: the state file names it too).
 */
export async function stdioGateway(o: StdioOptions): Promise<void> {
  const dir = dirname(resolve(o.file));
  const live = liveGatewayState(dir);
  let own: Standalone | null = null;
  if (live === null) own = await startStandalone({ file: o.file, port: 0, token: null, ...(o.budget !== undefined && { budget: o.budget }), ...(o.onWarning && { onWarning: o.onWarning }) });
  try {
    await bridgeStdio({
      url: own?.url ?? live!.url,
      token: own === null ? (live!.token ?? o.token) : null,
      input: (o.input ?? process.stdin) as never,
      output: (o.output ?? process.stdout) as never,
      ...(o.onWarning && { onError: (e: Error) => o.onWarning!(e.message) }),
    });
  } finally {
    await own?.close();
  }
}

/** The status of the gateway serving the file's folder (its state file), or at `url`. */
export async function fetchGatewayStatus(o: { file: string; url: string | null; token: string | null }): Promise<GatewayStatus> {
  const dir = dirname(resolve(o.file));
  const live = o.url === null ? liveGatewayState(dir) : null;
  const url = o.url ?? live?.url ?? null;
  if (url === null) throw new GuildError('NOT_FOUND', `no gateway is serving ${dir} (start one with \`guild mcp serve\`, or name it with --url)${lastLearned(dir)}`);
  const token = o.token ?? live?.token ?? null;
  let res: Response;
  try {
    res = await fetch(new URL('/status', url), { headers: token ? { authorization: `Bearer ${token}` } : {} });
  } catch (e) {
    throw new GuildError('UNAVAILABLE', `${url}: cannot reach the gateway (${e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e)})`);
  }
  if (!res.ok) throw new GuildError('UNAVAILABLE', `${url}: /status answered ${res.status}${res.status === 401 ? ' (give its token: --token or $GUILD_MCP_TOKEN)' : ''}`);
  return (await res.json()) as GatewayStatus;
}

/** What the folder's store says its gateway's servers offered when last learned ('' if nothing). */
function lastLearned(dir: string): string {
  const file = storeFile(dir);
  if (!existsSync(file)) return '';
  const db = openDatabase(file);
  try {
    const rows = loadCatalog<Offer>(db);
    if (rows.length === 0) return '';
    const lines = rows.map(
      (r) =>
        `  ${r.server}: ${r.offer.tools.length} tools, ${r.offer.resources.length} resources, ${r.offer.prompts.length} prompts (${r.command.join(' ')}; learned ${r.learnedAt.toISOString()})`,
    );
    return `\nlast learned here:\n${lines.join('\n')}`;
  } finally {
    db.close();
  }
}
