/**
 * Every live process group Guild started, so that Guild's own exit — normal, error or signal —
 * can kill them all. The 'exit' hook is synchronous by necessity: it sends SIGKILL to each group
 * (no time to wait for a graceful TERM there); orderly shutdown happens before, in the run loop.
 */
const live = new Set<number>();
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
}

export function trackGroup(pgid: number): void {
  if (!hooked) {
    hooked = true;
    process.on('exit', killAllNow);
  }
  live.add(pgid);
}

export function untrackGroup(pgid: number): void {
  live.delete(pgid);
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
