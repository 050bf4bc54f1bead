import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { PROC_READ_BUFFER } from './proc-reader.js';

/**
 * Which processes carry a run's or an attempt's environment markers (`GUILD_RUN_ID`,
 * `GUILD_TASK_ID`): a reparented escapee is no longer anyone's descendant, but it keeps the
 * environment it was started with. The tree fallback and the ending of a dead run's leftovers both
 * look here.
 */

// The shared /proc read buffer: scans are synchronous and never overlap a read.
const buf = PROC_READ_BUFFER;

/**
 * Pids of live processes whose initial environment holds every one of `markers` (each a full
 * `NAME=value`). A full /proc scan (a few ms for a few hundred processes): used when an attempt
 * ends or is killed, never per sample. A process that cleared its environment before exec is not
 * found here; the cgroup, where there is one, is the boundary that does not depend on it.
 */
export function pidsWithEnv(markers: readonly string[], exclude: number = process.pid, procRoot = '/proc'): number[] {
  const needles = markers.map((m) => Buffer.from(`\0${m}\0`));
  const first = markers.map((m) => Buffer.from(`${m}\0`));
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync(procRoot);
  } catch {
    return out;
  }
  for (const e of entries) {
    const c = e.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const pid = Number(e);
    if (pid === exclude) continue;
    let text: Buffer;
    try {
      const fd = openSync(`${procRoot}/${e}/environ`, 'r');
      try {
        const n = readSync(fd, buf, 0, buf.length, 0);
        // A zombie's environ reads empty: it holds nothing and is not ours to signal.
        if (n === 0) continue;
        text = n === buf.length ? readFileSync(`${procRoot}/${e}/environ`) : buf.subarray(0, n);
      } finally {
        closeSync(fd);
      }
    } catch {
      continue;
    }
    if (markers.every((_, i) => text.indexOf(needles[i]!) >= 0 || text.subarray(0, first[i]!.length).equals(first[i]!))) out.push(pid);
  }
  return out;
}
