/**
 * Shared helpers for the benchmarks: seeded PRNG, statistics, table printing, result files,
 * an independent /proc process-tree RSS sampler, "am I the entry point" detection, fresh memory
 * cgroups, and running Guild's CLI (on the host or inside such a cgroup).
 * Not a benchmark itself.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { PressureLevel } from '../src/governor/levels.js';
import { resolveMemoryCgroup } from '../src/system/cgroup.js';
import type { RunReport } from '../src/workflow/report.js';
import { headlines } from './headlines.js';

/** The repository root (this file runs as dist/bench/lib.js). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const GUILD_BIN = join(REPO_ROOT, 'bin', 'guild.js');

/** True when the module at `metaUrl` is the script node was started with. */
export function isMain(metaUrl: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && pathToFileURL(resolve(entry)).href === metaUrl;
}

/** mulberry32: a small, fast, seeded PRNG returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher–Yates shuffle in place with the given PRNG. */
export function shuffle<T>(a: T[], rand: () => number): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

export function median(xs: readonly number[]): number {
  return quantile(xs, 0.5);
}

/** Linear-interpolated quantile (q in [0, 1]). */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export const MB = 1024 ** 2;
/** A Node process alone: what an agent simulator's tree holds beyond the memory it allocates. */
export const NODE_BASELINE_MB = 45;
/** The allocate-and-hold fixture shared with the tests. */
export const HOG = join(REPO_ROOT, 'test', 'fixtures', 'hog.mjs');
/** Quotes one word for /bin/sh. */
export const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
/** V8's collector when run with --expose-gc, else undefined. */
export const gc = (globalThis as { gc?: () => void }).gc;
export const fmtMB = (b: number): string => `${(b / MB).toFixed(0)} MB`;
export const fmtMs = (ms: number): string => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`);
export const fmtRatio = (r: number): string => (Number.isFinite(r) ? r.toFixed(2) : '—');

/** Prints an aligned text table: the first `left` columns (text) aligned left, the rest (figures) right. */
export function printTable(headers: readonly string[], rows: readonly (readonly string[])[], left = 1): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i < left ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

let metricsReported = false;

/**
 * Writes bench/results/<name>.json (source tree, not dist) and returns its path. Run as a Guild
 * task (`npm run bench` measures each benchmark through `guild bench`), it also reports the
 * headline figures on GUILD_METRICS, once per process (a task's metric lines add up).
 */
export function writeResult(name: string, data: unknown): string {
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  const sink = process.env.GUILD_METRICS;
  if (sink && !metricsReported) {
    metricsReported = true;
    const values = Object.fromEntries(headlines(name, data).map((h) => [h.metric, h.value]));
    if (Object.keys(values).length > 0) appendFileSync(sink, `${JSON.stringify(values)}\n`);
  }
  return file;
}

/** Common metadata for every result file. */
export function environment(): Record<string, unknown> {
  return { node: process.version, platform: process.platform, arch: process.arch, cpus: readCpuCount(), date: new Date().toISOString() };
}

function readCpuCount(): number {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8').split('\n').filter((l) => l.startsWith('processor')).length;
  } catch {
    return 0;
  }
}

/** `--name=value` from argv, else the fallback. */
export function argNumber(name: string, fallback: number): number {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  const n = a ? Number(a.slice(name.length + 3)) : NaN;
  return Number.isFinite(n) ? n : fallback;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// An independent /proc reader (deliberately not Guild's code, so it can check Guild's figures).

const PAGE_SIZE = 4096;

interface ProcEntry {
  ppid: number;
  rssBytes: number;
  zombie: boolean;
}

/** One scan of /proc: every live process's parent and RSS. */
export function scanProc(): Map<number, ProcEntry> {
  const out = new Map<number, ProcEntry>();
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const n of names) {
    const c = n.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${n}/stat`, 'utf8');
    } catch {
      continue;
    }
    const close = text.lastIndexOf(')');
    const f = text.slice(close + 2).split(' ');
    // f[0] = state (field 3), f[1] = ppid (4), f[21] = rss pages (24)
    out.set(Number(n), { ppid: Number(f[1]), rssBytes: Number(f[21]) * PAGE_SIZE, zombie: f[0] === 'Z' || f[0] === 'X' });
  }
  return out;
}

/** Summed RSS of every live descendant of `root` (root itself included only if `includeRoot`). */
export function treeRss(procs: Map<number, ProcEntry>, root: number, includeRoot: boolean): number {
  const children = new Map<number, number[]>();
  for (const [pid, e] of procs) {
    let l = children.get(e.ppid);
    if (!l) children.set(e.ppid, (l = []));
    l.push(pid);
  }
  let total = 0;
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    const e = procs.get(pid);
    if (e && !e.zombie && (pid !== root || includeRoot)) total += e.rssBytes;
    for (const c of children.get(pid) ?? []) stack.push(c);
  }
  return total;
}

/** VmRSS of one process in bytes, or null if it is gone. */
export function vmRss(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * Samples, every `intervalMs`, the summed RSS of the descendants of `root` (the runner itself
 * excluded), plus the runner's own RSS. Call `stop()` for the peaks.
 */
export function startTreeSampler(root: number, intervalMs = 100): { stop: () => { peakAgentsBytes: number; peakRunnerBytes: number; samples: number } } {
  let peakAgents = 0;
  let peakRunner = 0;
  let samples = 0;
  const tick = (): void => {
    const procs = scanProc();
    const agents = treeRss(procs, root, false);
    const runner = procs.get(root)?.rssBytes ?? 0;
    samples++;
    if (agents > peakAgents) peakAgents = agents;
    if (runner > peakRunner) peakRunner = runner;
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  return {
    stop: () => {
      clearInterval(timer);
      tick();
      return { peakAgentsBytes: peakAgents, peakRunnerBytes: peakRunner, samples };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Memory cgroups (the container case): a fresh group beside ours, entered by a shell that then
// execs the runner, so the runner and everything it starts are inside from their first byte.

export interface BenchCgroup {
  version: 1 | 2;
  dir: string;
  procsFile: string;
  /** The kernel's oom_kill counter for this group; NaN where the kernel does not expose it. */
  oomKills(): number;
  /** Peak usage since creation (v1 memory.max_usage_in_bytes, v2 memory.peak); null if unavailable. */
  peakBytes(): number | null;
  /** SIGKILLs every process in the group until it is empty (bounded), then removes the group. */
  remove(): Promise<void>;
}

function readPids(procsFile: string): number[] {
  try {
    return readFileSync(procsFile, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map(Number);
  } catch {
    return [];
  }
}

/** SIGKILLs every process listed in the group (repeatedly: a dying runner may still fork). */
export async function killAll(procsFile: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const pids = readPids(procsFile);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    await sleep(100);
  }
}

function readNumber(file: string): number | null {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

/**
 * Creates a fresh memory cgroup `guild-bench-<name>-<pid>` at the root of the memory hierarchy
 * (v1 /sys/fs/cgroup/memory, or v2), limited to `limitBytes` with no swap; or says why it cannot.
 */
export function makeMemoryCgroup(name: string, limitBytes: number): BenchCgroup | string {
  if (process.getuid?.() !== 0) return 'needs root to create a memory cgroup';
  let loc: ReturnType<typeof resolveMemoryCgroup>;
  try {
    loc = resolveMemoryCgroup(readFileSync('/proc/self/cgroup', 'utf8'), readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch (e) {
    return `cannot read /proc/self/cgroup or mountinfo: ${(e as Error).message}`;
  }
  if (!loc) return 'no memory cgroup hierarchy is mounted';
  const { version } = loc;
  const dir = join(loc.mountPoint, `guild-bench-${name}-${process.pid}`);
  try {
    mkdirSync(dir);
  } catch (e) {
    return `cannot create a memory cgroup under ${loc.mountPoint}: ${(e as Error).message}`;
  }
  const procsFile = join(dir, 'cgroup.procs');
  const eventsFile = join(dir, version === 1 ? 'memory.oom_control' : 'memory.events');
  const cg: BenchCgroup = {
    version,
    dir,
    procsFile,
    oomKills: () => {
      try {
        return Number(/^oom_kill (\d+)$/m.exec(readFileSync(eventsFile, 'utf8'))?.[1] ?? NaN);
      } catch {
        return NaN;
      }
    },
    peakBytes: () => readNumber(join(dir, version === 1 ? 'memory.max_usage_in_bytes' : 'memory.peak')),
    remove: async () => {
      await killAll(procsFile);
      // A just-emptied group can stay busy for a moment while the kernel tears it down.
      for (let i = 0; i < 50; i++) {
        try {
          rmdirSync(dir);
          return;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
          if (i === 49) console.error(`could not remove cgroup ${dir}: ${(e as Error).message}`);
          await sleep(100);
        }
      }
    },
  };
  try {
    if (version === 1) {
      writeFileSync(join(dir, 'memory.limit_in_bytes'), String(limitBytes));
    } else {
      writeFileSync(join(dir, 'memory.max'), String(limitBytes));
      if (existsSync(join(dir, 'memory.swap.max'))) writeFileSync(join(dir, 'memory.swap.max'), '0');
    }
  } catch (e) {
    void cg.remove();
    return `cannot set the limit of ${dir}: ${(e as Error).message}`;
  }
  return cg;
}

/** What one `guild run --json` printed, and what was measured around it. */
export interface GuildCliRun {
  code: number | null;
  stderr: string;
  /** Spawn to exit, measured here (node start-up included). */
  wallMs: number;
  report: RunReport;
  /** Peak summed RSS of Guild's descendants, sampled here every 100 ms (Guild itself excluded). */
  externalPeakBytes: number;
  externalRunnerPeakBytes: number;
}

/**
 * Runs `node bin/guild.js run <file> --json ...args` in `cwd`, on the host or, with `cg`, inside
 * that cgroup (`sh -c 'echo $$ > cgroup.procs; exec node …'`: the pid the sampler watches
 * becomes Guild). Throws with Guild's stderr if no JSON report came out.
 */
export async function runGuildCli(file: string, args: readonly string[], cwd: string, cg?: BenchCgroup): Promise<GuildCliRun> {
  const argv = [process.execPath, GUILD_BIN, 'run', file, '--json', ...args];
  const t0 = performance.now();
  const child = cg
    ? spawn('/bin/sh', ['-c', 'echo $$ > "$1" && shift && exec "$@"', 'sh', cg.procsFile, ...argv], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(argv[0]!, argv.slice(1), { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const sampler = startTreeSampler(child.pid!);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((res) => {
    child.once('error', () => res(null));
    child.once('exit', (c) => res(c));
  });
  const wallMs = performance.now() - t0;
  const ext = sampler.stop();
  let report: RunReport;
  try {
    report = JSON.parse(stdout) as RunReport;
  } catch {
    throw new Error(`guild exited ${code} without a JSON report:\n${stderr.slice(-2000)}`);
  }
  return { code, stderr, wallMs, report, externalPeakBytes: ext.peakAgentsBytes, externalRunnerPeakBytes: ext.peakRunnerBytes };
}

/** What the governor did in one run, from its report's `responses[]` and `pressure`. */
export interface GovernorSummary {
  pauses: number;
  /** Cap responses that set a cap (lifting one is not counted), and the lowest cap set. */
  caps: number;
  lowestCap: number | null;
  kills: number;
  highest: PressureLevel;
  /** ms spent at each level above optimal. */
  timeAboveOptimalMs: number;
}

export function governorSummary(report: RunReport): GovernorSummary {
  let pauses = 0;
  let caps = 0;
  let lowestCap: number | null = null;
  let kills = 0;
  for (const r of report.responses) {
    if (r.type === 'pause') pauses++;
    else if (r.type === 'kill') kills++;
    else if (r.type === 'cap' && r.cap !== null) {
      caps++;
      lowestCap = Math.min(lowestCap ?? Infinity, r.cap);
    }
  }
  const t = report.pressure.time_ms;
  return { pauses, caps, lowestCap, kills, highest: report.pressure.highest, timeAboveOptimalMs: t.moderate + t.high + t.critical + t.emergency };
}

export const fmtGovernor = (g: GovernorSummary): string =>
  `highest ${g.highest}, ${fmtMs(g.timeAboveOptimalMs)} above optimal; ${g.pauses} pauses, ${g.caps} caps${g.lowestCap === null ? '' : ` (lowest ${g.lowestCap})`}, ${g.kills} kills`;
