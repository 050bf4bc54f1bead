// Agent simulator for bench/memory-bound.ts (like test/fixtures/hog.mjs, but with a fixed lifetime):
// allocates and touches <mb> MB, then mostly waits, so that the process lives <total-ms> ms from
// its own start (allocation time included).
//   node bench/agent-sim.mjs <mb> <total-ms>
const mb = Number(process.argv[2] ?? '100');
const totalMs = Number(process.argv[3] ?? '1000');

const chunks = [];
const total = mb * 1024 * 1024;
const CHUNK = 8 * 1024 * 1024;
// Touch every page: untouched pages never show in RSS.
for (let done = 0; done < total; done += CHUNK) {
  const b = Buffer.allocUnsafe(Math.min(CHUNK, total - done));
  b.fill(0x5a);
  chunks.push(b);
}
// performance.now() counts from this process's start.
setTimeout(() => {
  if (chunks.length < 0) console.log('unreachable'); // keep the chunks alive until exit
  process.exit(0);
}, Math.max(0, totalMs - performance.now()));
