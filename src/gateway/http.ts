import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { Gate, isLoopbackHost } from '../dashboard/auth.js';
import { GuildError } from '../errors.js';
import type { Gateway } from './gateway.js';
import { checkedProject, GatewaySession } from './session.js';

// The gateway's HTTP face: MCP's streamable HTTP at /mcp (one session per client, each with its
// own SDK Server and transport), /status (JSON) and /metrics (Prometheus text). Host and Origin
// are checked here against DNS rebinding (the SDK's options for it are deprecated); off loopback
// every request carries the token.

export interface GatewayHttpOptions {
  gateway: Gateway;
  /** @default 127.0.0.1 */
  host?: string;
  /** 0: any free port. */
  port: number;
  /** Required when `host` is not loopback. */
  token?: string | null;
  /** Guild's name and version, for `initialize`. */
  serverInfo: { name: string; version: string };
  /** `/status` body. */
  status(url: string): unknown;
  /** `/metrics` body (Prometheus text format). @default no /metrics */
  metrics?: () => Promise<string>;
  /** A session with no request and no open stream for this long is closed, ms. @default 30 min */
  sessionIdleMs?: number;
  /** Largest request body, bytes. @default 4 MiB (the SDK's own default, which it skips for parsed bodies) */
  maxBodyBytes?: number;
}

export interface GatewayHttp {
  readonly url: string;
  readonly port: number;
  readonly server: HttpServer;
  close(): Promise<void>;
}

interface Entry {
  session: GatewaySession;
  transport: StreamableHTTPServerTransport;
  last: number;
  /** GET streams open: the client listens, so the session is not idle. */
  streams: number;
}

/** Starts listening; rejects with PORT_IN_USE / LISTEN_FAILED, or INVALID_OPTION for a non-loopback host without a token. */
export async function listenGateway(o: GatewayHttpOptions): Promise<GatewayHttp> {
  const host = o.host ?? '127.0.0.1';
  const token = o.token ?? null;
  if (!isLoopbackHost(host) && token === null) throw new GuildError('INVALID_OPTION', `--host ${host} reaches other machines: give a token (--token T or GUILD_MCP_TOKEN)`);
  const gate = new Gate(token, `guild_mcp_${randomUUID().slice(0, 8)}`);
  const maxBody = o.maxBodyBytes ?? 4 * 1024 * 1024;
  const idleMs = o.sessionIdleMs ?? 30 * 60_000;
  const entries = new Map<string, Entry>();
  let url = '';

  const server = createServer((req, res) => {
    void handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) jsonError(res, 500, -32603, e instanceof Error ? e.message : String(e));
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://gateway');
    const verdict = gate.check(req, null);
    if (verdict === 'unauthorized') return jsonError(res, 401, -32001, 'Unauthorized: this gateway needs its token (Authorization: Bearer …)');
    if (verdict === 'forbidden-host' || !originOk(req, token !== null)) return jsonError(res, 403, -32000, 'Forbidden: Host or Origin is not this gateway');
    if (u.pathname === '/status' && req.method === 'GET') return json(res, 200, o.status(url));
    if (u.pathname === '/metrics' && req.method === 'GET' && o.metrics) {
      const text = await o.metrics();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(text);
      return;
    }
    if (u.pathname !== '/mcp') return jsonError(res, 404, -32000, `Not found: ${u.pathname} (the MCP endpoint is /mcp)`);

    const sid = req.headers['mcp-session-id'];
    if (typeof sid === 'string') {
      const e = entries.get(sid);
      if (e === undefined) return jsonError(res, 404, -32001, 'Session not found');
      e.last = performance.now();
      if (req.method === 'GET') {
        e.streams++;
        res.once('close', () => {
          e.streams--;
          e.last = performance.now();
        });
      }
      const body = req.method === 'POST' ? await readJson(req, res, maxBody) : undefined;
      if (body === null) return;
      await e.transport.handleRequest(req, res, body);
      return;
    }
    if (req.method !== 'POST') return jsonError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
    const body = await readJson(req, res, maxBody);
    if (body === null) return;
    if (![body].flat().some((m) => isInitializeRequest(m))) return jsonError(res, 400, -32000, 'Bad Request: no valid session ID (initialize first)');
    const asked = u.searchParams.get('project');
    let project: string | null = null;
    if (asked !== null) {
      try {
        project = await checkedProject(asked);
      } catch (e) {
        return jsonError(res, 400, -32602, `Bad project: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    const session = new GatewaySession(o.gateway, { project, serverInfo: o.serverInfo });
    const entry: Entry = { session, transport: undefined as never, last: performance.now(), streams: 0 };
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        session.id = id;
        entries.set(id, entry);
        o.gateway.attach(session);
      },
    });
    entry.transport = transport;
    // Set before connect: Protocol.connect chains it.
    transport.onclose = () => {
      const id = transport.sessionId;
      if (id !== undefined && entries.delete(id)) void o.gateway.detach(id);
    };
    await session.server.connect(transport);
    await transport.handleRequest(req, res, body);
  }

  const sweep = setInterval(
    () => {
      const now = performance.now();
      for (const e of entries.values()) if (e.streams === 0 && now - e.last > idleMs) void e.transport.close();
    },
    Math.min(60_000, Math.max(1000, idleMs / 4)),
  );
  sweep.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      clearInterval(sweep);
      reject(
        e.code === 'EADDRINUSE'
          ? new GuildError('PORT_IN_USE', `port ${o.port} on ${host} is in use (another gateway? \`guild mcp status\`; or --port 0 for any free port)`)
          : new GuildError('LISTEN_FAILED', `cannot listen on ${host}:${o.port}: ${e.message}`),
      );
    });
    server.listen(o.port, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/mcp`;

  return {
    url,
    port,
    server,
    async close() {
      clearInterval(sweep);
      await Promise.all([...entries.values()].map((e) => e.transport.close().catch(() => undefined)));
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    },
  };
}

/** No Origin (not a browser), or one naming loopback; with a token any origin may try (the token decides). */
function originOk(req: IncomingMessage, tokened: boolean): boolean {
  const origin = req.headers.origin;
  if (origin === undefined || tokened) return true;
  try {
    return isLoopbackHost(new URL(origin).hostname);
  } catch {
    return false;
  }
}

/** The parsed body, or null after answering 413 / 400. */
async function readJson(req: IncomingMessage, res: ServerResponse, max: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) {
      jsonError(res, 413, -32000, `Request body over ${max} bytes`);
      req.destroy();
      return null;
    }
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    jsonError(res, 400, -32700, 'Parse error: the body is not JSON');
    return null;
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function jsonError(res: ServerResponse, status: number, code: number, message: string): void {
  json(res, status, { jsonrpc: '2.0', error: { code, message }, id: null });
}
