import { readdirSync, readFileSync } from 'node:fs';
import { TICKS_PER_SECOND } from './machine-load.js';

/**
 * CPU time (user + system) of this process, of the children it has reaped, and of a live process
 * tree, from /proc/<pid>/stat. Together they give the CPU a run's agents used: what Guild reaped
 * since the run began (a task's root is Guild's child; when it ends and Guild reaps it, the kernel
 * adds its time, and what it reaped from its own children, to Guild's `cutime`/`cstime`) plus what
 * the trees still running have used so far. A process that outlives its tree's root and is
 * reparented outside it is not counted once it ends (a lower bound, never an invention).
 *
 * Read when KPIs are evaluated (every 2 s at most, and at the end), not on every sample: a tree walk
 * costs about 0.1 ms per process.
 */
export interface CpuTimes {
  /** This process: its own CPU seconds, and the seconds of the children it reaped (and theirs); null when unreadable. */
  self(): { ownSeconds: number; reapedSeconds: number } | null;
  /** CPU seconds of the live tree under `rootPid` (each process's own plus what it reaped); 0 when it is gone. */
  tree(rootPid: number): number;
}

/** The fields of /proc/<pid>/stat a CPU reading needs (ticks). */
interface StatTimes {
  utime: number;
  stime: number;
  cutime: number;
  cstime: number;
}

/** Parses utime, stime, cutime, cstime (fields 14–17) after the command name, which may hold spaces and parentheses. */
export function parseStatTimes(text: string): StatTimes | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  // Index 0 is field 3 (state).
  const f = text.slice(close + 2).split(' ');
  const t = { utime: Number(f[11]), stime: Number(f[12]), cutime: Number(f[13]), cstime: Number(f[14]) };
  return Number.isFinite(t.utime + t.stime + t.cutime + t.cstime) ? t : null;
}

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** The Linux reader; `procRoot` for tests with a fake /proc. Never throws. */
export function createCpuTimes(procRoot = '/proc'): CpuTimes {
  return {
    self() {
      const t = parseStatTimes(read(`${procRoot}/self/stat`) ?? '');
      return t === null ? null : { ownSeconds: (t.utime + t.stime) / TICKS_PER_SECOND, reapedSeconds: (t.cutime + t.cstime) / TICKS_PER_SECOND };
    },
    tree(rootPid) {
      let ticks = 0;
      const stack = [rootPid];
      const seen = new Set<number>();
      while (stack.length > 0) {
        const pid = stack.pop()!;
        if (seen.has(pid)) continue;
        seen.add(pid);
        const t = parseStatTimes(read(`${procRoot}/${pid}/stat`) ?? '');
        if (t === null) continue; // gone: its time is in its reaper's count
        ticks += t.utime + t.stime + t.cutime + t.cstime;
        let tids: string[];
        try {
          tids = readdirSync(`${procRoot}/${pid}/task`);
        } catch {
          continue;
        }
        // Every thread's list: a child belongs to the thread that forked it.
        for (const tid of tids) {
          for (const c of (read(`${procRoot}/${pid}/task/${tid}/children`) ?? '').split(' ')) {
            const n = Number(c);
            if (n > 0) stack.push(n);
          }
        }
      }
      return ticks / TICKS_PER_SECOND;
    },
  };
}
