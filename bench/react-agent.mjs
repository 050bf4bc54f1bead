// A trial agent for bench/reaction: fills up to <below> MB under <line> MB *as Guild measures this
// task* (its cgroup's usage − inactive_file where it runs in a task cgroup of its own, else the
// RSS of its process tree: this process and the `sh` above it), waits <wait> ms, then appends
// "<task> <epoch ms>" to $REACT_LOG and at once allocates <step> MB, crossing the line, and waits
// to be stopped. Starting just under the line, by the measure Guild uses, keeps the agent's own
// page faults (slow on some machines) out of the figure, whichever way Guild measures; the time
// is logged before the jump, so a reaction is never measured short.
//   node react-agent.mjs <line-mb> <below-mb> <wait-ms> <step-mb>
import { appendFileSync, readFileSync } from 'node:fs';

const MB = 1024 * 1024;
const [line, below, wait, step] = process.argv.slice(2).map(Number);
const keep = [];
const touch = (mb) => {
  const b = Buffer.allocUnsafe(mb * MB);
  b.fill(0x5a); // touched, so it is resident and charged
  keep.push(b);
};

const read = (p) => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return null;
  }
};
/** This task's cgroup v1 memory directory, when Guild put it in one of its own. */
const cgroupDir = (() => {
  const m = /^\d+:[^:]*\bmemory\b[^:]*:(.*)$/m.exec(read('/proc/self/cgroup') ?? '');
  return m && /\/guild-[^/]*$/.test(m[1]) ? `/sys/fs/cgroup/memory${m[1]}` : null;
})();
const rssOf = (pid) => Number((read(`/proc/${pid}/statm`) ?? '0 0').split(' ')[1]) * 4096;
/** What Guild's sampler would read for this task now. */
function measured() {
  if (cgroupDir) {
    const usage = Number(read(`${cgroupDir}/memory.usage_in_bytes`));
    const inactive = Number(/^total_inactive_file (\d+)$/m.exec(read(`${cgroupDir}/memory.stat`) ?? '')?.[1] ?? 0);
    return usage - inactive;
  }
  return rssOf(process.pid) + rssOf(process.ppid);
}

while (measured() < (line - below) * MB) touch(4);
setTimeout(() => {
  appendFileSync(process.env.REACT_LOG, `${process.env.GUILD_TASK_ID} ${Date.now()}\n`);
  touch(step);
  setInterval(() => keep.length, 1 << 30);
}, wait);
