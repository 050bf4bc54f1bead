/**
 * Start-up and idle footprint of the `guild` CLI.
 *   1. Cold start: wall time of `node bin/guild.js --version` (spawned N times, default 10),
 *      median and p90, against a bare `node -e 0` spawned alternately in the same run; ratio.
 *      Target: < 2 s.
 *   2. Idle RSS: Guild's own VmRSS (/proc/<pid>/status, every 100 ms) while it waits on a
 *      workflow of 3 `sleep <wait>` tasks (default 25 s), samples taken while its agents (`sh`)
 *      run: the median of the first 3 s of the wait ("early", the headline: before V8's memory
 *      reducer has run, which it does 8-16 s in) and of its last 5 s ("settled"), each with its
 *      anonymous and file-backed parts (and of the latter, the pages of Node's own executable, from
 *      /proc/<pid>/smaps); the max, and the report's guild_peak_rss_bytes; against a
 *      bare idle `node` (a 3 s timer) sampled the same way. Target: < 50 MB.
 *   3. What each module costs at start: VmRSS (and its anonymous part) after a settled gc, before
 *      and after importing it, in a fresh `node --expose-gc`: alone (the module and what it
 *      imports, nothing else loaded), and in the order `guild run` loads things (one process,
 *      each step's increase over the steps before it), with when Guild loads it. Median of the
 *      rounds.
 * Targets are reported, never enforced.
 *
 * Run: npx tsc -p . && node dist/bench/startup.js [--spawns=10] [--rounds=3] [--wait=25]
 * Writes bench/results/startup.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RunReport } from '../src/workflow/report.js';
import { argNumber, environment, fmtMB, fmtRatio, GUILD_BIN, isMain, MB, median, printTable, quantile, REPO_ROOT, writeResult } from './lib.js';

const COLD_TARGET_MS = 2000;
const IDLE_TARGET_BYTES = 50 * MB;

function timeSpawn(args: string[]): { ms: number; stdout: string; status: number | null } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
  return { ms: performance.now() - t0, stdout: r.stdout.trim(), status: r.status };
}

interface IdleSample {
  /** Median VmRSS over the first 3 s while agents ran; its anonymous and file-backed parts. */
  midRunBytes: number;
  midRunAnonBytes: number;
  midRunFileBytes: number;
  /** Of the file-backed part, pages of Node's own executable (shared with every `node`, counted in each RSS). */
  midRunExeBytes: number;
  /** The same over the last 5 s while agents ran ("settled"). */
  settledBytes: number;
  settledAnonBytes: number;
  settledFileBytes: number;
  settledExeBytes: number;
  maxBytes: number;
  samples: number;
  reportPeakBytes: number | null;
}

/** VmRSS, RssAnon and RssFile of a process in bytes, or null if it is gone or exiting. */
function rssParts(pid: number): { rss: number; anon: number; file: number } | null {
  let s: string;
  try {
    s = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
  const rss = kb('VmRSS');
  // An exiting process (a zombie) has no VmRSS line.
  return Number.isFinite(rss) ? { rss, anon: kb('RssAnon'), file: kb('RssFile') } : null;
}

/** The RSS of a process's mappings of its own executable (Node's binary), from /proc/<pid>/smaps; null if it is gone. */
function exeRss(pid: number): number | null {
  let smaps: string;
  let exe: string;
  try {
    exe = readlinkSync(`/proc/${pid}/exe`);
    smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return null;
  }
  let bytes = 0;
  let inExe = false;
  for (const line of smaps.split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inExe = line.endsWith(` ${exe}`);
    else if (inExe && line.startsWith('Rss:')) bytes += Number(/(\d+) kB/.exec(line)?.[1] ?? 0) * 1024;
  }
  return bytes;
}

/** True while `pid` has an agent child: the workflow's `sleep` under `sh` (not Guild's config loader, a `node`). */
function agentsRunning(pid: number): boolean {
  let children: string[];
  try {
    children = readdirSync(`/proc/${pid}/task`).flatMap((t) => readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(' ').filter(Boolean));
  } catch {
    return false;
  }
  return children.some((c) => {
    try {
      return ['sh', 'sleep'].includes(readFileSync(`/proc/${c}/comm`, 'utf8').trim());
    } catch {
      return false;
    }
  });
}

/** Spawns `args`, samples the process's VmRSS every 100 ms; "mid-run" = samples while its agents run. */
async function sampleIdle(args: string[], cwd: string, requireAgents: boolean): Promise<IdleSample & { stdout: string }> {
  const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'ignore'] });
  const pid = child.pid!;
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const mid: { rss: number; anon: number; file: number; exe: number; t: number }[] = [];
  let max = 0;
  let samples = 0;
  const timer = setInterval(() => {
    const parts = rssParts(pid);
    if (parts === null) return;
    samples++;
    max = Math.max(max, parts.rss);
    if (!requireAgents || agentsRunning(pid)) mid.push({ ...parts, exe: exeRss(pid) ?? NaN, t: performance.now() });
  }, 100);
  await new Promise<void>((resolve) => child.once('exit', () => resolve()));
  clearInterval(timer);
  let reportPeakBytes: number | null = null;
  if (stdout.trim().startsWith('{')) reportPeakBytes = (JSON.parse(stdout) as RunReport).guild_peak_rss_bytes;
  const first = mid[0]?.t ?? 0;
  const last = mid[mid.length - 1]?.t ?? 0;
  const early = mid.filter((m) => m.t - first <= 3000);
  const settled = mid.filter((m) => last - m.t <= 5000);
  return {
    midRunBytes: median(early.map((m) => m.rss)),
    midRunAnonBytes: median(early.map((m) => m.anon)),
    midRunFileBytes: median(early.map((m) => m.file)),
    midRunExeBytes: median(early.map((m) => m.exe)),
    settledBytes: median(settled.map((m) => m.rss)),
    settledAnonBytes: median(settled.map((m) => m.anon)),
    settledFileBytes: median(settled.map((m) => m.file)),
    settledExeBytes: median(settled.map((m) => m.exe)),
    maxBytes: max,
    samples,
    reportPeakBytes,
    stdout,
  };
}

/** One step of the module-cost probe: what it imports (bare names resolve from the repository root). */
interface ModuleStep {
  name: string;
  imports: string[];
  /** Open an in-memory SQLite database after importing (better-sqlite3 loads its native addon then). */
  openDb?: boolean;
  /** Whether the process of `guild run` holds it while it waits on 3 `sleep` tasks. */
  inRun: boolean;
  /** When Guild loads it. */
  when: string;
}

const dist = (p: string): string => pathToFileURL(join(REPO_ROOT, 'dist', 'src', p)).href;

/** In the order `guild run` loads them; what a waiting run does not hold comes last. */
const MODULE_STEPS: readonly ModuleStep[] = [
  { name: 'Node built-ins a run uses (zlib, perf_hooks)', imports: ['node:zlib', 'node:perf_hooks'], inRun: true, when: 'guild run' },
  { name: 'better-sqlite3, a database opened (native addon)', imports: ['better-sqlite3'], openDb: true, inRun: true, when: 'guild run (the store)' },
  { name: 'lru-cache', imports: ['lru-cache'], inRun: true, when: 'guild run (the L1 cache tier)' },
  {
    name: 'Guild: the run (workflow, scheduler, supervisor, store, cache, telemetry, CLI output)',
    imports: ['cli/run-command.js', 'workflow/run-resolved.js', 'telemetry/run-telemetry.js', 'cli/progress.js', 'system/bench-lock.js', 'system/idle-memory.js', 'config/load-isolated.js', 'executors/process-groups.js', 'store/lease.js'].map(dist),
    inRun: true,
    when: 'guild run',
  },
  { name: 'commander, and the child_process it requires', imports: ['commander'], inRun: false, when: 'every command but a plain `guild run` (cli/run-main.ts)' },
  { name: 'yaml', imports: ['yaml'], inRun: false, when: 'loading a workflow file: in a child process during a run' },
  { name: 'zod', imports: ['zod'], inRun: false, when: 'loading a workflow file: in a child process during a run' },
  { name: 'Guild: config (load, schema, resolve)', imports: [dist('config/load-config.js')], inRun: false, when: 'loading a workflow file: in a child process during a run' },
  { name: 'node:crypto, tinyglobby, Guild io/files', imports: ['node:crypto', 'tinyglobby', dist('io/files.js')], inRun: false, when: 'the first task with inputs or outputs' },
  { name: 'prom-client', imports: ['prom-client'], inRun: false, when: '--dashboard, guild dashboard, the MCP gateway' },
  { name: 'ioredis', imports: ['ioredis'], inRun: false, when: 'a Redis (L3) cache tier' },
  { name: 'MCP SDK (client, server, both HTTP transports)', imports: ['@modelcontextprotocol/sdk/client/index.js', '@modelcontextprotocol/sdk/server/index.js', '@modelcontextprotocol/sdk/client/streamableHttp.js', '@modelcontextprotocol/sdk/server/streamableHttp.js'], inRun: false, when: 'mcp: servers, guild mcp' },
  { name: "Guild: the library (`import ... from 'guild'`)", imports: [dist('index.js')], inRun: false, when: 'a library import' },
];

/** Run with `node --expose-gc --input-type=module -e`, steps as JSON in argv[1]; prints each step's increase. */
const MODULE_PROBE = `
import { readFileSync } from 'node:fs';
const kb = (s, k) => Number(new RegExp('^' + k + ':[ \t]+([0-9]+) kB', 'm').exec(s)?.[1] ?? NaN) * 1024;
const status = () => { const s = readFileSync('/proc/self/status', 'utf8'); return { rss: kb(s, 'VmRSS'), anon: kb(s, 'RssAnon') }; };
const settle = async () => { for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); } };
const keep = [];
await settle();
let prev = status();
const out = [];
for (const step of JSON.parse(process.argv[1])) {
  for (const spec of step.imports) keep.push(await import(spec));
  if (step.openDb) { const Database = (await import('better-sqlite3')).default; const db = new Database(':memory:'); db.exec('create table t (x)'); keep.push(db); }
  await settle();
  const now = status();
  out.push({ rss: now.rss - prev.rss, anon: now.anon - prev.anon });
  prev = now;
}
console.log(JSON.stringify(out));
`;

function probeModules(steps: readonly ModuleStep[]): { rss: number; anon: number }[] {
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', MODULE_PROBE, JSON.stringify(steps)], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`module probe failed (exit ${r.status}): ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { rss: number | null; anon: number | null }[];
  if (out.some((d) => d.rss === null || d.anon === null)) throw new Error(`module probe could not read /proc/self/status: ${r.stdout}`);
  return out as { rss: number; anon: number }[];
}

export interface ModuleCost {
  name: string;
  inRun: boolean;
  when: string;
  /** Alone in a fresh process: the module and what it imports. */
  aloneBytes: number;
  aloneAnonBytes: number;
  /** In `guild run`'s order: the increase over everything listed before it. */
  inOrderBytes: number;
  inOrderAnonBytes: number;
}

function moduleCosts(rounds: number): ModuleCost[] {
  const alone: { rss: number; anon: number }[][] = MODULE_STEPS.map(() => []);
  const inOrder: { rss: number; anon: number }[][] = MODULE_STEPS.map(() => []);
  for (let r = 0; r < rounds; r++) {
    MODULE_STEPS.forEach((step, i) => alone[i]!.push(probeModules([step])[0]!));
    probeModules(MODULE_STEPS).forEach((d, i) => inOrder[i]!.push(d));
  }
  return MODULE_STEPS.map((step, i) => ({
    name: step.name,
    inRun: step.inRun,
    when: step.when,
    aloneBytes: median(alone[i]!.map((d) => d.rss)),
    aloneAnonBytes: median(alone[i]!.map((d) => d.anon)),
    inOrderBytes: median(inOrder[i]!.map((d) => d.rss)),
    inOrderAnonBytes: median(inOrder[i]!.map((d) => d.anon)),
  }));
}

const sleepWorkflow = (seconds: number): string => `name: bench-startup-idle
agents:
  sleeper: { memory: 10MB, cpu: 0.05, timeout: ${seconds + 60}s }
tasks:
  - { id: s1, agent: sleeper, run: "sleep ${seconds}" }
  - { id: s2, agent: sleeper, run: "sleep ${seconds}" }
  - { id: s3, agent: sleeper, run: "sleep ${seconds}" }
`;

export interface StartupResult {
  modules: ModuleCost[];
  cold: { guildMs: number[]; nodeMs: number[]; guildMedianMs: number; guildP90Ms: number; nodeMedianMs: number; nodeP90Ms: number; ratio: number; overheadMs: number };
  idle: {
    waitSeconds: number;
    guild: IdleSample[];
    node: IdleSample[];
    guildMidRunBytes: number;
    guildMidRunAnonBytes: number;
    guildMidRunFileBytes: number;
    guildSettledBytes: number;
    guildSettledAnonBytes: number;
    guildSettledFileBytes: number;
    /** Of the file-backed parts, pages of Node's executable: first 3 s, settled, bare node. */
    guildMidRunExeBytes: number;
    guildSettledExeBytes: number;
    nodeIdleExeBytes: number;
    guildMaxBytes: number; guildReportPeakBytes: number; nodeIdleBytes: number; nodeIdleAnonBytes: number; nodeIdleFileBytes: number; ratio: number };
}

export async function main(): Promise<StartupResult> {
  const spawns = Math.max(2, argNumber('spawns', 10));
  const rounds = Math.max(1, argNumber('rounds', 3));
  const wait = Math.max(3, argNumber('wait', 25));
  const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  console.log(`startup: ${spawns} alternating cold spawns of \`guild --version\` vs \`node -e 0\` (after a warm-up), then ${rounds} idle-RSS rounds of ${wait} s, then the module costs`);

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
  writeFileSync(file, sleepWorkflow(wait));
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
    waitSeconds: wait,
    guild,
    node,
    guildMidRunBytes: median(guild.map((s) => s.midRunBytes)),
    guildMidRunAnonBytes: median(guild.map((s) => s.midRunAnonBytes)),
    guildMidRunFileBytes: median(guild.map((s) => s.midRunFileBytes)),
    guildSettledBytes: median(guild.map((s) => s.settledBytes)),
    guildSettledAnonBytes: median(guild.map((s) => s.settledAnonBytes)),
    guildSettledFileBytes: median(guild.map((s) => s.settledFileBytes)),
    guildMidRunExeBytes: median(guild.map((s) => s.midRunExeBytes)),
    guildSettledExeBytes: median(guild.map((s) => s.settledExeBytes)),
    nodeIdleExeBytes: median(node.map((s) => s.midRunExeBytes)),
    guildMaxBytes: median(guild.map((s) => s.maxBytes)),
    guildReportPeakBytes: median(guild.map((s) => s.reportPeakBytes ?? NaN)),
    nodeIdleBytes: median(node.map((s) => s.midRunBytes)),
    nodeIdleAnonBytes: median(node.map((s) => s.midRunAnonBytes)),
    nodeIdleFileBytes: median(node.map((s) => s.midRunFileBytes)),
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
    ['RSS while waiting', 'mid-run (median)', 'anonymous', 'file-backed', "of it Node's binary", 'max', 'report guild_peak'],
    [
      [`guild run (3 × sleep ${wait}), first 3 s`, fmtMB(idle.guildMidRunBytes), fmtMB(idle.guildMidRunAnonBytes), fmtMB(idle.guildMidRunFileBytes), fmtMB(idle.guildMidRunExeBytes), fmtMB(idle.guildMaxBytes), fmtMB(idle.guildReportPeakBytes)],
      [`guild run, last 5 s (settled)`, fmtMB(idle.guildSettledBytes), fmtMB(idle.guildSettledAnonBytes), fmtMB(idle.guildSettledFileBytes), fmtMB(idle.guildSettledExeBytes), '', ''],
      ['bare node (3 s timer)', fmtMB(idle.nodeIdleBytes), fmtMB(idle.nodeIdleAnonBytes), fmtMB(idle.nodeIdleFileBytes), fmtMB(idle.nodeIdleExeBytes), fmtMB(median(node.map((s) => s.maxBytes))), '—'],
    ],
  );
  console.log(
    `ratio Guild idle RSS / bare node: ${fmtRatio(idle.ratio)} (+${fmtMB(idle.guildMidRunBytes - idle.nodeIdleBytes)}); settled ${fmtRatio(idle.guildSettledBytes / idle.nodeIdleBytes)}; ` +
      `target < ${fmtMB(IDLE_TARGET_BYTES)}: first 3 s ${idle.guildMidRunBytes < IDLE_TARGET_BYTES ? 'met' : 'MISSED'}, settled ${idle.guildSettledBytes < IDLE_TARGET_BYTES ? 'met' : 'MISSED'}, max ${idle.guildMaxBytes < IDLE_TARGET_BYTES ? 'met' : 'missed'}`,
  );

  // 3. What each module costs at start.
  const modules = moduleCosts(rounds);
  const mb1 = (b: number): string => `${(b / MB).toFixed(1)} MB`;
  console.log('');
  printTable(
    ['module (VmRSS after gc; of which anonymous)', 'waiting run holds it', 'alone', 'in run order', 'loaded'],
    modules.map((m) => [m.name, m.inRun ? 'yes' : 'no', `${mb1(m.aloneBytes)} (${mb1(m.aloneAnonBytes)})`, `${mb1(m.inOrderBytes)} (${mb1(m.inOrderAnonBytes)})`, m.when]),
  );
  const runTotal = modules.filter((m) => m.inRun).reduce((a, m) => a + m.inOrderBytes, 0);
  console.log(`what a waiting guild run holds of these, in its order: ${mb1(runTotal)} over bare node (the rest of the idle figure: its heap's young generation, the run's state, Node code it ran)`);
  const result: StartupResult = { modules, cold, idle };
  const out = writeResult('startup', { benchmark: 'startup', environment: environment(), spawns, rounds, targets: { coldMs: COLD_TARGET_MS, idleBytes: IDLE_TARGET_BYTES }, ...result });
  console.log(`wrote ${out}`);
  return result;
}

if (isMain(import.meta.url)) await main();
