import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { connectRedis } from '../src/cache/redis-tier.js';
import type { JobPayload } from '../src/distributed/job.js';
import { BULL_PREFIX, clusterKeys, typeQueueName } from '../src/distributed/names.js';
import { signJob } from '../src/distributed/signing.js';
import { cgroupName } from '../src/system/cgroup-control.js';
import type { RunReport } from '../src/workflow/report.js';
import { alive, CLUSTER_TEST_KEY, commitFile, endCluster, gitRepo, type RunningWorker, startWorker as startCluster } from './cluster-helpers.js';
import { EVERYTHING, serverYaml } from './gateway-helpers.js';
import { GUILD, guild, hog, MB, ROOT, tempDir } from './helpers.js';

// Distributed mode against a real Redis and real `guild worker` processes on loopback. Each test
// file run uses its own queue family; its keys are removed and its workers killed in `after`.

const REDIS = 'redis://127.0.0.1:6379';
const KEY = CLUSTER_TEST_KEY;
const QUEUE = `t${process.pid}x${Math.random().toString(36).slice(2, 8)}`;
/** The fault test's own queue family: its workers use a short lock, so a dead one is noticed fast. */
const FAULT_QUEUE = `${QUEUE}f`;
/** The memoization test's queue family: its workers each run in a checkout of their own. */
const MEMO_QUEUE = `${QUEUE}m`;
const ENV = { GUILD_CLUSTER_KEY: KEY, GUILD_BENCH_LOCK: process.env.GUILD_BENCH_LOCK ?? '/tmp/guild-distributed-test-bench.lock' };

let client: Redis | null = null;
const workers: RunningWorker[] = [];
let repo = '';
/** Queue families a test made for itself, removed in `after`. */
const extraQueues: string[] = [];

const startWorker = (name: string, budgetMb: number, workdir: string, queue = QUEUE, extra: string[] = []): Promise<RunningWorker> => startCluster(workers, { redis: REDIS, queue, name, budgetMb, workdir, env: ENV, extra });

const header = (grace = '30s', queue = QUEUE): string => `distributed: { redis: "${REDIS}", queue: ${queue}, grace: ${grace} }\n`;

/** A clone of the test repository (as on another machine). */
function clone(): string {
  const dir = tempDir('guild-dist-clone-');
  execFileSync('git', ['clone', '-q', repo, dir], { stdio: 'ignore' });
  return dir;
}

let checkouts: Promise<[string, string]> | null = null;
/** Two workers on MEMO_QUEUE, each in a checkout of its own (started once); their checkouts. */
function checkoutWorkers(): Promise<[string, string]> {
  return (checkouts ??= (async () => {
    const [w1, w2] = [clone(), clone()];
    await Promise.all([startWorker('m-1', 200, w1, MEMO_QUEUE), startWorker('m-2', 200, w2, MEMO_QUEUE)]);
    return [w1, w2] as [string, string];
  })());
}

describe('distributed mode (real Redis, real workers)', { concurrency: false }, () => {
  let skip: string | false = false;

  before(async () => {
    try {
      client = await connectRedis(REDIS, { timeoutMs: 1000 });
    } catch {
      skip = 'no Redis at 127.0.0.1:6379';
      return;
    }
    repo = gitRepo(`${header()}agents: { a: { memory: 10MB } }\ntasks: [{ id: x, agent: a, run: "true" }]\n`);
    await Promise.all([startWorker('w-small', 160, repo), startWorker('w-medium', 260, repo), startWorker('w-large', 420, repo)]);
  });

  after(async () => {
    await endCluster(workers, client, [QUEUE, FAULT_QUEUE, MEMO_QUEUE, ...extraQueues]);
  });

  it('three workers with different budgets share a workflow: every task succeeds, no worker exceeds its budget', async (t) => {
    if (skip) return t.skip(skip);
    // Each hog holds 30 MB in a node process (~75-90 MB as a tree); declared 100 MB, so the
    // small worker takes one at a time, the medium two, the large three.
    const tasks = Array.from({ length: 9 }, (_, i) => `  - { id: t${i}, agent: hog, run: "${hog(30, 1200)}"${i >= 6 ? ', needs: [t0]' : ''} }`).join('\n');
    const dir = repo;
    commitFile(dir, 'share.yaml', `${header()}agents: { hog: { memory: 100MB } }\ntasks:\n${tasks}\n`);
    const r = await guild(['run', 'share.yaml', '--json', '--progress', 'none', '--no-telemetry'], { cwd: dir, env: ENV, timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as RunReport & { workers: { name: string; budget_bytes: number; peak_bytes: number; tasks: number }[] };
    assert.ok(report.tasks.every((x) => x.status === 'succeeded'), JSON.stringify(report.tasks.map((x) => [x.id, x.status, x.error])));
    const names = new Set(workers.map((w) => w.name));
    for (const x of report.tasks) assert.ok(x.worker !== undefined && names.has(x.worker), `${x.id} ran on ${x.worker}`);
    assert.equal(report.workers.reduce((n, w) => n + w.tasks, 0), 9);
    assert.ok(report.workers.filter((w) => w.tasks > 0).length >= 2, `work spread over ${JSON.stringify(report.workers)}`);
    // Placement follows free budget: the largest worker (the most free) takes at least as much as the smallest.
    const ran = (name: string): number => report.workers.find((w) => w.name === name)?.tasks ?? 0;
    assert.ok(ran('w-large') >= ran('w-small'), `placement: ${JSON.stringify(report.workers.map((w) => [w.name, w.tasks]))}`);
    for (const w of report.workers) {
      const started = workers.find((x) => x.name === w.name)!;
      assert.equal(w.budget_bytes, started.budget);
      assert.ok(w.peak_bytes <= w.budget_bytes, `${w.name}: peak ${w.peak_bytes} > budget ${w.budget_bytes}`);
    }
    assert.ok(report.workers.some((w) => w.peak_bytes > 50 * MB), `peaks were measured: ${JSON.stringify(report.workers)}`);
    for (const x of report.tasks) assert.ok(x.peak_rss_bytes === null || x.peak_rss_bytes > 20 * MB, `${x.id}: peak ${x.peak_rss_bytes} measured on its worker`);
  });

  it('an unsigned or altered job pushed straight into a queue is rejected, reported and never run', async (t) => {
    if (skip) return t.skip(skip);
    const keys = clusterKeys(QUEUE);
    await client!.hset(keys.registry, 'intruder', JSON.stringify({ memoryBytes: MB, cpu: 0, concurrency: null }));
    // BullMQ does not close a connection it was given: this one is closed below.
    const connection = client!.duplicate({ maxRetriesPerRequest: null });
    const queue = new Queue(typeQueueName(QUEUE, 'intruder'), { connection, prefix: BULL_PREFIX });
    try {
      const unsignedMarker = join(repo, 'pwned-unsigned');
      const alteredMarker = join(repo, 'pwned-altered');
      const unsigned = await queue.add('x', { command: `touch ${unsignedMarker}` }, { jobId: 'unsigned-1' });
      const payload: JobPayload = {
        v: 1,
        jobId: 'altered-1',
        runId: 'r',
        taskId: 'x',
        attempt: 1,
        agent: 'intruder',
        priority: 'medium',
        memoryBytes: MB,
        cpu: 0,
        limitBytes: null,
        command: 'true',
        env: {},
        timeoutMs: 5000,
        killGraceMs: 100,
        where: { kind: 'path', dir: repo },
        outputs: [],
        restore: [],
        issuedAt: Date.now(),
      };
      const signed = signJob(payload, KEY);
      const altered = await queue.add('x', { ...signed, payload: { ...payload, command: `touch ${alteredMarker}` } }, { jobId: 'altered-1' });
      const deadline = Date.now() + 15_000;
      let states: string[] = [];
      while (Date.now() < deadline) {
        states = await Promise.all([unsigned, altered].map((j) => queue.getJobState(j.id!)));
        if (states.every((s) => s === 'failed')) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(states, ['failed', 'failed']);
      const reasons = await Promise.all(['unsigned-1', 'altered-1'].map(async (id) => (await queue.getJob(id))!.failedReason));
      assert.match(reasons[0]!, /rejected: (unsigned|not a Guild job)/);
      assert.match(reasons[1]!, /rejected: the signature does not match/);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(existsSync(unsignedMarker), false, 'the unsigned job ran');
      assert.equal(existsSync(alteredMarker), false, 'the altered job ran');
      assert.ok(workers.some((w) => /REJECTED job unsigned-1/.test(w.stderr)), 'a worker reported the rejection');
      const beats = await Promise.all(workers.map((w) => client!.hget(keys.worker(w.name), 'rejected')));
      assert.equal(beats.reduce((n, b) => n + Number(b ?? 0), 0), 2);
    } finally {
      await client!.hdel(keys.registry, 'intruder');
      await queue.close();
      connection.disconnect();
    }
  });

  it('outputs travel through Redis: a memoized task runs once for two submitters, its outputs restored on each and on a dependent\'s worker', async (t) => {
    if (skip) return t.skip(skip);
    // Two more workers, each in its own checkout (as on two machines), on their own queue family.
    const count = join(tempDir('guild-dist-count-'), 'runs.txt');
    const task = (id: string, run: string, extra = ''): string => `  - { id: ${id}, agent: a, run: ${JSON.stringify(`mkdir -p out && echo ${id} >> ${count} && ${run}`)}, inputs: [src.txt], outputs: [out/${id}.txt]${extra} }`;
    const yaml = (tasks: string[]): string => `${header('30s', MEMO_QUEUE)}agents: { a: { memory: 20MB } }\ntasks:\n${tasks.join('\n')}\n`;
    commitFile(repo, 'src.txt', 'input\n');
    commitFile(repo, 'memo.yaml', yaml([task('gen', 'sleep 1 && echo $$-$(date +%s%N) > out/gen.txt'), task('use', 'cat out/gen.txt > out/use.txt', ', needs: [gen]')]));
    commitFile(repo, 'memo2.yaml', yaml([task('gen', 'sleep 1 && echo $$-$(date +%s%N) > out/gen.txt'), task('use2', 'cat out/gen.txt > out/use2.txt', ', needs: [gen]')]));
    const [w1, w2] = await checkoutWorkers();
    const [a, b, c] = [clone(), clone(), clone()];
    const run = (dir: string, file: string) => guild(['run', file, '--json', '--progress', 'none', '--no-telemetry'], { cwd: dir, env: ENV, timeoutMs: 90_000 });
    const [ra, rb] = await Promise.all([run(a, 'memo.yaml'), run(b, 'memo.yaml')]);
    assert.equal(ra.code, 0, ra.stderr);
    assert.equal(rb.code, 0, rb.stderr);
    const status = (r: { stdout: string }, id: string): string => (JSON.parse(r.stdout) as RunReport).tasks.find((x) => x.id === id)!.status;
    assert.deepEqual(readFileSync(count, 'utf8').split('\n').filter(Boolean).sort(), ['gen', 'use'], 'each task computed once for both submitters');
    assert.deepEqual([status(ra, 'gen'), status(rb, 'gen')].sort(), ['cached', 'succeeded']);
    const gen = readFileSync(join(a, 'out/gen.txt'), 'utf8');
    assert.match(gen, /^\d+-\d+\n$/);
    for (const dir of [a, b]) {
      assert.equal(readFileSync(join(dir, 'out/gen.txt'), 'utf8'), gen, `${dir}: gen's output restored`);
      assert.equal(readFileSync(join(dir, 'out/use.txt'), 'utf8'), gen, `${dir}: use's output restored`);
    }
    // The ran task's log came back with it.
    const ran = status(ra, 'gen') === 'succeeded' ? a : b;
    const report = JSON.parse((ran === a ? ra : rb).stdout) as RunReport;
    assert.ok(existsSync(join(ran, '.guild', 'runs', report.run_id, 'gen.log')), 'the log of gen is on its submitter');
    // A third submitter: gen is served from the cluster cache there; its dependent runs on a worker
    // whose checkout has no out/gen.txt, which it gets from the pack of the submitter's restored copy.
    for (const w of [w1, w2]) execFileSync('rm', ['-rf', join(w, 'out')]);
    const rc = await run(c, 'memo2.yaml');
    assert.equal(rc.code, 0, rc.stderr);
    assert.equal(status(rc, 'gen'), 'cached');
    assert.equal(status(rc, 'use2'), 'succeeded');
    assert.equal(readFileSync(join(c, 'out/use2.txt'), 'utf8'), gen, "use2's worker restored gen's output before it ran");
    assert.deepEqual(readFileSync(count, 'utf8').split('\n').filter(Boolean).sort(), ['gen', 'use', 'use2']);
  });

  it("a running task's log and memory reach the submitter while it runs on a worker of another checkout", async (t) => {
    if (skip) return t.skip(skip);
    commitFile(repo, 'slow.yaml', `${header('30s', MEMO_QUEUE)}agents: { a: { memory: 60MB } }\ntasks:\n  - { id: slow, agent: a, run: "${hog(20, 4000)} & for i in 1 2 3 4; do echo line$i; sleep 0.8; done; wait" }\n`);
    // The workers' checkouts must hold the commit (as a deploy would pull it).
    for (const w of await checkoutWorkers()) execFileSync('git', ['-C', w, 'pull', '-q'], { stdio: 'ignore' });
    const dir = clone();
    const child = spawn(process.execPath, [GUILD, 'run', 'slow.yaml', '--json', '--progress', 'none', '--no-telemetry'], { cwd: dir, env: { ...process.env, ...ENV } });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    let ended = false;
    void exited.then(() => (ended = true));
    // While it runs: its log grows in this checkout's run folder (it runs in a worker's checkout).
    let seen = '';
    while (!ended && !/line2/.test(seen)) {
      await new Promise((r) => setTimeout(r, 100));
      const runs = join(dir, '.guild', 'runs');
      if (!existsSync(runs)) continue;
      for (const id of readdirSync(runs)) if (existsSync(join(runs, id, 'slow.log'))) seen = readFileSync(join(runs, id, 'slow.log'), 'utf8');
    }
    assert.equal(ended, false, 'the log reached the submitter before the task ended');
    assert.match(seen, /line1\n(.*\n)?line2\n/);
    assert.equal(await exited, 0);
    const report = JSON.parse(stdout) as RunReport;
    const slow = report.tasks[0]!;
    assert.ok(slow.worker === 'm-1' || slow.worker === 'm-2', `ran on ${slow.worker}`);
    const log = readFileSync(join(dir, '.guild', 'runs', report.run_id, 'slow.log'), 'utf8').split('\n');
    assert.deepEqual(log.filter((l) => l.startsWith('line')), ['line1', 'line2', 'line3', 'line4'], 'the whole log, once');
    assert.ok((slow.peak_rss_bytes ?? 0) > 20 * MB, `peak ${slow.peak_rss_bytes}`);
  });

  it("mcp: each worker serves the run's servers through its own gateway; tasks reach it through GUILD_MCP_URL; it closes with the run", async (t) => {
    if (skip) return t.skip(skip);
    const call = join(ROOT, 'test', 'fixtures', 'mcp-call.mjs');
    const tasks = ['a', 'b', 'c'].map((id) => `  - { id: ${id}, agent: client, run: ${JSON.stringify(`${process.execPath} ${call} get-sum ${id}`)} }`).join('\n');
    commitFile(repo, 'mcp.yaml', `${header('30s', MEMO_QUEUE)}mcp:\n  servers:\n${serverYaml('everything', EVERYTHING, ['stdio'])}agents: { client: { memory: 60MB } }\ntasks:\n${tasks}\n`);
    const checkouts = await checkoutWorkers();
    for (const w of checkouts) execFileSync('git', ['-C', w, 'pull', '-q'], { stdio: 'ignore' });
    const dir = clone();
    const r = await guild(['run', 'mcp.yaml', '--json', '--progress', 'none', '--no-telemetry'], { cwd: dir, env: ENV, timeoutMs: 90_000 });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as RunReport;
    for (const id of ['a', 'b', 'c']) assert.match(readFileSync(join(dir, '.guild', 'runs', report.run_id, `${id}.log`), 'utf8'), /The sum of \d+ and 1 is/);
    const served = workers.filter((w) => w.stderr.includes(`mcp gateway for run ${report.run_id} at`));
    assert.ok(served.length >= 1, 'a worker started a gateway for the run');
    const deadline = Date.now() + 15_000;
    while (!served.every((w) => w.stderr.includes(`mcp gateway for run ${report.run_id} closed`)) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    assert.ok(served.every((w) => w.stderr.includes(`mcp gateway for run ${report.run_id} closed`)), "each worker's gateway closed with the run");
  });

  it('a large task is not starved by a stream of small ones: past the starvation limit, the worker makes room for it', async (t) => {
    if (skip) return t.skip(skip);
    const queue = `${QUEUE}s`;
    extraQueues.push(queue);
    const w = await startWorker('s-1', 300, repo, queue);
    // 60 small high-priority tasks (40 MB, 0.6 s; about 5 s at 7 at a time) keep the worker busy; the large one (200 MB, low)
    // needs 240 MB free, which the stream never leaves unless the worker stops taking small ones.
    const small = Array.from({ length: 60 }, (_, i) => `  - { id: s${i}, agent: small, priority: high, run: "sleep 0.6" }`).join('\n');
    commitFile(repo, 'starve.yaml', `${header('30s', queue)}starvation_limit: 1s\nagents: { small: { memory: 40MB }, large: { memory: 200MB } }\ntasks:\n${small}\n  - { id: big, agent: large, priority: low, run: "sleep 0.2" }\n`);
    const r = await guild(['run', 'starve.yaml', '--json', '--progress', 'none', '--no-telemetry'], { cwd: repo, env: ENV, timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    const taken = [...w.stderr.matchAll(/took (\w+)/g)].map((m) => m[1]!);
    assert.equal(taken.length, 61);
    const at = taken.indexOf('big');
    assert.ok(at >= 0 && at < 60, `the worker took big after every small task: ${taken.join(' ')}`);
    // Not at once either (the small ones are more urgent): only once it had waited its limit.
    assert.ok(at > 0, `big went first: ${taken.join(' ')}`);
  });

  it('a task larger than every worker budget fails after the grace period with a clear error', async (t) => {
    if (skip) return t.skip(skip);
    commitFile(repo, 'huge.yaml', `${header('2s')}agents: { huge: { memory: 1GB } }\ntasks: [{ id: huge, agent: huge, run: "touch ${join(repo, 'huge-ran')}" }]\n`);
    const t0 = Date.now();
    const r = await guild(['run', 'huge.yaml', '--json', '--progress', 'none', '--no-telemetry'], { cwd: repo, env: ENV, timeoutMs: 60_000 });
    assert.equal(r.code, 1, r.stderr);
    assert.ok(Date.now() - t0 < 20_000, `took ${Date.now() - t0} ms`);
    const report = JSON.parse(r.stdout) as RunReport;
    const task = report.tasks[0]!;
    assert.equal(task.status, 'failed');
    assert.match(task.error!, /no worker can take it: it expects 1\.00 GB, but the largest live worker budget is 420 MB/);
    assert.equal(existsSync(join(repo, 'huge-ran')), false);
  });

  it('SIGINT of the submitter kills the running trees on the workers', async (t) => {
    if (skip) return t.skip(skip);
    const pidfile = join(repo, 'pids.txt');
    commitFile(repo, 'long.yaml', `${header()}agents: { long: { memory: 100MB } }\ntasks:\n  - { id: l1, agent: long, run: "${hog(10, 60_000, '--grandchild 60000')}", env: { HOG_PIDFILE: ${JSON.stringify(pidfile)} } }\n  - { id: l2, agent: long, run: "${hog(10, 60_000, '--grandchild 60000')}", env: { HOG_PIDFILE: ${JSON.stringify(pidfile)} } }\n`);
    const child = spawn(process.execPath, [GUILD, 'run', 'long.yaml', '--json', '--progress', 'none', '--no-telemetry'], { cwd: repo, env: { ...process.env, ...ENV } });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const readPids = (): number[] => (existsSync(pidfile) ? readFileSync(pidfile, 'utf8').split('\n').filter(Boolean).map(Number) : []);
    const deadline = Date.now() + 30_000;
    while (readPids().length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const pids = readPids();
    assert.equal(pids.length, 4, 'both tasks started on workers, each with a grandchild');
    assert.ok(pids.every(alive));
    child.kill('SIGINT');
    assert.equal(await exited, 130);
    const report = JSON.parse(stdout) as RunReport;
    assert.equal(report.interrupted, true);
    const gone = Date.now() + 10_000;
    while (pids.some(alive) && Date.now() < gone) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(pids.filter(alive), [], 'every process of the cancelled tasks is gone');
  });

  it('a worker killed with SIGKILL mid-task: its job runs again on another worker, and no retry is used', async (t) => {
    if (skip) return t.skip(skip);
    const [a, b] = await Promise.all([startWorker('f-a', 150, repo, FAULT_QUEUE, ['--lock-duration', '1000']), startWorker('f-b', 150, repo, FAULT_QUEUE, ['--lock-duration', '1000'])]);
    const pidfile = join(repo, 'fault-pids.txt');
    const task = (id: string): string => `  - { id: ${id}, agent: hog, run: "${hog(10, 3000)}", env: { HOG_PIDFILE: ${JSON.stringify(pidfile)} } }`;
    commitFile(repo, 'fault.yaml', `${header('30s', FAULT_QUEUE)}agents: { hog: { memory: 100MB } }\ntasks:\n${task('f1')}\n${task('f2')}\n`);
    const run = guild(['run', 'fault.yaml', '--json', '--progress', 'none', '--no-telemetry'], { cwd: repo, env: ENV, timeoutMs: 90_000 });
    // Each worker admits one 100 MB task at a time (150 MB budget): wait until both run, then kill one.
    const deadline = Date.now() + 30_000;
    while (!(/took f\d/.test(a.stderr) && /took f\d/.test(b.stderr)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const victimTask = /took (f\d)/.exec(a.stderr)![1]!;
    a.child.kill('SIGKILL');
    await a.exited;
    const r = await run;
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as RunReport;
    for (const x of report.tasks) {
      assert.equal(x.status, 'succeeded', `${x.id}: ${x.error}`);
      assert.equal(x.attempts, 1, `${x.id} used a retry`);
      assert.equal(x.worker, 'f-b', `${x.id} ran on ${x.worker}`);
    }
    assert.match(b.stderr, new RegExp(`took ${victimTask}`));
    // The killed worker could not reap its tree (nothing survives SIGKILL to do it): end what is left.
    for (const pid of readFileSync(pidfile, 'utf8').split('\n').filter(Boolean).map(Number)) if (alive(pid)) process.kill(pid, 'SIGKILL');
    // Nor remove its task's cgroups: remove them here, so that the test leaves nothing on the machine.
    const name = cgroupName(report.run_id, victimTask, 1);
    const left = (dir: string, depth: number): string[] => {
      if (depth > 3 || !existsSync(dir)) return [];
      const found: string[] = [];
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (!e.isDirectory()) continue;
        if (e.name === name) found.push(join(dir, e.name));
        else found.push(...left(join(dir, e.name), depth + 1));
      }
      return found;
    };
    for (const dir of left('/sys/fs/cgroup', 0)) {
      for (let i = 0; i < 50; i++) {
        try {
          rmdirSync(dir);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 100)); // its last members are being torn down
        }
      }
    }
  });
});
