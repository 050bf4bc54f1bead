// A trial agent for bench/reaction: holds <base> MB, waits <wait> ms, then appends
// "<task> <epoch ms>" to $REACT_LOG and at once allocates <step> MB (crossing a line), and waits
// to be stopped. The time is logged before the jump, so a reaction is never measured short.
//   node react-agent.mjs <base-mb> <wait-ms> <step-mb>
import { appendFileSync } from 'node:fs';

const [base, wait, step] = process.argv.slice(2).map(Number);
const keep = [];
const touch = (mb) => {
  const b = Buffer.allocUnsafe(mb * 1024 * 1024);
  b.fill(0x5a); // touched, so RSS shows it
  keep.push(b);
};
touch(base);
setTimeout(() => {
  appendFileSync(process.env.REACT_LOG, `${process.env.GUILD_TASK_ID} ${Date.now()}\n`);
  touch(step);
  setInterval(() => keep.length, 1 << 30);
}, wait);
