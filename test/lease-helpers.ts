import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { alive, GUILD, sleep } from './helpers.js';

/** A `guild` process left running while the test looks at it. */
export interface Running {
  child: ChildProcess;
  readonly stdout: string;
  readonly stderr: string;
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startGuild(args: string[], cwd: string): Running {
  const child = spawn(process.execPath, [GUILD, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const r = { child, stdout: '', stderr: '', closed: null as unknown as Running['closed'] };
  child.stdout!.on('data', (d: Buffer) => (r.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (r.stderr += d.toString()));
  r.closed = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return r;
}

/**
 * Polls until `ok()` holds, for at most `tries` × 50 ms: a bound against a hung test, never an
 * assertion about how fast anything is.
 */
export async function until(ok: () => boolean, what: string, tries = 600): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (ok()) return;
    await sleep(50);
  }
  throw new Error(`gave up waiting: ${what}`);
}

export const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

/** Live (non-zombie) processes whose environment says they belong to `runId`. */
export function processesOfRun(runId: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/environ`, 'latin1').includes(`GUILD_RUN_ID=${runId}\0`) && alive(Number(e))) out.push(Number(e));
    } catch {
      /* gone or not ours */
    }
  }
  return out;
}

/** The run id a plain-progress `guild run` prints first. */
export const runIdOf = (stderr: string): string | undefined => /guild: run (\S+):/.exec(stderr)?.[1];
