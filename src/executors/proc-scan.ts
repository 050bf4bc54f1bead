import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';

/**
 * The two /proc facts the tree fallback needs beyond the probe's tree walk: a process's start
 * time (to tell a remembered pid from a reused one) and which processes carry an attempt's
 * environment markers (to find a reparented escapee, which is no longer anyone's descendant).
 */

/** Field 22 of /proc/<pid>/stat (clock ticks after boot), or null when the process is gone. */
export function startTimeOf(pid: number): number | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name may hold spaces and ')': fields after the last ')' start at field 3.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  if (f[0] === 'Z' || f[0] === 'X') return null; // dead: nothing to signal
  const t = Number(f[19]);
  return Number.isFinite(t) ? t : null;
}

// One buffer for every environ read: scans are synchronous and never overlap.
const buf = Buffer.allocUnsafe(64 * 1024);

/**
 * Pids of live processes whose initial environment holds every one of `markers` (each a full
 * `NAME=value`). A full /proc scan (a few ms for a few hundred processes): used when an attempt
 * ends or is killed, never per sample. A process that cleared its environment before exec is not
 * found here; the cgroup, where there is one, is the boundary that does not depend on it.
 */
export function pidsWithEnv(markers: readonly string[], exclude: number = process.pid): number[] {
  const needles = markers.map((m) => Buffer.from(`\0${m}\0`));
  const first = markers.map((m) => Buffer.from(`${m}\0`));
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
    const pid = Number(e);
    if (pid === exclude) continue;
    let text: Buffer;
    try {
      const fd = openSync(`/proc/${e}/environ`, 'r');
      try {
        const n = readSync(fd, buf, 0, buf.length, 0);
        // A zombie's environ reads empty: it holds nothing and is not ours to signal.
        if (n === 0) continue;
        text = n === buf.length ? readFileSync(`/proc/${e}/environ`) : buf.subarray(0, n);
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
