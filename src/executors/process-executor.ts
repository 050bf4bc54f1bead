import { spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { formatDuration } from '../util/units.js';
import type { Execution, ExecOutcome, ExecRequest, Executor, KillReason } from './executor.js';
import { groupAlive, signalGroup, trackGroup, untrackGroup } from './process-groups.js';

/** One attempt of a shell command. */
export interface ProcessRequest extends ExecRequest {
  command: string;
  cwd: string;
  /** The complete environment of the child. */
  env: NodeJS.ProcessEnv;
  /** stdout and stderr are appended here, written by the child itself. */
  logFile: string;
}

const POLL_MS = 25;
const ZOMBIE_WAIT_MS = 1000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs each attempt as `/bin/sh -c <command>` in a new process group (`detached: true`), so
 * that TERM and KILL reach the whole tree, grandchildren included.
 *
 * Output goes straight from the child to the log file: the file descriptor is handed to the
 * child as its stdout and stderr, so Guild never copies or buffers a byte of it.
 */
export class ProcessExecutor implements Executor<ProcessRequest> {
  start(req: ProcessRequest): Execution {
    const t0 = performance.now();
    const fd = openSync(req.logFile, 'a');
    if (req.attempt > 1) writeSync(fd, `\n--- guild: attempt ${req.attempt} of ${req.taskId} ---\n`);
    let child;
    try {
      child = spawn('/bin/sh', ['-c', req.command], { cwd: req.cwd, env: req.env, detached: true, stdio: ['ignore', fd, fd] });
    } finally {
      // The child holds its own copy by now (uv_spawn returns after exec), so ours can go.
      closeSync(fd);
    }
    const pgid = child.pid ?? null;
    if (pgid !== null) trackGroup(pgid);

    let killedBy: KillReason | null = null;
    let killTimer: NodeJS.Timeout | undefined;
    const kill = (reason: KillReason, graceMs = req.killGraceMs): void => {
      if (killedBy !== null || pgid === null) return;
      killedBy = reason;
      signalGroup(pgid, 'SIGTERM');
      signalGroup(pgid, 'SIGCONT'); // a stopped process only acts on TERM once it runs again
      killTimer = setTimeout(() => signalGroup(pgid, 'SIGKILL'), graceMs);
    };
    const pause = (): boolean => pgid !== null && killedBy === null && signalGroup(pgid, 'SIGSTOP');
    const resume = (): void => void (pgid !== null && signalGroup(pgid, 'SIGCONT'));
    const timeout = Number.isFinite(req.timeoutMs) && req.timeoutMs > 0 ? setTimeout(() => kill('timeout'), req.timeoutMs) : undefined;

    const done = new Promise<ExecOutcome>((resolve) => {
      let settled = false;
      const finish = async (exitCode: number | null, signal: string | null, spawnError: string | null): Promise<void> => {
        if (settled) return;
        settled = true;
        clearTimeout(timeout);
        if (pgid !== null) await reapGroup(pgid, req.killGraceMs);
        clearTimeout(killTimer);
        if (pgid !== null) untrackGroup(pgid);
        const durationMs = performance.now() - t0;
        let error: string | null = spawnError;
        if (error === null) {
          if (killedBy === 'timeout') error = `timed out after ${formatDuration(req.timeoutMs)}`;
          else if (killedBy === 'cancelled') error = 'cancelled';
          else if (killedBy === 'pressure') error = 'killed under memory pressure';
          else if (killedBy === 'limit') error = 'memory limit exceeded';
          else if (signal) error = `killed by ${signal}`;
          else if (exitCode !== 0) error = `exited with code ${exitCode}`;
        }
        resolve({ exitCode, signal, killedBy, error, durationMs });
      };
      child.once('error', (e) => void finish(null, null, `could not start: ${e.message}`));
      child.once('exit', (code, signal) => void finish(code, signal, null));
    });

    return { pid: pgid, done, kill, pause, resume };
  }
}

/**
 * After the leader exits, anything left in its group (a backgrounded grandchild) is ended too:
 * TERM, then KILL after the grace period, then a bounded wait for the kernel to clear it.
 */
async function reapGroup(pgid: number, graceMs: number): Promise<void> {
  if (!groupAlive(pgid)) return;
  signalGroup(pgid, 'SIGTERM');
  for (let waited = 0; waited < graceMs && groupAlive(pgid); waited += POLL_MS) await sleep(POLL_MS);
  if (!groupAlive(pgid)) return;
  signalGroup(pgid, 'SIGKILL');
  // Zombies count as members until their new parent reaps them; do not wait for that forever.
  for (let waited = 0; waited < ZOMBIE_WAIT_MS && groupAlive(pgid); waited += POLL_MS) await sleep(POLL_MS);
}
