/**
 * The MCP gateway end to end: published servers from npm as backends, real SDK clients over
 * streamable HTTP, the real supervisor and probe. Pooling per project and per session, progress,
 * cancellation, sampling routed to its caller, a kill -9, a recycle over the limit, idle
 * shutdown, admission against the budget, an emergency, the HTTP layer's checks.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CreateMessageRequestSchema, McpError, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Standalone } from '../src/gateway/standalone.js';
import { alive, sleep, tempDir } from './helpers.js';
import { backendsOf, connect, endSession, EVERYTHING, gateway, MEMORY, serverYaml, text, until } from './gateway-helpers.js';

const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

/** A gateway in a fresh folder, closed (and the folder removed) after the file's tests. */
async function started(servers: string, options: { budget?: string } = {}): Promise<{ g: Standalone; dir: string }> {
  const dir = tempDir('guild-gw-');
  const g = await gateway(dir, servers, options);
  cleanup.push(async () => {
    await g.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { g, dir };
}

function clients(): { add(c: Client): Client; closeAll(): Promise<void> } {
  const list: Client[] = [];
  cleanup.push(() => Promise.all(list.map((c) => c.close().catch(() => undefined))).then(() => undefined));
  return {
    add: (c) => (list.push(c), c),
    closeAll: async () => void (await Promise.all(list.splice(0).map((c) => c.close().catch(() => undefined)))),
  };
}

const project = (dir: string, name: string): string => {
  const p = join(dir, name);
  mkdirSync(p, { recursive: true });
  return p;
};

describe('gateway: one pool of backends per project', { timeout: 120_000 }, () => {
  it('5 clients on one project share one backend process; two projects get two', async () => {
    const { g, dir } = await started(serverYaml('everything', EVERYTHING, ['stdio']));
    const cs = clients();
    const sessions = await Promise.all([1, 2, 3, 4, 5].map(() => connect(g.url).then(cs.add)));
    const answers = await Promise.all(sessions.map((c, i) => c.callTool({ name: 'get-sum', arguments: { a: i, b: 1000 } })));
    assert.deepEqual(
      answers.map(text),
      sessions.map((_, i) => `The sum of ${i} and 1000 is ${i + 1000}.`),
    );
    let mine = backendsOf(g.status(), 'everything').filter((b) => b.project === dir);
    assert.equal(mine.length, 1, 'one slot for the default project');
    assert.equal(mine[0]!.pids.length, 1, `one process for 5 clients, got ${mine[0]!.pids.join(', ')}`);
    assert.ok(mine[0]!.calls >= 5);

    const a = project(dir, 'a');
    const b = project(dir, 'b');
    const ca = cs.add(await connect(g.url, { project: a }));
    const cb = cs.add(await connect(g.url, { project: b }));
    await Promise.all([ca.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } }), cb.callTool({ name: 'get-sum', arguments: { a: 3, b: 4 } })]);
    mine = backendsOf(g.status(), 'everything');
    const pa = mine.find((x) => x.project === a)!.pids;
    const pb = mine.find((x) => x.project === b)!.pids;
    assert.equal(pa.length, 1);
    assert.equal(pb.length, 1);
    assert.notEqual(pa[0], pb[0], 'two projects, two processes');
    assert.equal(g.status().sessions, 7);
    await cs.closeAll();
  });

  it('per-session servers get one instance per session, stopped when the session ends', async () => {
    const { g } = await started(serverYaml('everything', EVERYTHING, ['stdio'], 'isolation: per-session'));
    const cs = clients();
    const [c1, c2] = [cs.add(await connect(g.url)), cs.add(await connect(g.url))];
    await Promise.all([c1.callTool({ name: 'echo', arguments: { message: '1' } }), c2.callTool({ name: 'echo', arguments: { message: '2' } })]);
    const slots = backendsOf(g.status(), 'everything').filter((b) => b.session !== null);
    assert.equal(slots.length, 2);
    const pids = slots.flatMap((s) => s.pids);
    assert.equal(new Set(pids).size, 2, `one process per session, got ${pids.join(', ')}`);
    await endSession(c1);
    await until('the first session to end and its instance with it', () => pids.filter(alive).length === 1);
    await cs.closeAll();
  });

  it('a shared server serves every project with one process', async () => {
    const { g, dir } = await started(serverYaml('everything', EVERYTHING, ['stdio'], 'isolation: shared'));
    const cs = clients();
    const c1 = cs.add(await connect(g.url, { project: project(dir, 'x') }));
    const c2 = cs.add(await connect(g.url, { project: project(dir, 'y') }));
    await c1.callTool({ name: 'echo', arguments: { message: 'x' } });
    await c2.callTool({ name: 'echo', arguments: { message: 'y' } });
    const all = backendsOf(g.status(), 'everything');
    assert.equal(all.length, 1);
    assert.equal(all[0]!.project, '*');
    assert.equal(all[0]!.pids.length, 1);
    await cs.closeAll();
  });
});

describe('gateway: the protocol through it', { timeout: 120_000 }, () => {
  it('names are prefixed with several servers; progress and cancellation round-trip', async () => {
    const dir0 = tempDir('guild-gw-mem-');
    cleanup.push(() => rmSync(dir0, { recursive: true, force: true }));
    const { g } = await started(serverYaml('everything', EVERYTHING, ['stdio']) + serverYaml('memory', MEMORY, [], `env: { MEMORY_FILE_PATH: ${JSON.stringify(join(dir0, 'm.jsonl'))} }`));
    const cs = clients();
    const c = cs.add(await connect(g.url));
    const names = (await c.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('everything__echo') && names.includes('memory__read_graph'), names.join(', '));
    assert.ok(!names.some((n) => n.includes('simulate-research-query')), 'a tool that requires MCP tasks is hidden');
    await assert.rejects(c.callTool({ name: 'nobody__echo', arguments: {} }), (e: unknown) => e instanceof McpError && /no MCP server/.test(e.message));

    const progress: number[] = [];
    const done = await c.callTool({ name: 'everything__trigger-long-running-operation', arguments: { duration: 1, steps: 4 } }, undefined, {
      onprogress: (p) => void progress.push(p.progress),
    });
    assert.match(text(done), /completed/);
    assert.deepEqual(progress, [1, 2, 3, 4], 'every progress notification, the last one too');

    const ac = new AbortController();
    const t0 = performance.now();
    const cut = c.callTool({ name: 'everything__trigger-long-running-operation', arguments: { duration: 30, steps: 30 } }, undefined, {
      signal: ac.signal,
      onprogress: () => ac.abort('enough'),
    });
    await assert.rejects(cut);
    assert.ok(performance.now() - t0 < 20_000, 'cancelled long before the tool would have ended');
    await until('the cancelled call to leave the backend', () => backendsOf(g.status(), 'everything').every((b) => b.inFlight === 0));
    await cs.closeAll();
  });

  it('a sampling request reaches the session whose call caused it, and only that one', async () => {
    const { g } = await started(serverYaml('everything', EVERYTHING, ['stdio']));
    const cs = clients();
    const asked: string[] = [];
    const withSampling = async (who: string): Promise<Client> => {
      const c = cs.add(await connect(g.url, { capabilities: { capabilities: { sampling: {} } } }));
      c.setRequestHandler(CreateMessageRequestSchema, () => {
        asked.push(who);
        return { role: 'assistant', content: { type: 'text', text: `answer from ${who}` }, model: 'test', stopReason: 'endTurn' };
      });
      return c;
    };
    await withSampling('A');
    const b = await withSampling('B');
    const r = await b.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'hello', maxTokens: 5 } });
    assert.deepEqual(asked, ['B']);
    assert.match(text(r), /answer from B/);
    await cs.closeAll();
  });

  it('Host and Origin are checked against DNS rebinding; another address needs a token', async () => {
    const { g } = await started(serverYaml('everything', EVERYTHING, ['stdio']));
    const port = new URL(g.url).port;
    const status = (headers: Record<string, string>): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/status', headers }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on('error', reject);
        req.end();
      });
    assert.equal(await status({ host: `localhost:${port}` }), 200);
    assert.equal(await status({ host: 'evil.example' }), 403);
    assert.equal(await status({ host: `127.0.0.1:${port}`, origin: 'http://evil.example' }), 403);
    assert.equal(await status({ host: `127.0.0.1:${port}`, origin: `http://localhost:${port}` }), 200);
    const { listenGateway } = await import('../src/gateway/http.js');
    await assert.rejects(
      listenGateway({ gateway: g.gateway, host: '0.0.0.0', port: 0, serverInfo: { name: 'guild', version: '0' }, status: () => ({}) }),
      /needs? .*token|give a token/,
    );
  });
});

describe('gateway: crashes, limits and idle', { timeout: 180_000 }, () => {
  it('kill -9 of a backend: the next call succeeds, the tool list is whole, list_changed is sent', async () => {
    const { g, dir } = await started(serverYaml('everything', EVERYTHING, ['stdio']));
    const cs = clients();
    const c = cs.add(await connect(g.url));
    let changed = 0;
    c.setNotificationHandler(ToolListChangedNotificationSchema, () => void changed++);
    const before = (await c.listTools()).tools.length;
    const [pid] = backendsOf(g.status(), 'everything').find((b) => b.project === dir)!.pids;
    process.kill(pid!, 'SIGKILL');
    await until('the gateway to see the crash', () => !alive(pid!) && backendsOf(g.status(), 'everything')[0]!.pids.length === 0);
    const r = await c.callTool({ name: 'get-sum', arguments: { a: 20, b: 22 } });
    assert.equal(text(r), 'The sum of 20 and 22 is 42.');
    const slot = backendsOf(g.status(), 'everything').find((b) => b.project === dir)!;
    assert.equal(slot.restarts, 1);
    assert.notEqual(slot.pids[0], pid);
    assert.equal((await c.listTools()).tools.length, before);
    await until('notifications/tools/list_changed', () => changed > 0, 10_000);
    await cs.closeAll();
  });

  it('a backend over its limit is recycled with no failed call', async () => {
    // 10 MB: every instance is over it at its first measurement, so recycles follow calls throughout.
    const { g } = await started(serverYaml('everything', EVERYTHING, ['stdio'], 'memory: 10MB\nlimit: 10MB'));
    const cs = clients();
    const c = cs.add(await connect(g.url));
    const failures: unknown[] = [];
    let calls = 0;
    const end = performance.now() + 60_000;
    while (performance.now() < end) {
      await c.callTool({ name: 'get-sum', arguments: { a: calls, b: 1 } }).then(
        () => void calls++,
        (e: unknown) => void failures.push(e),
      );
      const slot = backendsOf(g.status(), 'everything')[0]!;
      if ((slot.recyclesBy.limit ?? 0) >= 2 && calls >= 10) break;
    }
    const slot = backendsOf(g.status(), 'everything')[0]!;
    assert.deepEqual(failures, []);
    assert.ok((slot.recyclesBy.limit ?? 0) >= 2, `recycled over its limit: ${JSON.stringify(slot.recyclesBy)}`);
    assert.ok(slot.allPids.length >= 2, `a fresh instance took over: ${slot.allPids.join(", ")}`);
    await cs.closeAll();
  });

  it('an idle instance stops after idle_timeout (min 0), and the next call starts it cold', async () => {
    const { g } = await started(serverYaml('everything', EVERYTHING, ['stdio'], 'idle_timeout: 1s\ninstances: { min: 0 }'));
    const [first] = backendsOf(g.status(), 'everything')[0]!.pids;
    await until('the idle instance to stop', () => !alive(first!) && backendsOf(g.status(), 'everything')[0]!.instances === 0);
    const cs = clients();
    const c = cs.add(await connect(g.url));
    assert.equal(text(await c.callTool({ name: 'echo', arguments: { message: 'cold' } })), 'Echo: cold');
    const [second] = backendsOf(g.status(), 'everything')[0]!.pids;
    assert.ok(second !== undefined && second !== first);
    await cs.closeAll();
  });
});

describe('gateway: governed like tasks', { timeout: 180_000 }, () => {
  it('under a budget that fits two instances a third waits (no overcommit) and starts once memory is freed', async () => {
    // 100 MB expected each, × 1.2 headroom: 250 MB fits two.
    const { g, dir } = await started(serverYaml('everything', EVERYTHING, ['stdio']), { budget: '250MB' });
    const cs = clients();
    const a = cs.add(await connect(g.url, { project: project(dir, 'a') }));
    await a.callTool({ name: 'echo', arguments: { message: 'a' } });
    const b = cs.add(await connect(g.url, { project: project(dir, 'b') }));
    let answered = false;
    const third = b.callTool({ name: 'echo', arguments: { message: 'b' } }).then((r) => ((answered = true), r));
    await until('the third instance to be refused by admission', () => backendsOf(g.status(), 'everything').some((s) => s.admissionDenied !== null));
    await sleep(1500);
    assert.equal(answered, false);
    const live = backendsOf(g.status(), 'everything').reduce((n, s) => n + s.instances + s.starting, 0);
    assert.equal(live, 2, 'never more instances than the budget fits');
    assert.match(backendsOf(g.status(), 'everything').find((s) => s.admissionDenied !== null)!.admissionDenied!, /budget 250 MB/);
    // High pressure stops idle instances: their memory goes back, the waiting call's instance starts.
    g.gateway.respond('high');
    assert.equal(text(await third), 'Echo: b');
    g.gateway.respond('optimal');
    await cs.closeAll();
  });

  it('an emergency recycles the largest idle instance first', async () => {
    const { g, dir } = await started(serverYaml('everything', EVERYTHING, ['stdio']));
    const cs = clients();
    for (const name of ['p', 'q']) await cs.add(await connect(g.url, { project: project(dir, name) })).callTool({ name: 'echo', arguments: { message: name } });
    await until('every instance to be measured', () => backendsOf(g.status(), 'everything').every((s) => s.rssBytes > 0));
    const slots = backendsOf(g.status(), 'everything');
    assert.equal(slots.length, 3);
    const largest = [...slots].sort((x, y) => y.rssBytes - x.rssBytes)[0]!;
    g.gateway.respond('emergency');
    await until('the largest idle instance to end', () => !alive(largest.pids[0]!));
    const others = slots.filter((s) => s !== largest).flatMap((s) => s.pids);
    assert.ok(others.every(alive), 'only the largest was recycled');
    assert.equal(backendsOf(g.status(), 'everything').find((s) => s.project === largest.project)!.recyclesBy.pressure, 1);
    g.gateway.respond('optimal');
    await cs.closeAll();
  });
});

describe('gateway: cached tool results', { timeout: 120_000 }, () => {
  it('a cached result equals the uncached one; an isError result is not cached', async () => {
    const { g } = await started(serverYaml('everything', EVERYTHING, ['stdio']));
    const cs = clients();
    const c = cs.add(await connect(g.url));
    const args = { name: 'get-structured-content', arguments: { location: 'New York' } };
    const first = await c.callTool(args);
    const second = await c.callTool(args);
    assert.deepEqual(second, first);
    const slot = backendsOf(g.status(), 'everything')[0]!;
    assert.equal(slot.cacheHits, 1, 'the second call came from the cache');
    assert.equal(slot.calls, 1, 'and never reached the backend');
    // get-sum with a string fails validation in the server: an isError result.
    const bad = { name: 'get-sum', arguments: { a: 'x', b: 1 } };
    const e1 = await c.callTool(bad);
    const e2 = await c.callTool(bad);
    assert.equal(e1.isError, true);
    assert.equal(e2.isError, true);
    assert.equal(backendsOf(g.status(), 'everything')[0]!.calls, 3, 'both failing calls reached the backend');
    await cs.closeAll();
  });

  it('a write through server-memory drops that server’s cached reads for the project', async () => {
    const dir0 = tempDir('guild-gw-mem-');
    cleanup.push(() => rmSync(dir0, { recursive: true, force: true }));
    const { g } = await started(serverYaml('memory', MEMORY, [], `env: { MEMORY_FILE_PATH: ${JSON.stringify(join(dir0, 'm.jsonl'))} }`));
    const cs = clients();
    const c = cs.add(await connect(g.url));
    const read = async (): Promise<string> => text(await c.callTool({ name: 'read_graph', arguments: {} }));
    const empty = await read();
    assert.equal(await read(), empty);
    assert.equal(g.status().cache.hits, 1);
    await c.callTool({ name: 'create_entities', arguments: { entities: [{ name: 'guild', entityType: 'tool', observations: ['caches safely'] }] } });
    const after = await read();
    assert.notEqual(after, empty, 'the read after the write is fresh');
    assert.match(after, /caches safely/);
    assert.ok(g.status().cache.invalidations >= 1);
    await cs.closeAll();
  });
});

describe('gateway: telemetry', { timeout: 60_000 }, () => {
  it('/metrics has per-tool latency, calls and backend memory; /status scores latency', async () => {
    const { g } = await started(serverYaml('everything', EVERYTHING, ['stdio'], 'kind: knowledge'));
    const cs = clients();
    const c = cs.add(await connect(g.url));
    for (let i = 0; i < 5; i++) await c.callTool({ name: 'get-sum', arguments: { a: i, b: i } });
    const body = await (await fetch(new URL('/metrics', g.url))).text();
    assert.match(body, /guild_mcp_call_duration_seconds_count\{server="everything",method="tools\/call",tool="get-sum",cached="false"\} 5/);
    assert.match(body, /guild_mcp_backend_rss_bytes\{server="everything",[^}]*\} [1-9]/);
    const lat = g.status().latency.find((l) => l.name === 'get-sum')!;
    assert.equal(lat.calls, 5);
    assert.equal(lat.targetMs, 300, 'the knowledge kind is scored against 300 ms');
    assert.ok(lat.p95Ms >= lat.p50Ms && lat.p50Ms > 0);
    await cs.closeAll();
  });
});
