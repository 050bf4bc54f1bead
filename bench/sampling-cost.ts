/**
 * What one governor sample costs: the RSS of 8 real agent trees (sh → node → node child), the
 * machine's memory (cgroup or meminfo) and PSI, measured in CPU time (process.cpuUsage) over many
 * samples, and what that is as a share of one core at the 100 ms (near limits) and 200 ms
 * intervals. Goal: < 1 % of a core.
 * Peers in the same run: the same walk re-opening every file each time (readFileSync, no kept
 * descriptors), and `ps -e -o pid=,ppid=,rss=` spawned per sample (what ps-based tools do).
 *
 * Run: npx tsc -p . && node dist/bench/sampling-cost.js [--samples=2000]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LinuxProbe } from '../src/system/probe.js';
import { parseProcStat } from '../src/system/process-tree.js';
import { argNumber, environment, fmtRatio, isMain, printTable, REPO_ROOT, sleep, writeResult, HOG } from './lib.js';


/** CPU microseconds (user + system) spent by `fn` run `n` times, per run. */
function cpuPer(n: number, fn: () => void): number {
  const before = process.cpuUsage();
  for (let i = 0; i < n; i++) fn();
  const d = process.cpuUsage(before);
  return (d.user + d.system) / n;
}

/** The naive peer: the same tree walk, opening and reading each file every time. */
function naiveTree(root: number): number {
  let rss = 0;
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    let st;
    try {
      st = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      continue;
    }
    if (!st) continue;
    rss += st.rssPages * 4096;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ')) if (Number(c) > 0) stack.push(Number(c));
      } catch {
        /* gone */
      }
    }
  }
  readFileSync('/proc/meminfo', 'utf8');
  return rss;
}

export async function main(): Promise<void> {
  const n = argNumber('samples', 2000);
  const agents: ChildProcess[] = [];
  for (let i = 0; i < 8; i++) {
    agents.push(spawn('/bin/sh', ['-c', `${process.execPath} ${HOG} 20 60000 0 --grandchild 60000`], { detached: true, stdio: 'ignore' }));
  }
  await sleep(1500);
  const probe = new LinuxProbe();
  try {
    const guildSample = (): void => {
      for (const a of agents) probe.tree(a.pid!);
      probe.memory();
      probe.psi();
    };
    guildSample();
    const trees = agents.map((a) => probe.tree(a.pid!).pids.length);
    const guildUs = cpuPer(n, guildSample);
    const naiveUs = cpuPer(n, () => {
      for (const a of agents) naiveTree(a.pid!);
    });
    // ps runs in a child: count its CPU too (cutime + cstime of /proc/self/stat, in clock ticks).
    const psN = Math.max(20, Math.floor(n / 50));
    const children = (): number => {
      const st = readFileSync('/proc/self/stat', 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      return (Number(f[13]) + Number(f[14])) * 10_000; // ticks of 10 ms → µs
    };
    const childBefore = children();
    const psUs =
      cpuPer(psN, () => {
        spawnSync('ps', ['-e', '-o', 'pid=,ppid=,rss='], { encoding: 'utf8' });
      }) +
      (children() - childBefore) / psN;
    const share = (us: number, intervalMs: number) => `${((us / 1000 / intervalMs) * 100).toFixed(3)} %`;
    console.log(`sampling cost: ${agents.length} agent trees (${trees.join(', ')} processes each), ${n} samples`);
    printTable(
      ['sampler', 'CPU per sample', 'share of a core @100 ms', 'share of a core @200 ms', 'vs Guild'],
      [
        ['Guild (kept-open /proc fds)', `${guildUs.toFixed(0)} µs`, share(guildUs, 100), share(guildUs, 200), '1.00'],
        ['re-open every file', `${naiveUs.toFixed(0)} µs`, share(naiveUs, 100), share(naiveUs, 200), fmtRatio(naiveUs / guildUs)],
        ['spawn ps per sample (incl. ps itself)', `${psUs.toFixed(0)} µs`, share(psUs, 100), share(psUs, 200), fmtRatio(psUs / guildUs)],
      ],
    );
    const goal = (guildUs / 1000 / 100) * 100 < 1;
    console.log(`Guild at 100 ms: ${share(guildUs, 100)} of a core (goal < 1 %: ${goal ? 'met' : 'MISSED'})`);
    writeResult('sampling-cost', { benchmark: 'sampling-cost', environment: environment(), agents: agents.length, processesPerTree: trees, guildUs, naiveUs, psUs });
  } finally {
    probe.close();
    for (const a of agents) {
      try {
        process.kill(-a.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

if (isMain(import.meta.url)) await main();
