import { readdirSync } from 'node:fs';
import type { ProcReader } from './proc-reader.js';

/** One process as /proc/<pid>/stat describes it. */
export interface ProcStat {
  pid: number;
  ppid: number;
  pgrp: number;
  state: string;
  /** Resident pages. */
  rssPages: number;
  /** utime + stime in clock ticks. */
  cpuTicks: number;
}

/** Parses /proc/<pid>/stat. The command name may hold spaces and parentheses: split after the last ')'. */
export function parseProcStat(text: string): ProcStat | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const pid = Number(text.slice(0, text.indexOf(' ')));
  // Fields after the name start at field 3 (state); index 0 here is field 3.
  const f = text.slice(close + 2).split(' ');
  return {
    pid,
    state: f[0] ?? '?',
    ppid: Number(f[1]),
    pgrp: Number(f[2]),
    cpuTicks: Number(f[11]) + Number(f[12]),
    rssPages: Number(f[21]),
  };
}

/** The measured state of one process tree at one instant. */
export interface TreeSample {
  /** Sum of resident memory of every live process in the tree, in bytes. */
  rssBytes: number;
  /** utime + stime of the live processes, in clock ticks. */
  cpuTicks: number;
  pids: number[];
}

/**
 * Walks a process tree through /proc/<pid>/task/<tid>/children (every thread's list: a child
 * belongs to the thread that forked it) and sums RSS from /proc/<pid>/stat.
 * Zombies are skipped: their memory is already freed.
 */
export function sampleTree(rootPid: number, reader: ProcReader, pageSize: number): TreeSample {
  const sample: TreeSample = { rssBytes: 0, cpuTicks: 0, pids: [] };
  const stack = [rootPid];
  const seen = new Set<number>();
  while (stack.length > 0) {
    const pid = stack.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    const text = reader.read(`/proc/${pid}/stat`);
    if (text === null) continue;
    const st = parseProcStat(text);
    if (!st || st.state === 'Z' || st.state === 'X') continue;
    sample.rssBytes += st.rssPages * pageSize;
    sample.cpuTicks += st.cpuTicks;
    sample.pids.push(pid);
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      const children = reader.read(`/proc/${pid}/task/${tid}/children`);
      if (!children) continue;
      for (const c of children.split(' ')) {
        const n = Number(c);
        if (n > 0) stack.push(n);
      }
    }
  }
  return sample;
}

/** Every pid whose process group is `pgid` (a full /proc scan; used for cleanup checks, not sampling). */
export function pidsInGroup(pgid: number, reader: ProcReader): number[] {
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    const c = e.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const st = parseProcStat(reader.readOnce(`/proc/${e}/stat`) ?? '');
    if (st && st.pgrp === pgid && st.state !== 'Z') out.push(st.pid);
  }
  return out;
}
