/**
 * Memory-bound packing: 24 agent simulators (node processes, bench/agent-sim.mjs: allocate and
 * touch 150–600 MB, then wait; 1–2 s lifetime each; seeded sizes and durations) under a 1.1 GB
 * budget. Guild runs them through its CLI (`node bin/guild.js run <tmp>.yaml --json --budget 1.1GB`,
 * each task's agent type declaring its simulator's expected peak = working MB + 45 MB Node
 * baseline); in the same run, on the same 24 commands, the peers:
 *   (a) naive: all 24 spawned at once;
 *   (b) fixed pool: the largest N with N × largest expected peak <= budget;
 *   (c) GNU parallel --memfree 500M -j 24;
 *   (d) GNU parallel --memfree <free now − budget> -j 24 (parallel's closest emulation of a budget).
 * Peers' peak is the summed RSS of the runner's descendants (runner excluded), sampled from /proc
 * every 100 ms by this process; Guild's is its report's peak_rss_bytes, cross-checked by the same
 * external sampler on Guild's descendants. Reports makespan / Guild's lower bound (goal <= 1.25 for
 * Guild) and peak / budget (must be <= 1.0 for Guild). Medians over rounds with rotating order.
 *
 * Then the container case: Guild alone, the same workflow and --budget, inside a fresh memory
 * cgroup limited to 1.4 GB (v1 /sys/fs/cgroup/memory/guild-bench-memory-bound-<pid>, or v2; one
 * per round, removed after), entered by `sh -c 'echo $$ > cgroup.procs; exec node bin/guild.js …'`
 * so Guild reads the cgroup's limit and usage. Reported: makespan / lower bound, peak / budget,
 * the cgroup's peak usage, kernel OOM kills, and what the governor did (pauses, caps, kills from
 * the report's responses[]). Without root or a memory hierarchy it says why and skips that half.
 * The peers are not run in the cgroup: the naive run would be OOM-killed there, and the fixed
 * pool's schedule does not depend on where it runs.
 *
 * Needs ~11 GB free for the naive peer. Installs nothing: if `parallel` is missing the GNU parallel
 * rows are skipped (apt-get install -y parallel).
 * Run: npx tsc -p . && node dist/bench/memory-bound.js [--rounds=3] [--where=host|cgroup|both] [--no-peers]
 * Writes bench/results/memory-bound.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunReport } from '../src/workflow/report.js';
import {
  argNumber,
  environment,
  fmtGovernor,
  fmtMB,
  fmtMs,
  fmtRatio,
  governorSummary,
  isMain,
  makeMemoryCgroup,
  MB,
  median,
  printTable,
  prng,
  REPO_ROOT,
  runGuildCli,
  startTreeSampler,
  writeResult,
  NODE_BASELINE_MB,
  shellQuote,
  type BenchCgroup,
  type GovernorSummary,
} from './lib.js';

/** The seed of the 24 simulators (shared with bench/dashboard-overhead). */
export const SEED = 0xb0d9e7;
const COUNT = 24;
export const BUDGET = '1.1GB';
export const BUDGET_BYTES = Math.round(1.1 * 1024 ** 3); // Guild's sizes are 1024-based
const SIM = join(REPO_ROOT, 'bench', 'agent-sim.mjs');
/** The container case of issue 10: a 1.4 GB memory cgroup around Guild. */
export const CGROUP_LIMIT_BYTES = Math.round(1.4 * 1024 ** 3);

export interface Sim {
  id: string;
  mb: number;
  ms: number;
  /** Expected peak RSS declared to Guild. */
  expectedBytes: number;
  argv: string[];
}

/** The 24 simulators, deterministic from the seed. */
export function simulators(seed: number): Sim[] {
  const rand = prng(seed);
  const out: Sim[] = [];
  for (let i = 0; i < COUNT; i++) {
    const mb = 150 + Math.floor(rand() * 451);
    const ms = 1000 + Math.floor(rand() * 1001);
    out.push({ id: `sim${String(i).padStart(2, '0')}`, mb, ms, expectedBytes: (mb + NODE_BASELINE_MB) * MB, argv: [SIM, String(mb), String(ms)] });
  }
  return out;
}

const commandLine = (s: Sim): string => [process.execPath, ...s.argv].map(shellQuote).join(' ');

/** One agent type per task, so every task declares its own peak and duration. */
export function workflowYaml(sims: readonly Sim[]): string {
  const lines = ['name: bench-memory-bound', 'agents:'];
  for (const s of sims) lines.push(`  ${s.id}: { memory: ${s.expectedBytes / MB}MB, cpu: 0.1, duration: ${s.ms}ms }`);
  lines.push('tasks:');
  for (const s of sims) lines.push(`  - id: ${s.id}`, `    agent: ${s.id}`, `    run: ${JSON.stringify(commandLine(s))}`);
  return `${lines.join('\n')}\n`;
}

interface RunnerResult {
  runner: string;
  makespanMs: number;
  /** Peak summed RSS of the agents (runner process excluded). */
  peakBytes: number;
  /** Peak RSS of the runner process itself (Guild, parallel's perl, or this process). */
  runnerPeakBytes: number;
  ok: boolean;
  note?: string;
}

interface GuildRound extends RunnerResult {
  wallMs: number;
  lowerBoundMs: number;
  reportPeakBytes: number;
  externalPeakBytes: number;
  budgetBytes: number;
  governor: GovernorSummary;
  /** Inside a cgroup: its limit, peak usage and the kernel's OOM kills during the run. */
  cgroup?: { limitBytes: number; peakUsageBytes: number | null; kernelOomKills: number };
  report: Pick<RunReport, 'lower_bound' | 'admissions' | 'samples' | 'guild_peak_rss_bytes' | 'counts' | 'effective_limit_bytes' | 'memory_source'> & {
    tasks: { id: string; started_ms: number | null; ended_ms: number | null; duration_ms: number; peak_rss_bytes: number | null }[];
  };
}

function waitExit(child: ReturnType<typeof spawn>): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('error', () => resolve(null));
    child.once('exit', (code) => resolve(code));
  });
}

async function runGuild(sims: readonly Sim[], dir: string, cg?: BenchCgroup): Promise<GuildRound> {
  const file = join(dir, 'memory-bound.yaml');
  writeFileSync(file, workflowYaml(sims));
  const oomBefore = cg?.oomKills() ?? 0;
  const { code, stderr, wallMs, report, externalPeakBytes, externalRunnerPeakBytes } = await runGuildCli(file, ['--budget', BUDGET], dir, cg);
  const ok = code === 0 && report.ok;
  return {
    runner: cg ? 'Guild in 1.4 GB cgroup' : 'Guild',
    makespanMs: report.makespan_ms,
    wallMs,
    lowerBoundMs: report.lower_bound_ms,
    peakBytes: report.peak_rss_bytes,
    reportPeakBytes: report.peak_rss_bytes,
    externalPeakBytes,
    runnerPeakBytes: Math.max(report.guild_peak_rss_bytes, externalRunnerPeakBytes),
    budgetBytes: report.budget_bytes,
    ok,
    ...(ok ? {} : { note: `exit ${code}; ${stderr.slice(-300)}` }),
    governor: governorSummary(report),
    ...(cg ? { cgroup: { limitBytes: CGROUP_LIMIT_BYTES, peakUsageBytes: cg.peakBytes(), kernelOomKills: cg.oomKills() - oomBefore } } : {}),
    report: {
      lower_bound: report.lower_bound,
      admissions: report.admissions,
      samples: report.samples,
      guild_peak_rss_bytes: report.guild_peak_rss_bytes,
      counts: report.counts,
      effective_limit_bytes: report.effective_limit_bytes,
      memory_source: report.memory_source,
      tasks: report.tasks.map((t) => ({ id: t.id, started_ms: t.started_ms, ended_ms: t.ended_ms, duration_ms: t.duration_ms, peak_rss_bytes: t.peak_rss_bytes })),
    },
  };
}

/** Runs the simulators with at most `limit` at once (limit >= COUNT: all at once). */
async function runPool(name: string, sims: readonly Sim[], limit: number): Promise<RunnerResult> {
  const sampler = startTreeSampler(process.pid);
  const t0 = performance.now();
  let next = 0;
  let failures = 0;
  const worker = async (): Promise<void> => {
    while (next < sims.length) {
      const s = sims[next++]!;
      const code = await waitExit(spawn(process.execPath, s.argv, { stdio: 'ignore' }));
      if (code !== 0) failures++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, sims.length) }, worker));
  const makespanMs = performance.now() - t0;
  const ext = sampler.stop();
  return { runner: name, makespanMs, peakBytes: ext.peakAgentsBytes, runnerPeakBytes: ext.peakRunnerBytes, ok: failures === 0, ...(failures ? { note: `${failures} failed` } : {}) };
}

/** GNU parallel's view of free memory: MemFree + Buffers + Cached + SwapCached (host-wide). */
function parallelFreeBytes(): number {
  let kb = 0;
  for (const line of readFileSync('/proc/meminfo', 'utf8').split('\n')) {
    const m = /^(MemFree|Buffers|Cached|SwapCached):\s+(\d+)/.exec(line);
    if (m) kb += Number(m[2]);
  }
  return kb * 1024;
}

async function runParallel(name: string, sims: readonly Sim[], memfree: string): Promise<RunnerResult> {
  const t0 = performance.now();
  const child = spawn('parallel', ['--will-cite', '--memfree', memfree, '-j', String(COUNT), ':::', ...sims.map(commandLine)], { stdio: ['ignore', 'ignore', 'pipe'] });
  const sampler = startTreeSampler(child.pid!);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await waitExit(child);
  const makespanMs = performance.now() - t0;
  const ext = sampler.stop();
  return { runner: name, makespanMs, peakBytes: ext.peakAgentsBytes, runnerPeakBytes: ext.peakRunnerBytes, ok: code === 0, ...(code === 0 ? {} : { note: `exit ${code}; ${stderr.slice(-300)}` }) };
}

export interface MemoryBoundResult {
  rounds: number;
  budgetBytes: number;
  fixedPoolN: number;
  guild: GuildRound[];
  peers: Record<string, RunnerResult[]>;
  summary: { runner: string; makespanMs: number; peakBytes: number; peakOverBudget: number; makespanOverLowerBound: number; makespanOverGuild: number; ok: boolean }[];
  /** The container half: Guild inside a 1.4 GB memory cgroup; null when it could not run (see cgroupSkipped). */
  cgroup: {
    limitBytes: number;
    rounds: GuildRound[];
    makespanOverLowerBound: number;
    peakOverBudget: number;
    kernelOomKills: number;
    ok: boolean;
  } | null;
  cgroupSkipped: string | null;
}

export async function main(): Promise<MemoryBoundResult> {
  const rounds = Math.max(1, argNumber('rounds', 3));
  const where = process.argv.find((a) => a.startsWith('--where='))?.slice('--where='.length) ?? 'both';
  const onHost = where === 'host' || where === 'both';
  const inCgroup = where === 'cgroup' || where === 'both';
  const withPeers = onHost && !process.argv.includes('--no-peers');
  const sims = simulators(SEED);
  const largest = Math.max(...sims.map((s) => s.expectedBytes));
  const fixedN = Math.max(1, Math.floor(BUDGET_BYTES / largest));
  const hasParallel = spawnSync('parallel', ['--version'], { stdio: 'ignore' }).status === 0;
  const totalMb = sims.reduce((a, s) => a + s.mb, 0);
  console.log(
    `memory-bound: ${COUNT} simulators, ${Math.min(...sims.map((s) => s.mb))}–${Math.max(...sims.map((s) => s.mb))} MB working ` +
      `(Σ ${totalMb} MB), ${Math.min(...sims.map((s) => s.ms))}–${Math.max(...sims.map((s) => s.ms))} ms; budget ${BUDGET} = ${fmtMB(BUDGET_BYTES)}; ` +
      `fixed pool N = ${fixedN} (largest expected peak ${fmtMB(largest)}); ${rounds} round(s); ${where === 'both' ? 'on the host and in a 1.4 GB cgroup' : where === 'host' ? 'on the host only' : 'in a 1.4 GB cgroup only'}`,
  );
  if (withPeers && !hasParallel) console.log('GNU parallel not found: its rows are skipped (apt-get install -y parallel)');

  const dir = mkdtempSync(join(tmpdir(), 'guild-bench-mem-'));
  const guild: GuildRound[] = [];
  const inCg: GuildRound[] = [];
  let cgroupSkipped: string | null = inCgroup ? null : 'not asked for (--where=host)';
  const peers: Record<string, RunnerResult[]> = {};
  const addPeer = (r: RunnerResult): void => {
    (peers[r.runner] ??= []).push(r);
  };
  type Step = () => Promise<void>;
  const steps: [string, Step][] = [];
  if (onHost) steps.push(['Guild', async () => void guild.push(await runGuild(sims, dir))]);
  if (inCgroup) {
    steps.push([
      'Guild in a 1.4 GB cgroup',
      async () => {
        if (cgroupSkipped) return;
        // A fresh group per round: its peak usage and OOM counter then belong to this run alone.
        const cg = makeMemoryCgroup('memory-bound', CGROUP_LIMIT_BYTES);
        if (typeof cg === 'string') {
          cgroupSkipped = cg;
          console.log(`skipped: ${cg}`);
          return;
        }
        try {
          inCg.push(await runGuild(sims, dir, cg));
        } finally {
          await cg.remove();
        }
      },
    ]);
  }
  if (withPeers) {
    steps.push(['naive all-at-once', async () => addPeer(await runPool('naive all-at-once', sims, COUNT))]);
    steps.push([`fixed pool N=${fixedN}`, async () => addPeer(await runPool(`fixed pool N=${fixedN}`, sims, fixedN))]);
    if (hasParallel) {
      steps.push(['parallel --memfree 500M', async () => addPeer(await runParallel('parallel --memfree 500M', sims, '500M'))]);
      steps.push([
        'parallel --memfree free−budget',
        async () => {
          const memfree = Math.max(0, parallelFreeBytes() - BUDGET_BYTES);
          addPeer(await runParallel('parallel --memfree free−budget', sims, String(memfree)));
        },
      ]);
    }
  }
  try {
    for (let r = 0; r < rounds; r++) {
      // Rotate the order each round so slow drift in machine load spreads over every runner.
      for (let k = 0; k < steps.length; k++) {
        const [name, step] = steps[(k + r) % steps.length]!;
        process.stdout.write(`  round ${r + 1}/${rounds}: ${name} … `);
        const t = performance.now();
        await step();
        console.log(`${fmtMs(performance.now() - t)}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const summarizeGuild = (rs: readonly GuildRound[]): string[] => {
    const lb = median(rs.map((g) => g.lowerBoundMs));
    const ratio = median(rs.map((g) => g.makespanMs / g.lowerBoundMs));
    const peak = Math.max(...rs.map((x) => Math.max(x.reportPeakBytes, x.externalPeakBytes)));
    const lines = [
      `makespan / lower bound: ${fmtRatio(ratio)} (goal <= 1.25: ${ratio <= 1.25 ? 'met' : 'MISSED'}); makespan ${fmtMs(median(rs.map((x) => x.makespanMs)))}, LB ${fmtMs(lb)}`,
      `peak / budget: ${fmtRatio(median(rs.map((x) => x.reportPeakBytes)) / BUDGET_BYTES)} from the report, ${fmtRatio(median(rs.map((x) => x.externalPeakBytes)) / BUDGET_BYTES)} from the external 100 ms sampler ` +
        `(must be <= 1.0: ${peak / BUDGET_BYTES <= 1 ? 'met' : 'VIOLATED'}); worst round ${fmtRatio(peak / BUDGET_BYTES)}`,
      ...rs.map((x, i) => `round ${i + 1} governor: ${fmtGovernor(x.governor)}`),
    ];
    const est = rs.flatMap((x) => x.report.tasks.filter((t) => t.peak_rss_bytes !== null).map((t) => t.peak_rss_bytes! / sims.find((s) => s.id === t.id)!.expectedBytes));
    if (est.length > 0) lines.push(`measured task peak / declared peak: min ${fmtRatio(Math.min(...est))}, median ${fmtRatio(median(est))}, max ${fmtRatio(Math.max(...est))}`);
    return lines;
  };

  const summary: MemoryBoundResult['summary'] = [];
  if (guild.length > 0) {
    const lb = median(guild.map((g) => g.lowerBoundMs));
    const guildMakespan = median(guild.map((g) => g.makespanMs));
    const summarize = (runner: string, rs: readonly RunnerResult[]): MemoryBoundResult['summary'][number] => {
      const makespanMs = median(rs.map((x) => x.makespanMs));
      const peakBytes = median(rs.map((x) => x.peakBytes));
      return {
        runner,
        makespanMs,
        peakBytes,
        peakOverBudget: peakBytes / BUDGET_BYTES,
        makespanOverLowerBound: makespanMs / lb,
        makespanOverGuild: makespanMs / guildMakespan,
        ok: rs.every((x) => x.ok),
      };
    };
    summary.push(summarize('Guild', guild), ...Object.entries(peers).map(([name, rs]) => summarize(name, rs)));

    console.log('');
    printTable(
      ['runner', 'makespan', 'peak RSS', 'peak/budget', 'makespan/LB', 'makespan/Guild', 'all ok'],
      summary.map((s) => [s.runner, fmtMs(s.makespanMs), fmtMB(s.peakBytes), fmtRatio(s.peakOverBudget), fmtRatio(s.makespanOverLowerBound), fmtRatio(s.makespanOverGuild), s.ok ? 'yes' : 'NO']),
    );
    console.log(`(on the host; medians of ${rounds} round(s); LB = Guild's lower bound, median ${fmtMs(lb)}; peer peaks sampled every 100 ms, runner process excluded)`);
    console.log('');
    for (const l of summarizeGuild(guild)) console.log(`Guild on the host: ${l}`);
    console.log(`Guild wall time (spawn to exit, incl. node start-up): median ${fmtMs(median(guild.map((x) => x.wallMs)))}; Guild's own peak RSS ${fmtMB(median(guild.map((x) => x.runnerPeakBytes)))}`);
    const lbTerms = guild[guild.length - 1]!.report.lower_bound;
    console.log(`lower bound terms (last round): chain ${fmtMs(lbTerms.chain_ms)}, memory ${fmtMs(lbTerms.memory_ms)}, cpu ${fmtMs(lbTerms.cpu_ms)}; admissions ${JSON.stringify(guild[guild.length - 1]!.report.admissions)}`);
    for (const s of summary.slice(1)) console.log(`ratio ${s.runner} / Guild: makespan ${fmtRatio(s.makespanOverGuild)}, peak ${fmtRatio(s.peakBytes / summary[0]!.peakBytes)}`);
  }

  let cgroup: MemoryBoundResult['cgroup'] = null;
  if (inCg.length > 0) {
    console.log('');
    const first = inCg[0]!;
    console.log(`Guild inside a ${fmtMB(CGROUP_LIMIT_BYTES)} memory cgroup (Guild read its limit as ${fmtMB(first.report.effective_limit_bytes)} via ${first.report.memory_source}):`);
    for (const l of summarizeGuild(inCg)) console.log(`  ${l}`);
    const ooms = inCg.reduce((n, x) => n + (x.cgroup?.kernelOomKills ?? 0), 0);
    const usage = inCg.map((x) => x.cgroup?.peakUsageBytes).filter((x): x is number => x !== null && x !== undefined);
    console.log(`  kernel OOM kills ${ooms}; cgroup peak usage ${usage.length ? fmtMB(Math.max(...usage)) : 'n/a'} of ${fmtMB(CGROUP_LIMIT_BYTES)}; all ok: ${inCg.every((x) => x.ok) ? 'yes' : 'NO'}`);
    cgroup = {
      limitBytes: CGROUP_LIMIT_BYTES,
      rounds: inCg,
      makespanOverLowerBound: median(inCg.map((g) => g.makespanMs / g.lowerBoundMs)),
      peakOverBudget: Math.max(...inCg.map((x) => Math.max(x.reportPeakBytes, x.externalPeakBytes))) / BUDGET_BYTES,
      kernelOomKills: ooms,
      ok: inCg.every((x) => x.ok),
    };
  } else if (inCgroup) {
    console.log(`\nGuild inside a 1.4 GB memory cgroup: skipped (${cgroupSkipped})`);
  }

  const result: MemoryBoundResult = { rounds, budgetBytes: BUDGET_BYTES, fixedPoolN: fixedN, guild, peers, summary, cgroup, cgroupSkipped };
  const file = writeResult('memory-bound', { benchmark: 'memory-bound', environment: environment(), simulators: sims.map(({ id, mb, ms, expectedBytes }) => ({ id, mb, ms, expectedBytes })), ...result });
  console.log(`wrote ${file}`);
  return result;
}

if (isMain(import.meta.url)) await main();
