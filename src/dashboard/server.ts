/**
 * The dashboard's HTTP server: `/metrics` (Prometheus), `/api/state`, `/api/runs`, `/api/events`
 * (server-sent events) and the page. With an MCP gateway source, the state carries its snapshot
 * (`mcp`) and the stream an `mcp` event. Read-only: no route writes anything or runs a command.
 *
 * node:http and nothing else. Six routes need no router, and a framework would add RSS and
 * per-request work to a process whose own footprint is part of what it measures (< 200 MB with 50
 * SSE clients attached, makespan within 3 % of a run nobody watches).
 */
import { describeValue } from '../util/describe.js';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULTS } from '../config/defaults.js';
import { GuildError } from '../errors.js';
import type { GatewayStatus } from '../telemetry/mcp-status.js';
import type { DashboardState, RunSummary, SeriesPoint } from '../telemetry/state.js';
import { openFilesLimit } from '../system/probe.js';
import { Gate, isLoopbackHost, TOKEN_ENV } from './auth.js';

/** What the server shows. The server owns no state of its own: the source resolves everything. */
export interface DashboardSource {
  /** The whole current state (`/api/state`, and the first SSE message of each client). */
  state(): DashboardState;
  /** Prometheus text exposition. */
  metrics(): Promise<{ contentType: string; body: string }>;
  /**
   * Every SSE message, already serialized once by the source: (event name, JSON data). Returns
   * unsubscribe. The server subscribes while at least one client is attached, and only then.
   */
  subscribe(listener: (event: string, data: string) => void): () => void;
  /** Past runs, newest first. */
  runs(limit: number): RunSummary[];
  /** One run; `id` may be 'last' or a prefix: the source resolves it. null when none matches. */
  run(id: string): { report: unknown; markdown: string; series: SeriesPoint[] } | null;
}

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
  /** The page's files (index.html, app.js, style.css…); only regular files directly inside are served. @default <package root>/src/dashboard/page */
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


interface Resolved {
  source: DashboardSource;
  mcp: (() => GatewayStatus | null) | null;
  mcpIntervalMs: number;
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


/**
 * Starts the server. Rejects before listening: `USAGE` when a non-loopback host has no token, `PORT_IN_USE` when
 * the port is taken, `LISTEN_FAILED` when the address cannot be bound, `INVALID_OPTION` for a bad option.
 */
export async function startDashboard(options: DashboardOptions): Promise<DashboardServer> {
  const o = resolveOptions(options);
  const assets = await Assets.open(o.pageDir);
  const hub = new EventHub(o.source, o.heartbeatMs, o.maxBufferedBytes, o.mcp, o.mcpIntervalMs);
  /** The source's state, with the gateway's snapshot when there is a gateway source (the page keys its panel on `mcp`). */
  const state = (): DashboardState | (DashboardState & { mcp: GatewayStatus | null }) => (o.mcp === null ? o.source.state() : { ...o.source.state(), mcp: o.mcp() });
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

    if (path === '/metrics') {
      const m = await o.source.metrics();
      return send(req, res, 200, { 'content-type': m.contentType, 'cache-control': 'no-store' }, m.body);
    }
    if (path === '/api/state') return sendJson(req, res, 200, state());
    if (path === '/api/events') return events(req, res);
    if (path === '/api/runs') {
      const limit = parseLimit(query?.get('limit') ?? null);
      if (typeof limit === 'string') return sendJson(req, res, 400, { error: limit });
      return sendJson(req, res, 200, o.source.runs(limit));
    }
    if (path.startsWith('/api/runs/')) {
      const id = decodeId(path.slice('/api/runs/'.length));
      const run = id === null ? null : o.source.run(id);
      return run === null ? sendJson(req, res, 404, { error: 'run not found' }) : sendJson(req, res, 200, run);
    }
    if (path.startsWith('/api/')) return sendJson(req, res, 404, { error: 'not found' });

    const asset = await assets.get(path === '/' ? '/index.html' : path);
    if (asset === null) return sendJson(req, res, 404, { error: 'not found' });
    const headers = { 'content-type': asset.type, etag: asset.etag, 'cache-control': 'no-cache' };
    if (etagMatches(req.headers['if-none-match'], asset.etag)) return send(req, res, 304, headers, null);
    return send(req, res, 200, headers, asset.body);
  }

  function events(req: IncomingMessage, res: ServerResponse): void {
    if (req.method === 'HEAD') return send(req, res, 200, SSE_HEADERS, null);
    if (hub.size >= o.maxClients) {
      res.setHeader('retry-after', '5');
      return sendJson(req, res, 503, { error: `too many dashboard clients (at most ${o.maxClients})` });
    }
    // Serialized before the headers go out, so a failing source still gets a clean 500.
    const head = `retry: ${DEFAULTS.dashboard.retryMs}\n\n${sseFrame('state', JSON.stringify(state()))}`;
    // Long-lived by design: exempt from the idle timeout (a stream quiet between heartbeats is
    // healthy). One that stops reading is still dropped, by maxBufferedBytes.
    req.socket.setTimeout(0);
    res.writeHead(200, SSE_HEADERS);
    hub.add(res, head);
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

/** The default period of the `mcp` event: the gateway's figures (RSS, calls) move on the scale of seconds. */
const MCP_INTERVAL_MS = 1000;

/** How long close() lets SSE streams flush before cutting connections. */
const CLOSE_GRACE_MS = 1000;

function resolveOptions(options: DashboardOptions): Resolved {
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
  return {
    source: options.source,
    mcp: options.mcp ?? null,
    mcpIntervalMs: timeoutMs('mcpIntervalMs', options.mcpIntervalMs, MCP_INTERVAL_MS),
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

// ---------------------------------------------------------------------------------------------
// Responses

/**
 * On every response, errors included. The CSP lets the page load its own scripts, styles and
 * event stream and nothing else (uPlot styles its elements through the CSSOM, which style-src
 * does not restrict). no-referrer also keeps a `?token=` from leaking through a Referer header.
 */
const SECURITY_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ['x-content-type-options', 'nosniff'],
  ['referrer-policy', 'no-referrer'],
  [
    'content-security-policy',
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  ],
  ['x-frame-options', 'DENY'],
  ['cross-origin-resource-policy', 'same-origin'],
];

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  // nginx buffers proxied responses unless told not to; a buffered event stream arrives in lumps.
  'x-accel-buffering': 'no',
} as const;

function send(req: IncomingMessage, res: ServerResponse, status: number, headers: Record<string, string>, body: string | Buffer | null): void {
  res.writeHead(status, body === null ? headers : { ...headers, 'content-length': String(typeof body === 'string' ? Buffer.byteLength(body) : body.length) });
  res.end(req.method === 'HEAD' || body === null ? undefined : body);
}

function sendJson(req: IncomingMessage, res: ServerResponse, status: number, value: unknown): void {
  send(req, res, status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }, JSON.stringify(value));
}

/** A positive integer up to the maximum (larger is clamped), the default when absent, or an error message. */
function parseLimit(raw: string | null): number | string {
  if (raw === null || raw === '') return DEFAULTS.dashboard.runsLimit;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) return `Expected limit to be a positive integer, got ${JSON.stringify(raw)}`;
  return Math.min(Number(raw), DEFAULTS.dashboard.runsLimitMax);
}

/** One path segment, decoded; null when it is empty, has more segments or does not decode. */
function decodeId(raw: string): string | null {
  if (raw === '' || raw.includes('/')) return null;
  try {
    const id = decodeURIComponent(raw);
    return id === '' || id.includes('/') ? null : id;
  } catch {
    return null;
  }
}

function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}

// ---------------------------------------------------------------------------------------------
// Server-sent events

/** `event:` then `data:`; a line break inside data would end the field early, so each line gets its own `data:`. */
function sseFrame(event: string, data: string): string {
  // JSON.stringify never emits a raw line break; the check is two memchr scans, the split is the rare path.
  const body = data.includes('\n') || data.includes('\r') ? data.split(/\r\n|\r|\n/).join('\ndata: ') : data;
  return `event: ${event}\ndata: ${body}\n\n`;
}

const PING = Buffer.from(': ping\n\n');

/**
 * The attached SSE clients. One subscription to the source, whatever the number of clients, and
 * only while there is at least one; one heartbeat timer for all of them, likewise.
 */
class EventHub {
  /** Each client with the most unsent bytes it may have: the bound plus its own first write (a large state must not get a fresh client dropped on the next tick). */
  readonly #clients = new Map<ServerResponse, number>();
  readonly #source: DashboardSource;
  readonly #heartbeatMs: number;
  readonly #maxBuffered: number;
  readonly #mcp: (() => GatewayStatus | null) | null;
  readonly #mcpMs: number;
  #unsubscribe: (() => void) | null = null;
  #heartbeat: NodeJS.Timeout | null = null;
  #mcpTimer: NodeJS.Timeout | null = null;

  constructor(source: DashboardSource, heartbeatMs: number, maxBuffered: number, mcp: (() => GatewayStatus | null) | null, mcpMs: number) {
    this.#source = source;
    this.#heartbeatMs = heartbeatMs;
    this.#maxBuffered = maxBuffered;
    this.#mcp = mcp;
    this.#mcpMs = mcpMs;
  }

  get size(): number {
    return this.#clients.size;
  }

  /** Attaches a response whose headers are written; `head` is its first write. */
  add(res: ServerResponse, head: string): void {
    // Synchronous from the state snapshot the caller took to here, so no message falls between the two.
    if (this.#clients.size === 0) {
      this.#unsubscribe = this.#source.subscribe(this.#broadcast);
      this.#heartbeat = setInterval(() => this.#sendAll(PING), this.#heartbeatMs).unref();
      if (this.#mcp !== null) this.#mcpTimer = setInterval(this.#sendMcp, this.#mcpMs).unref();
    }
    this.#clients.set(res, this.#maxBuffered + Buffer.byteLength(head));
    res.once('close', () => this.#remove(res));
    res.write(head);
  }

  /** Ends every stream; resolves when each has flushed what it was sent (the final `end` event), or after `graceMs`. */
  closeAll(graceMs: number): Promise<void> {
    const open = [...this.#clients.keys()];
    this.#clients.clear();
    this.#stop();
    const flushed = open.map((res) => new Promise<void>((resolve) => res.end(resolve)));
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, graceMs);
      void Promise.all(flushed).then(() => (clearTimeout(timer), resolve()));
    });
  }

  /**
   * One Buffer per message, written to every client: the string is encoded once, and the sockets
   * hold references to the same bytes instead of a copy each (a string would be encoded per socket).
   */
  readonly #broadcast = (event: string, data: string): void => {
    this.#sendAll(Buffer.from(sseFrame(event, data)));
  };

  /** The gateway's snapshot is pulled, not pushed: read once per period and sent to every client. */
  readonly #sendMcp = (): void => {
    let data: string;
    try {
      data = JSON.stringify(this.#mcp!());
    } catch {
      return; // a snapshot that fails now may not next time; the clients keep the last one
    }
    this.#broadcast('mcp', data);
  };

  #sendAll(chunk: Buffer): void {
    for (const [res, limit] of this.#clients) {
      // writableLength counts what neither Node nor the kernel took yet. A client that stopped
      // reading is dropped here rather than buffered for without limit, and write() never blocks;
      // EventSource reconnects and starts again from a fresh `state`.
      if (res.destroyed || res.writableLength > limit) {
        this.#remove(res);
        res.destroy();
      } else {
        res.write(chunk);
      }
    }
  }

  #remove(res: ServerResponse): void {
    // Deleting from a Map while iterating it is safe: the iteration skips what was deleted.
    if (this.#clients.delete(res) && this.#clients.size === 0) this.#stop();
  }

  #stop(): void {
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
    if (this.#mcpTimer !== null) clearInterval(this.#mcpTimer);
    this.#mcpTimer = null;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }
}

// ---------------------------------------------------------------------------------------------
// The page

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const CONTENT_TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  json: 'application/json; charset=utf-8',
  map: 'application/json; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
  txt: 'text/plain; charset=utf-8',
  woff2: 'font/woff2',
};

/** A name as it may appear in a URL path: no slash, no percent sign, no leading dot. */
const SAFE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/**
 * The files the page may load, as a whitelist of URL paths fixed when the server starts: the
 * regular files directly in pageDir (no dotfiles, no subfolders, no symlinks) and uPlot's two
 * files. Each is read on first request and kept in memory (the page is a few hundred KB).
 */
class Assets {
  readonly #paths: ReadonlyMap<string, string>;
  readonly #cache = new Map<string, Promise<Asset | null>>();

  private constructor(paths: ReadonlyMap<string, string>) {
    this.#paths = paths;
  }

  static async open(pageDir: string): Promise<Assets> {
    const paths = new Map<string, string>();
    try {
      for (const entry of await readdir(pageDir, { withFileTypes: true })) {
        if (entry.isFile() && SAFE_NAME.test(entry.name)) paths.set(`/${entry.name}`, join(pageDir, entry.name));
      }
    } catch {
      // No page folder: the API still serves (`guild dashboard` scripts, curl); the page 404s.
    }
    const uplot = uplotDist();
    if (uplot !== null) {
      paths.set('/vendor/uPlot.iife.min.js', join(uplot, 'uPlot.iife.min.js'));
      paths.set('/vendor/uPlot.min.css', join(uplot, 'uPlot.min.css'));
    }
    return new Assets(paths);
  }

  get(urlPath: string): Promise<Asset | null> {
    const file = this.#paths.get(urlPath);
    if (file === undefined) return Promise.resolve(null);
    let asset = this.#cache.get(urlPath);
    if (asset === undefined) {
      // The promise is cached, so concurrent first requests read the file once.
      asset = readFile(file).then(
        (body) => ({ body, type: contentType(urlPath), etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` }),
        () => null,
      );
      this.#cache.set(urlPath, asset);
    }
    return asset;
  }
}

function contentType(path: string): string {
  const dot = path.lastIndexOf('.');
  return (dot === -1 ? undefined : CONTENT_TYPES[path.slice(dot + 1).toLowerCase()]) ?? 'application/octet-stream';
}

function uplotDist(): string | null {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');
  } catch {
    return null;
  }
}
