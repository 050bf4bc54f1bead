/**
 * The route table: what each path answers. A route is a path, or a prefix (a path ending in `/`
 * that also matches everything under it); the exact path wins, then the longest prefix, then the
 * fallback (the page's files). A panel that brings its own API adds its routes to the list.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DEFAULTS } from '../config/defaults.js';
import { GuildError } from '../errors.js';
import type { Assets } from './assets.js';
import { send, sendJson } from './http.js';
import type { ServedState } from './served-state.js';
import type { DashboardSource } from './source.js';
import { SSE_HEADERS, sseFrame, type EventHub } from './sse-hub.js';

/** One request, past the gate and the method check. */
export interface RouteRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The raw path, never decoded: handlers decode what they need. */
  readonly path: string;
  readonly query: URLSearchParams | null;
}

export type RouteHandler = (r: RouteRequest) => void | Promise<void>;

export interface Route {
  /** An exact path, or with `prefix`, a path ending in `/`. */
  readonly path: string;
  /** Matches every path that starts with `path`. @default false */
  readonly prefix?: boolean;
  readonly handle: RouteHandler;
}

/** Finds a request's handler: one Map lookup for the exact paths, then the prefixes, longest first. */
export class RouteTable {
  readonly #exact = new Map<string, RouteHandler>();
  readonly #prefixes: ReadonlyArray<readonly [string, RouteHandler]>;
  readonly #fallback: RouteHandler;

  constructor(routes: readonly Route[], fallback: RouteHandler) {
    const prefixes: Array<readonly [string, RouteHandler]> = [];
    for (const r of routes) {
      if (r.prefix === true && !r.path.endsWith('/')) throw new GuildError('INVALID_OPTION', `Expected a prefix route to end with /, got ${JSON.stringify(r.path)}`);
      const taken = r.prefix === true ? prefixes.some(([p]) => p === r.path) : this.#exact.has(r.path);
      if (taken) throw new GuildError('INVALID_OPTION', `Expected one route per path, got two for ${JSON.stringify(r.path)}`);
      if (r.prefix === true) prefixes.push([r.path, r.handle]);
      else this.#exact.set(r.path, r.handle);
    }
    this.#prefixes = prefixes.sort((a, b) => b[0].length - a[0].length);
    this.#fallback = fallback;
  }

  find(path: string): RouteHandler {
    const exact = this.#exact.get(path);
    if (exact !== undefined) return exact;
    for (const [prefix, handle] of this.#prefixes) if (path.startsWith(prefix)) return handle;
    return this.#fallback;
  }
}

/** What the dashboard's own routes read. */
export interface RouteDeps {
  source: DashboardSource;
  state: () => ServedState;
  hub: EventHub;
  maxClients: number;
}

/** `/metrics`, `/api/state`, `/api/events`, `/api/runs`, `/api/runs/<id>`; any other `/api/…` is 404 JSON. */
export function dashboardRoutes(d: RouteDeps): Route[] {
  return [
    {
      path: '/metrics',
      handle: async ({ req, res }) => {
        const m = await d.source.metrics();
        send(req, res, 200, { 'content-type': m.contentType, 'cache-control': 'no-store' }, m.body);
      },
    },
    { path: '/api/state', handle: ({ req, res }) => sendJson(req, res, 200, d.state()) },
    { path: '/api/events', handle: (r) => events(d, r) },
    {
      path: '/api/runs',
      handle: ({ req, res, query }) => {
        const limit = parseLimit(query?.get('limit') ?? null);
        if (typeof limit === 'string') return sendJson(req, res, 400, { error: limit });
        sendJson(req, res, 200, d.source.runs(limit));
      },
    },
    {
      path: '/api/runs/',
      prefix: true,
      handle: ({ req, res, path }) => {
        const id = decodeId(path.slice('/api/runs/'.length));
        const run = id === null ? null : d.source.run(id);
        if (run === null) sendJson(req, res, 404, { error: 'run not found' });
        else sendJson(req, res, 200, run);
      },
    },
    { path: '/api/', prefix: true, handle: ({ req, res }) => sendJson(req, res, 404, { error: 'not found' }) },
  ];
}

/** The fallback: the page's files. */
export function assetRoute(assets: Assets): RouteHandler {
  return ({ req, res, path }) => assets.serve(req, res, path);
}

function events(d: RouteDeps, { req, res }: RouteRequest): void {
  if (req.method === 'HEAD') return send(req, res, 200, SSE_HEADERS, null);
  if (d.hub.size >= d.maxClients) {
    res.setHeader('retry-after', '5');
    return sendJson(req, res, 503, { error: `too many dashboard clients (at most ${d.maxClients})` });
  }
  // Serialized before the headers go out, so a failing source still gets a clean 500.
  const head = `retry: ${DEFAULTS.dashboard.retryMs}\n\n${sseFrame('state', JSON.stringify(d.state()))}`;
  // Long-lived by design: exempt from the idle timeout (a stream quiet between heartbeats is
  // healthy). One that stops reading is still dropped, by maxBufferedBytes.
  req.socket.setTimeout(0);
  res.writeHead(200, SSE_HEADERS);
  d.hub.add(res, head);
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
