import type { PressureLevel } from '../governor/levels.js';

// What the MCP gateway reports about itself: one call as it ends (`McpCallEvent`, for latency
// histograms and counters) and a snapshot of its pool (`GatewayStatus`, for `/status`,
// `guild mcp status`, a run's `--json` `mcp` and the dashboard's gateway panel). The shapes live
// here, below the gateway and the dashboard, because both consume them.

/** How a call through the gateway ended. */
export type McpCallOutcome =
  /** The backend answered (for tools/call: a result without `isError`). */
  | 'ok'
  /** tools/call answered with `isError: true` (the tool failed; the protocol did not). */
  | 'tool-error'
  /** An MCP error: the backend's, or the gateway's (no instance, pressure, crash, cancelled). */
  | 'error';

/** One request the gateway forwarded (or answered from its cache), as it ends. */
export interface McpCallEvent {
  /** The server's name in the gateway's config. */
  server: string;
  /** The MCP method: `tools/call`, `resources/read`, `prompts/get`, … */
  method: string;
  /** For tools/call and prompts/get: the backend's name of the tool or prompt; for resources/read: the URI; else null. */
  name: string | null;
  /** Absolute folder of the project the call was served for. */
  project: string;
  durationMs: number;
  /** Served from the tool-result cache (no backend was asked). */
  cached: boolean;
  outcome: McpCallOutcome;
  /** For `error`: the MCP error code. */
  errorCode?: number;
}

/** One (server, project[, session]) slot of the pool: the instances that served it over time. */
export interface McpBackendStatus {
  server: string;
  project: string;
  /** For per-session servers: the session's id; else null. */
  session: string | null;
  /** The pids of its live instances (oldest first); empty when none runs now. */
  pids: number[];
  /** Every pid that served this slot, oldest first (bounded to the last 20). */
  allPids: number[];
  /** Live instances: taking calls, starting, draining after a recycle. */
  instances: number;
  starting: number;
  draining: number;
  inFlight: number;
  /** Calls waiting for an instance. */
  waiting: number;
  /** RSS of its live instances' process trees now, bytes (Σ). */
  rssBytes: number;
  /** Highest RSS any one of its instances reached, bytes. */
  peakRssBytes: number;
  /** Calls forwarded to a backend, and answered from the cache. */
  calls: number;
  cacheHits: number;
  /** Instances started again after one crashed (exited on its own or was killed by a signal Guild did not send). */
  restarts: number;
  /** Graceful recycles, by why: `limit` (over its memory limit), `pressure`, `manual`. */
  recycles: number;
  recyclesBy: Record<string, number>;
  /** Calls that failed because no instance could be admitted within the wait. */
  admissionTimeouts: number;
  /** Why admission refuses the start this slot wants, while it does; else null. */
  admissionDenied: string | null;
}

/** Latency of one tool (or other method) of a server, over the gateway's life. */
export interface McpLatencyStatus {
  server: string;
  method: string;
  name: string | null;
  calls: number;
  cacheHits: number;
  errors: number;
  p50Ms: number;
  p95Ms: number;
  /** The seed's response target for this server's kind (code analysis 200 ms, knowledge 300 ms), if it has one. */
  targetMs: number | null;
}

/** One server as configured, and what it offers. */
export interface McpServerStatus {
  name: string;
  /** Its names are exposed as `<name>__<tool>` (true) or unchanged. */
  prefix: boolean;
  isolation: 'shared' | 'per-project' | 'per-session';
  kind: string | null;
  memoryBytes: number;
  limitBytes: number | null;
  instances: { min: number; max: number };
  tools: number;
  resources: number;
  prompts: number;
  /** Tools whose results may be cached (by `cacheable` or by annotation), by the backend's name. */
  cacheableTools: string[];
}

/** A snapshot of the gateway. */
export interface GatewayStatus {
  /** `http://host:port/mcp`. */
  url: string;
  pid: number;
  startedAt: string;
  uptimeMs: number;
  /** The folder of the gateway's config file: the project of a client that names none. */
  defaultProject: string;
  sessions: number;
  /** The governor's level as the gateway last saw it. */
  level: PressureLevel;
  budgetBytes: number;
  /** Σ over live backend instances of max(reservation, measured RSS), bytes. */
  reservedBytes: number;
  servers: McpServerStatus[];
  backends: McpBackendStatus[];
  latency: McpLatencyStatus[];
  cache: { hits: number; misses: number; stores: number; invalidations: number; skipped: number };
}
