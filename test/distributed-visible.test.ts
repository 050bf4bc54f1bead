import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { connectRedis } from '../src/cache/redis-tier.js';
import type { DashboardState, WorkersSnapshot } from '../src/telemetry/state.js';
import type { RunReport } from '../src/workflow/report.js';
import { endCluster, gitRepo, type RunningWorker, startWorker as startCluster } from './cluster-helpers.js';
import { GUILD, guild, MB, sleep } from './helpers.js';

// Workers made visible, end to end: real `guild worker` processes on a real Redis, a real
// distributed run with its dashboard; `guild status` (the dashboard's /api/state), /metrics and
// `guild status --redis` show the workers while the run goes. Its own queue family, removed after.

const REDIS = 'redis://127.0.0.1:6379';
const KEY = 'test-cluster-key-visible-0123456789';
const QUEUE = `v${process.pid}x${Math.random().toString(36).slice(2, 8)}`;
const ENV = { GUILD_CLUSTER_KEY: KEY, GUILD_BENCH_LOCK: process.env.GUILD_BENCH_LOCK ?? '/tmp/guild-distributed-test-bench.lock' };

const workers: RunningWorker[] = [];
let client: Redis | null = null;

const startWorker = (name: string, budgetMb: number, workdir: string): Promise<RunningWorker> => startCluster(workers, { redis: REDIS, queue: QUEUE, name, budgetMb, workdir, env: ENV });

type Status = DashboardState & { workers: WorkersSnapshot | null };

describe('distributed workers are visible (real Redis, real workers)', { concurrency: false }, () => {
  let skip: string | false = false;
  let repo = '';

  before(async () => {
    try {
      client = await connectRedis(REDIS, { timeoutMs: 1000 });
    } catch {
      skip = 'no Redis at 127.0.0.1:6379';
      return;
    }
    // Four tasks of 6 s on two workers: long enough to read the state while they run.
    const tasks = Array.from({ length: 4 }, (_, i) => `  - { id: t${i}, agent: a, run: "sleep 6" }`).join('\n');
    repo = gitRepo(`distributed: { redis: "${REDIS}", queue: ${QUEUE}, grace: 30s }\nagents: { a: { memory: 20MB } }\ntasks:\n${tasks}\n`);
    await Promise.all([startWorker('vis-a', 200, repo), startWorker('vis-b', 300, repo)]);
  });

  after(async () => {
    await endCluster(workers, client, [QUEUE]);
  });

  it('guild status --redis lists the live workers from their heartbeats, without a run', async (t) => {
    if (skip) return t.skip(skip);
    const r = await guild(['status', '--redis', REDIS, '--queue', QUEUE, '--json'], { env: ENV, timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stderr);
    const w = JSON.parse(r.stdout) as WorkersSnapshot;
    assert.equal(w.queue, QUEUE);
    assert.deepEqual(w.workers.map((x) => [x.name, x.budget_bytes, x.running, x.tasks]), [['vis-a', 200 * MB, 0, null], ['vis-b', 300 * MB, 0, null]]);
    for (const x of w.workers) assert.ok(x.heartbeat_age_ms < 5000 && x.last_heartbeat > 0, JSON.stringify(x));
    const human = await guild(['status', '--redis', REDIS, '--queue', QUEUE], { env: ENV, timeoutMs: 20_000 });
    assert.match(human.stdout, new RegExp(`^WORKERS \\(queue ${QUEUE}\\): 2 live\\nNAME +HOST +BUDGET +USED +RUNNING +PRESSURE +PEAK +HEARTBEAT\\n`));
    assert.match(human.stdout, /\nvis-a +\S+:\d+ +200(\.0)? MB +0 B \(0%\) +0 +optimal/);
  });

  it('during a run, guild status and /metrics show the workers and which worker runs each task; the report says where each ran', { timeout: 120_000 }, async (t) => {
    if (skip) return t.skip(skip);
    let url: string | null = null;
    const run = guild(['run', 'guild.yaml', '--json', '--progress', 'none', '--dashboard', '0'], {
      cwd: repo,
      env: ENV,
      timeoutMs: 90_000,
      onStderr: (all) => void (url ??= /dashboard on (http:\/\/\S+\/);/.exec(all)?.[1] ?? null),
    });
    // Poll `guild status --json` until a task runs on a named worker while the workers are live.
    let seen: Status | null = null;
    for (const end = Date.now() + 30_000; Date.now() < end; await sleep(300)) {
      if (url === null) continue;
      const r = await guild(['status', '--url', url, '--json'], { timeoutMs: 10_000 });
      if (r.code !== 0) continue;
      const s = JSON.parse(r.stdout) as Status;
      if (s.workers && s.workers.workers.length === 2 && s.tasks.some((x) => x.status === 'running' && x.worker !== undefined) && s.workers.workers.some((w) => w.running > 0)) {
        seen = s;
        break;
      }
    }
    assert.ok(seen, `guild status never showed a task running on a worker (dashboard ${url})`);
    assert.equal(seen.workers!.queue, QUEUE);
    const names = seen.workers!.workers.map((w) => w.name);
    assert.deepEqual(names, ['vis-a', 'vis-b']);
    for (const w of seen.workers!.workers) {
      assert.equal(w.used_bytes, w.budget_bytes - w.free_bytes);
      assert.ok(w.used_bytes >= 0 && w.used_bytes <= w.budget_bytes, JSON.stringify(w));
      assert.equal(typeof w.tasks, 'number');
    }
    for (const x of seen.tasks.filter((x) => x.worker !== undefined)) assert.ok(names.includes(x.worker!), `${x.id} on ${x.worker}`);
    // The same state, as people read it.
    const human = await guild(['status', '--url', url!], { timeoutMs: 10_000 });
    assert.equal(human.code, 0, human.stderr);
    t.diagnostic(`guild status:\n${human.stdout}`);
    assert.match(human.stdout, /\n  RUNNING\n(  t\d .*\n)*  t\d +a +vis-[ab] /);
    assert.match(human.stdout, /\n  WORKERS \(queue \S+\): 2 live\n  NAME .* TASKS\n  vis-a /);
    // /metrics: per-worker gauges.
    const metrics = await (await fetch(`${url}metrics`)).text();
    assert.match(metrics, /guild_worker_budget_bytes\{worker="vis-a"\} 209715200\n/);
    assert.match(metrics, /guild_worker_running\{worker="vis-b"\} \d+\n/);
    assert.match(metrics, /guild_worker_pressure_level\{worker="vis-a"\} 0\n/);
    assert.match(metrics, /guild_worker_heartbeat_age_seconds\{worker="vis-a"\} [\d.e-]+\n/);
    const r = await run;
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as RunReport;
    for (const x of report.tasks) assert.ok(x.worker !== undefined && names.includes(x.worker), `${x.id} ran on ${x.worker}`);
  });
});
