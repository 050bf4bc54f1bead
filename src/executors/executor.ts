/** Why Guild itself stopped an attempt. `recycle`: a long-lived server replaced by its owner's policy. */
export type KillReason = 'timeout' | 'cancelled' | 'pressure' | 'limit' | 'recycle';

/** Where a memory figure came from. Learned profiles never mix sources. */
export type MemorySource = 'cgroup' | 'tree-rss' | 'remote';

/** One measurement of an execution's memory. */
export interface MemorySample {
  bytes: number;
  source: MemorySource;
  /** pids seen (for cleanup) */
  pids: readonly number[];
}

/** Where an attempt runs, for the run's lease: what a later Guild needs to end it if this one dies. */
export interface ExecLease {
  /** cgroup dirs the attempt runs in (one per hierarchy), empty if none */
  cgroups: readonly string[];
  /** leader pid and its start time (field 22 of /proc/<pid>/stat, clock ticks), null for functions */
  pid: number | null;
  startTime: number | null;
}

/** How one attempt ended. */
export interface ExecOutcome {
  /** Exit code when the process exited; 0/1 for functions (resolved/rejected). */
  exitCode: number | null;
  /** The signal that ended the process, e.g. SIGTERM. */
  signal: string | null;
  /** Set when Guild stopped it. */
  killedBy: KillReason | null;
  /** A one-line reason when it did not succeed. */
  error: string | null;
  durationMs: number;
  /**
   * Kernel OOM kills inside the attempt's own cgroup (its backstop limit acting); absent without
   * one. On cgroup v1 these are not in Guild's own group's counter; on v2 memory.events already
   * includes them.
   */
  oomKills?: number;
  /**
   * The highest memory the attempt measured where it ran, for an execution measured elsewhere (a
   * distributed worker) whose samples may not have reached this process; absent for local ones.
   */
  peakBytes?: number | null;
  /** The machine (a distributed worker's name) that ran it; absent for local executions. */
  ranOn?: string;
}

/** One attempt in flight. */
export interface Execution {
  /** The leader's pid (also its process group id), or null for in-process functions. */
  readonly pid: number | null;
  /** Settles once the attempt has ended and, for processes, everything it started is gone. */
  readonly done: Promise<ExecOutcome>;
  /**
   * Stops the attempt: TERM to every process of it (and CONT, so a paused tree can act on it),
   * KILL after `graceMs` (default: the request's grace). Idempotent.
   */
  kill(reason: KillReason, graceMs?: number): void;
  /** Stops every process of it (SIGSTOP); false when it cannot be paused. */
  pause(): boolean;
  /** SIGCONT to every process of it. */
  resume(): void;
  /** What this execution allows: functions cannot be paused or killed, a remote one may not be paused. */
  readonly canPause: boolean;
  readonly canKill: boolean;
  /** Measured memory now (cgroup usage − inactive_file where contained, else tree RSS); null when not measurable or gone. */
  memory(): MemorySample | null;
  /** Where it runs, for the run's lease. */
  readonly lease: ExecLease;
  /** With request.stdio === 'pipe': the child's streams. */
  readonly stdio: { stdin: NodeJS.WritableStream; stdout: NodeJS.ReadableStream; stderr: NodeJS.ReadableStream } | null;
  /**
   * It runs on another machine (a distributed worker): its memory is not this machine's, so the
   * supervisor leaves it out of the governor's reading and the governor never acts on it (the
   * worker's own governor does). @default false
   */
  readonly remote?: boolean;
  /** A remote execution: the worker that took it, null while it waits for one. @default absent (it runs here) */
  readonly worker?: string | null;
}

/** What one attempt needs. */
export interface ExecRequest {
  taskId: string;
  attempt: number;
  /** null: no timeout (a long-lived server). */
  timeoutMs: number | null;
  killGraceMs: number;
  /**
   * What an executor that places work elsewhere (distributed mode) needs to pick a machine:
   * admission's demand of the attempt. Local executors ignore it. @default none
   */
  placement?: Placement;
}

/** An attempt's demand, as the admission of whichever machine takes it sees it. */
export interface Placement {
  /** Agent type: a worker's per-type concurrency applies to it. */
  agent: string;
  priority: 'critical' | 'high' | 'medium' | 'low';
  /** Expected memory (bytes), the estimate the run's admission holds now. */
  memoryBytes: number;
  cpu: number;
  /** Hard limit (bytes) or null. */
  limitBytes: number | null;
}

/** Starts attempts. Implementations: process (shell commands), function (in-process async). */
export interface Executor<R extends ExecRequest = ExecRequest> {
  start(request: R): Execution;
}

/**
 * setTimeout fires at once for delays of 2^31 ms or more (Node clamps them to 1 ms). A timeout
 * that long (24.8 days) is treated as none: null, so no timer is set at all.
 */
export function timeoutDelay(timeoutMs: number | null): number | null {
  if (timeoutMs === null || !Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs >= 2 ** 31 - 1) return null;
  return timeoutMs;
}
