/**
 * The dashboard's HTTP server: `/metrics` (Prometheus), `/api/state`, `/api/runs`, `/api/events`
 * (server-sent events) and the page. With an MCP gateway source, the state carries its snapshot
 * (`mcp`) and the stream an `mcp` event. Read-only: no route writes anything or runs a command.
 *
 * node:http and nothing else: a route table (routes.ts) is all the routing a handful of paths
 * needs, and a framework would add RSS and per-request work to a process whose own footprint is
 * part of what it measures (< 200 MB with 50 SSE clients attached, makespan within 3 % of a run
 * nobody watches). This file binds and wires: options.ts resolves the options, the gate (auth.ts)
 * admits a request, routes.ts answers it, sse-hub.ts streams, assets.ts serves the page.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { GuildError } from '../errors.js';
import { Assets } from './assets.js';
import { Gate } from './auth.js';
import { SECURITY_HEADERS, sendJson } from './http.js';
import { resolveOptions, type DashboardOptions } from './options.js';
import { assetRoute, dashboardRoutes, RouteTable } from './routes.js';
import { servedState } from './served-state.js';
import { EventHub } from './sse-hub.js';

export type { DashboardOptions } from './options.js';
export { defaultMaxConnections } from './options.js';
export type { DashboardSettings, DashboardSource, PressureThresholds } from './source.js';

export interface DashboardServer {
  /** `http://host:port/`, without the token. */
  readonly url: string;
  readonly host: string;
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number;
  /** SSE clients attached now. */
  clients(): number;
  /** Ends every SSE stream, stops the heartbeat, closes every connection. Idempotent. */
  close(): Promise<void>;
}

/** How long close() lets SSE streams flush before cutting connections. */
const CLOSE_GRACE_MS = 1000;

/**
 * Starts the server. Rejects before listening: `USAGE` when a non-loopback host has no token, `PORT_IN_USE` when
 * the port is taken, `LISTEN_FAILED` when the address cannot be bound, `INVALID_OPTION` for a bad option.
 */
export async function startDashboard(options: DashboardOptions): Promise<DashboardServer> {
  const o = resolveOptions(options);
  const assets = await Assets.open(o.pageDir);
  const hub = new EventHub(o.source, o.heartbeatMs, o.maxBufferedBytes, o.feeds);
  const state = servedState(o.source, o.feeds);
  const routes = new RouteTable(dashboardRoutes({ source: o.source, state, hub, maxClients: o.maxClients }), assetRoute(assets));
  let gate!: Gate;
  // Node checks headersTimeout and requestTimeout on this period (30 s by default, so a 10 s
  // timeout could take 40 s); a few checks per timeout keep the bound near what it says.
  const connectionsCheckingInterval = Math.max(50, Math.min(1000, Math.floor(o.headersTimeoutMs / 4)));
  const server = createServer({ connectionsCheckingInterval }, (req, res) => {
    handle(req, res).catch(() => {
      // Never a stack trace on the wire: the message of an internal error is nobody's business.
      if (!res.headersSent) sendJson(req, res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    for (const [k, v] of SECURITY_HEADERS) res.setHeader(k, v);
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    // The raw path, never decoded for the page: static names are looked up verbatim in a
    // whitelist, so `..`, `%2e%2e` and `%2F` can only miss.
    const path = q === -1 ? raw : raw.slice(0, q);
    const query = q === -1 ? null : new URLSearchParams(raw.slice(q + 1));

    const verdict = gate.check(req, query);
    if (verdict === 'forbidden-host') return sendJson(req, res, 403, { error: 'forbidden host' });
    if (verdict === 'unauthorized') {
      res.setHeader('www-authenticate', 'Bearer');
      return sendJson(req, res, 401, { error: 'unauthorized' });
    }
    const cookie = gate.cookieFor(req, query);
    if (cookie !== null) res.setHeader('set-cookie', cookie);

    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return sendJson(req, res, 405, { error: 'method not allowed' });
    }
    return routes.find(path)({ req, res, path, query });
  }

  // The bounds on what a client can hold: connections, and time. A connection over the cap is
  // closed on accept; one that sends nothing is dropped after headersTimeoutMs (Node counts a
  // socket that never sent a byte as a request in progress), one that goes quiet after idleTimeoutMs.
  server.maxConnections = o.maxConnections;
  server.headersTimeout = o.headersTimeoutMs;
  server.requestTimeout = o.headersTimeoutMs; // GET and HEAD only: no body to wait for beyond the headers
  server.timeout = o.idleTimeoutMs;
  await listen(server, o.host, o.port);
  // Once listening, the server emits 'error' only for failed accepts (EMFILE under a connection
  // flood). Without a listener that would throw and end the run the dashboard merely watches; the
  // server keeps listening, and the refused connection is the whole cost.
  server.on('error', () => {});
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : o.port;
  // Built once the port is known (the cookie is named after it); no request arrives before listen() resolves.
  gate = new Gate(o.token, `guild_dashboard_token_${port}`);
  const url = `http://${o.host.includes(':') && !o.host.startsWith('[') ? `[${o.host}]` : o.host}:${port}/`;

  let closing: Promise<void> | null = null;
  return {
    url,
    host: o.host,
    port,
    clients: () => hub.size,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Streams get a moment to flush their last events; then whatever is still open (in-flight
        // requests, keep-alive sockets, a client that stopped reading) is cut.
        void hub.closeAll(CLOSE_GRACE_MS).then(() => server.closeAllConnections());
      });
      return closing;
    },
  };
}

function listen(server: ReturnType<typeof createServer>, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(bindError(err, host, port));
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function bindError(err: NodeJS.ErrnoException, host: string, port: number): GuildError {
  switch (err.code) {
    case 'EADDRINUSE':
      return new GuildError('PORT_IN_USE', `port ${port} is in use on ${host}: stop what holds it, or pick another port (--dashboard <PORT>; 0 picks a free one)`, { cause: err });
    case 'EACCES':
      return new GuildError('LISTEN_FAILED', `port ${port} on ${host} needs privileges this process lacks: pick a port above 1023`, { cause: err });
    case 'EADDRNOTAVAIL':
      return new GuildError('LISTEN_FAILED', `${host} is not an address of this machine: the dashboard cannot bind to it`, { cause: err });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new GuildError('LISTEN_FAILED', `cannot resolve the dashboard host ${host}`, { cause: err });
    default:
      return new GuildError('LISTEN_FAILED', `cannot serve the dashboard on ${host}:${port}: ${err.message}`, { cause: err });
  }
}
