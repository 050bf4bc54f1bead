import { constants } from 'node:os';
import { nativeAddon } from '../system/native.js';

/**
 * Guild's own process start (native/spawn.c): posix_spawn, which glibc implements with
 * clone(CLONE_VM | CLONE_VFORK), instead of Node's child_process.spawn, which forks. A fork of a
 * Node process copies its page tables and marks its memory copy-on-write; V8 then faults on the
 * pages it writes next, and the child tears the copy down at exec. On the 2-core machine this was
 * measured on, one `/bin/sh -c true` cost the parent 5.4 ms of CPU through Node's spawn and
 * 0.7 ms through this, 7.6 ms against 3.7 ms of wall time per task at 8 at once
 * (bench/spawn-cost.ts). A worker or a run starting hundreds of short tasks spent most of its CPU
 * in fork. It also joins the task's cgroups in the child before exec, which otherwise takes a
 * shell that joins and then execs the task: one more exec per task, as much CPU again.
 *
 * Used for attempts whose output goes to a log file (the process executor's 'log' stdio); pipes
 * (MCP servers, 'pipe' stdio) keep Node's spawn. Where the addon is not built (not Linux, no
 * compiler at install) or `GUILD_SPAWN=node` is set, everything uses Node's spawn.
 */
export interface NativeSpawner {
  /**
   * Starts `file` with `argv` (argv[0] included) and `env` ("K=V" entries) in `cwd`, in a new
   * session, stdin /dev/null, stdout and stderr the given descriptors, every signal at its default
   * disposition, and a member of the cgroups whose `cgroup.procs` files `procs` names before it
   * execs (one it cannot join: "guild: cannot join the cgroup (<file>)" on its stderr, exit 125).
   * Returns the pid; throws (with `code`, an errno name) when it could not start. `onExit` is
   * called once the child has been reaped: (exit code, null) or (null, signal name).
   */
  spawn(file: string, argv: readonly string[], env: readonly string[], cwd: string, stdoutFd: number, stderrFd: number, onExit: (code: number | null, signal: string | null) => void, procs: readonly string[]): number;
}

const signalNames = new Map<number, string>(Object.entries(constants.signals).map(([name, n]) => [n, name]));

let spawner: NativeSpawner | null | undefined;

/** The native spawner, or null where Node's spawn is used (see above). Loaded once. */
export function nativeSpawner(): NativeSpawner | null {
  if (spawner !== undefined) return spawner;
  spawner = null;
  const addon = process.env['GUILD_SPAWN'] === 'node' ? null : nativeAddon();
  if (addon === null) return spawner; // not built here, or turned off: Node's spawn
  spawner = {
    spawn: (file, argv, env, cwd, stdoutFd, stderrFd, onExit, procs) =>
      addon.spawn(file, argv, env, cwd, stdoutFd, stderrFd, (code, signal) => onExit(code, signal === null ? null : (signalNames.get(signal) ?? `signal ${signal}`)), procs),
  };
  return spawner;
}
