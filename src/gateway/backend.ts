import { basename, isAbsolute } from 'node:path';
import { guildVersion } from '../util/version.js';
import { pathToFileURL } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ErrorCode,
  ListPromptsResultSchema,
  ListResourcesResultSchema,
  ListResourceTemplatesResultSchema,
  ListRootsRequestSchema,
  ListToolsResultSchema,
  McpError,
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ResultSchema,
  ToolListChangedNotificationSchema,
  type ClientCapabilities,
  type Implementation,
  type Prompt,
  type RequestId,
  type Resource,
  type ResourceTemplate,
  type Result,
  type ServerCapabilities,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { GuildError } from '../errors.js';
import type { ExecOutcome } from '../executors/executor.js';
import type { ProcessRequest } from '../executors/process-executor.js';
import type { Supervised } from '../supervisor/supervised.js';
import type { KillNotice, WatchOptions } from '../supervisor/watch.js';
import { describeValue } from '../util/describe.js';
import { PipeClientTransport } from './pipe-transport.js';
import { classify, noticeMessage, stopMessage } from './backend-exit.js';
import type { BackendExit, BackendMemory, BackendRequestOptions, BackendStopReason, ListKind, McpBackendOptions, ServerRequestContext } from './backend-types.js';

export type { BackendExit, BackendExitReason, BackendMemory, BackendRequestOptions, BackendStopReason, ListKind, McpBackendOptions, McpServerSpec, ServerRequestContext } from './backend-types.js';

/**
 * The longest request timeout there is: Node keeps timers up to 2^31−1 ms (24.8 days); 2^31 or
 * Infinity fires after 1 ms. Backend calls use it with `resetTimeoutOnProgress`, so the SDK's 60 s
 * default never cuts a long tool: the server's own limits govern.
 */
export const MAX_REQUEST_TIMEOUT_MS = 2_147_483_647;

/**
 * What the gateway's client declares to every backend. server-everything, for one, registers its
 * sampling, elicitation and roots tools only for a client that declares these; each is answered
 * through the backend's `onSampling`, `onElicitation`, `onListRoots`.
 */
const CLIENT_CAPABILITIES: ClientCapabilities = { sampling: {}, elicitation: { form: {}, url: {} }, roots: { listChanged: true } };

/** stderr kept for error messages (the whole of it goes to the log file). */
const STDERR_TAIL_BYTES = 4096;
/** A server whose cursors never end is broken, not large. */
const MAX_PAGES = 10_000;

interface ListItem {
  tools: Tool;
  resources: Resource;
  resourceTemplates: ResourceTemplate;
  prompts: Prompt;
}

/** What checking one page against the SDK's schema yields. */
interface Checked {
  success: boolean;
  data?: { nextCursor?: string | undefined };
  error?: { message: string };
}
interface ListSpec {
  method: string;
  capability: 'tools' | 'resources' | 'prompts';
  schema: { safeParse(value: unknown): Checked };
}
const LISTS: Readonly<Record<ListKind, ListSpec>> = {
  tools: { method: 'tools/list', capability: 'tools', schema: ListToolsResultSchema },
  resources: { method: 'resources/list', capability: 'resources', schema: ListResourcesResultSchema },
  resourceTemplates: { method: 'resources/templates/list', capability: 'resources', schema: ListResourceTemplatesResultSchema },
  prompts: { method: 'prompts/list', capability: 'prompts', schema: ListPromptsResultSchema },
};

interface ListState<T> {
  items: readonly T[];
  /** The refresh in progress; it goes on while `dirty` is set again meanwhile. */
  running: Promise<void> | null;
  dirty: boolean;
}

/** Option values after defaults, merged once. */
type Resolved = Required<Omit<McpBackendOptions, 'logFile' | 'runId' | `on${string}`>> &
  Pick<McpBackendOptions, 'logFile' | 'runId' | `on${string}` & keyof McpBackendOptions>;

let sequence = 0;

/**
 * One MCP server process, started and watched by the supervisor (its memory measured, its tree
 * ended without orphans, its policy `recycle`), with an SDK `Client` over the process's own pipes.
 * At start it learns the server's capabilities, instructions, tools, resources, resource
 * templates and prompts (every page), and keeps them current on `list_changed`; `request`
 * forwards any method with no timeout of its own. A backend runs once: after it has ended, a new
 * one takes its place (the SDK's client cannot reconnect).
 *
 * Failures of the backend itself (it crashed, was stopped or recycled, cannot start) reject with
 * `GuildError` `UNAVAILABLE` naming why; the server's own answers (`McpError`) pass through.
 */
export class McpBackend {
  /** The server's name. */
  readonly name: string;
  /** The supervisor's id of its execution. */
  readonly id: string;
  readonly project: string;
  /** Settles once it has ended and its process tree is gone. */
  readonly closed: Promise<BackendExit>;

  readonly #o: Resolved;
  readonly #handle: Supervised<ProcessRequest>;
  readonly #transport: PipeClientTransport;
  readonly #client: Client;
  #capabilities: ServerCapabilities = {};
  #serverInfo: Implementation | null = null;
  #instructions: string | undefined;
  readonly #lists: { [K in ListKind]: ListState<ListItem[K]> } = {
    tools: { items: [], running: null, dirty: false },
    resources: { items: [], running: null, dirty: false },
    resourceTemplates: { items: [], running: null, dirty: false },
    prompts: { items: [], running: null, dirty: false },
  };
  #ready = false;
  #inFlight = 0;
  #stderrTail = '';
  #lastError: Error | null = null;
  /** Set by `stop()`, before anything is closed. */
  #stopReason: BackendStopReason | null = null;
  /** The supervisor's notice before it stopped it (limit, pressure, recycle). */
  #notice: KillNotice | null = null;
  /** The server closed its connection while nobody was stopping it. */
  #lost = false;
  /** Guild stopped it because it had lost its connection (and did not exit). */
  #killedForLoss = false;
  #exit: BackendExit | null = null;

  private constructor(o: Resolved) {
    this.#o = o;
    this.name = o.server.name;
    this.id = o.id;
    this.project = o.project;
    const request: ProcessRequest = {
      taskId: o.id,
      attempt: 1,
      timeoutMs: null,
      killGraceMs: o.killGraceMs,
      command: commandLine(o.server.command, o.server.args),
      cwd: o.server.cwd ?? o.project,
      env: { ...o.baseEnv, ...o.server.env },
      stdio: 'pipe',
      limitBytes: o.limitBytes,
      ...(o.logFile !== undefined && { logFile: o.logFile }),
      ...(o.runId !== undefined && { runId: o.runId }),
    };
    const watch: WatchOptions<ProcessRequest> = {
      id: o.id,
      priority: o.priority,
      reservationBytes: o.reservationBytes,
      limitBytes: o.limitBytes,
      // Never paused: its callers would hang. Over its limit or at an emergency it ends, and its
      // owner starts a fresh one (no `restart` here: the SDK client cannot follow a new process).
      onPressure: o.pressurePolicy ?? 'recycle',
      onSample: (bytes, sample) => o.onMemory?.(bytes, sample),
      onKill: (notice) => {
        this.#notice ??= notice;
        o.onKill?.(notice);
      },
    };
    this.#handle = o.supervisor.start('process', request, watch);
    const stdio = this.#handle.execution.stdio;
    if (stdio === null) {
      this.#handle.kill('cancelled', o.killGraceMs);
      throw new GuildError('INVALID_STATE', `Expected the supervisor's process executor to give pipes for MCP server '${this.name}', got none`);
    }
    stdio.stderr.on('data', (d: Buffer | string) => {
      this.#stderrTail = (this.#stderrTail + d.toString()).slice(-STDERR_TAIL_BYTES);
    });
    this.#transport = new PipeClientTransport(stdio.stdout, stdio.stdin, { maxMessageBytes: o.maxMessageBytes });
    this.#client = this.#makeClient();
    this.closed = this.#handle.done.then((outcome) => this.#ended(outcome));
  }

  /**
   * Starts the server, connects, and learns what it offers. Rejects with `UNAVAILABLE` (the
   * process already ended, its stderr's tail in the message) when it cannot.
   */
  static async start(options: McpBackendOptions): Promise<McpBackend> {
    const backend = new McpBackend(resolve(options));
    try {
      await backend.#client.connect(backend.#transport, { timeout: backend.#o.startTimeoutMs });
      backend.#capabilities = backend.#client.getServerCapabilities() ?? {};
      backend.#serverInfo = backend.#client.getServerVersion() ?? null;
      backend.#instructions = backend.#client.getInstructions();
      await Promise.all((Object.keys(LISTS) as ListKind[]).map((k) => backend.refresh(k)));
    } catch (e) {
      const exit = await backend.stop('failed');
      const stderr = backend.#stderrTail.trim();
      // Its own end (a crash, a recycle under pressure) explains more than the call that failed.
      const detail = exit.why !== 'stopped' ? exit.message : e instanceof Error ? e.message : String(e);
      throw new GuildError('UNAVAILABLE', `Could not start MCP server '${backend.name}': ${detail}${stderr ? `\n${lastLines(stderr, 5)}` : ''}`, { cause: e });
    }
    backend.#ready = true;
    return backend;
  }

  /** The server process's pid (its process group); null if it could not be started. */
  get pid(): number | null {
    return this.#handle.pid;
  }

  /** Calls sent through `request` and not yet answered. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Running and connected: `request` may be called. */
  get alive(): boolean {
    return this.#exit === null && this.#stopReason === null && !this.#lost && this.#notice === null;
  }

  /** How it ended; null while it runs. */
  get exit(): BackendExit | null {
    return this.#exit;
  }

  /** The supervisor's last measurement; null until the first one (and after the end). */
  get memory(): BackendMemory | null {
    const s = this.#handle.lastSample;
    if (s === null || this.#exit !== null) return null;
    return { bytes: s.bytes, peakBytes: this.#handle.peakBytes ?? s.bytes, source: s.source };
  }

  /** The supervisor's handle of its process (restarts, pause time, the current execution). */
  get supervised(): Supervised<ProcessRequest> {
    return this.#handle;
  }

  /** What the server declared at `initialize`. */
  get capabilities(): ServerCapabilities {
    return this.#capabilities;
  }

  get serverInfo(): Implementation | null {
    return this.#serverInfo;
  }

  get instructions(): string | undefined {
    return this.#instructions;
  }

  /** The protocol version agreed at `initialize`. */
  get protocolVersion(): string | undefined {
    return this.#transport.protocolVersion;
  }

  /**
   * The tools as the server gave them (every page), fields the SDK does not know included. The
   * same for `resources`, `resourceTemplates` and `prompts`.
   */
  get tools(): readonly Tool[] {
    return this.#lists.tools.items;
  }

  get resources(): readonly Resource[] {
    return this.#lists.resources.items;
  }

  get resourceTemplates(): readonly ResourceTemplate[] {
    return this.#lists.resourceTemplates.items;
  }

  get prompts(): readonly Prompt[] {
    return this.#lists.prompts.items;
  }

  /** The last lines the server wrote to stderr (at most 4 KB). */
  get stderrTail(): string {
    return this.#stderrTail;
  }

  /**
   * Sends one request to the server and resolves with its result, unvalidated beyond JSON-RPC
   * (the end client validates; the SDK's schemas would strip fields they do not know). A
   * `_meta.progressToken` in `params` is the caller's, not the server's to use: without
   * `onprogress` it is removed; with it, the SDK puts its own token in its place.
   */
  async request(method: string, params?: Record<string, unknown>, options: BackendRequestOptions = {}): Promise<Result> {
    if (!this.alive) throw this.#gone();
    const timeout = options.timeout ?? MAX_REQUEST_TIMEOUT_MS;
    if (!(timeout > 0 && timeout <= MAX_REQUEST_TIMEOUT_MS)) throw new GuildError('INVALID_OPTION', `Expected timeout in (0, ${MAX_REQUEST_TIMEOUT_MS}] ms, got ${describeValue(options.timeout)}`);
    const sent = options.onprogress === undefined ? withoutProgressToken(params) : params;
    this.#inFlight++;
    try {
      return await this.#client.request({ method, ...(sent !== undefined && { params: sent }) }, ResultSchema, {
        timeout,
        resetTimeoutOnProgress: true,
        ...(options.signal !== undefined && { signal: options.signal }),
        ...(options.onprogress !== undefined && { onprogress: options.onprogress }),
      });
    } catch (e) {
      if (options.signal?.aborted || this.alive) throw e;
      // The connection is gone under the call: say why, once the supervisor knows (an exit is
      // reaped within moments; a second is plenty on a slow machine).
      if (this.#exit === null && this.#stopReason === null && this.#notice === null) await Promise.race([this.closed, delay(1000)]);
      throw this.#gone(e);
    } finally {
      this.#inFlight--;
    }
  }

  /** Learns one list again (every page); concurrent calls share one pass, which repeats while asked again. */
  refresh<K extends ListKind>(kind: K): Promise<void> {
    const state: ListState<ListItem[K]> = this.#lists[kind];
    state.dirty = true;
    state.running ??= (async () => {
      try {
        while (state.dirty) {
          state.dirty = false;
          state.items = await this.#listAll(kind);
        }
      } finally {
        state.running = null;
      }
    })();
    return state.running;
  }

  /** Tells the server its roots changed (`notifications/roots/list_changed`). */
  async rootsChanged(): Promise<void> {
    if (this.alive) await this.#client.sendRootsListChanged();
  }

  /**
   * Ends it: no new calls; stdin is closed (MCP's stdio shutdown) and calls in flight fail; if the
   * server has not exited after `exitGraceMs`, the supervisor ends its tree (TERM, KILL after
   * `killGraceMs`). Resolves when nothing of it is left. Idempotent.
   */
  stop(reason: BackendStopReason = 'shutdown'): Promise<BackendExit> {
    if (this.#exit === null && this.#stopReason === null) {
      this.#stopReason = reason;
      void this.#client.close();
      const h = this.#handle;
      const term = setTimeout(() => h.kill(reason === 'recycle' ? 'recycle' : 'cancelled', this.#o.killGraceMs), this.#o.exitGraceMs);
      void this.closed.then(() => clearTimeout(term));
    }
    return this.closed;
  }

  #makeClient(): Client {
    const o = this.#o;
    const client = new Client(o.clientInfo, { capabilities: CLIENT_CAPABILITIES });
    const context = (extra: { signal: AbortSignal; requestId: RequestId }): ServerRequestContext => ({ signal: extra.signal, requestId: extra.requestId });
    client.setRequestHandler(CreateMessageRequestSchema, (req, extra) => {
      if (!o.onSampling) throw new McpError(ErrorCode.InvalidRequest, `sampling/createMessage from MCP server '${this.name}' has no caller to go to`);
      return o.onSampling(req.params, context(extra));
    });
    client.setRequestHandler(ElicitRequestSchema, (req, extra) => {
      if (!o.onElicitation) throw new McpError(ErrorCode.InvalidRequest, `elicitation/create from MCP server '${this.name}' has no caller to go to`);
      return o.onElicitation(req.params, context(extra));
    });
    const root = { uri: pathToFileURL(o.project).href, name: basename(o.project) };
    client.setRequestHandler(ListRootsRequestSchema, (_req, extra) => (o.onListRoots ? o.onListRoots(context(extra)) : { roots: [root] }));
    const changed = (kinds: ListKind[]) => async (): Promise<void> => {
      await Promise.all(kinds.map((k) => this.refresh(k)));
      // During start the lists are still being learned: nobody has seen the old ones.
      if (this.#ready) for (const k of kinds) o.onListChanged?.(k);
    };
    client.setNotificationHandler(ToolListChangedNotificationSchema, changed(['tools']));
    client.setNotificationHandler(ResourceListChangedNotificationSchema, changed(['resources', 'resourceTemplates']));
    client.setNotificationHandler(PromptListChangedNotificationSchema, changed(['prompts']));
    client.fallbackNotificationHandler = async (n) => o.onNotification?.(n);
    client.onerror = (e) => {
      this.#lastError = e;
      o.onError?.(e);
    };
    client.onclose = () => this.#connectionClosed();
    return client;
  }

  async #listAll<K extends ListKind>(kind: K): Promise<ListItem[K][]> {
    const spec = LISTS[kind];
    if (this.#capabilities[spec.capability] === undefined) return [];
    const items: ListItem[K][] = [];
    const seen = new Set<string>();
    let cursor: string | undefined;
    for (let page = 0; ; page++) {
      let raw: Result;
      try {
        raw = await this.#client.request({ method: spec.method, ...(cursor !== undefined && { params: { cursor } }) }, ResultSchema, { timeout: this.#o.startTimeoutMs });
      } catch (e) {
        // Declaring `resources` without templates is common: a method it lacks is an empty list.
        if (e instanceof McpError && e.code === ErrorCode.MethodNotFound) return [];
        throw e;
      }
      const checked = spec.schema.safeParse(raw);
      if (!checked.success) throw new GuildError('UNAVAILABLE', `MCP server '${this.name}' answered ${spec.method} with an invalid result: ${checked.error?.message ?? 'unknown'}`);
      // The page passed the SDK's schema, whose copy drops fields it does not know; the items
      // kept are the server's own, so a gateway hands its clients what the server said.
      items.push(...(raw[kind] as ListItem[K][]));
      cursor = checked.data?.nextCursor;
      if (cursor === undefined) return items;
      if (seen.has(cursor) || page >= MAX_PAGES) throw new GuildError('UNAVAILABLE', `MCP server '${this.name}' repeats its ${spec.method} cursor ${JSON.stringify(cursor)}`);
      seen.add(cursor);
    }
  }

  /** The client's connection closed: ours (`stop`), or the server's doing. */
  #connectionClosed(): void {
    if (this.#stopReason !== null || this.#exit !== null || this.#notice !== null || this.#lost) return;
    this.#lost = true;
    // It closed its stdout, or broke the protocol: it is exiting, or of no use. It has
    // exitGraceMs to go on its own before the supervisor ends it.
    const h = this.#handle;
    const term = setTimeout(() => {
      if (this.#exit !== null || h.stoppedFor !== null) return;
      this.#killedForLoss = true;
      h.kill('cancelled', this.#o.killGraceMs);
    }, this.#o.exitGraceMs);
    void this.closed.then(() => clearTimeout(term));
  }

  #ended(outcome: ExecOutcome): BackendExit {
    const exit = classify(outcome, {
      pid: this.#handle.pid,
      stopReason: this.#stopReason,
      notice: this.#notice,
      lost: this.#lost,
      killedForLoss: this.#killedForLoss,
      lastError: this.#lastError,
    });
    this.#exit = exit;
    // Normally closed already (stdout ended with the process); if a leftover held the pipe, the
    // calls in flight must not wait for it.
    void this.#client.close();
    try {
      this.#o.onExit?.(exit);
    } catch (e) {
      this.#o.onError?.(e instanceof Error ? e : new Error(String(e)));
    }
    return exit;
  }

  /** Why no call can go through now. */
  #gone(cause?: unknown): GuildError {
    const pid = this.pid === null ? '' : ` (pid ${this.pid})`;
    let why: string;
    if (this.#exit !== null) why = this.#exit.message;
    else if (this.#notice !== null) why = noticeMessage(this.#notice);
    else if (this.#stopReason !== null) why = stopMessage(this.#stopReason);
    else why = `closed its connection${this.#lastError ? ` (${this.#lastError.message})` : ''}`;
    return new GuildError('UNAVAILABLE', `MCP server '${this.name}'${pid} is not available: ${why}`, cause === undefined ? undefined : { cause });
  }
}

function resolve(options: McpBackendOptions): Resolved {
  const o = options;
  if (typeof o.server?.name !== 'string' || o.server.name === '') throw new GuildError('INVALID_OPTION', `Expected server.name to be a non-empty string, got ${describeValue(o.server?.name)}`);
  if (typeof o.server.command !== 'string' || o.server.command === '') throw new GuildError('INVALID_OPTION', `Expected server.command to be a non-empty string, got ${describeValue(o.server.command)}`);
  if (typeof o.project !== 'string' || !isAbsolute(o.project)) throw new GuildError('INVALID_OPTION', `Expected project to be an absolute path, got ${describeValue(o.project)}`);
  if (o.server.cwd !== null && (typeof o.server.cwd !== 'string' || !isAbsolute(o.server.cwd))) throw new GuildError('INVALID_OPTION', `Expected server.cwd to be an absolute path or null, got ${describeValue(o.server.cwd)}`);
  positive('reservationBytes', o.reservationBytes, true);
  if (o.limitBytes !== undefined && o.limitBytes !== null) positive('limitBytes', o.limitBytes, false);
  const startTimeoutMs = o.startTimeoutMs ?? 60_000;
  const exitGraceMs = o.exitGraceMs ?? 1000;
  const killGraceMs = o.killGraceMs ?? 2000;
  positive('startTimeoutMs', startTimeoutMs, false);
  positive('exitGraceMs', exitGraceMs, true);
  positive('killGraceMs', killGraceMs, true);
  if (startTimeoutMs > MAX_REQUEST_TIMEOUT_MS) throw new GuildError('INVALID_OPTION', `Expected startTimeoutMs ≤ ${MAX_REQUEST_TIMEOUT_MS}, got ${startTimeoutMs}`);
  return {
    ...o,
    id: o.id ?? `mcp-${o.server.name}-${++sequence}`,
    limitBytes: o.limitBytes ?? null,
    priority: o.priority ?? 'medium',
    pressurePolicy: o.pressurePolicy ?? 'recycle',
    baseEnv: o.baseEnv ?? process.env,
    startTimeoutMs,
    exitGraceMs,
    killGraceMs,
    maxMessageBytes: o.maxMessageBytes ?? 10 * 1024 * 1024,
    clientInfo: o.clientInfo ?? { name: 'guild', version: guildVersion() },
  };
}

function positive(key: string, v: unknown, zeroOk: boolean): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!zeroOk && v === 0)) {
    throw new GuildError('INVALID_OPTION', `Expected ${key} to be a ${zeroOk ? 'non-negative' : 'positive'} number, got ${describeValue(v)}`);
  }
}

/** `params` without `_meta.progressToken` (and without an `_meta` left empty). */
function withoutProgressToken(params: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  const meta = params?._meta;
  if (meta === null || typeof meta !== 'object' || !('progressToken' in meta)) return params;
  const { progressToken: _token, ...rest } = meta as Record<string, unknown>;
  const { _meta: _old, ...others } = params!;
  return Object.keys(rest).length > 0 ? { ...others, _meta: rest } : others;
}

/** `exec 'cmd' 'arg' …`: the server replaces the shell, so its pid is the one the supervisor knows. */
function commandLine(command: string, args: readonly string[]): string {
  return `exec ${[command, ...args].map(shellQuote).join(' ')}`;
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

function lastLines(text: string, n: number): string {
  return text.split('\n').slice(-n).join('\n');
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

