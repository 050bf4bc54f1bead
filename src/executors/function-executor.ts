import { formatDuration } from '../util/units.js';
import { timeoutDelay, type Execution, type ExecLease, type ExecOutcome, type ExecRequest, type Executor, type KillReason } from './executor.js';

/** What an in-process task function receives. */
export interface TaskContext {
  readonly taskId: string;
  readonly attempt: number;
  /** Aborted on timeout or cancellation: long-running functions should watch it. */
  readonly signal: AbortSignal;
}

/** An in-process task. Resolving is success; throwing or rejecting is failure. */
export type TaskFunction = (ctx: TaskContext) => unknown;

export interface FunctionRequest extends ExecRequest {
  fn: TaskFunction;
}

const NO_LEASE: ExecLease = Object.freeze({ cgroups: [], pid: null, startTime: null });

/**
 * Runs async functions in Guild's own process, for library users. A function cannot be killed:
 * on timeout or cancellation its signal is aborted and the attempt ends at once; the function
 * is expected to notice.
 */
export class FunctionExecutor implements Executor<FunctionRequest> {
  start(req: FunctionRequest): Execution {
    const t0 = performance.now();
    const ac = new AbortController();
    let killedBy: KillReason | null = null;
    let stop!: (reason: KillReason) => void;
    const stopped = new Promise<never>((_, reject) => {
      stop = (reason) => reject(Object.assign(new Error(reason), { guildKill: reason }));
    });
    stopped.catch(() => undefined);
    const kill = (reason: KillReason): void => {
      if (killedBy !== null) return;
      killedBy = reason;
      ac.abort(reason);
      stop(reason);
    };
    const delay = timeoutDelay(req.timeoutMs);
    const timeout = delay === null ? undefined : setTimeout(() => kill('timeout'), delay);
    const ctx: TaskContext = { taskId: req.taskId, attempt: req.attempt, signal: ac.signal };

    const outcome = (error: string | null): ExecOutcome => {
      clearTimeout(timeout);
      return { exitCode: error === null ? 0 : 1, signal: null, killedBy, error, durationMs: performance.now() - t0 };
    };
    const done = Promise.race([Promise.resolve().then(() => req.fn(ctx)), stopped]).then(
      () => outcome(null),
      (e: unknown) => {
        if (killedBy === 'timeout') return outcome(`timed out after ${formatDuration(req.timeoutMs!)}`);
        if (killedBy !== null) return outcome(killedBy);
        return outcome(e instanceof Error ? e.message : String(e));
      },
    );
    // kill() only aborts the signal and settles the attempt; the function itself runs on in this
    // process, so it counts as neither killable nor pausable, and its memory is Guild's own.
    return { pid: null, done, kill, pause: () => false, resume: () => undefined, canPause: false, canKill: false, memory: () => null, lease: NO_LEASE, stdio: null };
  }
}
