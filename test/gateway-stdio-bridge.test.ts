/**
 * `guild mcp stdio`'s two pieces: the bridge that relays a stdio MCP client to the gateway over
 * streamable HTTP, and the gateway's state file. The bridge runs in a child process of its own,
 * driven by a real SDK `Client` over `StdioClientTransport`, in front of a real streamable HTTP
 * MCP server (this file run as `node <this file> gateway [TOKEN]`, a child too, so that it can be
 * killed -9 in the middle of a call).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chownSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CreateMessageRequestSchema, CreateMessageResultSchema, ErrorCode, LATEST_PROTOCOL_VERSION, McpError, type JSONRPCMessage, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { gatewayStatePath, liveGatewayState, readGatewayState, removeGatewayState, writeGatewayState, type GatewayState } from '../src/gateway/state-file.js';
import { bridgeStdio, type BridgeErrorData } from '../src/gateway/stdio-bridge.js';
import { readStartTime } from '../src/system/process-identity.js';
import { alive, ROOT, tempDir } from './helpers.js';

const THIS_FILE = fileURLToPath(import.meta.url);
/** Longest timeout Node's timers take (a larger one fires at once): calls here must never time out. */
const NO_TIMEOUT = 2_147_483_647;

// ——— the gateway-like server, when this file runs as `node <file> gateway [TOKEN]` ———

/** What the server tells the test, one JSON line each on stdout. */
type GatewayEvent =
  | { event: 'listening'; port: number }
  | { event: 'session'; id: string }
  | { event: 'closed'; id: string }
  | { event: 'http'; method: string; session: string | null; version: string | null }
  | { event: 'unauthorized' }
  | { event: 'waiting' };

function say(e: GatewayEvent): void {
  process.stdout.write(`${JSON.stringify(e)}\n`);
}

/** One MCP server per session, with the tools the tests call. */
function sessionServer(): McpServer {
  const server = new McpServer({ name: 'test-gateway', version: '1.0.0' });
  server.registerTool('echo', { description: 'Echoes its message', inputSchema: { message: z.string() } }, ({ message }) => ({
    content: [{ type: 'text', text: message }],
  }));
  server.registerTool('count', { description: 'Counts to steps, reporting progress', inputSchema: { steps: z.number().int() } }, async ({ steps }, extra) => {
    const progressToken = extra._meta?.progressToken;
    for (let i = 1; i <= steps; i++) {
      if (progressToken !== undefined) await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress: i, total: steps, message: `step ${i}` } });
    }
    return { content: [{ type: 'text', text: `counted to ${steps}` }] };
  });
  server.registerTool('sample', { description: 'Asks the client to sample', inputSchema: { prompt: z.string() } }, async ({ prompt }, extra) => {
    const r = await extra.sendRequest(
      { method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 20 } },
      CreateMessageResultSchema,
      { timeout: NO_TIMEOUT },
    );
    const text = r.content.type === 'text' ? r.content.text : `(${r.content.type})`;
    return { content: [{ type: 'text', text: `${r.model} said: ${text}` }] };
  });
  server.registerTool('wait', { description: 'Returns when cancelled' }, async (extra) => {
    say({ event: 'waiting' });
    await new Promise<void>((resolve) => extra.signal.addEventListener('abort', () => resolve(), { once: true }));
    return { content: [{ type: 'text', text: 'cancelled' }] };
  });
  return server;
}

function jsonError(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message } }));
}

/** Streamable HTTP at /mcp, a session per initialize (the shape of docs/gateway-research.md §2). */
function serveGateway(token: string | null): void {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const http = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      if (token !== null && req.headers.authorization !== `Bearer ${token}`) {
        say({ event: 'unauthorized' });
        return jsonError(res, 401, 'Unauthorized');
      }
      const sid = req.headers['mcp-session-id'];
      const version = req.headers['mcp-protocol-version'];
      say({ event: 'http', method: req.method ?? '', session: typeof sid === 'string' ? sid : null, version: typeof version === 'string' ? version : null });
      if (typeof sid === 'string') {
        const transport = sessions.get(sid);
        if (transport === undefined) return jsonError(res, 404, 'Session not found');
        return transport.handleRequest(req, res);
      }
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          sessions.set(id, transport);
          say({ event: 'session', id });
        },
        onsessionclosed: (id) => say({ event: 'closed', id }),
      });
      transport.onclose = () => {
        if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
      };
      await sessionServer().connect(transport);
      await transport.handleRequest(req, res);
    })().catch((e: unknown) => {
      process.stderr.write(`gateway: ${String(e)}\n`);
      if (!res.headersSent) jsonError(res, 500, String(e));
    });
  });
  http.listen(0, '127.0.0.1', () => say({ event: 'listening', port: (http.address() as { port: number }).port }));
}

if (process.argv[2] === 'gateway') serveGateway(process.argv[3] ?? null);
else tests();

// ——— the tests ———

/** The gateway child: its events as they come, and a promise for the first that matches. */
class GatewayChild {
  readonly child: ChildProcess;
  readonly events: GatewayEvent[] = [];
  readonly #waiters: { match: (e: GatewayEvent) => boolean; resolve: (e: GatewayEvent) => void }[] = [];
  readonly exited: Promise<void>;
  url = '';

  constructor(token: string | null) {
    this.child = spawn(process.execPath, [THIS_FILE, 'gateway', ...(token === null ? [] : [token])], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const e = JSON.parse(line) as GatewayEvent;
      this.events.push(e);
      for (const w of this.#waiters.filter((x) => x.match(e))) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(e);
      }
    });
  }

  static async start(token: string | null = null): Promise<GatewayChild> {
    const g = new GatewayChild(token);
    const e = await g.next((x) => x.event === 'listening');
    g.url = `http://127.0.0.1:${(e as { port: number }).port}/mcp`;
    return g;
  }

  /** The first event, already seen or to come, that matches. */
  next(match: (e: GatewayEvent) => boolean): Promise<GatewayEvent> {
    const seen = this.events.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => this.#waiters.push({ match, resolve }));
  }

  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** A stdio client whose server is the bridge, in a child process, in front of `url`. */
interface Bridged {
  client: Client;
  transport: StdioClientTransport;
  /** Every message the client's transport received, before the SDK's protocol handles it. */
  received: JSONRPCMessage[];
  /** How the bridge ended, as its script wrote it (`resolved`, or `rejected CODE`), then `exit N`. */
  outcome(): string;
  stderr(): string;
  sampled: string[];
}

function tests(): void {
  const dir = tempDir('guild-stdio-bridge-');
  const bridgeScript = join(dir, 'bridge.mjs');
  const bridgeModule = pathToFileURL(join(ROOT, 'dist', 'src', 'gateway', 'stdio-bridge.js')).href;
  // What `guild mcp stdio` does with the bridge: run it on stdin/stdout, exit when it ends.
  writeFileSync(
    bridgeScript,
    `import { appendFileSync } from 'node:fs';
import { bridgeStdio } from ${JSON.stringify(bridgeModule)};
const [url, token, outcome] = process.argv.slice(2);
process.on('exit', (code) => appendFileSync(outcome, 'exit ' + code + '\\n'));
bridgeStdio({ url, token: token || null, input: process.stdin, output: process.stdout, onError: (e) => process.stderr.write('bridge: ' + e.message + '\\n') }).then(
  () => { appendFileSync(outcome, 'resolved\\n'); process.exit(0); },
  (e) => { appendFileSync(outcome, 'rejected ' + e.code + '\\n'); process.stderr.write('bridge: ' + e.message + '\\n'); process.exit(3); },
);
`,
  );
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function bridged(url: string, token: string | null): Promise<Bridged> {
    const outcomeFile = join(dir, `outcome-${randomUUID()}`);
    writeFileSync(outcomeFile, '');
    const transport = new StdioClientTransport({ command: process.execPath, args: [bridgeScript, url, token ?? '', outcomeFile], stderr: 'pipe' });
    let stderr = '';
    transport.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const client = new Client({ name: 'stdio-test-client', version: '1.0.0' }, { capabilities: { sampling: {} } });
    const sampled: string[] = [];
    client.setRequestHandler(CreateMessageRequestSchema, (req) => {
      const c = req.params.messages[0]?.content;
      const prompt = c !== undefined && !Array.isArray(c) && c.type === 'text' ? c.text : '?';
      sampled.push(prompt);
      return { model: 'test-model', role: 'assistant', content: { type: 'text', text: prompt.toUpperCase() } };
    });
    const received: JSONRPCMessage[] = [];
    const b: Bridged = { client, transport, received, sampled, outcome: () => readFileSync(outcomeFile, 'utf8'), stderr: () => stderr };
    try {
      await client.connect(transport);
    } finally {
      // The protocol installed its handler at connect: record underneath it.
      const handle = transport.onmessage;
      transport.onmessage = (m) => {
        received.push(m);
        handle?.(m);
      };
    }
    return b;
  }

  /** A tool result's text. */
  const text = (r: Awaited<ReturnType<Client['callTool']>>): string => {
    const c = (r.content as { type: string; text?: string }[])[0];
    assert.equal(c?.type, 'text');
    return c.text!;
  };

  describe('the stdio bridge in front of a streamable HTTP gateway', { timeout: 120_000 }, () => {
    let gateway: GatewayChild;
    let b: Bridged;
    before(async () => {
      gateway = await GatewayChild.start('s3cret');
      b = await bridged(gateway.url, 's3cret');
    });
    after(async () => {
      await b.client.close().catch(() => undefined);
      await gateway.kill();
    });

    it('initializes through the bridge and lists the tools, with the bearer token on every request', async () => {
      assert.equal(b.client.getServerVersion()?.name, 'test-gateway');
      const tools = await b.client.listTools();
      assert.deepEqual(tools.tools.map((t) => t.name).sort(), ['count', 'echo', 'sample', 'wait']);
      assert.ok(!gateway.events.some((e) => e.event === 'unauthorized'), 'every request carried the token');
      // The negotiated version rides on every request after initialize (setProtocolVersion).
      const withSession = gateway.events.filter((e): e is Extract<GatewayEvent, { event: 'http' }> => e.event === 'http' && e.session !== null);
      assert.ok(withSession.length >= 2, 'notifications/initialized and tools/list went with the session');
      assert.deepEqual(new Set(withSession.map((e) => e.version)), new Set([LATEST_PROTOCOL_VERSION]));
    });

    it('echoes', async () => {
      assert.equal(text(await b.client.callTool({ name: 'echo', arguments: { message: 'héllo ✓' } })), 'héllo ✓');
    });

    it('relays every progress notification, in order, before the result', async () => {
      const steps = 25;
      const progress: Progress[] = [];
      const from = b.received.length;
      const r = await b.client.callTool({ name: 'count', arguments: { steps } }, undefined, { onprogress: (p) => progress.push(p), timeout: NO_TIMEOUT });
      assert.equal(text(r), `counted to ${steps}`);
      const relayed = b.received.slice(from).filter((m) => 'method' in m && m.method === 'notifications/progress');
      assert.deepEqual(
        relayed.map((m) => (m as unknown as { params: { progress: number } }).params.progress),
        Array.from({ length: steps }, (_, i) => i + 1),
      );
      // And every one reached the caller: the bridge's ping barrier keeps the result from being
      // read together with them (which loses them in the SDK client, typescript-sdk #2580).
      assert.deepEqual(
        progress.map((p) => p.progress),
        Array.from({ length: steps }, (_, i) => i + 1),
      );
      const pings = b.received.slice(from).filter((m) => 'method' in m && m.method === 'ping');
      assert.equal(pings.length, 1, 'one barrier, before the result');
    });

    it('relays a sampling request to the stdio client and its answer back', async () => {
      const r = await b.client.callTool({ name: 'sample', arguments: { prompt: 'write a haiku' } }, undefined, { timeout: NO_TIMEOUT });
      assert.deepEqual(b.sampled, ['write a haiku']);
      assert.equal(text(r), 'test-model said: WRITE A HAIKU');
    });

    it('relays concurrent calls, each answer to its own request', async () => {
      const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => b.client.callTool({ name: 'echo', arguments: { message: `m${i}` } })));
      assert.deepEqual(rs.map(text), Array.from({ length: 8 }, (_, i) => `m${i}`));
    });

    it('closing the client ends the bridge, which ends the HTTP session (DELETE)', async () => {
      const opened = (await gateway.next((e) => e.event === 'session')) as { id: string };
      const pid = b.transport.pid;
      assert.ok(pid !== null && alive(pid));
      await b.client.close();
      const closed = (await gateway.next((e) => e.event === 'closed')) as { id: string };
      assert.equal(closed.id, opened.id);
      assert.ok(gateway.events.some((e) => e.event === 'http' && e.method === 'DELETE' && e.session === opened.id));
      assert.equal(b.outcome(), 'resolved\nexit 0\n', b.stderr());
      assert.ok(!alive(pid));
      assert.equal(gateway.events.filter((e) => e.event === 'session').length, 1, 'one session for the whole client');
    });
  });

  describe('the stdio bridge when the gateway fails', { timeout: 120_000 }, () => {
    it('a gateway killed in the middle of a call: the call fails with an error, the bridge ends', async () => {
      const gateway = await GatewayChild.start();
      const b = await bridged(gateway.url, null);
      try {
        assert.equal(text(await b.client.callTool({ name: 'echo', arguments: { message: 'up' } })), 'up');
        const call = b.client.callTool({ name: 'wait', arguments: {} }, undefined, { timeout: NO_TIMEOUT });
        const settled = call.then(
          () => null,
          (e: unknown) => e,
        );
        await gateway.next((e) => e.event === 'waiting');
        await gateway.kill();
        const e = await settled;
        assert.ok(e instanceof McpError, `expected an McpError, got ${String(e)}`);
        assert.equal(e.code, ErrorCode.ConnectionClosed);
        // Answered by the bridge (its data says so), not by the SDK noticing a dead pipe.
        assert.equal((e.data as BridgeErrorData | undefined)?.code, 'UNAVAILABLE', e.message);
        assert.equal((e.data as BridgeErrorData).url, gateway.url);
        // The bridge noticed the gateway gone (its GET stream cannot reconnect) and ended with UNAVAILABLE.
        const closed = new Promise<void>((resolve) => {
          if (b.transport.pid === null) resolve();
          else b.client.onclose = () => resolve();
        });
        await closed;
        assert.equal(b.outcome(), 'rejected UNAVAILABLE\nexit 3\n', b.stderr());
      } finally {
        await b.client.close().catch(() => undefined);
        await gateway.kill();
      }
    });

    it('a call after the gateway died gets an error, not a hang', async () => {
      const gateway = await GatewayChild.start();
      const b = await bridged(gateway.url, null);
      try {
        await gateway.kill();
        const e = await b.client.callTool({ name: 'echo', arguments: { message: 'anyone?' } }, undefined, { timeout: NO_TIMEOUT }).then(
          () => null,
          (x: unknown) => x,
        );
        // The bridge answers it (UNAVAILABLE: the POST finds nobody), or, had it already noticed
        // the gateway gone and ended, the client finds its server gone: an error both ways.
        assert.ok(e instanceof Error, 'an error, not a result');
        if (e instanceof McpError) assert.equal(e.code, ErrorCode.ConnectionClosed);
        await new Promise<void>((resolve) => {
          if (b.transport.pid === null) resolve();
          else b.client.onclose = () => resolve();
        });
        assert.equal(b.outcome(), 'rejected UNAVAILABLE\nexit 3\n', b.stderr());
      } finally {
        await b.client.close().catch(() => undefined);
      }
    });

    it('a request the gateway refuses (a wrong token) is answered with an error carrying its id', async () => {
      const gateway = await GatewayChild.start('right');
      try {
        await assert.rejects(bridged(gateway.url, 'wrong'), (e: unknown) => {
          assert.ok(e instanceof McpError, String(e));
          assert.equal((e.data as BridgeErrorData | undefined)?.code, 'SEND_FAILED');
          assert.match(e.message, /initialize/);
          return true;
        });
        assert.ok(gateway.events.some((e) => e.event === 'unauthorized'));
      } finally {
        await gateway.kill();
      }
    });

    it('refuses a URL that is not http(s)', async () => {
      await assert.rejects(bridgeStdio({ url: 'ftp://x/mcp', input: new PassThrough(), output: new PassThrough() }), { code: 'INVALID_OPTION' });
      await assert.rejects(bridgeStdio({ url: 'not a url', input: new PassThrough(), output: new PassThrough() }), { code: 'INVALID_OPTION' });
    });
  });

  describe('the gateway state file', () => {
    const state = (pid: number, more: Partial<GatewayState> = {}): GatewayState => ({
      pid,
      url: 'http://127.0.0.1:8091/mcp',
      configFile: '/abs/guild.yaml',
      startedAt: new Date(0).toISOString(),
      token: 'tok',
      ...more,
    });

    it('is written atomically with mode 0600, creating .guild/, and read back with the start time', () => {
      const d = tempDir('guild-gw-state-');
      try {
        writeGatewayState(d, state(process.pid));
        const file = gatewayStatePath(d);
        assert.equal(file, join(d, '.guild', 'mcp-gateway.json'));
        assert.equal(statSync(file).mode & 0o777, 0o600);
        assert.deepEqual(readdirSync(join(d, '.guild')), ['mcp-gateway.json'], 'no temporary file left');
        assert.deepEqual(readGatewayState(d), { ...state(process.pid), pidStart: readStartTime(process.pid) });
        assert.deepEqual(liveGatewayState(d), readGatewayState(d));
        // Replacing it keeps the mode.
        writeGatewayState(d, state(process.pid, { token: null, url: 'http://127.0.0.1:1/mcp' }));
        assert.equal(statSync(file).mode & 0o777, 0o600);
        assert.equal(readGatewayState(d)?.url, 'http://127.0.0.1:1/mcp');
        assert.equal(readGatewayState(d)?.token, null);
      } finally {
        rmSync(d, { recursive: true, force: true });
      }
    });

    it('is null when missing, unparsable or not a gateway’s state', () => {
      const d = tempDir('guild-gw-state-');
      try {
        assert.equal(readGatewayState(d), null);
        assert.equal(liveGatewayState(d), null);
        writeGatewayState(d, state(process.pid));
        writeFileSync(gatewayStatePath(d), '{"pid": 12');
        assert.equal(readGatewayState(d), null);
        writeFileSync(gatewayStatePath(d), JSON.stringify({ pid: 'x', url: 'u' }));
        assert.equal(readGatewayState(d), null);
        writeFileSync(gatewayStatePath(d), JSON.stringify({ ...state(process.pid), pid: -1 }));
        assert.equal(readGatewayState(d), null);
      } finally {
        rmSync(d, { recursive: true, force: true });
      }
    });

    it('is stale when its process is dead, or when its pid now names another process', async () => {
      const d = tempDir('guild-gw-state-');
      try {
        const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
        await new Promise((r) => child.once('spawn', r));
        writeGatewayState(d, state(child.pid!));
        assert.equal(liveGatewayState(d)?.pid, child.pid, 'a live gateway');
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
        assert.equal(liveGatewayState(d), null, 'its process is dead');
        assert.equal(readGatewayState(d)?.pid, child.pid, 'the stale file is still there to read');
        // A reused pid: our own pid, but a start time that is not ours.
        writeGatewayState(d, state(process.pid, { pidStart: readStartTime(process.pid)! - 1 }));
        assert.equal(liveGatewayState(d), null, 'a reused pid');
        // Written where /proc could not be read: the signal alone decides.
        writeFileSync(gatewayStatePath(d), JSON.stringify({ ...state(process.pid), pidStart: null }));
        assert.equal(liveGatewayState(d)?.pid, process.pid);
      } finally {
        rmSync(d, { recursive: true, force: true });
      }
    });

    it('counts a process it may not signal (EPERM) as alive', () => {
      const d = tempDir('guild-gw-state-');
      try {
        if (process.getuid?.() !== 0) {
          // pid 1 belongs to root: signal 0 says EPERM.
          writeGatewayState(d, state(1));
          assert.throws(() => process.kill(1, 0), { code: 'EPERM' });
          assert.equal(liveGatewayState(d)?.pid, 1);
          return;
        }
        // As root every signal is allowed: ask as nobody (65534) about this root process.
        writeGatewayState(d, state(process.pid));
        for (const p of [d, join(d, '.guild'), gatewayStatePath(d)]) chownSync(p, 65534, 65534);
        const module = pathToFileURL(join(ROOT, 'dist', 'src', 'gateway', 'state-file.js')).href;
        const script = `import { liveGatewayState } from ${JSON.stringify(module)};
let code = 'none'; try { process.kill(${process.pid}, 0); } catch (e) { code = e.code; }
console.log(JSON.stringify({ code, live: liveGatewayState(${JSON.stringify(d)}) }));`;
        const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        const out = JSON.parse(r.stdout) as { code: string; live: GatewayState | null };
        assert.equal(out.code, 'EPERM');
        assert.equal(out.live?.pid, process.pid);
      } finally {
        rmSync(d, { recursive: true, force: true });
      }
    });

    it('is removed only by the gateway it names', () => {
      const d = tempDir('guild-gw-state-');
      try {
        removeGatewayState(d, process.pid); // nothing there: nothing to do
        writeGatewayState(d, state(process.pid));
        removeGatewayState(d, process.pid + 1);
        assert.equal(readGatewayState(d)?.pid, process.pid, 'another pid leaves it');
        removeGatewayState(d, process.pid);
        assert.equal(existsSync(gatewayStatePath(d)), false);
      } finally {
        rmSync(d, { recursive: true, force: true });
      }
    });
  });
}
