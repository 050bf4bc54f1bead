import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import {
  CreateMessageResultSchema,
  ElicitResultSchema,
  ErrorCode,
  McpError,
  type ClientCapabilities,
  type Notification,
  type Result,
  type ServerNotification,
  type ServerRequest,
} from '@modelcontextprotocol/sdk/types.js';
import type { ResolvedMcp, ResolvedMcpServer } from '../config/mcp.js';
import { GuildError } from '../errors.js';
import { levelRank, type PressureLevel } from '../governor/levels.js';
import { AdmissionTimeoutError, ServicePool, type StartKind, type StopReason } from '../scheduler/service-pool.js';
import type { Clock } from '../supervisor/clock.js';
import type { Supervisor } from '../supervisor/supervisor.js';
import type { GatewayStatus, McpCallEvent, McpCallOutcome } from '../telemetry/mcp-status.js';
import { formatBytes } from '../util/units.js';
import { McpBackend, MAX_REQUEST_TIMEOUT_MS, type BackendExit, type ListKind } from './backend.js';
import { Catalog } from './catalog.js';
import { Slots, type Slot } from './slots.js';
import { cacheRuleOf, writesTo, type ToolResultCache } from './tool-cache.js';

// The gateway's heart: one pool of backend instances per (server, project[, session]), admitted
// against the memory budget, answering the governor's levels, with calls routed to them (and to
// the result cache) and server-to-client requests routed back to the caller.

/** A client session as the gateway sees it (the HTTP layer implements it). */
export interface SessionPeer {
  readonly id: string;
  /** What the client declared at initialize. */
  clientCapabilities(): ClientCapabilities | undefined;
  /** A list changed (a backend's own change, or a restart): tell the client. */
  listChanged(kind: 'tools' | 'resources' | 'prompts'): void;
  /** A notification for this client (logging, resources/updated). */
  notify(n: ServerNotification): void;
  /** Resource URIs this client subscribed to. */
  readonly subscriptions: Set<string>;
  /** A server-to-client request with no call of the client's in flight (per-session servers). */
  request(req: ServerRequest, schema: typeof CreateMessageResultSchema | typeof ElicitResultSchema, signal: AbortSignal): Promise<Result>;
}

/** The memory the gateway's backends are admitted against. */
export interface GatewayBudget {
  budgetBytes: number;
  headroom: number;
  /** Bytes others hold on the same budget (a run's tasks). @default none */
  otherBytes?: () => number;
  /** The machine's available memory now (cgroup-aware), bytes; null when unknown. @default unknown */
  systemFreeBytes?: () => number | null;
}

export interface GatewayOptions {
  config: ResolvedMcp;
  supervisor: Supervisor;
  budget: GatewayBudget;
  /** The folder of the gateway's config file: the project of a client that names none. */
  defaultProject: string;
  /** Cached tool results; null: none. */
  resultCache: ToolResultCache | null;
  /** Backends' stderr goes to `<logDir>/<id>.log`. @default `<defaultProject>/.guild/logs/mcp` */
  logDir?: string | null;
  /** Names backends' cgroups and marks their environment. */
  runId?: string;
  /** The environment servers' `env` is added to. @default process.env */
  baseEnv?: NodeJS.ProcessEnv;
  clock?: Clock;
  /** While admission refuses a start, ask again this often, ms. @default 1000 */
  admissionRetryMs?: number;
  /** A call in flight when an emergency needs memory is ended after this, ms. @default 2000 */
  killGraceMs?: number;
  /** Errors that fail no call (a backend's protocol error, a stop that failed). */
  onError?(e: Error): void;
}

/** One call in flight on an instance, for routing the server's requests back to its caller. */
interface Call {
  session: SessionPeer;
  extra: RequestHandlerExtra<any, any>;
}

/** What a session asks the gateway to forward. */
export interface Forward {
  session: SessionPeer;
  project: string;
  method: string;
  params: Record<string, unknown> | undefined;
  extra: RequestHandlerExtra<any, any>;
}

const ONE_MINUTE = 60_000;

export class Gateway {
  readonly config: ResolvedMcp;
  readonly defaultProject: string;
  readonly catalog: Catalog;
  readonly startedAt = new Date();
  readonly #o: GatewayOptions;
  readonly #servers = new Map<string, ResolvedMcpServer>();
  readonly #pool: ServicePool<McpBackend>;
  readonly #slots: Slots;
  readonly #calls = new Map<McpBackend, Set<Call>>();
  readonly #slotOf = new Map<McpBackend, Slot>();
  readonly #sessions = new Map<string, SessionPeer>();
  readonly #listeners = new Set<(e: McpCallEvent) => void>();
  readonly #learnedListeners = new Set<(server: string) => void>();
  /** Instances stopped under pressure with calls in flight: their calls fail naming it. */
  readonly #cut = new Map<McpBackend, string>();
  /** Instances whose memory passed their limit: recycled once. */
  readonly #overLimit = new Set<McpBackend>();
  /** Bytes reserved by instances still starting. */
  #startingBytes = 0;
  #level: PressureLevel = 'optimal';
  #lastEmergencyAt = -Infinity;
  #levelTimer: NodeJS.Timeout | null = null;
  #closed = false;
  readonly #logDir: string | null;

  private constructor(o: GatewayOptions) {
    this.#o = o;
    this.config = o.config;
    this.defaultProject = o.defaultProject;
    for (const s of o.config.servers) this.#servers.set(s.name, s);
    this.catalog = new Catalog(o.config.servers);
    this.#slots = new Slots();
    this.#logDir = o.logDir === undefined ? join(o.defaultProject, '.guild', 'logs', 'mcp') : o.logDir;
    this.#pool = new ServicePool<McpBackend>({
      start: (key) => this.#start(key),
      stop: (b, reason) => this.#stop(b, reason),
      group: (key) => {
        const s = this.#slots.get(key).server;
        return { min: s.instances.min, max: s.instances.max, concurrency: s.instances.concurrency, idleTimeoutMs: s.idleTimeoutMs };
      },
      admit: (key, kind) => this.#admit(key, kind),
      canScaleUp: () => levelRank(this.#level) < levelRank('moderate'),
      memoryOf: (b) => b.memory?.bytes ?? 0,
      ...(o.clock !== undefined && { clock: o.clock }),
      ...(o.admissionRetryMs !== undefined && { admissionRetryMs: o.admissionRetryMs }),
    });
  }

  /**
   * Starts each server once for the default project, to learn what it offers (that instance stays
   * as the first of the default project's pool). Rejects, with every started instance stopped, if
   * a server cannot start or admission cannot fit it.
   */
  static async start(options: GatewayOptions): Promise<Gateway> {
    const g = new Gateway(options);
    if (g.#logDir !== null) mkdirSync(g.#logDir, { recursive: true });
    g.#watchLevel();
    try {
      for (const s of options.config.servers) {
        const key = g.#slots.key(s, s.isolation === 'shared' ? '*' : g.defaultProject, null);
        const why = g.#admit(key, 'demand');
        if (why !== null) throw new GuildError('BUDGET_UNSATISFIABLE', `MCP server '${s.name}' cannot start: ${why}`);
        const b = await g.#start(key);
        // A per-session server's instances belong to sessions: this one only taught the catalog.
        if (s.isolation === 'per-session') await b.stop('idle');
        else g.#pool.adopt(key, b);
      }
    } catch (e) {
      await g.close();
      throw e;
    }
    return g;
  }

  /** The governor's level as the gateway last answered it. */
  get level(): PressureLevel {
    return this.#level;
  }

  /** Σ over live instances of max(reservation, measured), plus those starting. */
  reservedBytes(): number {
    let n = this.#startingBytes;
    for (const m of this.#pool.members()) n += Math.max(this.#servers.get(m.instance.name)!.memoryBytes, m.memoryBytes);
    return n;
  }

  onCall(listener: (e: McpCallEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The catalog learned a server's lists (at start, after a change, after a restart). */
  onLearned(listener: (server: string) => void): () => void {
    this.#learnedListeners.add(listener);
    return () => this.#learnedListeners.delete(listener);
  }

  attach(session: SessionPeer): void {
    this.#sessions.set(session.id, session);
  }

  /** A session ended: its per-session instances stop. */
  async detach(id: string): Promise<void> {
    this.#sessions.delete(id);
    await Promise.all(this.#slots.ofSession(id).map((key) => this.#pool.closeKey(key)));
  }

  get sessions(): number {
    return this.#sessions.size;
  }

  /**
   * Forwards one request to the instance its server and project lead to, through the cache for
   * cacheable tools. MCP errors pass through as the backend gave them; the gateway's own failures
   * (no memory, pressure, a crash) are MCP errors that say so.
   */
  async forward(f: Forward): Promise<Result> {
    const started = performance.now();
    const { server, name, params } = this.#route(f);
    const s = this.#servers.get(server)!;
    const key = this.#slots.key(s, s.isolation === 'shared' ? '*' : f.project, s.isolation === 'per-session' ? f.session.id : null);
    const slot = this.#slots.get(key);
    const event = (outcome: McpCallOutcome, cached: boolean, errorCode?: number): void => {
      this.#emit({ server, method: f.method, name, project: slot.project, durationMs: performance.now() - started, cached, outcome, ...(errorCode !== undefined && { errorCode }) });
    };
    // tools/call: the cache first, for tools whose results may be reused.
    const tool = f.method === 'tools/call' ? this.catalog.tool(server, name!) : undefined;
    const cache = f.method === 'tools/call' ? this.#o.resultCache : null;
    const folder = slot.project === '*' ? this.defaultProject : slot.project;
    const rule = cache === null ? null : cacheRuleOf(s, name!, tool);
    const cacheKey = rule === null ? null : await cache!.key({ server: s, tool: name!, args: params.arguments as Record<string, unknown> | undefined, project: folder, session: f.session.id, rule });
    if (cacheKey !== null) {
      const hit = await cache!.get(cacheKey);
      if (hit !== null) {
        slot.cacheHits++;
        event('ok', true);
        return hit as Result;
      }
    }
    let lease;
    try {
      lease = await this.#pool.acquire(key, { signal: f.extra.signal });
    } catch (e) {
      const err = this.#callError(e, s, null);
      event('error', false, err.code);
      throw err;
    }
    const b = lease.instance;
    const call: Call = { session: f.session, extra: f.extra };
    let calls = this.#calls.get(b);
    if (calls === undefined) this.#calls.set(b, (calls = new Set()));
    calls.add(call);
    slot.calls++;
    try {
      const token = f.extra._meta?.progressToken;
      const send = (): Promise<Result> =>
        b.request(f.method, params, {
          signal: f.extra.signal,
          ...(token !== undefined && {
            onprogress: (p) => void f.extra.sendNotification({ method: 'notifications/progress', params: { ...p, progressToken: token } }).catch(() => undefined),
          }),
        });
      // A call that may write drops what this server's reads said, for this project, before and after it.
      const result = cache !== null && writesTo(s, name!, tool) ? await cache.write(s, folder, send) : await send();
      const isError = (result as { isError?: unknown }).isError === true;
      if (cacheKey !== null) await cache!.set(cacheKey, result);
      event(isError ? 'tool-error' : 'ok', false);
      return result;
    } catch (e) {
      const err = this.#callError(e, s, b);
      event('error', false, err.code);
      throw err;
    } finally {
      calls.delete(call);
      lease.release();
    }
  }

  /** A snapshot for `/status`, `guild mcp status`, a run's `--json` and the dashboard. */
  status(url: string): Omit<GatewayStatus, 'latency'> {
    const stats = new Map(this.#pool.stats().map((s) => [s.key, s]));
    const members = this.#pool.members();
    const cache = this.#o.resultCache;
    return {
      url,
      pid: process.pid,
      startedAt: this.startedAt.toISOString(),
      uptimeMs: Date.now() - this.startedAt.getTime(),
      defaultProject: this.defaultProject,
      sessions: this.#sessions.size,
      level: this.#level,
      budgetBytes: this.#o.budget.budgetBytes,
      reservedBytes: this.reservedBytes(),
      servers: this.config.servers.map((s) => {
        const offer = this.catalog.offer(s.name);
        const tools = offer?.tools ?? [];
        return {
          name: s.name,
          prefix: s.prefix,
          isolation: s.isolation,
          kind: s.kind,
          memoryBytes: s.memoryBytes,
          limitBytes: s.limitBytes,
          instances: { min: s.instances.min, max: s.instances.max },
          tools: tools.length,
          resources: offer?.resources.length ?? 0,
          prompts: offer?.prompts.length ?? 0,
          cacheableTools: cache === null ? [] : tools.filter((t) => cacheRuleOf(s, t.name, t) !== null).map((t) => t.name),
        };
      }),
      backends: this.#slots.all().map((slot) => this.#slots.report(slot, stats.get(slot.key), members.filter((m) => m.key === slot.key))),
      cache: cache === null ? { hits: 0, misses: 0, stores: 0, invalidations: 0, skipped: 0 } : { ...cache.counts },
    };
  }

  /** Ends every backend (calls in flight fail), and stops watching the level. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#levelTimer !== null) clearInterval(this.#levelTimer);
    await this.#pool.close();
  }

  // ----- routing ---------------------------------------------------------------------------

  /** The server a request goes to, the name it has there, and the params to send it. */
  #route(f: Forward): { server: string; name: string | null; params: Record<string, unknown> } {
    const p = f.params ?? {};
    const unknown = (what: string): McpError => new McpError(ErrorCode.InvalidParams, `${what}: no MCP server behind this gateway offers it`);
    switch (f.method) {
      case 'tools/call':
      case 'prompts/get': {
        const kind = f.method === 'tools/call' ? 'tools' : 'prompts';
        const exposed = String(p.name ?? '');
        const r = this.catalog.route(kind, exposed);
        if (r === null) throw unknown(`${kind === 'tools' ? 'Tool' : 'Prompt'} ${JSON.stringify(exposed)}`);
        return { server: r.server, name: r.name, params: { ...p, name: r.name } };
      }
      case 'resources/read':
      case 'resources/subscribe':
      case 'resources/unsubscribe': {
        const uri = String(p.uri ?? '');
        const server = this.catalog.resourceOwner(uri);
        if (server === null) throw unknown(`Resource ${JSON.stringify(uri)}`);
        return { server, name: uri, params: p };
      }
      case 'completion/complete': {
        const ref = (p.ref ?? {}) as { type?: string; name?: string; uri?: string };
        if (ref.type === 'ref/prompt') {
          const r = this.catalog.route('prompts', String(ref.name ?? ''));
          if (r === null) throw unknown(`Prompt ${JSON.stringify(ref.name)}`);
          return { server: r.server, name: r.name, params: { ...p, ref: { ...ref, name: r.name } } };
        }
        const server = this.catalog.resourceOwner(String(ref.uri ?? ''));
        if (server === null) throw unknown(`Resource ${JSON.stringify(ref.uri)}`);
        return { server, name: String(ref.uri), params: p };
      }
      default:
        throw new McpError(ErrorCode.MethodNotFound, `Method not found: ${f.method}`);
    }
  }

  /** What a caller gets when its call failed for a reason of the gateway's. */
  #callError(e: unknown, s: ResolvedMcpServer, b: McpBackend | null): McpError {
    if (e instanceof McpError) {
      const cut = b === null ? undefined : this.#cut.get(b);
      if (cut !== undefined && e.code === ErrorCode.ConnectionClosed) return new McpError(ErrorCode.InternalError, cut);
      return e;
    }
    const cut = b === null ? undefined : this.#cut.get(b);
    if (cut !== undefined) return new McpError(ErrorCode.InternalError, cut);
    if (e instanceof AdmissionTimeoutError) return new McpError(ErrorCode.InternalError, `MCP server '${s.name}': ${e.message}`);
    if (e instanceof Error && e.name === 'AbortError') return new McpError(ErrorCode.RequestTimeout, `Request cancelled: ${e.message}`);
    return new McpError(ErrorCode.InternalError, e instanceof Error ? e.message : String(e));
  }

  #emit(e: McpCallEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch (err) {
        this.#o.onError?.(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  // ----- the pool's hooks ---------------------------------------------------------------------

  #admit(key: string, kind: StartKind): string | null {
    const s = this.#slots.get(key).server;
    if (levelRank(this.#level) >= levelRank('emergency')) return `memory pressure is at emergency; MCP server '${s.name}' waits for memory to be freed`;
    if (kind !== 'demand' && levelRank(this.#level) >= levelRank('critical')) return `memory pressure is ${this.#level}: one instance per server`;
    const b = this.#o.budget;
    const need = s.memoryBytes * b.headroom;
    const held = (b.otherBytes?.() ?? 0) + this.reservedBytes();
    const free = b.budgetBytes - held;
    if (free < need) {
      return `the memory budget ${formatBytes(b.budgetBytes)} has ${formatBytes(Math.max(0, free))} free, and MCP server '${s.name}' needs ${formatBytes(s.memoryBytes)} × ${b.headroom} headroom`;
    }
    const system = b.systemFreeBytes?.() ?? null;
    if (system !== null && system < need) return `the machine has ${formatBytes(system)} available, and MCP server '${s.name}' needs ${formatBytes(s.memoryBytes)} × ${b.headroom} headroom`;
    return null;
  }

  async #start(key: string): Promise<McpBackend> {
    const slot = this.#slots.get(key);
    const s = slot.server;
    this.#startingBytes += s.memoryBytes;
    let self: McpBackend | null = null;
    const id = this.#slots.nextId(s.name);
    try {
      const b = await McpBackend.start({
        server: s,
        supervisor: this.#o.supervisor,
        project: slot.project === '*' ? this.defaultProject : slot.project,
        id,
        ...(this.#logDir !== null && { logFile: join(this.#logDir, `${id}.log`) }),
        reservationBytes: s.memoryBytes,
        // The limit recycles gracefully (onMemory below), never by a kill: a backend still growing
        // while it drains is bounded by the budget and the governor's levels, like any process.
        limitBytes: null,
        pressurePolicy: 'owner',
        priority: 'high',
        ...(this.#o.runId !== undefined && { runId: this.#o.runId }),
        ...(this.#o.baseEnv !== undefined && { baseEnv: this.#o.baseEnv }),
        onSampling: (params, ctx) => this.#toCaller(self, slot, { method: 'sampling/createMessage', params }, CreateMessageResultSchema, ctx.signal),
        onElicitation: (params, ctx) => this.#toCaller(self, slot, { method: 'elicitation/create', params } as ServerRequest, ElicitResultSchema, ctx.signal) as never,
        onListChanged: (kind) => {
          if (self !== null) this.#learned(self, [kind]);
        },
        onNotification: (n) => this.#relay(slot, n),
        onError: (e) => this.#o.onError?.(e),
        onMemory: (bytes) => {
          slot.peakRssBytes = Math.max(slot.peakRssBytes, bytes);
          if (self !== null && s.limitBytes !== null && bytes > s.limitBytes && !this.#overLimit.has(self)) {
            this.#overLimit.add(self);
            this.#pool.recycle(self, 'limit');
          }
        },
        onExit: (exit) => {
          if (self !== null) this.#exited(self, slot, exit);
        },
      });
      self = b;
      this.#slotOf.set(b, slot);
      slot.pids.push(b.pid!);
      if (slot.pids.length > 20) slot.pids.shift();
      const again = slot.crashed;
      slot.crashed = false;
      if (again) slot.restarts++;
      // The first instance of a server, or one after a crash: what it offers now is what clients see.
      if (again || this.catalog.offer(s.name) === undefined) this.#learned(b, again ? ['tools', 'resources', 'prompts'] : []);
      return b;
    } finally {
      this.#startingBytes -= s.memoryBytes;
    }
  }

  async #stop(b: McpBackend, reason: StopReason): Promise<void> {
    this.#overLimit.delete(b);
    await b.stop(reason === 'recycle' ? 'recycle' : reason === 'idle' ? 'idle' : reason === 'dead' ? 'failed' : 'shutdown');
  }

  #exited(b: McpBackend, slot: Slot, exit: BackendExit): void {
    this.#calls.delete(b);
    this.#slotOf.delete(b);
    setTimeout(() => this.#cut.delete(b), ONE_MINUTE).unref();
    if (exit.why === 'crashed' || exit.reason === 'limit' || exit.reason === 'pressure') {
      // Not the pool's doing: it leaves now, and the next call starts a fresh one.
      if (this.#pool.markDead(b)) {
        if (exit.why === 'crashed') slot.crashed = true;
        else slot.recyclesBy[exit.reason] = (slot.recyclesBy[exit.reason] ?? 0) + 1;
      }
    }
    this.#pool.pump();
  }

  /** A backend's lists changed: the catalog learns them, and every session hears of it. */
  #learned(b: McpBackend, kinds: readonly ListKind[]): void {
    this.catalog.learn(b);
    for (const l of this.#learnedListeners) l(b.name);
    const told = new Set<'tools' | 'resources' | 'prompts'>();
    for (const k of kinds) told.add(k === 'resourceTemplates' ? 'resources' : k);
    for (const k of told) for (const session of this.#sessions.values()) session.listChanged(k);
  }

  /** Server notifications: resources/updated to its subscribers, logging to the sessions of its project. */
  #relay(slot: Slot, n: Notification): void {
    if (n.method === 'notifications/resources/updated') {
      const uri = (n.params as { uri?: string } | undefined)?.uri;
      for (const s of this.#sessions.values()) if (uri !== undefined && s.subscriptions.has(uri)) s.notify(n as ServerNotification);
      return;
    }
    if (n.method === 'notifications/message') {
      for (const [b, calls] of this.#calls) if (this.#slotOf.get(b) === slot) for (const c of calls) c.session.notify(n as ServerNotification);
    }
  }

  /**
   * A server's request (sampling, elicitation) goes to the caller that caused it: the session of
   * a per-session instance, or the one call in flight. With several in flight nobody can tell,
   * and the server gets an MCP error saying so.
   */
  async #toCaller(b: McpBackend | null, slot: Slot, req: ServerRequest, schema: typeof CreateMessageResultSchema | typeof ElicitResultSchema, signal: AbortSignal): Promise<any> {
    const calls = b === null ? [] : [...(this.#calls.get(b) ?? [])];
    const cap = req.method === 'sampling/createMessage' ? 'sampling' : 'elicitation';
    const check = (session: SessionPeer): void => {
      if (session.clientCapabilities()?.[cap] === undefined) throw new McpError(ErrorCode.InvalidRequest, `${req.method} cannot be routed: the calling client did not declare ${cap}`);
    };
    const opts = { timeout: MAX_REQUEST_TIMEOUT_MS, signal };
    if (calls.length === 1) {
      check(calls[0]!.session);
      return calls[0]!.extra.sendRequest(req, schema, opts);
    }
    if (slot.session !== null) {
      const session = this.#sessions.get(slot.session);
      if (session === undefined) throw new McpError(ErrorCode.InvalidRequest, `${req.method} cannot be routed: the session has ended`);
      check(session);
      const mine = calls.find((c) => c.session === session);
      return mine ? mine.extra.sendRequest(req, schema, opts) : session.request(req, schema, signal);
    }
    throw new McpError(ErrorCode.InvalidRequest, `${req.method} cannot be routed: ${calls.length} calls in flight on this shared instance of '${slot.server.name}'`);
  }

  // ----- pressure ---------------------------------------------------------------------------

  /** Follow the governor's level (the supervisor's sampling moves it; this reads it 4 times a second). */
  #watchLevel(): void {
    const governor = this.#o.supervisor.governor;
    if (governor === null) return;
    this.#levelTimer = setInterval(() => this.respond(governor.level), 250);
    this.#levelTimer.unref();
  }

  /**
   * The responses, by level: moderate → no scale-up; high → idle instances stopped (and
   * the cache evicts, through the governor's caching response); critical → one instance per
   * server; emergency → the largest idle instance stopped, and only when none is idle the largest
   * with calls in flight (those calls fail with an MCP error naming the pressure), one every 2 s
   * while it lasts. Public so a test can steer it.
   */
  respond(level: PressureLevel): void {
    if (this.#closed) return;
    const was = this.#level;
    this.#level = level;
    const rank = levelRank(level);
    if (rank < levelRank(was)) this.#pool.pump();
    // Emergency is answered one instance at a time, the largest idle first (below), not by stopping every idle one.
    if ((level === 'high' || level === 'critical') && rank > levelRank(was)) this.#pool.stopIdle();
    if (rank >= levelRank('critical')) this.#pool.shrinkTo(1);
    if (level === 'emergency') this.#emergency();
  }

  #emergency(): void {
    const now = performance.now();
    if (now - this.#lastEmergencyAt < 2000) return;
    this.#lastEmergencyAt = now;
    const idle = this.#pool.largestIdle();
    if (idle !== null) {
      this.#pool.evict(idle.instance, 'pressure');
      this.#slots.get(idle.key).recyclesBy.pressure = (this.#slots.get(idle.key).recyclesBy.pressure ?? 0) + 1;
      return;
    }
    const busy = this.#pool.largest();
    if (busy === null) return;
    const b = busy.instance;
    this.#cut.set(b, `MCP server '${b.name}' (pid ${b.pid}) was stopped to relieve memory pressure (level emergency, ${formatBytes(busy.memoryBytes)} held); the call was cut, call again`);
    this.#pool.evict(b, 'pressure');
    this.#slots.get(busy.key).recyclesBy.pressure = (this.#slots.get(busy.key).recyclesBy.pressure ?? 0) + 1;
  }
}
