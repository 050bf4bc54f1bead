/**
 * Many small tasks (the adversary's case of issue 10): 200 agent simulators (bench/agent-sim.mjs)
 * whose trees hold ~50 MB each (5 MB allocated and touched + the ~45 MB Node baseline), declared
 * accurately as `memory: 50MB`, 500–1500 ms each (seeded), under `--budget 600MB`. Guild runs
 * them through its CLI; in the same run, on the same 200 commands, the peer is a fixed pool sized
 * budget ÷ memory (12 at once), or GNU parallel -j12 where it is installed.
 *
 * Both on the host and inside a fresh 800 MB memory cgroup (600 MB is then Guild's default 75 %;
 * v1 /sys/fs/cgroup/memory/guild-bench-many-small-<pid>, or v2; removed after; skipped with the
 * reason where it cannot be made). Reports makespan / Guild's lower bound, peak / budget, and
 * what the governor did from the report's responses[]: pauses, caps, kills, the highest level.
 * Before issue 10 the governor read these agents filling what they declared as pressure:
 * optimal → critical, 16–24 pauses, a cap of 1, 2.3–2.4 × the lower bound.
 *
 * Run: npx tsc -p . && node dist/bench/many-small.js [--rounds=1] [--where=host|cgroup|both]
 * Writes bench/results/many-small.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  NODE_BASELINE_MB,
  prng,
  REPO_ROOT,
  runGuildCli,
  shellQuote,
  startTreeSampler,
  writeResult,
  type BenchCgroup,
  type GovernorSummary,
} from './lib.js';

const COUNT = 200;
const TASK_MB = 50;
const BUDGET = '600MB';
const BUDGET_BYTES = 600 * MB;
const CGROUP_LIMIT_BYTES = 800 * MB;
const POOL = Math.floor(BUDGET_BYTES / (TASK_MB * MB));
const SEED = 0x5a11;
const SIM = join(REPO_ROOT, 'bench', 'agent-sim.mjs');

interface Task {
  id: string;
  ms: number;
  argv: string[];
}

function tasks(): Task[] {
  const rand = prng(SEED);
  return Array.from({ length: COUNT }, (_, i) => {
    const ms = 500 + Math.floor(rand() * 1001);
    return { id: `t${String(i).padStart(3, '0')}`, ms, argv: [SIM, String(TASK_MB - NODE_BASELINE_MB), String(ms)] };
  });
}

const commandLine = (t: Task): string => [process.execPath, ...t.argv].map(shellQuote).join(' ');

/** One agent type: every task declares the same 50 MB; the mean duration is the type's. */
function workflowYaml(ts: readonly Task[]): string {
  const mean = Math.round(ts.reduce((n, t) => n + t.ms, 0) / ts.length);
  const lines = ['name: bench-many-small', 'agents:', `  small: { memory: ${TASK_MB}MB, cpu: 0.05, duration: ${mean}ms }`, 'tasks:'];
  for (const t of ts) lines.push(`  - { id: ${t.id}, agent: small, run: ${JSON.stringify(commandLine(t))} }`);
  return `${lines.join('\n')}\n`;
}

interface GuildResult {
  where: 'host' | 'cgroup';
  makespanMs: number;
  lowerBoundMs: number;
  peakBytes: number;
  externalPeakBytes: number;
  ok: boolean;
  governor: GovernorSummary;
  cgroupPeakBytes: number | null;
  kernelOomKills: number | null;
  note?: string;
}

interface PeerResult {
  runner: string;
  makespanMs: number;
  peakBytes: number;
  ok: boolean;
}

async function runGuild(ts: readonly Task[], dir: string, cg?: BenchCgroup): Promise<GuildResult> {
  // A fresh folder each run: learned profiles would otherwise carry over between runs.
  const runDir = mkdtempSync(join(dir, 'run-'));
  const file = join(runDir, 'many-small.yaml');
  writeFileSync(file, workflowYaml(ts));
  const oomBefore = cg?.oomKills() ?? 0;
  const r = await runGuildCli(file, ['--budget', BUDGET], runDir, cg);
  const ok = r.code === 0 && r.report.ok;
  return {
    where: cg ? 'cgroup' : 'host',
    makespanMs: r.report.makespan_ms,
    lowerBoundMs: r.report.lower_bound_ms,
    peakBytes: r.report.peak_rss_bytes,
    externalPeakBytes: r.externalPeakBytes,
    ok,
    governor: governorSummary(r.report),
    cgroupPeakBytes: cg?.peakBytes() ?? null,
    kernelOomKills: cg ? cg.oomKills() - oomBefore : null,
    ...(ok ? {} : { note: `exit ${r.code}; ${r.stderr.slice(-300)}` }),
  };
}

function waitExit(child: ReturnType<typeof spawn>): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('error', () => resolve(null));
    child.once('exit', (code) => resolve(code));
  });
}

/** The peer: GNU parallel -j<POOL> where installed, else the same fixed pool in this process. */
async function runPeer(ts: readonly Task[], hasParallel: boolean): Promise<PeerResult> {
  const t0 = performance.now();
  if (hasParallel) {
    const child = spawn('parallel', ['--will-cite', '-j', String(POOL), ':::', ...ts.map(commandLine)], { stdio: 'ignore' });
    const sampler = startTreeSampler(child.pid!);
    const code = await waitExit(child);
    return { runner: `GNU parallel -j${POOL}`, makespanMs: performance.now() - t0, peakBytes: sampler.stop().peakAgentsBytes, ok: code === 0 };
  }
  const sampler = startTreeSampler(process.pid);
  let next = 0;
  let failures = 0;
  const worker = async (): Promise<void> => {
    while (next < ts.length) {
      const t = ts[next++]!;
      if ((await waitExit(spawn(process.execPath, t.argv, { stdio: 'ignore' }))) !== 0) failures++;
    }
  };
  await Promise.all(Array.from({ length: POOL }, worker));
  return { runner: `fixed pool N=${POOL}`, makespanMs: performance.now() - t0, peakBytes: sampler.stop().peakAgentsBytes, ok: failures === 0 };
}

export interface ManySmallResult {
  rounds: number;
  budgetBytes: number;
  guild: GuildResult[];
  peer: PeerResult[];
  cgroupSkipped: string | null;
  summary: { runner: string; makespanOverLowerBound: number; peakOverBudget: number; pauses: number; caps: number; kills: number; ok: boolean }[];
}

export async function main(): Promise<ManySmallResult> {
  const rounds = Math.max(1, argNumber('rounds', 1));
  const where = process.argv.find((a) => a.startsWith('--where='))?.slice('--where='.length) ?? 'both';
  const onHost = where === 'host' || where === 'both';
  const inCgroup = where === 'cgroup' || where === 'both';
  const ts = tasks();
  const hasParallel = spawnSync('parallel', ['--version'], { stdio: 'ignore' }).status === 0;
  console.log(
    `many-small: ${COUNT} tasks of ~${TASK_MB} MB (declared ${TASK_MB}MB), ${Math.min(...ts.map((t) => t.ms))}–${Math.max(...ts.map((t) => t.ms))} ms; ` +
      `budget ${BUDGET}; peer ${hasParallel ? `GNU parallel -j${POOL}` : `fixed pool N=${POOL} (GNU parallel not installed)`}; ${rounds} round(s)`,
  );
  const dir = mkdtempSync(join(tmpdir(), 'guild-bench-small-'));
  const guild: GuildResult[] = [];
  const peer: PeerResult[] = [];
  let cgroupSkipped: string | null = inCgroup ? null : 'not asked for (--where=host)';
  try {
    for (let r = 0; r < rounds; r++) {
      if (onHost) {
        process.stdout.write(`  round ${r + 1}/${rounds}: Guild on the host … `);
        guild.push(await runGuild(ts, dir));
        console.log(fmtMs(guild[guild.length - 1]!.makespanMs));
        process.stdout.write(`  round ${r + 1}/${rounds}: peer … `);
        peer.push(await runPeer(ts, hasParallel));
        console.log(fmtMs(peer[peer.length - 1]!.makespanMs));
      }
      if (inCgroup && !cgroupSkipped) {
        const cg = makeMemoryCgroup('many-small', CGROUP_LIMIT_BYTES);
        if (typeof cg === 'string') {
          cgroupSkipped = cg;
        } else {
          process.stdout.write(`  round ${r + 1}/${rounds}: Guild in an ${fmtMB(CGROUP_LIMIT_BYTES)} cgroup … `);
          try {
            guild.push(await runGuild(ts, dir, cg));
          } finally {
            await cg.remove();
          }
          console.log(fmtMs(guild[guild.length - 1]!.makespanMs));
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (inCgroup && cgroupSkipped) console.log(`in an ${fmtMB(CGROUP_LIMIT_BYTES)} cgroup: skipped (${cgroupSkipped})`);

  console.log('');
  const summary: ManySmallResult['summary'] = [];
  for (const w of ['host', 'cgroup'] as const) {
    const rs = guild.filter((g) => g.where === w);
    if (rs.length === 0) continue;
    const ratio = median(rs.map((g) => g.makespanMs / g.lowerBoundMs));
    const peak = Math.max(...rs.map((g) => Math.max(g.peakBytes, g.externalPeakBytes)));
    const label = w === 'host' ? 'Guild on the host' : `Guild in an ${fmtMB(CGROUP_LIMIT_BYTES)} cgroup`;
    console.log(`${label}: makespan / lower bound ${fmtRatio(ratio)} (makespan ${fmtMs(median(rs.map((g) => g.makespanMs)))}, LB ${fmtMs(median(rs.map((g) => g.lowerBoundMs)))}); peak / budget ${fmtRatio(peak / BUDGET_BYTES)}; all ok ${rs.every((g) => g.ok) ? 'yes' : 'NO'}`);
    for (const [i, g] of rs.entries()) {
      const cg = g.kernelOomKills === null ? '' : `; kernel OOM kills ${g.kernelOomKills}, cgroup peak usage ${g.cgroupPeakBytes === null ? 'n/a' : fmtMB(g.cgroupPeakBytes)}`;
      console.log(`  round ${i + 1} governor: ${fmtGovernor(g.governor)}${cg}${g.note ? `; ${g.note}` : ''}`);
    }
    summary.push({
      runner: label,
      makespanOverLowerBound: ratio,
      peakOverBudget: peak / BUDGET_BYTES,
      pauses: rs.reduce((n, g) => n + g.governor.pauses, 0),
      caps: rs.reduce((n, g) => n + g.governor.caps, 0),
      kills: rs.reduce((n, g) => n + g.governor.kills, 0),
      ok: rs.every((g) => g.ok),
    });
  }
  const hostLb = median(guild.filter((g) => g.where === 'host').map((g) => g.lowerBoundMs));
  if (peer.length > 0) {
    const ratio = median(peer.map((p) => p.makespanMs)) / hostLb;
    console.log(`${peer[0]!.runner}: makespan / Guild's lower bound ${fmtRatio(ratio)} (makespan ${fmtMs(median(peer.map((p) => p.makespanMs)))}); peak / budget ${fmtRatio(Math.max(...peer.map((p) => p.peakBytes)) / BUDGET_BYTES)}; all ok ${peer.every((p) => p.ok) ? 'yes' : 'NO'}`);
    summary.push({ runner: peer[0]!.runner, makespanOverLowerBound: ratio, peakOverBudget: Math.max(...peer.map((p) => p.peakBytes)) / BUDGET_BYTES, pauses: 0, caps: 0, kills: 0, ok: peer.every((p) => p.ok) });
  }
  const result: ManySmallResult = { rounds, budgetBytes: BUDGET_BYTES, guild, peer, cgroupSkipped, summary };
  console.log(`wrote ${writeResult('many-small', { benchmark: 'many-small', environment: environment(), ...result })}`);
  return result;
}

if (isMain(import.meta.url)) await main();
