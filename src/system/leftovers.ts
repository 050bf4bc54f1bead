import { existsSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readProcStat } from './process-identity.js';
import { pidsWithEnv } from './proc-scan.js';

/**
 * Ending what a dead Guild left behind: every process of a crashed run, found three ways, because
 * each alone misses some:
 * - the cgroup dirs its attempts ran in: a task that changed its group or session, or cleared its
 *   environment, is still inside;
 * - the leaders (pid + start time) of attempts that ran without a cgroup: their process groups;
 * - `/proc/<pid>/environ` holding `GUILD_RUN_ID=<run id>`: reparented processes that left their
 *   task's group and had no cgroup (every task inherits the variable from the run).
 * Nothing is signalled on a guess: a leader only when its start time still matches (a reused pid
 * is someone else), an environ match only for the exact run id.
 */

/** Where one attempt ran, as its lease recorded it (the `ExecLease` shape of executors/executor.ts). */
export interface LeftoverLease {
  /** Cgroup dirs the attempt ran in (one per hierarchy); empty when none. */
  readonly cgroups: readonly string[];
  /** The attempt's leader and its start time (field 22 of /proc/<pid>/stat); null for functions. */
  readonly pid: number | null;
  readonly startTime: number | null;
}

/** The file operations on cgroup dirs; injectable so unit tests run against a fake cgroupfs. */
export interface CgroupFiles {
  /** A file's text, or null when it cannot be read. */
  read(path: string): string | null;
  /** Writes a control file; false when it cannot. */
  write(path: string, text: string): boolean;
  exists(path: string): boolean;
  /** Child cgroups (directories) of a dir. */
  subdirs(dir: string): string[];
  /** Removes an empty cgroup; false while it still holds processes (EBUSY) or is gone. */
  rmdir(dir: string): boolean;
}

export interface LeftoverOptions {
  /** @default '/proc' */
  procRoot?: string;
  /** Sends a signal (a negative pid: a process group); false when nothing received it. @default process.kill */
  kill?: (pid: number, signal: NodeJS.Signals) => boolean;
  /** @default node:fs on the real cgroupfs */
  cgroupFiles?: CgroupFiles;
  /** Never signalled, whatever its environment says. @default process.pid */
  selfPid?: number;
  /** @default a real timer */
  sleep?: (ms: number) => Promise<void>;
  /**
   * Rounds of kill-and-look, each followed by a pause of `pollMs`: bounded, because a process in
   * uninterruptible sleep (D) cannot be made to die on time; it is reported as a survivor. @default 40
   */
  rounds?: number;
  /** @default 25 */
  pollMs?: number;
}

/** What `endLeftovers` did. */
export interface LeftoversEnded {
  /** Distinct pids sent SIGKILL (from cgroups, leaders' groups and environ), ascending. */
  killed: number[];
  /** Process groups of matching leaders that were killed. */
  groups: number[];
  /** Cgroup dirs emptied and removed (children before parents). */
  cgroupsRemoved: string[];
  /** Recorded cgroup dirs that could not be emptied or removed. */
  cgroupsLeft: string[];
  /** Pids still alive after every round (uninterruptible sleep, or not ours to signal). */
  survivors: number[];
}

const defaultKill = (pid: number, signal: NodeJS.Signals): boolean => {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
};

/** node:fs on a real cgroupfs: control files read and written whole; rmdir of a populated cgroup fails with EBUSY. */
export const realCgroupFiles: CgroupFiles = {
  read: (p) => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return null;
    }
  },
  write: (p, text) => {
    try {
      writeFileSync(p, text);
      return true;
    } catch {
      return false;
    }
  },
  exists: (p) => existsSync(p),
  subdirs: (dir) => {
    try {
      return readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => join(dir, e.name));
    } catch {
      return [];
    }
  },
  rmdir: (dir) => {
    try {
      rmdirSync(dir);
      return true;
    } catch {
      return false;
    }
  },
};

const realSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Ends every process of the dead run `runId` that its attempts' leases or its environment
 * variable lead to, and removes its cgroups. Safe to repeat: a second call finds nothing.
 *
 * Order matters: cgroups first (on v1 frozen before the kill, so nothing inside can fork past it),
 * then everything else is stopped (SIGSTOP) until a fresh look finds nothing new — a stopped
 * process cannot fork — and only then killed, so no child is born between the look and the kill.
 */
export async function endLeftovers(runId: string, leases: readonly LeftoverLease[], options: LeftoverOptions = {}): Promise<LeftoversEnded> {
  const o = {
    procRoot: options.procRoot ?? '/proc',
    kill: options.kill ?? defaultKill,
    fs: options.cgroupFiles ?? realCgroupFiles,
    self: options.selfPid ?? process.pid,
    sleep: options.sleep ?? realSleep,
    rounds: options.rounds ?? 40,
    pollMs: options.pollMs ?? 25,
  };
  const killed = new Set<number>();
  const out: LeftoversEnded = { killed: [], groups: [], cgroupsRemoved: [], cgroupsLeft: [], survivors: [] };

  // 1. Cgroups: freezer dirs first, since freezing one stops the same processes in every hierarchy.
  const dirs = [...new Set(leases.flatMap((l) => l.cgroups))].filter((d) => o.fs.exists(d));
  dirs.sort((a, b) => Number(o.fs.exists(join(b, 'freezer.state'))) - Number(o.fs.exists(join(a, 'freezer.state'))));
  for (const dir of dirs) {
    if (!(await emptyTree(dir, o, killed, out.cgroupsRemoved))) out.cgroupsLeft.push(dir);
  }

  // 2. Leaders whose start time still matches: their process groups (a task runs detached, so
  //    its leader's pid is its group's id). Stopped now, killed with the rest below.
  const groups: number[] = [];
  for (const l of leases) {
    if (l.pid === null || l.startTime === null || l.pid === o.self) continue;
    const st = readProcStat(l.pid, o.procRoot);
    if (st === null || st.startTime !== l.startTime || st.state === 'Z') continue;
    if (st.pgid === l.pid) {
      o.kill(-l.pid, 'SIGSTOP');
      groups.push(l.pid);
    }
    o.kill(l.pid, 'SIGSTOP');
    killed.add(l.pid);
  }

  // 3. The run's environment variable, until a look finds nothing new (everything found is stopped).
  const marker = `GUILD_RUN_ID=${runId}`;
  for (let round = 0; round < o.rounds; round++) {
    let fresh = 0;
    for (const pid of pidsWithEnv([marker], o.self, o.procRoot)) {
      if (killed.has(pid)) continue;
      o.kill(pid, 'SIGSTOP');
      killed.add(pid);
      fresh++;
    }
    if (fresh === 0) break;
  }

  for (const g of groups) o.kill(-g, 'SIGKILL');
  for (const pid of killed) o.kill(pid, 'SIGKILL');
  out.groups = groups;

  // 4. Wait (bounded) for the kernel to end them; zombies are dead enough.
  let left = [...killed];
  for (let round = 0; round < o.rounds && left.length > 0; round++) {
    left = left.filter((pid) => {
      const st = readProcStat(pid, o.procRoot);
      return st !== null && st.state !== 'Z' && st.state !== 'X';
    });
    if (left.length > 0) await o.sleep(o.pollMs);
  }
  out.killed = [...killed].sort((a, b) => a - b);
  out.survivors = left.sort((a, b) => a - b);
  return out;
}

/** A one-line account for the store and the report: what was found and ended. */
export function describeEnded(e: LeftoversEnded): string {
  const parts = [`ended ${e.killed.length} process${e.killed.length === 1 ? '' : 'es'}`];
  if (e.cgroupsRemoved.length > 0) parts.push(`removed ${e.cgroupsRemoved.length} cgroup${e.cgroupsRemoved.length === 1 ? '' : 's'}`);
  if (e.cgroupsLeft.length > 0) parts.push(`could not remove ${e.cgroupsLeft.join(', ')}`);
  if (e.survivors.length > 0) parts.push(`still alive: ${e.survivors.join(', ')}`);
  return parts.join('; ');
}

interface TreeOptions {
  fs: CgroupFiles;
  kill: (pid: number, signal: NodeJS.Signals) => boolean;
  self: number;
  sleep: (ms: number) => Promise<void>;
  rounds: number;
  pollMs: number;
}

/** Empties a cgroup and its children (children first) and removes them; true when all went. */
async function emptyTree(dir: string, o: TreeOptions, killed: Set<number>, removed: string[]): Promise<boolean> {
  let ok = true;
  for (const child of o.fs.subdirs(dir)) ok = (await emptyTree(child, o, killed, removed)) && ok;
  const procs = join(dir, 'cgroup.procs');
  const pidsIn = (): number[] =>
    (o.fs.read(procs) ?? '')
      .split('\n')
      .map(Number)
      .filter((p) => Number.isInteger(p) && p > 0 && p !== o.self);
  const freezer = join(dir, 'freezer.state');
  const frozen = o.fs.exists(freezer);
  const cgroupKill = !frozen && o.fs.exists(join(dir, 'cgroup.kill'));
  for (let round = 0; round < o.rounds; round++) {
    if (!o.fs.exists(dir)) return ok; // removed by someone else meanwhile
    if (cgroupKill) {
      // cgroup v2 (5.14+): the kernel kills every process inside, forks included, in one write.
      for (const p of pidsIn()) killed.add(p);
      o.fs.write(join(dir, 'cgroup.kill'), '1');
    } else if (frozen) {
      // v1: freeze, kill what is inside, thaw (a frozen task only dies once thawed), repeat.
      o.fs.write(freezer, 'FROZEN');
      for (let i = 0; i < o.rounds && (o.fs.read(freezer) ?? '').trim() === 'FREEZING'; i++) await o.sleep(o.pollMs);
      for (const p of pidsIn()) {
        killed.add(p);
        o.kill(p, 'SIGKILL');
      }
      o.fs.write(freezer, 'THAWED');
    } else {
      // No way to stop forks: kill and look again until a look finds no one.
      for (const p of pidsIn()) {
        killed.add(p);
        o.kill(p, 'SIGKILL');
      }
    }
    if (pidsIn().length === 0 && o.fs.rmdir(dir)) {
      removed.push(dir);
      return ok;
    }
    await o.sleep(o.pollMs);
  }
  return false;
}
