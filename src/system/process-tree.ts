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
    rssPages: Number(f[21]),
  };
}

/** The measured state of one process tree at one instant. */
export interface TreeSample {
  /** Sum of resident memory of every live process in the tree, in bytes. */
  rssBytes: number;
  pids: number[];
}

/** Thread lists are re-read at most this often: threads come and go far less often than we sample. */
const THREADS_TTL_MS = 1000;

/** Each process's thread ids, kept for a second; owned by the probe that samples. */
export class ThreadCache {
  readonly #lists = new Map<number, { at: number; tids: string[] }>();

  of(pid: number, now: number): string[] | null {
    const hit = this.#lists.get(pid);
    if (hit && now - hit.at < THREADS_TTL_MS) return hit.tids;
    try {
      const tids = readdirSync(`/proc/${pid}/task`);
      this.#lists.set(pid, { at: now, tids });
      return tids;
    } catch {
      this.#lists.delete(pid);
      return null;
    }
  }

  /** A process ended. */
  forget(pid: number): void {
    this.#lists.delete(pid);
  }
}

/**
 * Walks a process tree through /proc/<pid>/task/<tid>/children (every thread's list: a child
 * belongs to the thread that forked it) and sums resident pages from /proc/<pid>/statm, which
 * the kernel produces more cheaply than /proc/<pid>/stat. A zombie reads as 0 pages.
 */
export function sampleTree(rootPid: number, reader: ProcReader, pageSize: number, threads: ThreadCache): TreeSample {
  const sample: TreeSample = { rssBytes: 0, pids: [] };
  const stack = [rootPid];
  const seen = new Set<number>();
  const now = performance.now();
  while (stack.length > 0) {
    const pid = stack.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    const statm = reader.read(`/proc/${pid}/statm`);
    if (statm === null) continue;
    const sp = statm.indexOf(' ');
    const pages = Number(statm.slice(sp + 1, statm.indexOf(' ', sp + 1)));
    if (!(pages > 0)) continue; // zombie or gone
    sample.rssBytes += pages * pageSize;
    sample.pids.push(pid);
    const tids = threads.of(pid, now);
    if (!tids) continue;
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
