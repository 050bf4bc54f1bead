import { readFileSync } from 'node:fs';

/**
 * A process named so that a reused pid can never pass for it: its pid and its start time (field
 * 22 of /proc/<pid>/stat, clock ticks since boot). The kernel never gives one pid to two
 * processes that started at the same tick, so (pid, start time) names one process for the life
 * of the boot.
 */
export interface ProcessIdentity {
  pid: number;
  startTime: number;
}

/** What /proc/<pid>/stat says about a process, or null when there is no such process. */
export interface ProcStat {
  /** One letter: R, S, D, Z (zombie), T, t, X (dead)… */
  state: string;
  /** Process group id (field 5). */
  pgid: number;
  /** Field 22, clock ticks since boot. */
  startTime: number;
}

/**
 * Parses /proc/<pid>/stat. The command name (field 2) may hold spaces and parentheses, so the
 * fields are counted from the last ')'.
 */
export function readProcStat(pid: number, procRoot = '/proc'): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`${procRoot}/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  // After ") " come fields 3, 4, 5… : index 0 is field 3 (state), index 19 is field 22.
  const f = text.slice(close + 2).split(' ');
  const state = f[0];
  const pgid = Number(f[2]);
  const startTime = Number(f[19]);
  if (state === undefined || !Number.isFinite(pgid) || !Number.isFinite(startTime)) return null;
  return { state, pgid, startTime };
}

/** A process's start time (field 22), or null when it is gone. */
export function readStartTime(pid: number, procRoot = '/proc'): number | null {
  return readProcStat(pid, procRoot)?.startTime ?? null;
}

/** A live process's start time, or null when it is gone or a zombie (nothing there to signal). */
export function liveStartTime(pid: number, procRoot = '/proc'): number | null {
  const st = readProcStat(pid, procRoot);
  return st === null || st.state === 'Z' || st.state === 'X' ? null : st.startTime;
}

/** This process, as a lease records its owner. */
export function selfIdentity(procRoot = '/proc'): ProcessIdentity {
  const startTime = readStartTime(process.pid, procRoot);
  // /proc is what every lease check reads; without it no owner could ever be judged dead.
  if (startTime === null) throw new Error(`cannot read ${procRoot}/${process.pid}/stat`);
  return { pid: process.pid, startTime };
}

/**
 * True while the very process named is running: same pid, same start time, and not a zombie (a
 * killed process whose parent has not reaped it yet is dead for every purpose here).
 */
export function identityAlive(id: ProcessIdentity, procRoot = '/proc'): boolean {
  const st = readProcStat(id.pid, procRoot);
  return st !== null && st.startTime === id.startTime && st.state !== 'Z' && st.state !== 'X';
}
