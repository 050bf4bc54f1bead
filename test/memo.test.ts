/**
 * Task memoization end to end: real processes, the real store, outputs compared byte for byte.
 */
import assert from 'node:assert/strict';
import { appendFileSync, cpSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { formatSummary } from '../src/cli/summary.js';
import { openRouter, runWorkflow } from '../src/index.js';
import type { RunReport } from '../src/workflow/report.js';
import { Redis } from 'ioredis';
import { guild, tempDir, writeWorkflow } from './helpers.js';

// Each task appends its id to ran.txt (not an input, not an output): what really ran.
// gen writes random bytes, so a re-run could never reproduce them: equal bytes mean restored.
const WORKFLOW = `agents: { tool: { memory: 20MB } }
tasks:
  - id: gen
    agent: tool
    inputs: src/a.txt
    outputs: [out/gen.txt, out/gen.bin]
    run: echo gen >> ran.txt && mkdir -p out && sha256sum src/a.txt > out/gen.txt && head -c 4096 /dev/urandom > out/gen.bin && echo "gen log $$"
  - id: use
    agent: tool
    needs: gen
    inputs: out/gen.txt
    outputs: out/use.txt
    run: echo use >> ran.txt && cat out/gen.txt out/gen.txt > out/use.txt
  - id: final
    agent: tool
    needs: use
    inputs: out/use.txt
    outputs: out/final.txt
    env: { GREETING: hello }
    run: echo final >> ran.txt && wc -c out/use.txt > out/final.txt && echo "$GREETING"
  - id: side
    agent: tool
    inputs: [src/b.txt]
    outputs: [out/side/*.txt]
    run: echo side >> ran.txt && mkdir -p out/side && cp src/b.txt out/side/copy.txt && chmod 640 out/side/copy.txt
  - id: no-inputs
    agent: tool
    run: echo no-inputs >> ran.txt
  - id: opted-out
    agent: tool
    inputs: src/a.txt
    cache: false
    run: echo opted-out >> ran.txt
`;

function project(): { dir: string; file: string } {
  const dir = tempDir('guild-memo-');
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'src', 'a.txt'), 'alpha\n');
  writeFileSync(join(dir, 'src', 'b.txt'), 'beta\n');
  return { dir, file: writeWorkflow(WORKFLOW, dir) };
}

const ran = (dir: string): string[] => readFileSync(join(dir, 'ran.txt'), 'utf8').trim().split('\n');
const status = (r: RunReport): Record<string, string> => Object.fromEntries(r.tasks.map((t) => [t.id, t.status]));
const OUTPUTS = ['out/gen.txt', 'out/gen.bin', 'out/use.txt', 'out/final.txt', 'out/side/copy.txt'];
const snapshot = (dir: string): Map<string, Buffer> => new Map(OUTPUTS.map((p) => [p, readFileSync(join(dir, p))]));

describe('task memoization', () => {
  it('a second run with unchanged inputs starts no process and restores outputs and logs byte for byte', async () => {
    const { dir, file } = project();
    const first = await runWorkflow(file);
    assert.equal(first.ok, true);
    assert.deepEqual(
      first.tasks.map((t) => [t.id, t.cache.status]),
      [
        ['gen', 'miss'],
        ['use', 'miss'],
        ['final', 'miss'],
        ['side', 'miss'],
        ['no-inputs', 'off'],
        ['opted-out', 'off'],
      ],
    );
    assert.deepEqual({ hits: first.cache.hits, misses: first.cache.misses, hit_rate: first.cache.hit_rate }, { hits: 0, misses: 4, hit_rate: 0 });
    const before = snapshot(dir);
    const genLog = readFileSync(first.tasks[0]!.log_file!);
    assert.match(genLog.toString(), /gen log \d+/);

    rmSync(join(dir, 'out'), { recursive: true });
    writeFileSync(join(dir, 'ran.txt'), '');
    const second = await runWorkflow(file);
    assert.equal(second.ok, true);
    assert.deepEqual(status(second), { gen: 'cached', use: 'cached', final: 'cached', side: 'cached', 'no-inputs': 'succeeded', 'opted-out': 'succeeded' });
    // Only the two tasks that cannot be cached ran.
    assert.deepEqual(ran(dir).sort(), ['no-inputs', 'opted-out']);
    for (const t of second.tasks.filter((x) => x.status === 'cached')) {
      assert.equal(t.attempts, 0, `${t.id} started no process`);
      assert.ok(t.cache.serve_ms !== null && t.cache.serve_ms >= 0);
    }
    const after = snapshot(dir);
    for (const [p, bytes] of before) assert.ok(after.get(p)!.equals(bytes), `${p} restored byte for byte`);
    assert.equal(statSync(join(dir, 'out/side/copy.txt')).mode & 0o777, 0o640, 'file modes are restored too');
    // The log is replayed into this run's log folder.
    assert.ok(readFileSync(second.tasks[0]!.log_file!).equals(genLog));
    assert.equal(second.cache.hits, 4);
    assert.equal(second.cache.misses, 0);
    assert.equal(second.cache.hit_rate, 1);
    assert.ok(second.cache.saved_ms >= 0);
    assert.equal(second.counts.cached, 4);

    const text = formatSummary(second);
    assert.match(text, /cache: 4 hits, 0 misses \(hit rate 100%\)/);
    assert.match(text, /no-inputs .* not cached: no inputs declared/);
    assert.match(text, /opted-out .* not cached: cache: false/);
  });

  it('changing one byte of one input re-runs exactly that task and the tasks that need it', async () => {
    const { dir, file } = project();
    assert.equal((await runWorkflow(file)).ok, true);
    writeFileSync(join(dir, 'ran.txt'), '');
    appendFileSync(join(dir, 'src', 'b.txt'), '!');
    const r1 = await runWorkflow(file);
    assert.deepEqual(status(r1), { gen: 'cached', use: 'cached', final: 'cached', side: 'succeeded', 'no-inputs': 'succeeded', 'opted-out': 'succeeded' });
    assert.equal(readFileSync(join(dir, 'out/side/copy.txt'), 'utf8'), 'beta\n!');

    writeFileSync(join(dir, 'ran.txt'), '');
    writeFileSync(join(dir, 'src', 'a.txt'), 'alphA\n'); // one byte
    const r2 = await runWorkflow(file);
    assert.deepEqual(status(r2), { gen: 'succeeded', use: 'succeeded', final: 'succeeded', side: 'cached', 'no-inputs': 'succeeded', 'opted-out': 'succeeded' });
    assert.deepEqual(ran(dir).sort(), ['final', 'gen', 'no-inputs', 'opted-out', 'use']);
    assert.deepEqual(
      r2.tasks.filter((t) => t.cache.status !== 'off').map((t) => [t.id, t.cache.status]),
      [
        ['gen', 'miss'],
        ['use', 'miss'],
        ['final', 'miss'],
        ['side', 'hit'],
      ],
    );
  });

  it('a failed task is not stored: the next run runs it again', async () => {
    const dir = tempDir('guild-memo-');
    writeFileSync(join(dir, 'in.txt'), 'x');
    const file = writeWorkflow(
      `agents: { t: {} }
tasks:
  - { id: flaky, agent: t, inputs: in.txt, run: "test -f ok || { touch ok; exit 3; }" }
`,
      dir,
    );
    const first = await runWorkflow(file);
    assert.equal(first.tasks[0]!.status, 'failed');
    const second = await runWorkflow(file);
    assert.equal(second.tasks[0]!.status, 'succeeded', 'ran again: a failure is never a cached result');
    assert.equal(second.tasks[0]!.cache.status, 'miss');
    const third = await runWorkflow(file);
    assert.equal(third.tasks[0]!.status, 'cached');
  });

  it('--no-cache runs everything and says so; guild cache stats, clear and prune work on the store', async () => {
    const { dir, file } = project();
    assert.equal((await runWorkflow(file)).ok, true);

    const off = await guild(['run', file, '--no-cache', '--progress', 'none']);
    assert.equal(off.code, 0, off.stderr);
    assert.match(off.stdout, /cache: off \(--no-cache\)/);
    assert.doesNotMatch(off.stdout, / cached /);

    const stats = await guild(['cache', 'stats', '--json', '--workflow', file]);
    assert.equal(stats.code, 0, stats.stderr);
    const doc = JSON.parse(stats.stdout) as { namespaces: Record<string, { hits: number; misses: number; computes: number; mean_miss_penalty_ms: number | null; tiers: { sqlite?: { entries: number; bytes: number } } }> };
    const tasks = doc.namespaces.tasks!;
    assert.equal(tasks.tiers.sqlite!.entries, 4);
    assert.ok(tasks.tiers.sqlite!.bytes > 4096, 'gen.bin alone is 4 KiB');
    assert.equal(tasks.misses, 4);
    assert.equal(tasks.computes, 4);
    assert.ok(tasks.mean_miss_penalty_ms !== null && tasks.mean_miss_penalty_ms > 0);
    assert.deepEqual(Object.keys(doc.namespaces).sort().slice(0, 6), ['agent', 'mcp', 'process', 'research', 'routing', 'tasks']);

    const human = await guild(['cache', 'stats', '--workflow', file]);
    assert.match(human.stdout, /tasks\s+none\s+—\s+4\s+/);

    const cleared = await guild(['cache', 'clear', 'tasks', '--workflow', file]);
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.match(cleared.stdout, /cleared namespace 'tasks': 4 from sqlite/);
    writeFileSync(join(dir, 'ran.txt'), '');
    const after = await runWorkflow(file);
    assert.equal(after.cache.hits, 0);
    assert.equal(after.cache.misses, 4);

    const pruned = await guild(['cache', 'prune', '--workflow', file]);
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.match(pruned.stdout, /pruned: sqlite: 0 expired, 0 over the caps/);
  });

  it('config errors in cache keys name the file, line and key', async () => {
    const schema = await guild(['run', writeWorkflow(`agents: { t: {} }\ntasks:\n  - { id: a, agent: t, run: "true" }\ncache: { namespaces: { research: { ttl: soon } } }\n`)]);
    assert.equal(schema.code, 2);
    assert.match(schema.stderr, /guild\.yaml:4:\d+: cache\.namespaces\.research\.ttl: Expected a duration/);

    const file = writeWorkflow(`agents: { t: { route: { patterns: ["([unclosed"] } } }
routing: { fallback: tx }
tasks:
  - { id: a, agent: t, run: "true", outputs: ../outside.txt }
  - { id: b, agent: t, run: "true", inputs: /etc/passwd }
`);
    const r = await guild(['run', file]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /guild\.yaml:1:\d+: agents\.t\.route\.patterns\[0\]: Expected a regular expression/);
    assert.match(r.stderr, /guild\.yaml:2:\d+: routing\.fallback: unknown agent 'tx'; did you mean 't'\?/);
    assert.match(r.stderr, /guild\.yaml:4:\d+: tasks\[0\]\.outputs\[0\]: Expected outputs inside the workflow's folder/);
    assert.match(r.stderr, /guild\.yaml:5:\d+: tasks\[1\]\.inputs\[0\]: Expected a glob relative to the workflow's folder/);
  });

  it('route() from a workflow: rules decide, repeats and similar descriptions come from its store, guild cache clear routing forgets', async () => {
    const file = writeWorkflow(`agents:
  reviewer: { route: { keywords: [review, diff] } }
  tester: { route: { keywords: [test, tests], patterns: ["shard \\\\d+"] } }
routing: { fallback: reviewer }
tasks:
  - { id: a, agent: reviewer, run: "true" }
`);
    const r1 = await openRouter(file);
    assert.deepEqual([(await r1.route('run the unit tests for shard 3')).agent, (await r1.route('run the unit tests for shard 3')).source], ['tester', 'cache']);
    const first = await r1.route('review the diff of the auth module');
    assert.equal(first.agent, 'reviewer');
    assert.equal(first.source, 'rules');
    assert.equal((await r1.route('write a poem')).source, 'fallback');
    await r1.close();

    // Another process later: the decision is in the workflow's store.
    const r2 = await openRouter(file);
    const similar = await r2.route('review the diff of the auth modules');
    assert.equal(similar.source, 'similar');
    assert.equal(similar.agent, 'reviewer');
    assert.ok(similar.similarity !== null && similar.similarity >= 0.7);
    await r2.close();

    const cleared = await guild(['cache', 'clear', 'routing', '--workflow', file]);
    assert.match(cleared.stdout, /cleared namespace 'routing': [1-9]\d* from sqlite/);
    const r3 = await openRouter(file);
    assert.equal((await r3.route('review the diff of the auth module')).source, 'rules');
    await r3.close();
  });

  it('two checkouts share task results through Redis (L3); an unreachable Redis only costs sharing', async (t) => {
    const client = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await client.connect();
    } catch {
      client.disconnect();
      return t.skip('Redis not reachable at 127.0.0.1:6379');
    }
    const a = project();
    const shared = WORKFLOW.replace('agents:', `cache: { redis: "redis://127.0.0.1:6379" }\nagents:`);
    writeFileSync(a.file, shared);
    const b = tempDir('guild-memo-b-');
    cpSync(join(a.dir, 'src'), join(b, 'src'), { recursive: true });
    const bFile = writeWorkflow(shared, b);
    let keys: string[] = [];
    try {
      const first = await runWorkflow(a.file);
      assert.equal(first.cache.misses, 4);
      assert.deepEqual(first.cache.tiers, ['memory', 'sqlite', 'redis']);
      keys = first.tasks.filter((x) => x.cache.fingerprint).map((x) => `guild:cache:tasks:${x.cache.fingerprint}`);
      assert.equal(await client.exists(...keys), 4, 'stored in Redis');
      // Another checkout (its own store, nothing on disk yet): served from Redis.
      const second = await runWorkflow(bFile);
      assert.equal(second.cache.hits, 4, JSON.stringify(second.tasks.map((x) => [x.id, x.status, x.cache.reason])));
      assert.ok(readFileSync(join(b, 'out/gen.bin')).equals(readFileSync(join(a.dir, 'out/gen.bin'))), 'the same random bytes, restored from Redis');
    } finally {
      if (keys.length > 0) await client.del(...keys);
      client.disconnect();
    }

    writeFileSync(a.file, WORKFLOW.replace('agents:', `cache: { redis: "redis://127.0.0.1:1" }\nagents:`));
    const down = await runWorkflow(a.file);
    assert.equal(down.ok, true);
    assert.deepEqual(down.cache.tiers, ['memory', 'sqlite']);
    assert.equal(down.cache.hits, 4, 'the local store still serves');
    assert.ok(down.alerts.some((x) => /Redis not reachable at redis:\/\/127\.0\.0\.1:1/.test(x.message)), JSON.stringify(down.alerts));
  });
});
