import { readdirSync, readFileSync } from 'node:fs';
import { parseMeminfo } from './meminfo.js';

// What the machine is doing besides Guild, read from /proc: the CPU time all processes used, the
// CPU time of one process tree, load, available memory and PSI stall totals. `guild bench`
// compares the first two over an iteration to see another process's CPU use, and marks the
// iteration disturbed when it was measured under outside pressure.

/** /proc/stat and /proc/<pid>/stat count CPU time in USER_HZ ticks, 100 per second on every Linux ABI. */
export const TICKS_PER_SECOND = 100;

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** Busy CPU ticks of the whole machine (user, nice, system, irq, softirq, steal), or null without /proc/stat. */
export function machineBusyTicks(procRoot = '/proc'): number | null {
  const line = read(`${procRoot}/stat`)?.split('\n', 1)[0];
  if (line === undefined || !line.startsWith('cpu ')) return null;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user).
  return (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
}

/** A process's ppid and its CPU ticks, own (utime + stime) plus those of the children it reaped (cutime + cstime). */
function statTicks(text: string): { ppid: number; ticks: number } | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const f = text.slice(close + 2).split(' ');
  // Index 0 is field 3 (state): ppid is field 4, utime..cstime fields 14..17.
  const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  return Number.isFinite(ticks) ? { ppid: Number(f[1]), ticks } : null;
}

/**
 * CPU ticks used by the tree under `rootPid`: every live process in it, plus what its processes
 * reaped from children that ended. A process that ended between two readings moves into its
 * reaper's count, so the difference of two readings is the tree's use in between (an orphan
 * reparented outside the tree is the exception and counts as outside).
 */
export function treeCpuTicks(rootPid: number = process.pid, procRoot = '/proc'): number {
  const procs = new Map<number, { ppid: number; ticks: number }>();
  let names: string[];
  try {
    names = readdirSync(procRoot);
  } catch {
    return 0;
  }
  for (const name of names) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const text = read(`${procRoot}/${pid}/stat`);
    const st = text === null ? null : statTicks(text);
    if (st !== null) procs.set(pid, st);
  }
  const children = new Map<number, number[]>();
  for (const [pid, p] of procs) {
    const list = children.get(p.ppid);
    if (list === undefined) children.set(p.ppid, [pid]);
    else list.push(pid);
  }
  let total = 0;
  const stack = [rootPid];
  const seen = new Set<number>();
  while (stack.length > 0) {
    const pid = stack.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    total += procs.get(pid)?.ticks ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}

/** The one-minute load average, or null. */
export function load1(procRoot = '/proc'): number | null {
  const v = Number(read(`${procRoot}/loadavg`)?.split(' ')[0]);
  return Number.isFinite(v) ? v : null;
}

/** MemAvailable of /proc/meminfo in bytes, or null. */
export function memAvailableBytes(procRoot = '/proc'): number | null {
  const text = read(`${procRoot}/meminfo`);
  return text === null ? null : parseMeminfo(text).availableBytes;
}

/** The `some` stall total (µs) of /proc/pressure/<resource>, or null where the kernel has no PSI. */
export function psiSomeTotalUs(resource: 'memory' | 'cpu', procRoot = '/proc'): number | null {
  const m = /^some .*total=(\d+)/m.exec(read(`${procRoot}/pressure/${resource}`) ?? '');
  return m ? Number(m[1]) : null;
}
