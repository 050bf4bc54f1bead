/**
 * The dashboard server's options: their types, defaults and validation ("Expected X, got Y"),
 * resolved once before the server binds.
 */
import { fileURLToPath } from 'node:url';
import { DEFAULTS } from '../config/defaults.js';
import { GuildError } from '../errors.js';
import { openFilesLimit } from '../system/probe.js';
import type { GatewayStatus } from '../telemetry/mcp-status.js';
import type { WorkersSnapshot } from '../telemetry/state.js';
import { describeValue } from '../util/describe.js';
import { isLoopbackHost, TOKEN_ENV } from './auth.js';
import type { Feed } from './served-state.js';
import type { DashboardSource } from './source.js';

/** Options of `startDashboard` (server.ts). */
export interface DashboardOptions {
  source: DashboardSource;
  /**
   * The MCP gateway's snapshot, when this process runs one (null while it is not up). `/api/state`
   * then carries it as `mcp`, each SSE client gets it in its first `state`, and an `mcp` event
   * brings a fresh one every `mcpIntervalMs` while clients are attached (read once per period for
   * all of them). @default none: `/api/state` has no `mcp`, and the page shows no gateway panel
   */
  mcp?: () => GatewayStatus | null;
  /** The period of the `mcp` event. @default 1000 */
  mcpIntervalMs?: number;
  /**
   * A distributed run's live workers (null while none is known). `/api/state` then carries them as
   * `workers`, and a `workers` event brings a fresh snapshot every `workersIntervalMs` while
   * clients are attached. @default none: no `workers`, and the page shows no workers panel
   */
  workers?: () => WorkersSnapshot | null;
  /** The period of the `workers` event: heartbeats come every second. @default 1000 */
  workersIntervalMs?: number;
  /**
   * The address to bind. Anything but loopback (127.0.0.0/8, ::1, localhost) requires `token`.
   * @default '127.0.0.1'
   */
  host?: string;
  /** 0 = any free port (see `DashboardServer.port`). @default 8090 */
  port?: number;
  /**
   * When set, every request must carry it (`Authorization: Bearer`, `?token=`, or the cookie a
   * `?token=` request sets). Plain HTTP: on a network, put it behind TLS or an SSH tunnel.
   * @default process.env.GUILD_DASHBOARD_TOKEN ?? null (an empty variable counts as unset)
   */
  token?: string | null;
  /** The page's files (index.html, its ES modules, style.css…); only regular files directly inside are served. @default <package root>/src/dashboard/page */
  pageDir?: string;
  /** SSE clients attached at once; one more gets 503. @default 256 */
  maxClients?: number;
  /** The SSE comment heartbeat's period (keeps proxies and idle timeouts from closing streams). @default 15000 */
  heartbeatMs?: number;
  /** An SSE client whose unsent bytes exceed this is dropped rather than buffered for. @default 1 MiB */
  maxBufferedBytes?: number;
  /**
   * Connections open at once, SSE streams included; one more is closed as soon as it is accepted.
   * A flood of connections then costs the process this many descriptors at most, whatever the
   * flood, and the run the dashboard watches keeps the rest. Must be above `maxClients`.
   * @default min(1024, the soft open-files limit ÷ 4), but at least maxClients + 32
   */
  maxConnections?: number;
  /**
   * A client has this long from connecting to send a whole request (headers included): a
   * connection that sends nothing, or trickles, is dropped (`server.headersTimeout` and
   * `server.requestTimeout`). @default 10000
   */
  headersTimeoutMs?: number;
  /**
   * A connection with no traffic either way for this long is closed (a client that stopped
   * reading a response, a half-open socket). SSE streams are exempt: they are idle between
   * events by design, and the heartbeat and `maxBufferedBytes` look after them. @default 30000
   */
  idleTimeoutMs?: number;
}

/** The options with every default applied and every value checked. */
export interface ResolvedOptions {
  source: DashboardSource;
  /** The snapshots beside the source's state: the gateway's `mcp`, a distributed run's `workers`. */
  feeds: Feed[];
  host: string;
  port: number;
  token: string | null;
  pageDir: string;
  maxClients: number;
  heartbeatMs: number;
  maxBufferedBytes: number;
  maxConnections: number;
  headersTimeoutMs: number;
  idleTimeoutMs: number;
}

/** The default period of the `mcp` event: the gateway's figures (RSS, calls) move on the scale of seconds. */
const MCP_INTERVAL_MS = 1000;
/** The default period of the `workers` event: a worker heartbeats once a second. */
const WORKERS_INTERVAL_MS = 1000;

export function resolveOptions(options: DashboardOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null || typeof options.source !== 'object' || options.source === null) {
    throw new GuildError('INVALID_OPTION', `Expected options.source to be a DashboardSource, got ${describeValue(options?.source)}`);
  }
  const host = options.host ?? DEFAULTS.dashboard.host;
  if (typeof host !== 'string' || host.trim() === '') throw new GuildError('INVALID_OPTION', `Expected the dashboard host to be a non-empty string, got ${describeValue(host)}`);
  const port = options.port ?? DEFAULTS.dashboard.port;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new GuildError('INVALID_OPTION', `Expected the dashboard port to be an integer 0..65535, got ${describeValue(port)}`);

  let token: string | null;
  if (options.token === undefined) token = process.env[TOKEN_ENV] || null;
  else if (options.token === null) token = null;
  else if (typeof options.token !== 'string' || options.token === '') throw new GuildError('INVALID_OPTION', `Expected the dashboard token to be a non-empty string or null, got ${describeValue(options.token)}`);
  else token = options.token;

  if (token === null && !isLoopbackHost(host)) {
    throw new GuildError(
      'USAGE',
      `refusing to serve the dashboard on ${host} without a token: anyone who can reach this machine could read it. ` +
        `Pass --token <TOKEN> or set ${TOKEN_ENV}, or bind to 127.0.0.1`,
    );
  }
  const maxClients = positiveInt('maxClients', options.maxClients, DEFAULTS.dashboard.maxClients);
  const maxConnections = positiveInt('maxConnections', options.maxConnections, defaultMaxConnections(maxClients, openFilesLimit()));
  if (maxConnections <= maxClients) {
    throw new GuildError('INVALID_OPTION', `Expected dashboard maxConnections to be above maxClients (${maxClients}): every SSE client holds a connection; got ${describeValue(options.maxConnections)}`);
  }
  if (options.mcp !== undefined && typeof options.mcp !== 'function') throw new GuildError('INVALID_OPTION', `Expected options.mcp to be a function returning a GatewayStatus or null, got ${describeValue(options.mcp)}`);
  const mcpIntervalMs = timeoutMs('mcpIntervalMs', options.mcpIntervalMs, MCP_INTERVAL_MS);
  if (options.workers !== undefined && typeof options.workers !== 'function') throw new GuildError('INVALID_OPTION', `Expected options.workers to be a function returning a WorkersSnapshot or null, got ${describeValue(options.workers)}`);
  const workersIntervalMs = timeoutMs('workersIntervalMs', options.workersIntervalMs, WORKERS_INTERVAL_MS);
  const feeds: Feed[] = [];
  if (options.mcp !== undefined) feeds.push({ name: 'mcp', read: options.mcp, intervalMs: mcpIntervalMs });
  if (options.workers !== undefined) feeds.push({ name: 'workers', read: options.workers, intervalMs: workersIntervalMs });
  return {
    source: options.source,
    feeds,
    host,
    port,
    token,
    pageDir: options.pageDir ?? DEFAULT_PAGE_DIR,
    maxClients,
    heartbeatMs: positiveInt('heartbeatMs', options.heartbeatMs, DEFAULTS.dashboard.heartbeatMs),
    maxBufferedBytes: positiveInt('maxBufferedBytes', options.maxBufferedBytes, DEFAULTS.dashboard.maxBufferedBytes),
    maxConnections,
    headersTimeoutMs: timeoutMs('headersTimeoutMs', options.headersTimeoutMs, DEFAULTS.dashboard.headersTimeoutMs),
    idleTimeoutMs: timeoutMs('idleTimeoutMs', options.idleTimeoutMs, DEFAULTS.dashboard.idleTimeoutMs),
  };
}

/**
 * The default cap: a quarter of the descriptors this process may open, at most 1024, but always
 * room for every SSE client and a few requests besides.
 */
export function defaultMaxConnections(maxClients: number, softFdLimit: number | null): number {
  const share = softFdLimit === null ? DEFAULTS.dashboard.maxConnections : Math.floor(softFdLimit / DEFAULTS.dashboard.fdShareDivisor);
  return Math.max(maxClients + DEFAULTS.dashboard.nonSseConnections, Math.min(DEFAULTS.dashboard.maxConnections, share));
}

/** Timers above 2³¹−1 ms fire at once (Node clamps them to 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

function timeoutMs(name: string, value: number | undefined, fallback: number): number {
  const v = positiveInt(name, value, fallback);
  if (v > MAX_TIMER_MS) throw new GuildError('INVALID_OPTION', `Expected dashboard ${name} to be at most ${MAX_TIMER_MS} ms, got ${describeValue(value)}`);
  return v;
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new GuildError('INVALID_OPTION', `Expected dashboard ${name} to be a positive integer, got ${describeValue(value)}`);
  return value;
}

/** From dist/src/dashboard/ (where this runs) up to the package root; as cli/main.ts finds package.json. */
const DEFAULT_PAGE_DIR = fileURLToPath(new URL('../../../src/dashboard/page/', import.meta.url));
