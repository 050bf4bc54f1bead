/**
 * Shared parts of the distributed-mode benchmarks (bench/distributed-throughput.ts,
 * bench/distributed-memory.ts): the Redis they use, a cluster key, `guild worker` processes on
 * loopback (on the host or inside a memory cgroup) started and stopped like the tests start them,
 * and the removal of a queue family's keys. Not a benchmark itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { connectRedis } from '../src/cache/redis-tier.js';
import { BULL_PREFIX } from '../src/distributed/names.js';
import { GUILD_BIN, sleep, type BenchCgroup } from './lib.js';

/** The Redis of both benchmarks: `--redis=URL`, else a local one. */
export const REDIS_URL = process.argv.find((a) => a.startsWith('--redis='))?.slice('--redis='.length) ?? 'redis://127.0.0.1:6379';

/** Workers and submitter sign and check jobs with GUILD_CLUSTER_KEY: one for this process and its children. */
export function ensureClusterKey(): void {
  if ((process.env.GUILD_CLUSTER_KEY ?? '').length < 16) process.env.GUILD_CLUSTER_KEY = `guild-bench-${randomUUID()}`;
}

/** A Redis client, or the reason there is none (the benchmark then says so and stops). */
export async function benchRedis(): Promise<Redis | string> {
  try {
    return await connectRedis(REDIS_URL, { timeoutMs: 2000 });
  } catch (e) {
    return `no Redis at ${REDIS_URL}: ${(e as Error).message}`;
  }
}

/** CPU time (user + system, ms) a live process has used itself, its reaped children excluded; NaN once it is gone. */
export function cpuMs(pid: number): number {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // f[11] = utime (field 14), f[12] = stime (15), in clock ticks of 10 ms (USER_HZ 100 on Linux).
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}

/** A queue family's keys: BullMQ's (one queue per agent type) and Guild's own. */
export const clusterPatterns = (queue: string): string[] => [`${BULL_PREFIX}:${queue}.*`, `guild-cluster:${queue}:*`];

/** Removes every key matching the patterns (SCAN + UNLINK); returns how many. */
export async function deleteKeys(client: Redis, patterns: readonly string[]): Promise<number> {
  let n = 0;
  for (const pattern of patterns) {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) n += await client.unlink(...keys);
    } while (cursor !== '0');
  }
  return n;
}

/** The `distributed:` line a benchmark workflow starts with. */
export const distributedHeader = (queue: string, grace = '30s'): string => `distributed: { redis: "${REDIS_URL}", queue: ${queue}, grace: ${grace} }\n`;

export interface BenchWorker {
  name: string;
  budgetBytes: number;
  child: ChildProcess;
  /** Its stderr so far (one line per job taken and ended). */
  stderr(): string;
  /** SIGTERM (running jobs finish), SIGKILL after 15 s; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts `node bin/guild.js worker` serving `queue` and resolves once it prints 'serving queue'
 * (as test/distributed.test.ts waits for it). With `cg`, the worker runs inside that cgroup from
 * its first byte (`sh -c 'echo $$ > cgroup.procs; exec node …'`: the pid stays the worker's).
 */
export async function startGuildWorker(o: { name: string; queue: string; budgetBytes: number; workdir: string; cg?: BenchCgroup }): Promise<BenchWorker> {
  const argv = [process.execPath, GUILD_BIN, 'worker', '--redis', REDIS_URL, '--queue', o.queue, '--budget', `${o.budgetBytes}B`, '--name', o.name, '--workdir', o.workdir];
  const child = o.cg
    ? spawn('/bin/sh', ['-c', 'echo $$ > "$1" && shift && exec "$@"', 'sh', o.cg.procsFile, ...argv], { cwd: o.workdir, stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(argv[0]!, argv.slice(1), { cwd: o.workdir, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const exited = new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(null));
    child.once('exit', (code) => resolve(code));
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const serving = await Promise.race([
    (async () => {
      while (!err.includes('serving queue')) await sleep(20);
      return true;
    })(),
    exited.then(() => false),
    sleep(20_000).then(() => false),
  ]);
  if (!serving) {
    child.kill('SIGKILL');
    throw new Error(`guild worker ${o.name} did not start:\n${err.slice(-2000)}`);
  }
  return {
    name: o.name,
    budgetBytes: o.budgetBytes,
    child,
    stderr: () => err,
    stop: async () => {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}
