/**
 * One MCP backend: a real published server (server-everything, server-memory, server-filesystem)
 * started by the real supervisor with pipes, an SDK client over Guild's pipe transport. What it
 * learns, calls, progress, cancellation, a kill -9, stop and recycle, memory as measured.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { McpError, type JSONRPCMessage, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { GuildError } from '../src/errors.js';
import { McpBackend, type BackendExit, type McpBackendOptions, type McpServerSpec } from '../src/gateway/backend.js';
import { PipeClientTransport } from '../src/gateway/pipe-transport.js';
import { Supervisor } from '../src/supervisor/supervisor.js';
import { LinuxProbe } from '../src/system/probe.js';
import { MB, ROOT, sleep, tempDir } from './helpers.js';

const SERVERS = join(ROOT, 'node_modules', '@modelcontextprotocol');
const everything: McpServerSpec = { name: 'everything', command: process.execPath, args: [join(SERVERS, 'server-everything', 'dist', 'index.js'), 'stdio'], env: {}, cwd: null };

const dir = tempDir('guild-mcp-backend-');
const probe = new LinuxProbe();
const supervisor = new Supervisor({ probe, sampleIntervalMs: 100 });
after(async () => {
  await supervisor.close();
  probe.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Options for a backend of `server` in the test's folder, its stderr logged there. */
function options(server: McpServerSpec, more: Partial<McpBackendOptions> = {}): McpBackendOptions {
  return { server, supervisor, project: dir, reservationBytes: 100 * MB, logFile: join(dir, `${server.name}.log`), ...more };
}

/** Every pid in process group `pgid`, from /proc (the server is its group's leader). */
function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${e}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid) out.push(Number(e));
  }
  return out;
}

function vmRssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !check(); await sleep(25)) if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
}

/** The text of a tool result's first content block. */
function text(result: Record<string, unknown>): string {
  const content = result.content as { type: string; text?: string }[];
  assert.equal(content[0]?.type, 'text');
  return content[0].text!;
}

const mb = (b: number): string => `${(b / MB).toFixed(1)} MB`;

describe('an MCP backend over the supervisor’s pipes (server-everything)', { timeout: 120_000 }, () => {
  let backend: McpBackend;
  const errors: Error[] = [];
  before(async () => {
    backend = await McpBackend.start(options(everything, { onError: (e) => errors.push(e) }));
  });
  after(() => backend.stop());

  it('learns what the server offers, with the tools a client declaring sampling, elicitation and roots gets', () => {
    assert.equal(backend.serverInfo?.name, 'mcp-servers/everything');
    assert.ok(backend.capabilities.tools, 'tools capability');
    assert.ok(backend.capabilities.resources?.subscribe, 'resources capability');
    assert.equal(typeof backend.instructions, 'string');
    assert.match(backend.protocolVersion ?? '', /^\d{4}-\d{2}-\d{2}$/);
    const names = backend.tools.map((t) => t.name);
    for (const n of ['echo', 'get-sum', 'trigger-long-running-operation', 'get-roots-list', 'trigger-sampling-request', 'trigger-elicitation-request']) assert.ok(names.includes(n), `${n} in ${names.join(', ')}`);
    // Names as the server gives them, fields the SDK's schema would strip kept (execution, annotations).
    const echo = backend.tools.find((t) => t.name === 'echo')!;
    assert.equal(echo.annotations?.readOnlyHint, true);
    assert.equal(backend.resources.length >= 7, true, `${backend.resources.length} resources`);
    assert.equal(backend.resourceTemplates.length, 2);
    assert.ok(backend.prompts.some((p) => p.name === 'simple-prompt'));
    assert.equal(backend.inFlight, 0);
  });

  it('calls echo and gets the text back', async () => {
    const r = await backend.request('tools/call', { name: 'echo', arguments: { message: 'hello guild' } });
    assert.equal(text(r), 'Echo: hello guild');
    // The server's answers to a bad call pass through as its own: an isError result.
    const bad = await backend.request('tools/call', { name: 'no-such-tool', arguments: {} });
    assert.equal(bad.isError, true);
    const lat: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      await backend.request('tools/call', { name: 'echo', arguments: { message: `m${i}` } });
      lat.push(performance.now() - t0);
    }
    lat.sort((a, b) => a - b);
    console.log(`# echo through the backend: p50 ${lat[100]!.toFixed(2)} ms, p95 ${lat[190]!.toFixed(2)} ms (200 calls)`);
  });

  it('delivers every progress notification, the last one included, before the result (5 runs)', async () => {
    for (let run = 0; run < 5; run++) {
      const seen: Progress[] = [];
      const r = await backend.request('tools/call', { name: 'trigger-long-running-operation', arguments: { duration: 0.5, steps: 5 } }, { onprogress: (p) => seen.push(p) });
      assert.match(text(r), /Long running operation completed/);
      assert.deepEqual(
        seen.map((p) => [p.progress, p.total]),
        [1, 2, 3, 4, 5].map((i) => [i, 5]),
        `run ${run + 1}`,
      );
    }
    // A progress for a token already forgotten would show here (typescript-sdk #2580).
    assert.deepEqual(errors.map((e) => e.message), []);
  });

  it('a caller’s progress token is not forwarded without onprogress', async () => {
    const r = await backend.request('tools/call', { name: 'trigger-long-running-operation', arguments: { duration: 0.2, steps: 2 }, _meta: { progressToken: 'callers-token' } });
    assert.match(text(r), /completed/);
    await sleep(100);
    assert.deepEqual(errors.map((e) => e.message), []);
  });

  it('cancellation through an AbortSignal reaches the server, and the backend goes on serving', async () => {
    const ac = new AbortController();
    const call = backend.request('tools/call', { name: 'trigger-long-running-operation', arguments: { duration: 1.5, steps: 1 } }, { signal: ac.signal });
    await until('the call in flight', () => backend.inFlight === 1);
    setTimeout(() => ac.abort(new Error('caller went away')), 200);
    await assert.rejects(call, (e: unknown) => e instanceof McpError && /caller went away/.test(e.message));
    assert.equal(backend.inFlight, 0);
    // Had `notifications/cancelled` not reached it, the server would answer when its 1.5 s are up,
    // for a request id the client has dropped: the SDK reports that through onError.
    await sleep(2500);
    assert.deepEqual(errors.map((e) => e.message), []);
    const r = await backend.request('tools/call', { name: 'echo', arguments: { message: 'still here' } });
    assert.equal(text(r), 'Echo: still here');
  });

  it('answers roots/list with the project folder, and refuses sampling when nobody relays it', async () => {
    const roots = await backend.request('tools/call', { name: 'get-roots-list', arguments: {} });
    assert.ok(text(roots).includes(`URI: ${pathToFileURL(dir).href}`), text(roots));
    // No onSampling: the backend answers the server with an MCP error, which the server turns
    // into its tool's error result.
    const r = await backend.request('tools/call', { name: 'trigger-sampling-request', arguments: { prompt: 'hi', maxTokens: 5 } });
    assert.equal(r.isError, true, JSON.stringify(r));
    assert.match(JSON.stringify(r), /has no caller to go to/);
  });

  it('hands a sampling request from the server to onSampling, and its answer back', async () => {
    const asked: unknown[] = [];
    const b = await McpBackend.start(
      options(everything, {
        onSampling: async (params, ctx) => {
          asked.push(params);
          assert.equal(ctx.signal.aborted, false);
          return { model: 'guild-test', role: 'assistant', content: { type: 'text', text: 'sampled by guild' } };
        },
      }),
    );
    try {
      const r = await b.request('tools/call', { name: 'trigger-sampling-request', arguments: { prompt: 'hi', maxTokens: 5 } });
      assert.notEqual(r.isError, true, JSON.stringify(r));
      assert.match(text(r), /sampled by guild/);
      assert.equal(asked.length, 1);
      assert.match(JSON.stringify(asked[0]), /context: hi/);
    } finally {
      await b.stop();
    }
  });

  it('memory is measured by the supervisor', async () => {
    await until('a measurement', () => (backend.memory?.bytes ?? 0) > 0);
    const m = backend.memory!;
    console.log(`# everything: measured ${mb(m.bytes)} (${m.source}), peak ${mb(m.peakBytes)}; VmRSS ${mb(vmRssBytes(backend.pid!))}`);
    assert.ok(m.bytes > 10 * MB, `measured ${mb(m.bytes)}`);
    assert.ok(m.peakBytes >= m.bytes);
  });
});

describe('a backend that goes away', { timeout: 120_000 }, () => {
  it('kill -9: the call in flight fails at once, onExit says crashed by SIGKILL, later calls fail clearly', async () => {
    const exits: BackendExit[] = [];
    const backend = await McpBackend.start(options(everything, { onExit: (e) => exits.push(e) }));
    const pid = backend.pid!;
    // The pid the supervisor knows is the server itself (the shell exec'd it), not a shell above it.
    assert.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /server-everything/);
    let progressed = false;
    const call = backend.request('tools/call', { name: 'trigger-long-running-operation', arguments: { duration: 60, steps: 60 } }, { onprogress: () => (progressed = true) });
    await until('the call under way', () => progressed);
    const t0 = performance.now();
    process.kill(pid, 'SIGKILL');
    const err = await call.then(
      () => assert.fail('the call should fail'),
      (e: unknown) => e,
    );
    const ms = performance.now() - t0;
    console.log(`# in-flight call rejected ${ms.toFixed(0)} ms after kill -9`);
    assert.ok(ms < 5000, `rejected after ${ms} ms`);
    assert.ok(err instanceof GuildError, String(err));
    assert.equal(err.code, 'UNAVAILABLE');
    assert.match(err.message, /everything.*crashed: killed by SIGKILL/);

    const exit = await backend.closed;
    assert.deepEqual(exits, [exit]);
    assert.equal(exit.why, 'crashed');
    assert.equal(exit.reason, 'signal');
    assert.equal(exit.signal, 'SIGKILL');
    assert.equal(backend.alive, false);
    await assert.rejects(backend.request('tools/call', { name: 'echo', arguments: { message: 'x' } }), (e: unknown) => e instanceof GuildError && e.code === 'UNAVAILABLE' && /crashed: killed by SIGKILL/.test(e.message));
    assert.deepEqual(groupMembers(pid), []);
    assert.equal(await backend.stop(), exit, 'stop after the end is the end');
  });

  it('stop(): calls in flight fail as stopped, and no process of it is left', async () => {
    const exits: BackendExit[] = [];
    const backend = await McpBackend.start(options(everything, { onExit: (e) => exits.push(e) }));
    const pid = backend.pid!;
    assert.ok(existsSync(`/proc/${pid}`));
    const call = backend.request('tools/call', { name: 'trigger-long-running-operation', arguments: { duration: 60, steps: 2 } });
    await until('the call in flight', () => backend.inFlight === 1);
    const stopping = backend.stop('idle');
    await assert.rejects(call, (e: unknown) => e instanceof GuildError && e.code === 'UNAVAILABLE' && /stopped after being idle/.test(e.message));
    await assert.rejects(backend.request('tools/list'), (e: unknown) => e instanceof GuildError && e.code === 'UNAVAILABLE');
    const exit = await stopping;
    assert.equal(exit.why, 'stopped');
    assert.equal(exit.reason, 'idle');
    assert.deepEqual(exits, [exit]);
    assert.equal(existsSync(`/proc/${pid}`), false, 'the server is gone');
    assert.deepEqual(groupMembers(pid), [], 'nothing of its group is left');
    assert.equal(supervisor.get(backend.id), undefined, 'the supervisor no longer watches it');
  });

  it('recycled by the supervisor: the exit says so, and so does the call it cut', async () => {
    const backend = await McpBackend.start(options(everything, { killGraceMs: 500 }));
    const pid = backend.pid!;
    const call = backend.request('tools/call', { name: 'trigger-long-running-operation', arguments: { duration: 60, steps: 2 } });
    await until('the call in flight', () => backend.inFlight === 1);
    supervisor.recycle(backend.id);
    await assert.rejects(call, (e: unknown) => e instanceof GuildError && e.code === 'UNAVAILABLE' && /recycled/.test(e.message));
    const exit = await backend.closed;
    assert.equal(exit.why, 'recycled');
    assert.equal(exit.reason, 'recycle');
    assert.deepEqual(groupMembers(pid), []);
  });

  it('a server that cannot start: UNAVAILABLE with its exit and stderr, nothing left', async () => {
    const exits: BackendExit[] = [];
    const missing: McpServerSpec = { name: 'missing', command: join(dir, 'no-such-server'), args: [], env: {}, cwd: null };
    await assert.rejects(McpBackend.start(options(missing, { onExit: (e) => exits.push(e) })), (e: unknown) => {
      assert.ok(e instanceof GuildError);
      assert.equal(e.code, 'UNAVAILABLE');
      assert.match(e.message, /Could not start MCP server 'missing': crashed: exited with code 127/);
      assert.match(e.message, /no-such-server/, 'the shell’s complaint from stderr');
      return true;
    });
    assert.equal(exits.length, 1);
    assert.equal(exits[0]!.why, 'crashed');
    assert.equal(exits[0]!.exitCode, 127);
    assert.deepEqual(groupMembers(exits[0]!.pid!), []);
  });

  it('rejects bad options before starting anything', async () => {
    const size = supervisor.size;
    await assert.rejects(McpBackend.start(options(everything, { project: 'relative/path' })), (e: unknown) => e instanceof GuildError && e.code === 'INVALID_OPTION');
    await assert.rejects(McpBackend.start(options(everything, { reservationBytes: -1 })), (e: unknown) => e instanceof GuildError && e.code === 'INVALID_OPTION');
    assert.equal(supervisor.size, size);
  });
});

describe('the other reference servers', { timeout: 120_000 }, () => {
  it('server-memory, its data file in a temp folder: a write, then a read that sees it', async () => {
    const file = join(dir, 'memory.jsonl');
    const server: McpServerSpec = { name: 'memory', command: process.execPath, args: [join(SERVERS, 'server-memory', 'dist', 'index.js')], env: { MEMORY_FILE_PATH: file }, cwd: null };
    const backend = await McpBackend.start(options(server));
    try {
      const names = backend.tools.map((t) => t.name);
      for (const n of ['create_entities', 'read_graph', 'search_nodes']) assert.ok(names.includes(n), `${n} in ${names.join(', ')}`);
      const created = await backend.request('tools/call', { name: 'create_entities', arguments: { entities: [{ name: 'guild', entityType: 'project', observations: ['shares MCP servers'] }] } });
      assert.notEqual(created.isError, true, JSON.stringify(created));
      const graph = await backend.request('tools/call', { name: 'read_graph', arguments: {} });
      assert.match(text(graph), /shares MCP servers/);
      assert.match(readFileSync(file, 'utf8'), /"name":"guild"/);
      await until('a measurement', () => (backend.memory?.bytes ?? 0) > 0);
      console.log(`# memory: measured ${mb(backend.memory!.bytes)} (${backend.memory!.source}); VmRSS ${mb(vmRssBytes(backend.pid!))}`);
      assert.ok(backend.memory!.bytes > 10 * MB);
    } finally {
      const pid = backend.pid!;
      assert.equal((await backend.stop()).why, 'stopped');
      assert.deepEqual(groupMembers(pid), []);
    }
  });

  it('server-filesystem on a temp folder: reads a file there', async () => {
    const files = tempDir('guild-mcp-fs-');
    writeFileSync(join(files, 'hello.txt'), 'hello from guild\n');
    const server: McpServerSpec = { name: 'filesystem', command: process.execPath, args: [join(SERVERS, 'server-filesystem', 'dist', 'index.js'), files], env: {}, cwd: null };
    // Its roots (answered by the backend: the project folder) replace the folders on its command line.
    const backend = await McpBackend.start(options(server, { project: files }));
    try {
      assert.ok(backend.tools.some((t) => t.name === 'read_text_file'));
      const r = await backend.request('tools/call', { name: 'read_text_file', arguments: { path: join(files, 'hello.txt') } });
      assert.notEqual(r.isError, true, JSON.stringify(r));
      assert.equal(text(r), 'hello from guild\n');
      await until('a measurement', () => (backend.memory?.bytes ?? 0) > 0);
      console.log(`# filesystem: measured ${mb(backend.memory!.bytes)} (${backend.memory!.source}); VmRSS ${mb(vmRssBytes(backend.pid!))}`);
      assert.ok(backend.memory!.bytes > 10 * MB);
    } finally {
      const pid = backend.pid!;
      await backend.stop();
      assert.deepEqual(groupMembers(pid), []);
      rmSync(files, { recursive: true, force: true });
    }
  });
});

/** A node child running `script` with piped stdio, and a transport over its pipes. */
function child(script: string, options: { maxMessageBytes?: number } = {}): { proc: ChildProcessWithoutNullStreams; transport: PipeClientTransport; messages: JSONRPCMessage[]; errors: Error[]; closed: Promise<void> } {
  const proc = spawn(process.execPath, ['-e', script], { stdio: 'pipe' });
  const transport = new PipeClientTransport(proc.stdout, proc.stdin, options);
  const messages: JSONRPCMessage[] = [];
  const errors: Error[] = [];
  transport.onmessage = (m) => messages.push(m);
  transport.onerror = (e) => errors.push(e);
  const closed = new Promise<void>((r) => (transport.onclose = r));
  after(() => void proc.kill('SIGKILL'));
  return { proc, transport, messages, errors, closed };
}

const request: JSONRPCMessage = { jsonrpc: '2.0', id: 1, method: 'ping' };

describe('the pipe transport alone', { timeout: 30_000 }, () => {
  it('delivers a response written just before the server exited, after the notification before it', async () => {
    // The child answers with a notification and the response in one write, then exits. Guild's
    // thread is held meanwhile, so the data and stdout's end are read in one turn of the loop:
    // delivery yields after the notification, 'end' comes first, and the response must still be
    // delivered before onclose.
    const c = child(`process.stdin.once('data', () => process.stdout.write('{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}\\n{"jsonrpc":"2.0","id":1,"result":{}}\\n', () => process.exit(0)));`);
    await c.transport.start();
    await c.transport.send(request);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
    await c.closed;
    assert.deepEqual(
      c.messages.map((m) => ('id' in m ? `response ${m.id}` : `notification ${(m as { method: string }).method}`)),
      ['notification notifications/progress', 'response 1'],
    );
    assert.equal(c.transport.closed, true);
    await assert.rejects(c.transport.send(request), /Not connected/);
  });

  it('honours back-pressure: a send waits until the server reads, and close rejects one still waiting', async () => {
    // The child reads nothing for 1.5 s: 4 MB cannot fit in a pipe (64 KB) and Node's buffer.
    const c = child(`setTimeout(() => process.stdin.on('data', () => {}), 1500); setInterval(() => {}, 1000);`);
    await c.transport.start();
    const big: JSONRPCMessage = { jsonrpc: '2.0', method: 'notifications/message', params: { data: 'x'.repeat(4 * 1024 * 1024) } };
    let sent = false;
    const first = c.transport.send(big).then(() => (sent = true));
    await sleep(500);
    assert.equal(sent, false, 'still waiting for the pipe to drain');
    await first;
    assert.equal(sent, true, 'resolved once the child read');

    const d = child(`setInterval(() => {}, 1000);`);
    await d.transport.start();
    const waiting = d.transport.send(big);
    await sleep(100);
    await d.transport.close();
    await assert.rejects(waiting, /Not connected/);
    await d.closed;
  });

  it('reports a bad line and goes on; a message over the limit closes it, so no caller waits for ever', async () => {
    const c = child(`process.stdout.write('not json\\n{"jsonrpc":"2.0","id":7,"result":{}}\\n'); setInterval(() => {}, 1000);`);
    await c.transport.start();
    await until('the good message', () => c.messages.length === 1);
    assert.equal(c.errors.length, 1);
    assert.equal((c.messages[0] as { id: number }).id, 7);
    assert.equal(c.transport.closed, false);
    await c.transport.close();

    const d = child(`process.stdout.write('{"jsonrpc":"2.0","id":1,"result":{"pad":"' + 'x'.repeat(4096) + '"}}\\n'); setInterval(() => {}, 1000);`, { maxMessageBytes: 1024 });
    await d.transport.start();
    await d.closed;
    assert.match(d.errors[0]?.message ?? '', /exceeded maximum size/);
    assert.equal(d.messages.length, 0);
  });

  it('closing ends stdin but never kills the process', async () => {
    const c = child(`process.stdin.on('end', () => setTimeout(() => process.exit(3), 300)); process.stdin.resume();`);
    await c.transport.start();
    const exited = new Promise<number | null>((r) => c.proc.once('exit', (code) => r(code)));
    await c.transport.close();
    // It exits on its own, with its own code, after its own delay: no signal from the transport.
    assert.equal(await exited, 3);
    assert.equal(c.proc.signalCode, null);
  });
});
