import type { ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { closeSync, createWriteStream, openSync, writeSync } from 'node:fs';
import { cgroupName, type CgroupControl } from '../system/cgroup-control.js';
import type { SystemProbe } from '../system/probe.js';
import { formatDuration } from '../util/units.js';
import { CgroupContainer, TreeContainer, type Container } from './containment.js';
import { timeoutDelay, type Execution, type ExecLease, type ExecOutcome, type ExecRequest, type Executor, type KillReason } from './executor.js';
import { liveStartTime } from '../system/process-identity.js';
import { envList } from '../system/native.js';
import { nativeSpawner } from './native-spawn.js';
import { trackContainer, trackGroup, untrackContainer, untrackGroup } from './process-groups.js';

// Node's child_process, and the net, dgram and stream modules it loads (~0.7-1 MB a waiting run
// would hold), only where it is used: pipes (MCP servers), or a machine without the native addon.
type ChildProcessModule = typeof import('node:child_process');
let childProcess: ChildProcessModule | undefined;
const nodeChildProcess = (): ChildProcessModule => (childProcess ??= createRequire(import.meta.url)('node:child_process') as ChildProcessModule);

/** One attempt of a shell command. */
export interface ProcessRequest extends ExecRequest {
  command: string;
  cwd: string;
  /** The complete environment of the child. */
  env: NodeJS.ProcessEnv;
  /**
   * 'log' (default): stdout and stderr are appended to `logFile`, written by the child itself.
   * 'pipe': stdin, stdout and stderr are pipes (Execution.stdio); stderr is also appended to
   * `logFile` when one is given.
   */
  stdio?: 'log' | 'pipe';
  /** Required with stdio 'log'. */
  logFile?: string;
  /** The run this attempt belongs to: names its cgroup and marks its environment. @default `pid<Guild's pid>` */
  runId?: string;
  /**
   * Guild's own hard memory limit of the task, if any. It stays Guild's to enforce (TERM→KILL,
   * with its message and requeue rules); in a cgroup the kernel limit is set BACKSTOP_FACTOR above
   * it, only so that a stalled Guild cannot let one task take the machine.
   */
  limitBytes?: number | null;
}

/** What the executor needs. */
export interface ProcessExecutorOptions {
  /** Walks process trees: memory where no cgroup measures it, and the fallback containment. */
  probe: Pick<SystemProbe, 'tree'>;
  /** Per-task cgroups where Guild can make them (systemCgroupControl()); null or absent: the tree walk. */
  containment?: CgroupControl | null;
}

const POLL_MS = 25;
/**
 * The kernel limit sits 25 % above Guild's: Guild samples every ≤ 100 ms near a limit and then
 * allows a TERM grace (500 ms for memory kills), so a task growing fast may pass its limit by that
 * much before Guild's KILL lands; the margin keeps the kernel from acting first in normal
 * operation (Guild's kill is the one reported, requeued and learned from), while a Guild that is
 * stopped or starved still cannot let one task grow without bound.
 */
const BACKSTOP_FACTOR = 1.25;

/**
 * With Node's spawn (pipes, or no native addon), the shell an attempt starts as when it has a
 * cgroup (the addon joins in the child itself, native/spawn.c): it writes its own pid to each
 * hierarchy's cgroup.procs, then execs the task's shell, so the task and everything it ever
 * starts are inside before the first instruction of the command runs. The command is passed as
 * $0, never spliced into the script; the procs files as $1…$n.
 */
const JOIN_SCRIPT = 'for f in "$@"; do echo $$ > "$f" || { echo "guild: cannot join the cgroup ($f)" >&2; exit 125; }; done; exec /bin/sh -c "$0"';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs each attempt as `/bin/sh -c <command>` in a new process group (`detached: true`) and, where
 * Guild can make cgroups, in a cgroup of its own that it joins before exec. Kill, pause and the
 * final reap reach every process of the attempt through its container (containment.ts): the
 * cgroup's members, else the walked tree plus remembered and marked pids.
 *
 * With stdio 'log', output goes straight from the child to the log file: the file descriptor is
 * handed to the child as its stdout and stderr, so Guild never copies or buffers a byte of it.
 */
export class ProcessExecutor implements Executor<ProcessRequest> {
  readonly #probe: Pick<SystemProbe, 'tree'>;
  readonly #cgroups: CgroupControl | null;

  constructor(options: ProcessExecutorOptions) {
    this.#probe = options.probe;
    this.#cgroups = options.containment ?? null;
  }

  start(req: ProcessRequest): Execution {
    const t0 = performance.now();
    const runId = req.runId ?? `pid${process.pid}`;
    // The markers the tree fallback finds reparented leftovers by; run.ts sets the same values.
    const env = { ...req.env, GUILD_RUN_ID: runId, GUILD_TASK_ID: req.taskId, GUILD_ATTEMPT: String(req.attempt) };
    const tree = new TreeContainer(this.#probe, [`GUILD_RUN_ID=${runId}`, `GUILD_TASK_ID=${req.taskId}`, `GUILD_ATTEMPT=${req.attempt}`]);
    const container = this.#container(req, runId, tree);
    const procs = container.cgroups.map((dir) => `${dir}/cgroup.procs`);

    const pipe = req.stdio === 'pipe';
    let fd: number | null = null;
    if (req.logFile !== undefined && req.logFile !== '') {
      fd = openSync(req.logFile, 'a');
      if (req.attempt > 1) writeSync(fd, `\n--- guild: attempt ${req.attempt} of ${req.taskId} ---\n`);
    } else if (!pipe) throw new TypeError(`Expected logFile for stdio 'log', got ${String(req.logFile)}`);
    let started: Started;
    try {
      started = pipe ? nodeStart(joinArgv(req.command, procs), req.cwd, env, fd) : logStart(req.command, procs, req.cwd, env, fd!);
    } catch (e) {
      if (fd !== null && pipe) closeSync(fd);
      void container.release();
      throw e;
    } finally {
      // The child holds its own copy by now (both spawns return after exec), so ours can go.
      if (fd !== null && !pipe) closeSync(fd);
    }
    const { pid, stdio } = started;
    if (pid !== null) {
      container.attach(pid);
      trackGroup(pid);
      trackContainer(container);
    }
    const lease: ExecLease = { cgroups: container.cgroups, pid, startTime: pid === null ? null : liveStartTime(pid) };

    let killedBy: KillReason | null = null;
    let killTimer: NodeJS.Timeout | undefined;
    let ended = false;
    const kill = (reason: KillReason, graceMs = req.killGraceMs): void => {
      if (killedBy !== null || pid === null || ended) return;
      killedBy = reason;
      container.signal('SIGTERM');
      container.resume(); // a paused process only acts on TERM once it runs again
      killTimer = setTimeout(() => void container.killAll(), graceMs);
    };
    const pause = (): boolean => pid !== null && killedBy === null && !ended && container.pause();
    const resume = (): void => {
      if (pid !== null && !ended) container.resume();
    };
    const delay = timeoutDelay(req.timeoutMs);
    const timeout = delay === null ? undefined : setTimeout(() => kill('timeout'), delay);

    const done = new Promise<ExecOutcome>((resolve) => {
      let settled = false;
      const finish = async (exitCode: number | null, signal: string | null, spawnError: string | null): Promise<void> => {
        if (settled) return;
        settled = true;
        clearTimeout(timeout);
        if (pid !== null) await reap(container, req.killGraceMs);
        ended = true;
        clearTimeout(killTimer);
        if (pid !== null) {
          untrackGroup(pid);
          untrackContainer(container);
        }
        const oomKills = container.oomKills();
        await container.release();
        const durationMs = performance.now() - t0;
        let error: string | null = spawnError;
        if (error === null) {
          if (killedBy === 'timeout') error = `timed out after ${formatDuration(req.timeoutMs!)}`;
          else if (killedBy === 'cancelled') error = 'cancelled';
          else if (killedBy === 'pressure') error = 'killed under memory pressure';
          else if (killedBy === 'limit') error = 'memory limit exceeded';
          else if (killedBy === 'recycle') error = 'recycled';
          else if (oomKills && (signal !== null || exitCode !== 0)) error = `killed by the kernel's OOM killer at the cgroup's backstop limit (${BACKSTOP_FACTOR}× the task's limit)`;
          else if (signal) error = `killed by ${signal}`;
          else if (exitCode !== 0) error = `exited with code ${exitCode}`;
        }
        resolve({ exitCode, signal, killedBy, error, durationMs, ...(oomKills !== null ? { oomKills } : {}) });
      };
      started.onEnd((code, signal, spawnError) => void finish(code, signal, spawnError));
    });

    return {
      pid,
      done,
      kill,
      pause,
      resume,
      canPause: true,
      canKill: true,
      memory: () => (ended || pid === null ? null : container.memory()),
      lease,
      stdio,
    };
  }

  /** A cgroup of its own when Guild can make one; the tree walk otherwise (or if making it fails). */
  #container(req: ProcessRequest, runId: string, tree: TreeContainer): Container {
    if (!this.#cgroups) return tree;
    const limit = req.limitBytes ?? null;
    const name = cgroupName(runId, req.taskId, req.attempt);
    try {
      return new CgroupContainer(this.#cgroups.create(name, limit === null ? null : limit * BACKSTOP_FACTOR), tree);
    } catch {
      // EEXIST from a crashed Guild's leftover of the same name is not expected (run ids are
      // unique); any failure still leaves the attempt contained by the walk.
      return tree;
    }
  }
}

/**
 * After the leader exits, anything left (a backgrounded grandchild, an escapee) is ended too:
 * TERM, then KILL after the grace period, repeated until nothing is left.
 */
async function reap(c: Container, graceMs: number): Promise<void> {
  if (!c.alive()) return;
  c.signal('SIGTERM');
  c.resume();
  for (let waited = 0; waited < graceMs && c.alive(); waited += POLL_MS) await sleep(POLL_MS);
  if (!c.alive()) return;
  await c.killAll();
}

/** A started child: its pid (null when it could not start), its pipes, and one call when it ends. */
interface Started {
  pid: number | null;
  stdio: Execution['stdio'];
  /** `fn(code, signal, null)` once it exited and was reaped, or `fn(null, null, why)` if it could not start. */
  onEnd(fn: (code: number | null, signal: string | null, spawnError: string | null) => void): void;
}

/**
 * An attempt whose output goes to the log file `fd`: through Guild's own spawn where it is built
 * (native-spawn.ts: no fork of Guild's address space, the cgroups joined in the child), else
 * Node's spawn and the joining shell.
 */
function logStart(command: string, procs: readonly string[], cwd: string, env: NodeJS.ProcessEnv, fd: number): Started {
  const native = nativeSpawner();
  if (native === null) return nodeStart(joinArgv(command, procs), cwd, env, fd, false);
  let ended: [number | null, string | null, string | null] | null = null;
  let listener: ((code: number | null, signal: string | null, spawnError: string | null) => void) | null = null;
  const end = (code: number | null, signal: string | null, spawnError: string | null): void => {
    ended = [code, signal, spawnError];
    listener?.(code, signal, spawnError);
  };
  let pid: number | null = null;
  try {
    // The addon joins the cgroups itself, in the child before exec: no joining shell.
    pid = native.spawn('/bin/sh', ['/bin/sh', '-c', command], envList(env), cwd, fd, fd, (code, signal) => end(code, signal, null), procs);
  } catch (e) {
    // As Node's spawn reports it: an 'error' after the call, the attempt failing with the reason.
    const why = `could not start: ${(e as Error).message} (/bin/sh in ${cwd})`;
    queueMicrotask(() => end(null, null, why));
  }
  return {
    pid,
    stdio: null,
    onEnd: (fn) => {
      listener = fn;
      if (ended !== null) fn(...ended);
    },
  };
}

/** `/bin/sh`'s arguments for Node's spawn: through the joining shell when there are cgroups to join. */
function joinArgv(command: string, procs: readonly string[]): string[] {
  return procs.length > 0 ? ['-c', JOIN_SCRIPT, command, ...procs] : ['-c', command];
}

/** Node's spawn: pipes for 'pipe' stdio (`pipe` true), else stdout and stderr to `fd`. */
function nodeStart(argv: readonly string[], cwd: string, env: NodeJS.ProcessEnv, fd: number | null, pipe = true): Started {
  const child: ChildProcess = nodeChildProcess().spawn('/bin/sh', argv, { cwd, env, detached: true, stdio: pipe ? 'pipe' : ['ignore', fd!, fd!] });
  if (pipe && fd !== null && child.stderr) {
    // stderr flows to the log at its own pace, whoever else reads it ('data' or pipe()).
    const log = createWriteStream('', { fd, flags: 'a' });
    child.stderr.on('data', (d: Buffer) => log.write(d));
    child.stderr.once('close', () => log.end());
  }
  return {
    pid: child.pid ?? null,
    stdio: pipe && child.stdin && child.stdout && child.stderr ? { stdin: child.stdin, stdout: child.stdout, stderr: child.stderr } : null,
    onEnd: (fn) => {
      child.once('error', (e) => fn(null, null, `could not start: ${e.message}`));
      child.once('exit', (code, signal) => fn(code, signal, null));
    },
  };
}
