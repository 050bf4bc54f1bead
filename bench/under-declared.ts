/**
 * Under-declared agents inside a real memory limit: 16 agents that DECLARE 100 MB but grow to
 * ~400 MB RSS (test/fixtures/hog.mjs `355 1000 0 --ramp 1000`: 355 MB over ~1 s on top of Node's
 * ~45 MB baseline, held ~1 s, exit 0), Σ ≈ 6.4 GB against a 1.2 GB cgroup. Each runner gets its
 * OWN fresh memory cgroup (v1 or v2, created as root beside ours, limit 1.2 GB, no swap), entered
 * by `sh -c 'echo $$ > <cg>/cgroup.procs && exec …'`:
 *   (a) Guild: `node bin/guild.js run <tmp>.yaml --json` with NO --budget (it finds the cgroup
 *       limit itself; the agent type declares memory: 100MB, cpu: 0.05, timeout: 2m);
 *   (b) GNU parallel --memfree 100M -j 16 (its free-memory test reads the host's /proc/meminfo,
 *       not the cgroup), with --joblog for per-job exit codes;
 *   (c) naive: a sh script that starts all 16 at once and waits for each.
 * For each: wall-clock makespan (spawn of the wrapper to its exit, measured here for every runner),
 * tasks completed (exit code 0 only: a job killed by the kernel OOM killer dies by SIGKILL), and
 * kernel OOM kills (delta of the cgroup's oom_kill counter, memory.oom_control / memory.events),
 * plus the cgroup's peak usage where the kernel exposes it; for Guild also its report's makespan,
 * ok, counts, guild_kills, oom_kills, highest pressure level and number of 'pause' responses.
 * Every cgroup is removed at the end, even on failure (leftover processes SIGKILLed first); each
 * runner is bounded by a 3 min timeout. Medians over rounds with rotating order.
 *
 * Needs root and a writable memory cgroup hierarchy, else it prints why and skips. Installs
 * nothing: if `parallel` is missing its row is skipped (apt-get install -y parallel).
 * Run: npx tsc -p . && node dist/bench/under-declared.js [--rounds=1]
 * Writes bench/results/under-declared.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunReport, TaskStatus } from '../src/workflow/report.js';
import type { PressureLevel } from '../src/governor/levels.js';
import { argNumber, environment, fmtMB, fmtMs, fmtRatio, GUILD_BIN, isMain, MB, median, printTable, REPO_ROOT, sleep, writeResult, NODE_BASELINE_MB, HOG, shellQuote, killAll, makeMemoryCgroup, type BenchCgroup } from './lib.js';

const COUNT = 16;
const LIMIT_BYTES = Math.round(1.2 * 1024 ** 3);
const DECLARED_MB = 100;
const HOG_MB = 355;
const HOLD_MS = 1000;
const RAMP_MS = 1000;
const RUNNER_TIMEOUT_MS = 180_000;
const HOG_ARGV: readonly string[] = [process.execPath, HOG, String(HOG_MB), String(HOLD_MS), '0', '--ramp', String(RAMP_MS)];

const HOG_COMMAND = HOG_ARGV.map(shellQuote).join(' ');

// ---------------------------------------------------------------------------------------------
// Memory cgroups

const live = new Set<BenchCgroup>();

/** A fresh memory cgroup limited to `limitBytes` (bench/lib.ts), remembered so that Ctrl-C removes it too. */
function makeCgroup(name: string, limitBytes: number): BenchCgroup | string {
  const cg = makeMemoryCgroup(name, limitBytes);
  if (typeof cg === 'string') return cg;
  const tracked: BenchCgroup = { ...cg, remove: async () => (await cg.remove(), void live.delete(tracked)) };
  live.add(tracked);
  return tracked;
}

async function removeAllCgroups(): Promise<void> {
  for (const cg of [...live]) await cg.remove();
}

// ---------------------------------------------------------------------------------------------
// Running a command inside a cgroup

interface Exec {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  wallMs: number;
  timedOut: boolean;
}

/** Runs argv inside the cgroup (the shell enters it, then execs argv), bounded by the timeout. */
function runInCgroup(cg: BenchCgroup, argv: readonly string[], cwd: string): Promise<Exec> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn('/bin/sh', ['-c', 'echo $$ > "$1" && shift && exec "$@"', 'sh', cg.procsFile, ...argv], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      void killAll(cg.procsFile);
      child.kill('SIGKILL');
    }, RUNNER_TIMEOUT_MS);
    child.once('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, stdout, stderr: `${stderr}${e.message}`, wallMs: performance.now() - t0, timedOut });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, wallMs: performance.now() - t0, timedOut });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The three runners

interface RunnerResult {
  runner: string;
  /** Wall clock, measured here from the wrapper's spawn to its exit. */
  makespanMs: number;
  /** Tasks whose (last) exit code was 0. */
  completed: number;
  /** Delta of the cgroup's kernel oom_kill counter. */
  kernelOomKills: number;
  cgroupPeakBytes: number | null;
  exitCode: number | null;
  timedOut: boolean;
  note?: string;
}

interface GuildResult extends RunnerResult {
  reportMakespanMs: number | null;
  ok: boolean | null;
  counts: Record<TaskStatus, number> | null;
  guildKills: number | null;
  /** Kernel OOM kills as Guild itself saw them (its report's oom_kills). */
  reportOomKills: number | null;
  pressureHighest: PressureLevel | null;
  pauses: number | null;
  budgetBytes: number | null;
  effectiveLimitBytes: number | null;
  tasks: { id: string; status: TaskStatus; exit_code: number | null; signal: string | null; started_ms: number | null; ended_ms: number | null; duration_ms: number; attempts: number; peak_rss_bytes: number | null; kills: number; paused_ms: number }[];
}

const tail = (s: string, n = 400): string => s.trim().slice(-n);

/** Runs one runner in its own fresh cgroup; the cgroup is removed before this returns. */
async function inFreshCgroup<T extends RunnerResult>(name: string, body: (cg: BenchCgroup) => Promise<Omit<T, 'kernelOomKills' | 'cgroupPeakBytes'>>): Promise<T> {
  const cg = makeCgroup(name, LIMIT_BYTES);
  if (typeof cg === 'string') throw new Error(cg);
  try {
    const before = cg.oomKills();
    const r = await body(cg);
    return { ...r, kernelOomKills: cg.oomKills() - before, cgroupPeakBytes: cg.peakBytes() } as T;
  } finally {
    await cg.remove();
  }
}

function workflowYaml(): string {
  const lines = ['name: bench-under-declared', 'agents:', `  liar: { memory: ${DECLARED_MB}MB, cpu: 0.05, timeout: 2m }`, 'tasks:'];
  for (let i = 0; i < COUNT; i++) lines.push(`  - { id: agent-${String(i).padStart(2, '0')}, agent: liar, run: ${JSON.stringify(HOG_COMMAND)} }`);
  return `${lines.join('\n')}\n`;
}

async function runGuild(): Promise<GuildResult> {
  // A fresh folder each time: Guild keeps learned profiles in <workflow dir>/.guild/guild.db.
  const dir = mkdtempSync(join(tmpdir(), 'guild-bench-underdecl-'));
  try {
    const file = join(dir, 'under-declared.yaml');
    writeFileSync(file, workflowYaml());
    return await inFreshCgroup<GuildResult>('guild', async (cg) => {
      const x = await runInCgroup(cg, [process.execPath, GUILD_BIN, 'run', file, '--json'], dir);
      let report: RunReport | null = null;
      try {
        report = JSON.parse(x.stdout) as RunReport;
      } catch {
        /* no report: noted below */
      }
      const tasks = (report?.tasks ?? []).map((t) => ({
        id: t.id,
        status: t.status,
        exit_code: t.exit_code,
        signal: t.signal,
        started_ms: t.started_ms,
        ended_ms: t.ended_ms,
        duration_ms: t.duration_ms,
        attempts: t.attempts,
        peak_rss_bytes: t.peak_rss_bytes,
        kills: t.kills.length,
        paused_ms: t.paused_ms,
      }));
      const ok = report ? report.ok : null;
      const fine = x.code === 0 && ok === true && !x.timedOut;
      return {
        runner: 'Guild',
        makespanMs: x.wallMs,
        completed: tasks.filter((t) => t.status === 'succeeded' && t.exit_code === 0).length,
        exitCode: x.code,
        timedOut: x.timedOut,
        reportMakespanMs: report?.makespan_ms ?? null,
        ok,
        counts: report?.counts ?? null,
        guildKills: report?.guild_kills ?? null,
        reportOomKills: report?.oom_kills ?? null,
        pressureHighest: report?.pressure.highest ?? null,
        pauses: report ? report.responses.filter((r) => r.type === 'pause').length : null,
        budgetBytes: report?.budget_bytes ?? null,
        effectiveLimitBytes: report?.effective_limit_bytes ?? null,
        tasks,
        ...(fine ? {} : { note: `exit ${x.code ?? x.signal}${x.timedOut ? ' (timed out)' : ''}${report ? '' : ', no JSON report'}; ${tail(x.stderr)}` }),
      };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runParallel(): Promise<RunnerResult> {
  const dir = mkdtempSync(join(tmpdir(), 'guild-bench-underdecl-par-'));
  const joblog = join(dir, 'joblog.tsv');
  try {
    return await inFreshCgroup<RunnerResult>('parallel', async (cg) => {
      const argv = ['parallel', '--will-cite', '--memfree', '100M', '-j', String(COUNT), '--joblog', joblog, ':::', ...Array.from({ length: COUNT }, () => HOG_COMMAND)];
      const x = await runInCgroup(cg, argv, dir);
      // joblog: Seq Host Starttime JobRuntime Send Receive Exitval Signal Command; the last line per Seq wins.
      const last = new Map<string, { exit: number; signal: number }>();
      let text = '';
      try {
        text = readFileSync(joblog, 'utf8');
      } catch {
        /* no joblog: nothing completed */
      }
      for (const line of text.split('\n').slice(1)) {
        const f = line.split('\t');
        if (f.length < 8) continue;
        last.set(f[0]!, { exit: Number(f[6]), signal: Number(f[7]) });
      }
      const completed = [...last.values()].filter((j) => j.exit === 0 && j.signal === 0).length;
      const signals = [...last.values()].filter((j) => j.signal !== 0).map((j) => j.signal);
      const fine = x.code === 0 && completed === COUNT && !x.timedOut;
      return {
        runner: 'parallel --memfree 100M',
        makespanMs: x.wallMs,
        completed,
        exitCode: x.code,
        timedOut: x.timedOut,
        ...(fine ? {} : { note: `exit ${x.code ?? x.signal}${x.timedOut ? ' (timed out)' : ''}; ${last.size} jobs logged${signals.length ? `, signals ${signals.join(',')}` : ''}` }),
      };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runNaive(): Promise<RunnerResult> {
  // All 16 at once from a shell (a ~1 MB runner), then each job's exit status: 137 = SIGKILL.
  const script = `pids=''; for i in $(seq ${COUNT}); do ${HOG_COMMAND} >/dev/null & pids="$pids $!"; done; for p in $pids; do wait $p; echo $?; done`;
  return inFreshCgroup<RunnerResult>('naive', async (cg) => {
    const x = await runInCgroup(cg, ['/bin/sh', '-c', script], tmpdir());
    const codes = x.stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map(Number);
    const completed = codes.filter((c) => c === 0).length;
    const fine = completed === COUNT && !x.timedOut;
    return {
      runner: 'naive all-at-once',
      makespanMs: x.wallMs,
      completed,
      exitCode: x.code,
      timedOut: x.timedOut,
      ...(fine ? {} : { note: `exit statuses ${codes.join(',')}${x.timedOut ? ' (timed out)' : ''}` }),
    };
  });
}

// ---------------------------------------------------------------------------------------------

export interface UnderDeclaredSummary {
  runner: string;
  makespanMs: number;
  /** Σ completed over rounds, out of COUNT × rounds. */
  completed: number;
  attempted: number;
  kernelOomKills: number;
  makespanOverGuild: number;
  guildKills: number | null;
  pauses: number | null;
}

export interface UnderDeclaredResult {
  skipped: string | null;
  rounds: number;
  limitBytes: number;
  guild: GuildResult[];
  peers: Record<string, RunnerResult[]>;
  summary: UnderDeclaredSummary[];
}

export async function main(): Promise<UnderDeclaredResult> {
  const rounds = Math.max(1, argNumber('rounds', 1));
  console.log(
    `under-declared: ${COUNT} agents declaring ${DECLARED_MB} MB, each growing to ~${HOG_MB + NODE_BASELINE_MB} MB over ${RAMP_MS} ms and holding ${HOLD_MS} ms ` +
      `(Σ ≈ ${fmtMB(COUNT * (HOG_MB + NODE_BASELINE_MB) * MB)}); every runner in its own memory cgroup limited to ${fmtMB(LIMIT_BYTES)}; ${rounds} round(s)`,
  );

  const probe = makeCgroup('probe', LIMIT_BYTES);
  if (typeof probe === 'string') {
    console.log(`under-declared: SKIPPED: ${probe}`);
    const result: UnderDeclaredResult = { skipped: probe, rounds, limitBytes: LIMIT_BYTES, guild: [], peers: {}, summary: [] };
    console.log(`wrote ${writeResult('under-declared', { benchmark: 'under-declared', environment: environment(), ...result })}`);
    return result;
  }
  console.log(`memory cgroups: v${probe.version} under ${join(probe.dir, '..')}`);
  await probe.remove();

  const hasParallel = spawnSync('parallel', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!hasParallel) console.log('GNU parallel not found: its row is skipped (apt-get install -y parallel)');

  const onSignal = (sig: NodeJS.Signals): void => {
    console.error(`\n${sig}: removing the benchmark's cgroups`);
    void removeAllCgroups().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const guild: GuildResult[] = [];
  const peers: Record<string, RunnerResult[]> = {};
  const addPeer = (r: RunnerResult): void => {
    (peers[r.runner] ??= []).push(r);
  };
  /** Runs a runner and files its result. */
  const track =
    <T extends RunnerResult>(run: () => Promise<T>, keep: (r: T) => void) =>
    async (): Promise<RunnerResult> => {
      const r = await run();
      keep(r);
      return r;
    };
  const steps: [string, () => Promise<RunnerResult>][] = [
    ['Guild', track(runGuild, (r) => guild.push(r))],
    ['naive all-at-once', track(runNaive, addPeer)],
  ];
  if (hasParallel) steps.push(['parallel --memfree 100M', track(runParallel, addPeer)]);
  try {
    for (let r = 0; r < rounds; r++) {
      // Rotate the order each round so slow drift in machine load spreads over every runner.
      for (let k = 0; k < steps.length; k++) {
        const [name, step] = steps[(k + r) % steps.length]!;
        process.stdout.write(`  round ${r + 1}/${rounds}: ${name} … `);
        const x = await step();
        console.log(`${fmtMs(x.makespanMs)}, ${x.completed}/${COUNT} completed, ${x.kernelOomKills} kernel OOM kill(s)${x.note ? ` — ${x.note}` : ''}`);
      }
    }
  } finally {
    await removeAllCgroups();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }

  const guildMakespan = median(guild.map((g) => g.makespanMs));
  const sumOrNull = (xs: readonly (number | null)[]): number | null => (xs.some((x) => x === null) ? null : xs.reduce<number>((a, x) => a + x!, 0));
  const summarize = (runner: string, rs: readonly RunnerResult[], extra: Pick<UnderDeclaredSummary, 'guildKills' | 'pauses'>): UnderDeclaredSummary => {
    const makespanMs = median(rs.map((x) => x.makespanMs));
    return {
      runner,
      makespanMs,
      completed: rs.reduce((a, x) => a + x.completed, 0),
      attempted: COUNT * rs.length,
      kernelOomKills: rs.reduce((a, x) => a + x.kernelOomKills, 0),
      makespanOverGuild: makespanMs / guildMakespan,
      ...extra,
    };
  };
  const summary = [
    summarize('Guild', guild, { guildKills: sumOrNull(guild.map((g) => g.guildKills)), pauses: sumOrNull(guild.map((g) => g.pauses)) }),
    ...Object.entries(peers).map(([name, rs]) => summarize(name, rs, { guildKills: null, pauses: null })),
  ];
  const peakOf = (rs: readonly RunnerResult[]): string => {
    const ps = rs.map((x) => x.cgroupPeakBytes).filter((x): x is number => x !== null);
    return ps.length > 0 ? fmtMB(Math.max(...ps)) : '—';
  };
  const byRunner = new Map<string, readonly RunnerResult[]>([['Guild', guild], ...Object.entries(peers)]);

  console.log('');
  printTable(
    ['runner', 'makespan', 'completed', 'kernel OOM kills', 'Guild kills', 'pauses', 'cgroup peak', 'makespan/Guild'],
    summary.map((s) => [
      s.runner,
      fmtMs(s.makespanMs),
      `${s.completed}/${s.attempted}`,
      String(s.kernelOomKills),
      s.guildKills === null ? '—' : String(s.guildKills),
      s.pauses === null ? '—' : String(s.pauses),
      peakOf(byRunner.get(s.runner) ?? []),
      fmtRatio(s.makespanOverGuild),
    ]),
  );
  console.log(`(makespan: wall clock from spawn to exit, median of ${rounds} round(s); completed = exit code 0; kernel OOM kills = delta of the cgroup's oom_kill counter, summed over rounds)`);

  console.log('');
  for (const g of guild) {
    console.log(
      `Guild report: ok ${g.ok}, makespan_ms ${g.reportMakespanMs === null ? '—' : fmtMs(g.reportMakespanMs)}, counts ${JSON.stringify(g.counts)}, guild_kills ${g.guildKills}, ` +
        `oom_kills ${g.reportOomKills}, pressure.highest ${g.pressureHighest}, pauses ${g.pauses}, budget ${g.budgetBytes === null ? '—' : fmtMB(g.budgetBytes)} ` +
        `of effective limit ${g.effectiveLimitBytes === null ? '—' : fmtMB(g.effectiveLimitBytes)}` +
        (g.note ? `\n  NOTE: ${g.note}` : ''),
    );
    const peaks = g.tasks.map((t) => t.peak_rss_bytes).filter((x): x is number => x !== null);
    if (peaks.length > 0) console.log(`  measured task peaks: min ${fmtMB(Math.min(...peaks))}, median ${fmtMB(median(peaks))}, max ${fmtMB(Math.max(...peaks))} (declared ${DECLARED_MB} MB)`);
    const attempts = g.tasks.reduce((a, t) => a + t.attempts, 0);
    if (g.tasks.length > 0) console.log(`  attempts ${attempts} for ${g.tasks.length} tasks; failed: ${g.tasks.filter((t) => t.status !== 'succeeded').map((t) => `${t.id} (${t.status}, exit ${t.exit_code}, signal ${t.signal})`).join(', ') || 'none'}`);
  }
  for (const s of summary.slice(1)) console.log(`ratio ${s.runner} / Guild: makespan ${fmtRatio(s.makespanOverGuild)} (completed ${s.completed}/${s.attempted} vs Guild's ${summary[0]!.completed}/${summary[0]!.attempted})`);

  const result: UnderDeclaredResult = { skipped: null, rounds, limitBytes: LIMIT_BYTES, guild, peers, summary };
  const file = writeResult('under-declared', {
    benchmark: 'under-declared',
    environment: environment(),
    workload: { count: COUNT, declaredMb: DECLARED_MB, hogMb: HOG_MB, holdMs: HOLD_MS, rampMs: RAMP_MS, command: HOG_COMMAND },
    ...result,
  });
  console.log(`wrote ${file}`);
  return result;
}

if (isMain(import.meta.url)) await main();
