/**
 * Start-up and idle footprint of the `guild` CLI.
 *   1. Cold start: wall time of `node bin/guild.js --version` (spawned N times, default 10),
 *      median and p90, against a bare `node -e 0` spawned alternately in the same run; ratio.
 *      Target: < 2 s.
 *   2. Idle RSS: Guild's own VmRSS (/proc/<pid>/status, every 100 ms) while it waits on a
 *      workflow of 3 `sleep 3` tasks, the median of samples taken while agents run, its max,
 *      and the report's guild_peak_rss_bytes; against a bare idle `node` (a 3 s timer) sampled
 *      the same way. Target: < 50 MB.
 * Targets are reported, never enforced.
 *
 * Run: npx tsc -p . && node dist/bench/startup.js [--spawns=10] [--rounds=3]
 * Writes bench/results/startup.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunReport } from '../src/workflow/report.js';
import { argNumber, environment, fmtMB, fmtRatio, GUILD_BIN, isMain, MB, median, printTable, quantile, REPO_ROOT, scanProc, vmRss, writeResult } from './lib.js';

const COLD_TARGET_MS = 2000;
const IDLE_TARGET_BYTES = 50 * MB;

function timeSpawn(args: string[]): { ms: number; stdout: string; status: number | null } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
  return { ms: performance.now() - t0, stdout: r.stdout.trim(), status: r.status };
}

interface IdleSample {
  /** Median VmRSS while at least one agent was running. */
  midRunBytes: number;
  maxBytes: number;
  samples: number;
  reportPeakBytes: number | null;
}

/** Spawns `args`, samples the process's VmRSS every 100 ms; "mid-run" = samples while it has children. */
async function sampleIdle(args: string[], cwd: string, requireChildren: boolean): Promise<IdleSample & { stdout: string }> {
  const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'ignore'] });
  const pid = child.pid!;
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const mid: number[] = [];
  let max = 0;
  let samples = 0;
  const timer = setInterval(() => {
    const rss = vmRss(pid);
    if (rss === null) return;
    samples++;
    max = Math.max(max, rss);
    const hasChildren = !requireChildren || [...scanProc().values()].some((e) => e.ppid === pid);
    if (hasChildren) mid.push(rss);
  }, 100);
  await new Promise<void>((resolve) => child.once('exit', () => resolve()));
  clearInterval(timer);
  let reportPeakBytes: number | null = null;
  if (stdout.trim().startsWith('{')) reportPeakBytes = (JSON.parse(stdout) as RunReport).guild_peak_rss_bytes;
  return { midRunBytes: median(mid), maxBytes: max, samples, reportPeakBytes, stdout };
}

const SLEEP_WORKFLOW = `name: bench-startup-idle
agents:
  sleeper: { memory: 10MB, cpu: 0.05 }
tasks:
  - { id: s1, agent: sleeper, run: "sleep 3" }
  - { id: s2, agent: sleeper, run: "sleep 3" }
  - { id: s3, agent: sleeper, run: "sleep 3" }
`;

export interface StartupResult {
  cold: { guildMs: number[]; nodeMs: number[]; guildMedianMs: number; guildP90Ms: number; nodeMedianMs: number; nodeP90Ms: number; ratio: number; overheadMs: number };
  idle: { guild: IdleSample[]; node: IdleSample[]; guildMidRunBytes: number; guildMaxBytes: number; guildReportPeakBytes: number; nodeIdleBytes: number; ratio: number };
}

export async function main(): Promise<StartupResult> {
  const spawns = Math.max(2, argNumber('spawns', 10));
  const rounds = Math.max(1, argNumber('rounds', 3));
  const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  console.log(`startup: ${spawns} alternating cold spawns of \`guild --version\` vs \`node -e 0\` (after a warm-up), then ${rounds} idle-RSS rounds`);

  // 1. Cold start. One untimed warm-up of each fills the page cache (a "warm" cold start: new process, cached files).
  timeSpawn([GUILD_BIN, '--version']);
  timeSpawn(['-e', '0']);
  const guildMs: number[] = [];
  const nodeMs: number[] = [];
  for (let i = 0; i < spawns; i++) {
    const pair = i % 2 === 0 ? (['g', 'n'] as const) : (['n', 'g'] as const);
    for (const who of pair) {
      if (who === 'g') {
        const r = timeSpawn([GUILD_BIN, '--version']);
        if (r.status !== 0 || r.stdout !== version) throw new Error(`guild --version printed '${r.stdout}' (exit ${r.status}), expected '${version}'`);
        guildMs.push(r.ms);
      } else {
        nodeMs.push(timeSpawn(['-e', '0']).ms);
      }
    }
  }
  const cold = {
    guildMs,
    nodeMs,
    guildMedianMs: median(guildMs),
    guildP90Ms: quantile(guildMs, 0.9),
    nodeMedianMs: median(nodeMs),
    nodeP90Ms: quantile(nodeMs, 0.9),
    ratio: median(guildMs) / median(nodeMs),
    overheadMs: median(guildMs) - median(nodeMs),
  };

  // 2. Idle RSS while waiting on agents.
  const dir = mkdtempSync(join(tmpdir(), 'guild-bench-startup-'));
  const file = join(dir, 'idle.yaml');
  writeFileSync(file, SLEEP_WORKFLOW);
  const guild: IdleSample[] = [];
  const node: IdleSample[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      const g = await sampleIdle([GUILD_BIN, 'run', file, '--json'], dir, true);
      if (g.reportPeakBytes === null) throw new Error('guild run printed no JSON report');
      const { stdout: _g, ...gs } = g;
      guild.push(gs);
      const { stdout: _n, ...ns } = await sampleIdle(['-e', 'setTimeout(() => {}, 3000)'], dir, false);
      node.push(ns);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const idle = {
    guild,
    node,
    guildMidRunBytes: median(guild.map((s) => s.midRunBytes)),
    guildMaxBytes: median(guild.map((s) => s.maxBytes)),
    guildReportPeakBytes: median(guild.map((s) => s.reportPeakBytes ?? NaN)),
    nodeIdleBytes: median(node.map((s) => s.midRunBytes)),
    ratio: median(guild.map((s) => s.midRunBytes)) / median(node.map((s) => s.midRunBytes)),
  };

  const ms = (x: number): string => `${x.toFixed(0)} ms`;
  console.log('');
  printTable(
    ['cold start', 'median', 'p90', 'min', 'max'],
    [
      ['guild --version', ms(cold.guildMedianMs), ms(cold.guildP90Ms), ms(Math.min(...guildMs)), ms(Math.max(...guildMs))],
      ['node -e 0', ms(cold.nodeMedianMs), ms(cold.nodeP90Ms), ms(Math.min(...nodeMs)), ms(Math.max(...nodeMs))],
    ],
  );
  console.log(`ratio guild --version / node -e 0: ${fmtRatio(cold.ratio)} (+${ms(cold.overheadMs)}); target < ${COLD_TARGET_MS} ms: ${cold.guildMedianMs < COLD_TARGET_MS ? 'met' : 'MISSED'} (p90 ${cold.guildP90Ms < COLD_TARGET_MS ? 'met' : 'missed'})`);
  console.log('');
  printTable(
    ['RSS while waiting', 'mid-run (median)', 'max', 'report guild_peak'],
    [
      ['guild run (3 × sleep 3)', fmtMB(idle.guildMidRunBytes), fmtMB(idle.guildMaxBytes), fmtMB(idle.guildReportPeakBytes)],
      ['bare node (3 s timer)', fmtMB(idle.nodeIdleBytes), fmtMB(median(node.map((s) => s.maxBytes))), '—'],
    ],
  );
  console.log(
    `ratio Guild idle RSS / bare node: ${fmtRatio(idle.ratio)} (+${fmtMB(idle.guildMidRunBytes - idle.nodeIdleBytes)}); ` +
      `target < ${fmtMB(IDLE_TARGET_BYTES)}: mid-run ${idle.guildMidRunBytes < IDLE_TARGET_BYTES ? 'met' : 'MISSED'}, max ${idle.guildMaxBytes < IDLE_TARGET_BYTES ? 'met' : 'missed'}`,
  );
  const result: StartupResult = { cold, idle };
  const out = writeResult('startup', { benchmark: 'startup', environment: environment(), spawns, rounds, targets: { coldMs: COLD_TARGET_MS, idleBytes: IDLE_TARGET_BYTES }, ...result });
  console.log(`wrote ${out}`);
  return result;
}

if (isMain(import.meta.url)) await main();
