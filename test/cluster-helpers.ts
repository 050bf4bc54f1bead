import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { BULL_PREFIX } from '../src/distributed/names.js';
import { GUILD, MB, tempDir } from './helpers.js';

// What the distributed-mode tests share: real `guild worker` processes and git repositories.

export const CLUSTER_TEST_KEY = 'test-cluster-key-0123456789abcdef';

export interface RunningWorker {
  name: string;
  budget: number;
  child: ChildProcessWithoutNullStreams;
  stderr: string;
  exited: Promise<number | null>;
}

/** Starts `guild worker` and resolves once it serves; it is added to `workers` (the caller kills them). */
export async function startWorker(workers: RunningWorker[], o: { redis: string; queue: string; name: string; budgetMb: number; workdir: string; env: NodeJS.ProcessEnv; extra?: string[] }): Promise<RunningWorker> {
  const child = spawn(process.execPath, [GUILD, 'worker', '--redis', o.redis, '--queue', o.queue, '--budget', `${o.budgetMb}MB`, '--name', o.name, '--workdir', o.workdir, ...(o.extra ?? [])], { cwd: o.workdir, env: { ...process.env, ...o.env } });
  const w: RunningWorker = { name: o.name, budget: o.budgetMb * MB, child, stderr: '', exited: new Promise((r) => child.on('exit', (code) => r(code))) };
  workers.push(w);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker ${o.name} did not start:\n${w.stderr}`)), 20_000);
    child.stderr.on('data', (d: Buffer) => {
      w.stderr += d.toString();
      if (w.stderr.includes('serving queue')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return w;
}

/** A git repository holding `yaml` as guild.yaml, committed (workers check the commit). */
export function gitRepo(yaml: string): string {
  const dir = tempDir('guild-dist-');
  writeFileSync(join(dir, 'guild.yaml'), yaml);
  const git = (...args: string[]): void => void execFileSync('git', ['-C', dir, ...args], { stdio: 'ignore' });
  git('init', '-q');
  git('add', '.');
  git('-c', 'user.email=test@guild', '-c', 'user.name=test', 'commit', '-qm', 'workflow');
  return dir;
}

export function commitFile(dir: string, name: string, text: string): void {
  writeFileSync(join(dir, name), text);
  execFileSync('git', ['-C', dir, 'add', name], { stdio: 'ignore' });
  execFileSync('git', ['-C', dir, '-c', 'user.email=test@guild', '-c', 'user.name=test', 'commit', '-qm', name], { stdio: 'ignore' });
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Kills the workers and removes every key of the queue families (BullMQ's and Guild's own). */
export async function endCluster(workers: RunningWorker[], client: Redis | null, queues: readonly string[]): Promise<void> {
  for (const w of workers) w.child.kill('SIGKILL');
  await Promise.all(workers.map((w) => w.exited));
  if (!client) return;
  for (const pattern of queues.flatMap((q) => [`${BULL_PREFIX}:${q}.*`, `guild-cluster:${q}:*`])) {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await client.unlink(...keys);
    } while (cursor !== '0');
  }
  client.disconnect();
}
