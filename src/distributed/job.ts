import type { KillReason } from '../executors/executor.js';
import type { Priority } from '../config/schema.js';
import type { ResolvedMcp } from '../config/mcp.js';
import type { WorkerHeartbeat } from '../telemetry/workers.js';
import type { Bundle } from './outputs.js';

/** Where a job runs: a folder of a git repository at a commit, or an absolute path (one machine, a shared file system). */
export type JobWhere = { kind: 'git'; commit: string; path: string } | { kind: 'path'; dir: string };

/** What a submitter signs and a worker runs: one attempt of one task. */
export interface JobPayload {
  v: 1;
  /** BullMQ's job id; a signed payload moved under another id is rejected. */
  jobId: string;
  runId: string;
  taskId: string;
  attempt: number;
  /** Agent type; must match the queue it was taken from. */
  agent: string;
  priority: Priority;
  memoryBytes: number;
  cpu: number;
  limitBytes: number | null;
  command: string;
  /** What the task adds to the worker's environment (its `env:`, GUILD_RUN_ID, …); never the submitter's own. */
  env: Record<string, string>;
  timeoutMs: number | null;
  killGraceMs: number;
  where: JobWhere;
  /** The task's declared outputs (globs): packed and carried back after it succeeds. */
  outputs: string[];
  /** Packs (distributed/outputs.ts) of the tasks it needs, restored in this order before it starts. */
  restore: string[];
  /** The submitter's log file of the attempt (host and absolute path): the worker streams the log there unless it is the worker's own file. */
  logAt?: { host: string; path: string } | null;
  /** The workflow's `mcp:` (a server's cwd inside the workflow's folder relative to it): the worker serves it through its own gateway and sets GUILD_MCP_URL. */
  mcp?: ResolvedMcp | null;
  /** When it was signed (epoch ms). */
  issuedAt: number;
}

/** What a worker reports for a job it took: the job's return value and the run channel's `ended`. */
export interface JobResult {
  worker: string;
  exitCode: number | null;
  signal: string | null;
  killedBy: KillReason | null;
  error: string | null;
  durationMs: number;
  /** Highest memory the attempt measured on the worker; null when it ended before a sample. */
  peakBytes: number | null;
  /** The worker's budget and its highest Σ of measured memory at one instant since it started. */
  workerBudgetBytes: number;
  workerPeakBytes: number;
  /** The attempt's files (its outputs after a success, its log and metrics) stored in Redis; null when there were none. */
  bundle: Bundle | null;
}

/** One message on a run's channel. */
export type RunMessage =
  | { kind: 'cancel'; jobId: string | null }
  /** Jobs were added: workers look now, a loaded one a little later (placement). */
  | { kind: 'enqueued' }
  | { kind: 'started'; jobId: string; worker: string }
  /** A running job's measured memory on its worker. */
  | { kind: 'sample'; jobId: string; bytes: number }
  /** Text appended to a running job's log. */
  | { kind: 'log'; jobId: string; text: string }
  | { kind: 'ended'; jobId: string; result: JobResult };

/** What the registry says of an agent type, for a worker's admission before it takes a job. */
export interface TypeProfile {
  memoryBytes: number;
  cpu: number;
  concurrency: number | null;
  /** The submitting workflow's `starvation_limit`: a head waiting longer goes first, and is waited for. */
  starvationMs?: number;
}

/** A worker's heartbeat, as read back: what telemetry shows of it, and the jobs it runs now. */
export interface WorkerBeat extends WorkerHeartbeat {
  jobs: string[];
}
