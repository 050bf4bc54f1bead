/** Why Guild itself stopped a task. */
export type KillReason = 'timeout' | 'cancelled' | 'pressure' | 'limit';

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
}

/** One attempt in flight. */
export interface Execution {
  /** The process-group leader's pid (the group id), or null for in-process functions. */
  readonly pid: number | null;
  /** Settles once the attempt has ended and, for processes, the whole group is gone. */
  readonly done: Promise<ExecOutcome>;
  /**
   * Stops the attempt: TERM to the whole group (and CONT, so a paused tree can act on it), KILL
   * after `graceMs` (default: the request's grace). Idempotent.
   */
  kill(reason: KillReason, graceMs?: number): void;
  /** SIGSTOP to the whole group; false when it cannot be paused (functions). */
  pause(): boolean;
  /** SIGCONT to the whole group. */
  resume(): void;
}

/** What one attempt needs. */
export interface ExecRequest {
  taskId: string;
  attempt: number;
  timeoutMs: number;
  killGraceMs: number;
}

/** Starts attempts. Implementations: process (shell commands), function (in-process async). */
export interface Executor<R extends ExecRequest = ExecRequest> {
  start(request: R): Execution;
}
