import type { ProgressCallback } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type {
  CreateMessageRequest,
  CreateMessageResult,
  CreateMessageResultWithTools,
  ElicitRequest,
  ElicitResult,
  Implementation,
  ListRootsResult,
  Notification,
  RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import type { Priority } from '../config/schema.js';
import type { ExecOutcome, MemorySample, MemorySource } from '../executors/executor.js';
import type { Supervisor } from '../supervisor/supervisor.js';
import type { KillNotice } from '../supervisor/watch.js';
import type { McpBackend } from './backend.js';

// The shapes McpBackend is started and read with: its options, how it ended, what a call takes.

/** A server as `.mcp.json` declares one (the shape of config's `ResolvedMcpServer`, which fits it). */
export interface McpServerSpec {
  /** The server's name in the gateway's config. */
  name: string;
  /** The program, found on PATH like a shell would (exec form: no shell syntax). */
  command: string;
  args: readonly string[];
  /** Added to the environment the backend inherits. */
  env: Readonly<Record<string, string>>;
  /** Absolute; null: the project folder. */
  cwd: string | null;
}

/** Why an owner stops a backend. `recycle` reports the exit as recycled; the others as stopped. */
export type BackendStopReason = 'shutdown' | 'idle' | 'recycle' | 'failed';

/**
 * What ended a backend, under its `why`:
 * - stopped: its owner's `BackendStopReason` (`shutdown` also when the supervisor closed);
 * - recycled: `recycle` (its owner or `Supervisor.recycle`), `limit` (above its hard limit),
 *   `pressure` (the governor's emergency);
 * - crashed: `exited` (on its own, any code), `signal` (a signal Guild did not send),
 *   `protocol` (it closed its connection, or broke it, and was then stopped).
 */
export type BackendExitReason = BackendStopReason | 'limit' | 'pressure' | 'exited' | 'signal' | 'protocol';

/** How a backend ended; its process tree is gone by then. */
export interface BackendExit {
  why: 'crashed' | 'stopped' | 'recycled';
  reason: BackendExitReason;
  /** The server process's pid (its process group). */
  pid: number | null;
  exitCode: number | null;
  signal: string | null;
  /** One line for people: `crashed: killed by SIGKILL`, `recycled: above its memory limit (1 GB)`. */
  message: string;
  /** The supervisor's record of the execution. */
  outcome: ExecOutcome;
}

/** The backend's memory as the supervisor last measured it. */
export interface BackendMemory {
  bytes: number;
  peakBytes: number;
  source: MemorySource;
}

/** The backend's side of a server-to-client request, for `onSampling` and the like. */
export interface ServerRequestContext {
  /** Aborted when the server cancels its request or the backend goes away. */
  signal: AbortSignal;
  /** The server's JSON-RPC id of its request. */
  requestId: RequestId;
}

/** Options of `McpBackend.start`. */
export interface McpBackendOptions {
  /** The server to start. */
  server: McpServerSpec;
  /** Starts and watches the process, measures it, and ends it (TERM→KILL, the whole tree). */
  supervisor: Supervisor;
  /** Absolute folder of the project this instance serves: its cwd unless the server names one, and its root (`roots/list`). */
  project: string;
  /** The supervisor's id of the execution; unique among those it watches. @default `mcp-<server>-<n>` */
  id?: string;
  /** The server's stderr is appended here. @default none: stderr is read and dropped (its last 4 KB kept for errors) */
  logFile?: string;
  /** What admission reserved for it, bytes (its expected memory). */
  reservationBytes: number;
  /** Above this measured memory the supervisor ends it (exit `recycled`, reason `limit`). @default null: no limit */
  limitBytes?: number | null;
  /**
   * `recycle`: the governor may end it at an emergency (exit `recycled`, reason `pressure`);
   * `owner`: the governor never picks it, its owner answers pressure (the gateway's pool does).
   * @default 'recycle'
   */
  pressurePolicy?: 'recycle' | 'owner';
  /** Decides, with age, who goes first under pressure. @default 'medium' */
  priority?: Priority;
  /** Names its cgroup and marks its environment. @default the executor's (`pid<Guild's pid>`) */
  runId?: string;
  /** The environment the server's `env` is added to. @default process.env */
  baseEnv?: NodeJS.ProcessEnv;
  /** Time for `initialize` and for learning the lists at start, ms. @default 60000 */
  startTimeoutMs?: number;
  /** After stdin ends (the MCP stdio shutdown), time to exit before TERM, ms. @default 1000 */
  exitGraceMs?: number;
  /** TERM→KILL grace, ms. @default 2000 */
  killGraceMs?: number;
  /** Largest message read from the server, bytes. @default 10 MiB */
  maxMessageBytes?: number;
  /** The client's name and version in `initialize`. @default guild and its version */
  clientInfo?: Implementation;
  /** `sampling/createMessage` from the server. @default an MCP error: no caller to ask */
  onSampling?(params: CreateMessageRequest['params'], context: ServerRequestContext): Promise<CreateMessageResult | CreateMessageResultWithTools>;
  /** `elicitation/create` from the server. @default an MCP error: no caller to ask */
  onElicitation?(params: ElicitRequest['params'], context: ServerRequestContext): Promise<ElicitResult>;
  /** `roots/list` from the server. @default the project folder */
  onListRoots?(context: ServerRequestContext): ListRootsResult | Promise<ListRootsResult>;
  /** A list changed on the server and has been learned again (never during start). */
  onListChanged?(kind: ListKind): void;
  /** Server notifications the backend does not handle itself (logging messages, resources updated, …). */
  onNotification?(notification: Notification): void;
  /** Protocol errors that fail no call: a bad line from the server, an EPIPE, a late response. */
  onError?(error: Error): void;
  /** Each measurement the supervisor takes, before it checks the limit. */
  onMemory?(bytes: number, sample: MemorySample): void;
  /** The supervisor is about to stop it (limit, pressure, recycle); calls in flight will fail. */
  onKill?(notice: KillNotice): void;
  /** It has ended and its process tree is gone; once. */
  onExit?(exit: BackendExit): void;
}

/** How one `request` is sent. */
export interface BackendRequestOptions {
  /** Aborting sends `notifications/cancelled` to the server and rejects the call. */
  signal?: AbortSignal;
  /** Progress the server reports for this call. */
  onprogress?: ProgressCallback;
  /** ms without an answer or progress before the call fails. @default MAX_REQUEST_TIMEOUT_MS */
  timeout?: number;
}

/** The lists a backend learns, by the key of their result. */
export type ListKind = 'tools' | 'resources' | 'resourceTemplates' | 'prompts';
