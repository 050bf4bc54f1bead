import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run from dist/test/). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const GUILD = join(ROOT, 'bin', 'guild.js');
export const HOG = join(ROOT, 'test', 'fixtures', 'hog.mjs');
export const MB = 1024 * 1024;

/** A fresh temporary folder. */
export function tempDir(prefix = 'guild-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Writes a workflow into a fresh folder and returns its path. */
export function writeWorkflow(yaml: string, dir = tempDir()): string {
  const file = join(dir, 'guild.yaml');
  writeFileSync(file, yaml);
  return file;
}

/** `node hog.mjs <mb> <holdMs> [code] [...extra]` as a shell command. */
export function hog(mb: number, holdMs: number, extra = ''): string {
  return `${process.execPath} ${HOG} ${mb} ${holdMs} ${extra}`.trim();
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the guild CLI to completion. */
export function guild(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; wrap?: string; onStderr?: (all: string) => void } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const env = { ...process.env, ...opts.env };
    // `wrap`: a shell prefix that ends by exec-ing guild (e.g. to enter a cgroup first).
    const child = opts.wrap
      ? spawn('/bin/sh', ['-c', `${opts.wrap} "$@"`, 'sh', ...args], { cwd: opts.cwd ?? ROOT, env })
      : spawn(process.execPath, [GUILD, ...args], { cwd: opts.cwd ?? ROOT, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      opts.onStderr?.(stderr);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Pids from a file the hog fixture appends to. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie still answers kill(0); it holds no memory and is no orphan of ours to worry about.
    const st = spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim();
    return st !== '' && !st.startsWith('Z');
  } catch {
    return false;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Intervals [start, end] overlap count at the worst instant. */
export function maxOverlap(intervals: readonly { start: number; end: number }[]): number {
  const points = intervals.flatMap((i) => [
    { t: i.start, d: 1 },
    { t: i.end, d: -1 },
  ]);
  // Ends before starts at the same instant: a slot freed and reused is not an overlap.
  points.sort((a, b) => a.t - b.t || a.d - b.d);
  let cur = 0;
  let max = 0;
  for (const p of points) {
    cur += p.d;
    max = Math.max(max, cur);
  }
  return max;
}

/** A port nobody listens on right now (the kernel's pick, released for the code under test to take). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** A git repository in a fresh temp folder (an author configured), and `git` run in it. */
export function gitRepo(prefix = 'guild-git-'): { dir: string; git: (...args: string[]) => string } {
  const dir = tempDir(prefix);
  const git = (...args: string[]): string => execFileSync('git', args, { cwd: dir, encoding: 'utf8' }).trim();
  git('init', '-q');
  git('config', 'user.email', 't@example.com');
  git('config', 'user.name', 't');
  return { dir, git };
}
