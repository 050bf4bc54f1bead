import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { RunReport } from '../src/workflow/report.js';
import { CLUSTER_TEST_KEY, commitFile, gitRepo, startWorker, type RunningWorker } from './cluster-helpers.js';
import { GUILD, tempDir } from './helpers.js';

// Redis restarted under a distributed run: this file's own `redis-server` on its own port (never
// the shared one), with its data kept (AOF) or lost. Workers and the submitter must reconnect and
// the run must complete; when Redis comes back empty, the submitter enqueues again what vanished.

const PORT = 6400 + (process.pid % 500);
const REDIS = `redis://127.0.0.1:${PORT}`;
const ENV = { GUILD_CLUSTER_KEY: CLUSTER_TEST_KEY, GUILD_BENCH_LOCK: process.env.GUILD_BENCH_LOCK ?? '/tmp/guild-distributed-test-bench.lock' };
const hasRedis = spawnSync('redis-server', ['--version']).status === 0;

const workers: RunningWorker[] = [];

/** Starts redis-server on PORT with its data in `dir` (AOF on) and waits until it answers. */
async function startRedis(dir: string): Promise<void> {
  const r = spawnSync('redis-server', ['--port', String(PORT), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--save', '', '--daemonize', 'yes']);
  assert.equal(r.status, 0, r.stderr.toString());
  for (let i = 0; i < 100; i++) {
    if (spawnSync('redis-cli', ['-p', String(PORT), 'ping']).stdout?.toString().trim() === 'PONG') return;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`redis-server on ${PORT} did not answer`);
}

/** SHUTDOWN (the AOF is flushed first) and waits until the port is free. */
async function stopRedis(): Promise<void> {
  spawnSync('redis-cli', ['-p', String(PORT), 'shutdown']);
  for (let i = 0; i < 100; i++) {
    if (spawnSync('redis-cli', ['-p', String(PORT), 'ping']).status !== 0) return;
    await new Promise((res) => setTimeout(res, 50));
  }
}

describe('distributed mode: Redis restarted mid-run', { concurrency: false, skip: hasRedis ? false : 'redis-server is not installed' }, () => {
  after(async () => {
    for (const w of workers) w.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    await stopRedis();
  });

  for (const keep of [true, false]) {
    it(keep ? 'with its data (AOF): workers and submitter reconnect, the run completes' : 'empty: the submitter enqueues again what vanished, the run completes', async () => {
      const data = tempDir('guild-redis-');
      await startRedis(data);
      const queue = keep ? 'aof' : 'empty';
      // Two workers that each take one 100 MB task at a time; six 1.5 s tasks: some run, some wait.
      const tasks = Array.from({ length: 6 }, (_, i) => `  - { id: r${i}, agent: a, run: "sleep 1.5 && echo r${i} >> done.txt" }`).join('\n');
      const repo = gitRepo(`distributed: { redis: "${REDIS}", queue: ${queue} }\nagents: { a: { memory: 100MB } }\ntasks:\n${tasks}\n`);
      commitFile(repo, '.gitignore', '.guild/\ndone.txt\n');
      await Promise.all(['a', 'b'].map((n) => startWorker(workers, { redis: REDIS, queue, name: `${queue}-${n}`, budgetMb: 150, workdir: repo, env: ENV, extra: ['--lock-duration', '4000'] })));
      const child = spawn(process.execPath, [GUILD, 'run', 'guild.yaml', '--json', '--progress', 'none', '--no-telemetry'], { cwd: repo, env: { ...process.env, ...ENV } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      // Restart once both workers run a task (four wait in the queue).
      const deadline = Date.now() + 30_000;
      while (!workers.slice(-2).every((w) => /took r\d/.test(w.stderr)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await stopRedis();
      await new Promise((r) => setTimeout(r, 500));
      await startRedis(keep ? data : tempDir('guild-redis-empty-'));
      const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
      const code = await exited;
      clearTimeout(timer);
      assert.equal(code, 0, `${stderr}\n${workers.map((w) => `${w.name}:\n${w.stderr}`).join('\n')}`);
      const report = JSON.parse(stdout) as RunReport;
      assert.deepEqual(
        report.tasks.map((t) => [t.id, t.status]),
        tasks.split('\n').map((_, i) => [`r${i}`, 'succeeded']),
      );
      // Each task ran once: nothing running was enqueued again.
      assert.deepEqual(readFileSync(join(repo, 'done.txt'), 'utf8').split('\n').filter(Boolean).sort(), ['r0', 'r1', 'r2', 'r3', 'r4', 'r5']);
      if (!keep) assert.ok((report.jobs_reenqueued ?? 0) >= 1, `jobs re-enqueued: ${report.jobs_reenqueued}`);
      for (const w of workers.splice(-2)) {
        w.child.kill('SIGKILL');
        await w.exited;
      }
      await stopRedis();
    });
  }
});
