/**
 * What starting a task's process costs: Guild's posix_spawn addon (src/executors/native-spawn.ts)
 * against Node's child_process.spawn, both starting `/bin/sh -c true` with stdout and stderr to a
 * log file, in a new session (`detached`), 8 at once, as the process executor does. Each
 * measurement runs in a fresh node process whose heap holds 0 or 200 MB of live objects (a fork
 * copies page tables in proportion to what is mapped), the two sides taking turns. Reported per
 * process started: the parent's CPU (user + system, process.cpuUsage), the children's (the
 * cutime/cstime of /proc/self/stat: both sides reap their own children), and the wall time.
 *
 * Run: npx tsc -p . && node dist/bench/spawn-cost.js [--spawns=400] [--rounds=3]
 * Writes bench/results/spawn-cost.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeSpawner } from '../src/executors/native-spawn.js';
import { envList } from '../src/system/native.js';
import { argNumber, environment, fmtRatio, isMain, median, printTable, writeResult } from './lib.js';

const AT_ONCE = 8;
const TICK_MS = 10; // USER_HZ 100

interface Sample {
  parentMs: number;
  childrenMs: number;
  wallMs: number;
}

/** Children's CPU so far (reaped ones), ms. */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) * TICK_MS; // fields 16 and 17 (cutime, cstime)
}

/** One measurement, in this (fresh) process: `n` spawns through `side`, 8 at once. */
async function measure(side: 'native' | 'node', n: number, heapMb: number): Promise<Sample> {
  const ballast: string[][] = [];
  for (let i = 0; i < heapMb; i++) ballast.push(Array.from({ length: 8 }, (_, j) => `${i}:${j}:`.padEnd(1024 * 64, 'x')));
  const dir = mkdtempSync(join(tmpdir(), 'guild-spawn-cost-'));
  const fd = openSync(join(dir, 'log'), 'a');
  const native = nativeSpawner();
  if (side === 'native' && native === null) throw new Error('the native spawner is not built (npm install builds it)');
  const env = { ...process.env };
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      if (side === 'native') {
        native!.spawn('/bin/sh', ['/bin/sh', '-c', 'true'], envList(env), dir, fd, fd, (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))), []);
      } else {
        const c = spawn('/bin/sh', ['-c', 'true'], { cwd: dir, env, detached: true, stdio: ['ignore', fd, fd] });
        c.once('error', reject);
        c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
      }
    });
  await one(); // warm
  const c0 = process.cpuUsage();
  const k0 = childrenCpuMs();
  const t0 = performance.now();
  let left = n;
  await Promise.all(
    Array.from({ length: AT_ONCE }, async () => {
      while (left-- > 0) await one();
    }),
  );
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
  if (ballast.length !== heapMb) throw new Error('ballast');
  return { parentMs: (c.user + c.system) / 1000 / n, childrenMs: (childrenCpuMs() - k0) / n, wallMs: wall / n };
}

export async function main(): Promise<void> {
  const side = process.argv.find((a) => a.startsWith('--side='))?.slice(7) as 'native' | 'node' | undefined;
  const n = argNumber('spawns', 400);
  if (side) {
    process.stdout.write(`${JSON.stringify(await measure(side, n, argNumber('heap', 0)))}\n`);
    return;
  }
  const rounds = argNumber('rounds', 3);
  if (nativeSpawner() === null) {
    console.log('spawn-cost: the native spawner is not built here (not Linux, or npm install could not compile it); nothing to compare');
    writeResult('spawn-cost', { environment: environment(), skipped: 'native spawner not built' });
    return;
  }
  console.log(`spawn-cost: ${n} × /bin/sh -c true, ${AT_ONCE} at once, stdout/stderr to a log, new session; Guild's posix_spawn vs Node's spawn; ${rounds} round(s), each side in a fresh node`);
  const rows: string[][] = [];
  const results: Record<string, unknown>[] = [];
  for (const heap of [0, 200]) {
    const got: Record<'native' | 'node', Sample[]> = { native: [], node: [] };
    for (let r = 0; r < rounds; r++) {
      for (const s of (r % 2 === 0 ? ['native', 'node'] : ['node', 'native']) as ('native' | 'node')[]) {
        const out = spawnSync(process.execPath, [fileURLToPath(import.meta.url), `--side=${s}`, `--spawns=${n}`, `--heap=${heap}`], { encoding: 'utf8' });
        if (out.status !== 0) throw new Error(`spawn-cost --side=${s}: ${out.stderr}`);
        got[s].push(JSON.parse(out.stdout) as Sample);
      }
    }
    const med = (s: 'native' | 'node', k: keyof Sample): number => median(got[s].map((x) => x[k]));
    const row = { heapMb: heap, native: { parentMs: med('native', 'parentMs'), childrenMs: med('native', 'childrenMs'), wallMs: med('native', 'wallMs') }, node: { parentMs: med('node', 'parentMs'), childrenMs: med('node', 'childrenMs'), wallMs: med('node', 'wallMs') } };
    results.push({ ...row, rounds: got });
    rows.push([
      `${heap} MB`,
      `${row.native.parentMs.toFixed(2)} / ${row.node.parentMs.toFixed(2)} ms`,
      fmtRatio(row.native.parentMs / row.node.parentMs),
      `${row.native.childrenMs.toFixed(2)} / ${row.node.childrenMs.toFixed(2)} ms`,
      `${row.native.wallMs.toFixed(2)} / ${row.node.wallMs.toFixed(2)} ms`,
      fmtRatio(row.native.wallMs / row.node.wallMs),
    ]);
  }
  console.log('');
  printTable(['parent heap', 'parent CPU Guild / Node', 'ratio', 'children CPU Guild / Node', 'wall per task Guild / Node', 'ratio'], rows);
  console.log('(medians; CPU and wall per process started; children = the started processes\' own CPU, reaped)');
  const file = writeResult('spawn-cost', { environment: environment(), spawns: n, atOnce: AT_ONCE, results });
  console.log(`wrote ${file}`);
}

if (isMain(import.meta.url)) await main();
