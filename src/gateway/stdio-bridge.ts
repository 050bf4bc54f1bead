import type { Readable, Writable } from 'node:stream';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCode, type JSONRPCMessage, type ProgressToken, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import { GuildError } from '../errors.js';

/** Options of `bridgeStdio`. */
export interface StdioBridgeOptions {
  /** The gateway's streamable HTTP endpoint, `http://127.0.0.1:PORT/mcp` (a `?project=` query is kept). */
  url: string;
  /** Sent as `Authorization: Bearer <token>` on every request. @default null (none sent) */
  token?: string | null;
  /** The stdio client's messages, one JSON-RPC message a line (`process.stdin`). */
  input: Readable;
  /** Where the gateway's messages go to the client (`process.stdout`). */
  output: Writable;
  /**
   * Problems that end nothing by themselves: a line that is not JSON-RPC, a notification or a
   * response the gateway could not take, a failed session DELETE. @default ignored
   */
  onError?(e: Error): void;
}

/** The `data` of every error the bridge answers a request with in the gateway's stead. */
export interface BridgeErrorData {
  /** `UNAVAILABLE`: the gateway could not be reached or went away; `SEND_FAILED`: it refused this message. */
  code: 'UNAVAILABLE' | 'SEND_FAILED';
  url: string;
}

/**
 * Relays an MCP stdio client to the Guild gateway over streamable HTTP: raw JSON-RPC both ways,
 * no protocol object in between, so whatever the two ends speak (progress, cancellation,
 * sampling, elicitation, methods this code never heard of) passes through unchanged.
 *
 * Every request from the client is answered, by the gateway or else by the bridge: a request
 * that cannot be sent gets a JSON-RPC error with its id at once; requests whose response stream
 * broke get one; when the gateway went away (unreachable, or it no longer knows the session),
 * every request still waiting gets one and the bridge ends.
 *
 * Resolves once `input` ends (or `output` breaks: the client is gone), after the HTTP session
 * was ended with a DELETE. Rejects with a `GuildError` `UNAVAILABLE` when the gateway went away,
 * once the error answers are written.
 */
export function bridgeStdio(o: StdioBridgeOptions): Promise<void> {
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    url = new URL('invalid:');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return Promise.reject(new GuildError('INVALID_OPTION', `Expected url to be an http(s) URL, got ${JSON.stringify(o.url)}`));
  }
  return new StdioBridge(url, o).run();
}

/**
 * How long ending the HTTP session may take once the client is gone: a gateway that hangs must not
 * keep the bridge (and the client waiting for it to exit) alive; it expires idle sessions anyway.
 */
const DELETE_TIMEOUT_MS = 5000;

/**
 * How long a barrier waits for the client to answer its ping (the spec says promptly) before the
 * response goes anyway and barriers stop: a bound for a client that does not answer pings.
 */
const PING_TIMEOUT_MS = 1000;

/** A request of the client's that waits for the gateway's response. */
interface Pending {
  method: string;
  /** Its `_meta.progressToken`, if it asked for progress. */
  token: ProgressToken | undefined;
  /** Progress of it was written to the client: its response goes after a barrier. */
  progressed: boolean;
}

/** A response stream that ended, and what the transport will still do about its requests. */
interface StreamEnd {
  /** The stream carried an SSE event id: the transport resumes it by itself (an event store). */
  resumable: boolean;
  error: unknown;
}

class StdioBridge {
  readonly #url: URL;
  readonly #o: StdioBridgeOptions;
  readonly #down: StdioServerTransport;
  readonly #up: StreamableHTTPClientTransport;
  /** Requests from the client the gateway has not answered yet, by id. */
  readonly #pending = new Map<RequestId, Pending>();
  #initializeId: RequestId | undefined;
  /** The pending request each progress token belongs to (the client's `_meta.progressToken`). */
  readonly #progressOf = new Map<ProgressToken, Pending>();
  /** Our own pings to the client (see `#barrier`), by id: what resolves each when it is answered. */
  readonly #pings = new Map<string, () => void>();
  #pingCount = 0;
  /** The client left a ping unanswered: no more barriers (they would only delay every response). */
  #noPings = false;
  /** Writes to the client, in order. */
  #writing: Promise<void> = Promise.resolve();
  /** Set once the bridge is ending: no more relaying, and the transports' own errors are expected. */
  #ending = false;
  #resolve!: () => void;
  #reject!: (e: Error) => void;

  constructor(url: URL, o: StdioBridgeOptions) {
    this.#url = url;
    this.#o = o;
    this.#down = new StdioServerTransport(o.input, o.output);
    this.#up = new StreamableHTTPClientTransport(url, {
      requestInit: o.token ? { headers: { Authorization: `Bearer ${o.token}` } } : undefined,
      fetch: this.#fetch,
    });
  }

  async run(): Promise<void> {
    const done = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#down.onmessage = (m) => this.#fromClient(m);
    this.#down.onerror = (e) => this.#report(e);
    this.#up.onmessage = (m) => this.#fromGateway(m);
    this.#up.onerror = (e) => this.#report(e);
    this.#up.onclose = () => {
      if (!this.#ending) void this.#gone(new Error('the HTTP transport closed'));
    };
    // StdioServerTransport watches neither the end of its input nor errors of its output.
    this.#o.input.once('end', this.#clientGone);
    this.#o.input.once('close', this.#clientGone);
    this.#o.output.on('error', this.#onOutputError);
    await this.#up.start();
    await this.#down.start();
    return done;
  }

  #fromClient(m: JSONRPCMessage): void {
    // Both transports validated the message already (zod), so shape checks suffice here.
    const request = 'method' in m && 'id' in m ? m : null;
    if (request !== null) {
      if (this.#ending) return this.#answer(request.id, 'UNAVAILABLE', `the Guild gateway at ${this.#url.href} is gone`);
      const pending: Pending = { method: request.method, token: request.params?._meta?.progressToken, progressed: false };
      this.#pending.set(request.id, pending);
      if (request.method === 'initialize') this.#initializeId = request.id;
      if (pending.token !== undefined) this.#progressOf.set(pending.token, pending);
    } else if ('method' in m) {
      if (m.method === 'notifications/cancelled') {
        // A cancelled request gets no response (the spec says so): stop waiting for one.
        const id = (m.params as { requestId?: RequestId } | undefined)?.requestId;
        if (id !== undefined) this.#settled(id);
      }
    } else if ('id' in m && typeof m.id === 'string' && this.#pings.has(m.id)) {
      return this.#pings.get(m.id)!();
    }
    if (this.#ending) return;
    this.#up.send(m).catch((e: unknown) => {
      if (request === null) return this.#report(asError(e));
      // Already answered when the gateway's going away was noticed first.
      if (!this.#settled(request.id)) return;
      this.#answer(request.id, 'SEND_FAILED', `the Guild gateway at ${this.#url.href} did not take ${request.method}: ${asError(e).message}`);
    });
  }

  #fromGateway(m: JSONRPCMessage): void {
    if (this.#ending) return;
    if (!('method' in m)) {
      if (m.id === undefined) return this.#toClient(m);
      const progressed = this.#pending.get(m.id)?.progressed === true;
      this.#settled(m.id);
      if (m.id === this.#initializeId && 'result' in m) {
        this.#initializeId = undefined;
        const version = (m.result as { protocolVersion?: unknown }).protocolVersion;
        // Later requests must carry the negotiated version (the mcp-protocol-version header).
        if (typeof version === 'string') this.#up.setProtocolVersion(version);
      }
      return this.#toClient(m, progressed);
    }
    if (m.method === 'notifications/progress' && !('id' in m)) {
      const pending = this.#progressOf.get((m.params as { progressToken: ProgressToken }).progressToken);
      if (pending !== undefined) pending.progressed = true;
    }
    this.#toClient(m);
  }

  /** Forgets a request (answered, cancelled, or answered in the gateway's stead); false if it was not pending. */
  #settled(id: RequestId): boolean {
    const pending = this.#pending.get(id);
    if (pending === undefined) return false;
    this.#pending.delete(id);
    if (pending.token !== undefined) this.#progressOf.delete(pending.token);
    return true;
  }

  /** Writes to the client in order, a response to a request that had progress after a `#barrier`. */
  #toClient(m: JSONRPCMessage, barrier = false): void {
    this.#writing = this.#writing
      .then(async () => {
        if (barrier) await this.#barrier();
        await this.#down.send(m);
      })
      // A rejected link would skip every later write.
      .catch((e: unknown) => this.#report(asError(e)));
  }

  /**
   * Waits until the client has handled every message written so far, by a ping it must answer.
   *
   * Why: the SDK's client handles a notification a microtask late but a response at once, and the
   * response drops its request's progress handler; progress read in one chunk with the response is
   * lost (typescript-sdk #2580; measured without the barrier: 219 to 294 of 500 progress
   * notifications lost over 50 calls of 10 steps; with it, none). The client answers the ping
   * only after reading the chunks that came before it, whose notification handlers run before it
   * reads anything more; so the response, written after the answer, reaches an SDK client after
   * all its progress. It costs one stdio round trip, only for responses that had progress.
   */
  async #barrier(): Promise<void> {
    if (this.#noPings || this.#ending) return;
    const id = `guild-bridge-ping-${++this.#pingCount}`;
    let timer: NodeJS.Timeout | undefined;
    const answered = new Promise<boolean>((resolve) => {
      this.#pings.set(id, () => resolve(true));
      timer = setTimeout(() => resolve(false), PING_TIMEOUT_MS);
    });
    await this.#down.send({ jsonrpc: '2.0', id, method: 'ping' });
    const ok = await answered;
    clearTimeout(timer);
    this.#pings.delete(id);
    if (!ok && !this.#ending) {
      this.#noPings = true;
      this.#report(new Error(`the client left a ping unanswered for ${PING_TIMEOUT_MS} ms: progress read with its response may be lost from now on`));
    }
  }

  #answer(id: RequestId, code: BridgeErrorData['code'], message: string): void {
    const data: BridgeErrorData = { code, url: this.#url.href };
    this.#toClient({ jsonrpc: '2.0', id, error: { code: ErrorCode.ConnectionClosed, message, data } });
  }

  /**
   * The transport's fetch, observed: a request that cannot reach the gateway, or a session the
   * gateway no longer knows (404), means the gateway went away; the SSE stream that answers a POST
   * is watched so that requests it carried are answered when it ends without their response.
   */
  readonly #fetch: FetchLike = async (input, init) => {
    let response: Response;
    try {
      response = await fetch(input, init);
    } catch (e) {
      // Our own close aborts every fetch: nothing went away then.
      if (!this.#ending) void this.#gone(e);
      throw e;
    }
    const method = (init?.method ?? 'GET').toUpperCase();
    const session = new Headers(init?.headers).get('mcp-session-id');
    if (response.status === 404 && session !== null && method !== 'DELETE' && !this.#ending) {
      void this.#gone(new Error(`the gateway no longer knows session ${session} (it expired, or the gateway restarted)`));
      return response;
    }
    const sse = (response.headers.get('content-type') ?? '').startsWith('text/event-stream');
    if (method !== 'POST' || !response.ok || !sse || response.body === null || typeof init?.body !== 'string') return response;
    const ids = requestIds(init.body);
    if (ids.length === 0) return response;
    const body = watchStream(response.body, (end) => {
      // A macrotask later: the transport's parser has delivered every message read by then.
      setImmediate(() => this.#streamEnded(ids, end));
    });
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  };

  #streamEnded(ids: RequestId[], end: StreamEnd): void {
    if (this.#ending || end.resumable) return;
    const why = end.error === null ? 'ended the response stream without answering' : `broke the response stream (${asError(end.error).message})`;
    for (const id of ids) {
      const method = this.#pending.get(id)?.method;
      if (method === undefined || !this.#settled(id)) continue;
      this.#answer(id, 'UNAVAILABLE', `the Guild gateway at ${this.#url.href} ${why} of ${method}`);
    }
  }

  /** The gateway went away: answer every waiting request, stop, reject. */
  async #gone(cause: unknown): Promise<void> {
    if (this.#ending) return;
    this.#ending = true;
    const why = asError(cause).message;
    for (const [id, { method }] of this.#pending) this.#answer(id, 'UNAVAILABLE', `the Guild gateway at ${this.#url.href} went away during ${method}: ${why}`);
    this.#pending.clear();
    this.#progressOf.clear();
    await this.#writing;
    await this.#stop();
    this.#reject(new GuildError('UNAVAILABLE', `the Guild gateway at ${this.#url.href} went away: ${why}`, { cause }));
  }

  readonly #clientGone = (): void => {
    if (this.#ending) return;
    this.#ending = true;
    void (async () => {
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          this.#o.onError?.(new Error(`the Guild gateway at ${this.#url.href} did not answer the session's DELETE within ${DELETE_TIMEOUT_MS} ms`));
          resolve();
        }, DELETE_TIMEOUT_MS);
      });
      try {
        await Promise.race([this.#up.terminateSession(), bound]);
      } catch (e) {
        this.#o.onError?.(asError(e));
      } finally {
        clearTimeout(timer);
      }
      await this.#stop();
      this.#resolve();
    })();
  };

  readonly #onOutputError = (e: Error): void => {
    this.#report(e);
    this.#clientGone();
  };

  async #stop(): Promise<void> {
    for (const answered of this.#pings.values()) answered();
    this.#o.input.off('end', this.#clientGone);
    this.#o.input.off('close', this.#clientGone);
    await this.#up.close().catch(() => undefined);
    await this.#down.close().catch(() => undefined);
  }

  #report(e: Error): void {
    // Once ending, the transports report the aborts of our own close: nothing to say.
    if (!this.#ending) this.#o.onError?.(e);
  }
}

/** The ids of the requests in a POST body (one message, or a batch). */
function requestIds(body: string): RequestId[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return [];
  }
  const ids: RequestId[] = [];
  for (const m of Array.isArray(parsed) ? parsed : [parsed]) {
    if (m !== null && typeof m === 'object' && 'method' in m && 'id' in m) ids.push((m as { id: RequestId }).id);
  }
  return ids;
}

/**
 * `body` passed through unchanged, `onEnd` called once when it ends, errors, or its reader
 * cancels it; `resumable` says whether an SSE `id:` field went by (a resumable stream).
 */
function watchStream(body: ReadableStream<Uint8Array>, onEnd: (end: StreamEnd) => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let resumable = false;
  let tail = '';
  let ended = false;
  const end = (error: unknown): void => {
    if (ended) return;
    ended = true;
    onEnd({ resumable, error });
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (e) {
        end(e);
        controller.error(e);
        return;
      }
      if (chunk.done) {
        end(null);
        controller.close();
        return;
      }
      if (!resumable) {
        // Field names start a line; keep the last partial line for the next chunk.
        const lines = (tail + decoder.decode(chunk.value, { stream: true })).split(/\r\n|\r|\n/);
        tail = lines.pop() ?? '';
        resumable = lines.some((l) => l.startsWith('id:'));
      }
      controller.enqueue(chunk.value);
    },
    async cancel(reason) {
      end(null);
      await reader.cancel(reason);
    },
  });
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
