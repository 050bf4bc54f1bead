/**
 * Everything live that Guild started, so that Guild's own exit — normal, error or signal — can
 * kill it all. The 'exit' hook is synchronous by necessity: it SIGKILLs each process group and
 * each container (its cgroup's members, or the pids its tree walk knows, escapees included); no
 * time to wait for a graceful TERM there; orderly shutdown happens before, in the run loop.
 */
const live = new Set<number>();
/** What the exit hook can kill synchronously beyond a process group. */
export interface Sweepable {
  killNow(): void;
}
const containers = new Set<Sweepable>();
let hooked = false;

function killAllNow(): void {
  for (const pgid of live) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  live.clear();
  for (const c of containers) {
    try {
      c.killNow();
    } catch {
      /* the exit hook must reach every other one */
    }
  }
  containers.clear();
}

function hook(): void {
  if (!hooked) {
    hooked = true;
    process.on('exit', killAllNow);
  }
}

export function trackGroup(pgid: number): void {
  hook();
  live.add(pgid);
}

export function untrackGroup(pgid: number): void {
  live.delete(pgid);
}

/** Registers a container for the exit hook (until untracked once it is empty). */
export function trackContainer(c: Sweepable): void {
  hook();
  containers.add(c);
}

export function untrackContainer(c: Sweepable): void {
  containers.delete(c);
}

/** Process groups Guild has started that have not been confirmed gone. */
export function liveGroups(): number[] {
  return [...live];
}

/** True while any process of the group exists (zombies included). */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Sends a signal to a whole group; false when the group is gone. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}
