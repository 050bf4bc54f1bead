/**
 * The dashboard server against an in-memory source: binding rules, the token, every route, the
 * page's files, and the event stream with many clients. (A real run behind the server is shown
 * end to end elsewhere.)
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, symlinkSync } from 'node:fs';
import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { createServer as createNetServer, connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { isLoopbackHost } from '../src/dashboard/auth.js';
import { defaultMaxConnections, startDashboard, type DashboardOptions, type DashboardServer, type DashboardSource } from '../src/dashboard/server.js';
import { RouteTable, type RouteHandler } from '../src/dashboard/routes.js';
import { DEFAULTS } from '../src/config/defaults.js';
import { GuildError } from '../src/errors.js';
import { KPI_MINIMUMS, KPI_POINTS } from '../src/telemetry/kpi.js';
import type { DashboardState, RunSummary } from '../src/telemetry/state.js';
import { tempDir } from './helpers.js';

// ---------------------------------------------------------------------------------------------
// Fixtures

const STATE: DashboardState = {
  version: 1,
  mode: 'run',
  run: { id: 'r-abc123', workflow: 'guild.yaml', name: 'demo', started_at: 1_700_000_000_000, elapsed_ms: 1234, status: 'running', total_tasks: 3, cores: 4 },
  memory: null,
  pressure: null,
  queue: { queued: 1, running: 1, paused: 0, done: 1, total: 3, blocked: null },
  tasks: [],
  agents: [],
  series: [],
  cache: { hits: 0, misses: 0, hit_rate: null, saved_ms: 0 },
  kpis: null,
  alerts: [],
  guild: { rss_bytes: 50_000_000, event_loop_delay_p99_ms: 1.5, gc_pause_total_ms: 2 },
};

/** The settings a source that has none of its own gets: the governor's bands (its `ceiling` is `kill`), telemetry's KPI points, no KPI period. */
const DEFAULT_SETTINGS = {
  thresholds: { moderate: DEFAULTS.thresholds.moderate, high: DEFAULTS.thresholds.high, critical: DEFAULTS.thresholds.critical, emergency: DEFAULTS.thresholds.emergency, kill: DEFAULTS.thresholds.ceiling },
  kpi_points: KPI_POINTS,
  kpi_interval_ms: null,
  kpi_minimums: KPI_MINIMUMS,
};

/** What `/api/state` and the first `state` event carry: every field of the source's state unchanged, and the settings. */
const SERVED = { ...STATE, settings: DEFAULT_SETTINGS };

function summary(i: number): RunSummary {
  return { id: `r-${i}`, workflow: 'guild.yaml', name: 'demo', status: 'succeeded', started_at: i, ended_at: i + 1, makespan_ms: 1, peak_rss_bytes: 1, tasks: 1, failed: 0, cache_hit_rate: null, kpi_overall: null, tokens: null, cost_usd: null };
}

interface FakeSource extends DashboardSource {
  emit(event: string, data: string): void;
  subscriptions: number;
  listeners: number;
  failState: boolean;
  failMetrics: boolean;
  lastLimit: number | null;
}

function fakeSource(): FakeSource {
  const listeners = new Set<(event: string, data: string) => void>();
  const src: FakeSource = {
    subscriptions: 0,
    get listeners() {
      return listeners.size;
    },
    failState: false,
    failMetrics: false,
    lastLimit: null,
    state() {
      if (src.failState) throw new Error('secret internals at /home/x/state.ts:42');
      return STATE;
    },
    async metrics() {
      if (src.failMetrics) throw new Error('secret internals');
      return { contentType: 'text/plain; version=0.0.4; charset=utf-8', body: '# HELP guild_up 1\n# TYPE guild_up gauge\nguild_up 1\n' };
    },
    subscribe(listener) {
      src.subscriptions++;
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    runs(limit) {
      src.lastLimit = limit;
      return Array.from({ length: Math.min(limit, 3) }, (_, i) => summary(i));
    },
    run(id) {
      return id === 'last' || 'r-abc123'.startsWith(id) ? { report: { id: 'r-abc123' }, markdown: '# demo', series: [] } : null;
    },
    emit(event, data) {
      for (const l of listeners) l(event, data);
    },
  } as FakeSource;
  return src;
}

/** A page folder inside a folder that also holds a package.json and a secret, so an escape would find them. */
function pageDir(): string {
  const root = tempDir('guild-dash-');
  writeFileSync(join(root, 'package.json'), '{"name":"escaped"}');
  const page = join(root, 'page');
  mkdirSync(page);
  mkdirSync(join(page, 'sub'));
  writeFileSync(join(page, 'index.html'), '<!doctype html><title>Guild</title><script src="app.js"></script>');
  writeFileSync(join(page, 'app.js'), 'console.log("page");');
  writeFileSync(join(page, 'style.css'), 'body { margin: 0 }');
  writeFileSync(join(page, '.env'), 'SECRET=1');
  writeFileSync(join(page, 'sub', 'inner.js'), 'nested');
  symlinkSync(join(root, 'package.json'), join(page, 'linked.json'));
  return page;
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function get(port: number, path: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

interface SseClient {
  res: IncomingMessage;
  /** Everything received after the headers, verbatim. */
  raw: string;
  bytes: number;
  closed: boolean;
  frames(): Array<Record<string, string>>;
  destroy(): void;
}

/** An event-stream reader over node:http. `keep: false` counts bytes only (for large volumes). */
function openSse(port: number, opts: { path?: string; headers?: Record<string, string>; keep?: boolean; pause?: boolean } = {}): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: opts.path ?? '/api/events', headers: opts.headers, agent: false }, (res) => {
      const client: SseClient = {
        res,
        raw: '',
        bytes: 0,
        closed: false,
        frames: () => parseFrames(client.raw),
        destroy: () => req.destroy(),
      };
      // The socket, not the response: a paused response may never get to emit its own 'close'.
      res.socket.once('close', () => (client.closed = true));
      req.on('error', () => (client.closed = true));
      if (opts.pause) res.pause();
      else
        res.on('data', (d: Buffer) => {
          client.bytes += d.length;
          if (opts.keep !== false) client.raw += d.toString('utf8');
        });
      resolve(client);
    });
    req.on('error', reject);
    req.end();
  });
}

function parseFrames(raw: string): Array<Record<string, string>> {
  const out: Array<Record<string, string>> = [];
  for (const block of raw.split('\n\n')) {
    if (block === '') continue;
    const frame: Record<string, string> = {};
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) frame.comment = line.slice(1).trim();
      else {
        const colon = line.indexOf(':');
        const key = line.slice(0, colon);
        const value = line.slice(colon + 1).replace(/^ /, '');
        frame[key] = key === 'data' && frame.data !== undefined ? `${frame.data}\n${value}` : value;
      }
    }
    out.push(frame);
  }
  return out;
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function refused(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, host);
    sock.once('connect', () => {
      sock.destroy();
      resolve(false);
    });
    sock.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

function isCode(code: string, message?: RegExp): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof GuildError, `expected a GuildError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (message) assert.match(e.message, message);
    return true;
  };
}

const start = (o: Partial<DashboardOptions> & { source: DashboardSource }): Promise<DashboardServer> => startDashboard({ port: 0, token: null, ...o });

// ---------------------------------------------------------------------------------------------

describe('binding', () => {
  it('defaults to 127.0.0.1 and reports the bound port and url', async () => {
    const server = await start({ source: fakeSource() });
    try {
      assert.equal(server.host, '127.0.0.1');
      assert.ok(server.port > 0);
      assert.equal(server.url, `http://127.0.0.1:${server.port}/`);
      assert.equal(server.clients(), 0);
      assert.equal((await get(server.port, '/api/state')).status, 200);
    } finally {
      await server.close();
    }
  });

  it('tells loopback from everything else', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]', '::ffff:127.0.0.1']) assert.ok(isLoopbackHost(h), h);
    for (const h of ['0.0.0.0', '::', '192.168.1.10', '10.0.0.1', 'example.com', '128.0.0.1', '::ffff:10.0.0.1']) assert.ok(!isLoopbackHost(h), h);
  });

  it('refuses a non-loopback host without a token, before listening', async () => {
    const port = await freePort();
    for (const host of ['0.0.0.0', '::', '192.168.1.10']) {
      await assert.rejects(startDashboard({ source: fakeSource(), host, port, token: null }), isCode('USAGE', /--token.*GUILD_DASHBOARD_TOKEN/));
    }
    assert.ok(await refused(port), 'nothing listens on the port');
  });

  it('reads the token from GUILD_DASHBOARD_TOKEN when none is passed', async () => {
    const before = process.env.GUILD_DASHBOARD_TOKEN;
    process.env.GUILD_DASHBOARD_TOKEN = 'from-env';
    try {
      const server = await startDashboard({ source: fakeSource(), host: '0.0.0.0', port: 0 });
      try {
        assert.equal((await get(server.port, '/api/state')).status, 401);
        assert.equal((await get(server.port, '/api/state', { headers: { authorization: 'Bearer from-env' } })).status, 200);
      } finally {
        await server.close();
      }
    } finally {
      if (before === undefined) delete process.env.GUILD_DASHBOARD_TOKEN;
      else process.env.GUILD_DASHBOARD_TOKEN = before;
    }
  });

  it('rejects a port in use with PORT_IN_USE', async () => {
    const first = await start({ source: fakeSource() });
    try {
      await assert.rejects(start({ source: fakeSource(), port: first.port }), isCode('PORT_IN_USE', new RegExp(`^port ${first.port} is in use`)));
    } finally {
      await first.close();
    }
  });

  it('validates its options with "Expected X, got Y"', async () => {
    await assert.rejects(start({ source: fakeSource(), port: 70000 }), isCode('INVALID_OPTION', /Expected the dashboard port .* got 70000/));
    await assert.rejects(start({ source: fakeSource(), token: '' }), isCode('INVALID_OPTION', /Expected the dashboard token/));
    await assert.rejects(start({ source: fakeSource(), maxClients: 0 }), isCode('INVALID_OPTION', /Expected dashboard maxClients/));
    await assert.rejects(start({ source: fakeSource(), maxConnections: 1.5 }), isCode('INVALID_OPTION', /Expected dashboard maxConnections to be a positive integer, got 1.5/));
    await assert.rejects(start({ source: fakeSource(), maxClients: 8, maxConnections: 8 }), isCode('INVALID_OPTION', /Expected dashboard maxConnections to be above maxClients \(8\).* got 8/));
    await assert.rejects(start({ source: fakeSource(), headersTimeoutMs: 0 }), isCode('INVALID_OPTION', /Expected dashboard headersTimeoutMs/));
    await assert.rejects(start({ source: fakeSource(), idleTimeoutMs: 2 ** 31 }), isCode('INVALID_OPTION', /Expected dashboard idleTimeoutMs to be at most 2147483647 ms/));
  });
});

/** A raw TCP connection that sends `send` (nothing by default) and records what comes back and when it closes. */
function rawSocket(port: number, send = ''): Promise<{ sock: Socket; received: () => string; closed: () => boolean; closedAt: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let data = '';
    let done = false;
    const closedAt = new Promise<number>((r) => sock.once('close', () => ((done = true), r(Date.now()))));
    sock.on('data', (d: Buffer) => (data += d.toString('latin1')));
    sock.on('error', () => undefined); // a reset is a close here
    sock.once('connect', () => {
      if (send !== '') sock.write(send);
      resolve({ sock, received: () => data, closed: () => done, closedAt });
    });
    sock.once('error', reject);
  });
}

describe('bounds: connections and time', () => {
  it('the default connection cap is a quarter of the open-files limit, at most 1024, and above maxClients', () => {
    assert.equal(defaultMaxConnections(256, 1024), 288, 'a quarter (256) would leave no room beside 256 SSE clients');
    assert.equal(defaultMaxConnections(256, 2000), 500);
    assert.equal(defaultMaxConnections(256, 20_000), 1024);
    assert.equal(defaultMaxConnections(256, null), 1024);
    assert.equal(defaultMaxConnections(2000, 1_000_000), 2032);
  });

  it('a connection beyond maxConnections is closed on accept; the ones held stay; a freed slot serves again', async () => {
    const server = await start({ source: fakeSource(), maxClients: 2, maxConnections: 4, headersTimeoutMs: 60_000 });
    const held: Awaited<ReturnType<typeof rawSocket>>[] = [];
    try {
      for (let i = 0; i < 4; i++) held.push(await rawSocket(server.port));
      const extra = await rawSocket(server.port);
      await Promise.race([extra.closedAt, delay(5000)]);
      assert.ok(extra.closed(), 'the fifth connection is closed at once (without the cap it stays open)');
      assert.equal(extra.received(), '', 'closed without a byte: no request was ever read');
      await assert.rejects(get(server.port, '/api/state'), 'a request over the cap gets no answer');
      await delay(300);
      assert.ok(held.every((h) => !h.closed()), 'the connections within the cap are kept');
      held.pop()!.sock.destroy();
      // The server learns of the close asynchronously: a request succeeds once it has.
      let reply: Reply | null = null;
      for (const end = Date.now() + 5000; reply === null && Date.now() < end; await delay(20)) reply = await get(server.port, '/api/state').catch(() => null);
      assert.equal(reply?.status, 200);
    } finally {
      for (const h of held) h.sock.destroy();
      await server.close();
    }
  });

  it('a connection that sends nothing, or trickles its headers, is dropped after headersTimeoutMs', async () => {
    const server = await start({ source: fakeSource(), headersTimeoutMs: 200 });
    try {
      const t0 = Date.now();
      const silent = await rawSocket(server.port);
      const trickle = await rawSocket(server.port, 'GET /api/state HTTP/1.1\r\n');
      const drip = setInterval(() => trickle.sock.writable && trickle.sock.write('X'), 50);
      try {
        // Node's check runs every 50 ms here; 5 s is a bound for a loaded machine, the default would be 60 s + 30 s.
        const [a, b] = await Promise.race([Promise.all([silent.closedAt, trickle.closedAt]), delay(5000).then(() => [NaN, NaN])]);
        assert.ok(a! - t0 >= 200 && b! - t0 >= 200, `both dropped, not before the timeout (${a! - t0} ms, ${b! - t0} ms)`);
      } finally {
        clearInterval(drip);
      }
      assert.match(silent.received(), /^(HTTP\/1\.1 408|$)/);
      // A complete request is unaffected.
      assert.equal((await get(server.port, '/api/state')).status, 200);
    } finally {
      await server.close();
    }
  });

  it('a response nobody reads is cut after idleTimeoutMs', async () => {
    const page = pageDir();
    const total = 48 * 1024 * 1024; // far more than the kernel's socket buffers on both ends
    writeFileSync(join(page, 'big.bin'), Buffer.alloc(total, 1));
    const server = await start({ source: fakeSource(), pageDir: page, idleTimeoutMs: 300 });
    try {
      const c = await rawSocket(server.port, 'GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      c.sock.pause();
      await delay(2000); // several idle timeouts with the client not reading
      let bytes = c.received().length;
      c.sock.removeAllListeners('data');
      c.sock.on('data', (d: Buffer) => (bytes += d.length));
      c.sock.resume();
      await Promise.race([c.closedAt, delay(10_000)]);
      assert.ok(c.closed(), 'the server closed the connection');
      assert.ok(bytes < total, `cut short: ${bytes} of ${total} bytes (and headers)`);
    } finally {
      await server.close();
    }
  });

  it('SSE streams are exempt from the idle and header timeouts', async () => {
    const source = fakeSource();
    const server = await start({ source, idleTimeoutMs: 100, headersTimeoutMs: 100, heartbeatMs: 60_000 });
    try {
      const sse = await openSse(server.port);
      await delay(1000); // ten idle timeouts without a byte (the heartbeat is a minute away)
      assert.equal(sse.closed, false);
      source.emit('tick', '{"n":1}');
      await until(() => sse.frames().some((f) => f.event === 'tick'), 'the event after the quiet second');
      sse.destroy();
    } finally {
      await server.close();
    }
  });
});

describe('token', () => {
  const TOKEN = 's3cret-token';
  const source = fakeSource();
  let server: DashboardServer;
  before(async () => {
    server = await startDashboard({ source, host: '0.0.0.0', port: 0, token: TOKEN, pageDir: pageDir() });
  });
  after(() => server.close());

  it('listens on a non-loopback host when given one', () => {
    assert.equal(server.host, '0.0.0.0');
    assert.ok(server.port > 0);
  });

  it('answers 401 JSON with WWW-Authenticate when the token is missing or wrong, on every path', async () => {
    const attempts: Array<[string, Record<string, string>]> = [
      ['/api/state', {}],
      ['/api/state', { authorization: 'Bearer wrong' }],
      ['/api/state', { authorization: `Bearer ${TOKEN}x` }],
      ['/api/state', { authorization: `Basic ${TOKEN}` }],
      ['/api/state?token=wrong', {}],
      ['/api/state', { cookie: `guild_dashboard_token_${server.port}=wrong` }],
      ['/metrics', {}],
      ['/api/events', {}],
      ['/api/runs', {}],
      ['/', {}],
      ['/app.js', {}],
      ['/no-such-path', {}],
    ];
    for (const [path, headers] of attempts) {
      const r = await get(server.port, path, { headers });
      assert.equal(r.status, 401, `${path} ${JSON.stringify(headers)}`);
      assert.deepEqual(JSON.parse(r.body), { error: 'unauthorized' });
      assert.equal(r.headers['www-authenticate'], 'Bearer');
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
    }
    // A wrong header is not rescued by a right query.
    assert.equal((await get(server.port, `/api/state?token=${TOKEN}`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
  });

  it('accepts the right token in the header, in ?token= and in the cookie ?token= sets', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    for (const path of ['/api/state', '/metrics', '/api/runs', '/', '/app.js', '/vendor/uPlot.min.css']) {
      assert.equal((await get(server.port, path, { headers: auth })).status, 200, path);
      assert.equal((await get(server.port, `${path}${path.includes('?') ? '&' : '?'}token=${TOKEN}`)).status, 200, `${path}?token=`);
    }
    const page = await get(server.port, `/?token=${encodeURIComponent(TOKEN)}`);
    const setCookie = page.headers['set-cookie']?.[0] ?? '';
    assert.match(setCookie, new RegExp(`^guild_dashboard_token_${server.port}=`));
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    const cookie = setCookie.split(';')[0]!;
    assert.equal((await get(server.port, '/style.css', { headers: { cookie } })).status, 200);
    // Authenticated, a missing path is a 404, not a 401.
    assert.equal((await get(server.port, '/nope', { headers: auth })).status, 404);
  });

  it('streams events with the token in the query (EventSource cannot set headers) or the header', async () => {
    const viaQuery = await openSse(server.port, { path: `/api/events?token=${TOKEN}` });
    const viaHeader = await openSse(server.port, { headers: { authorization: `Bearer ${TOKEN}` } });
    try {
      for (const c of [viaQuery, viaHeader]) {
        assert.equal(c.res.statusCode, 200);
        await until(() => c.frames().some((f) => f.event === 'state'), 'state');
      }
    } finally {
      viaQuery.destroy();
      viaHeader.destroy();
    }
    const denied = await openSse(server.port, { path: '/api/events?token=nope' });
    assert.equal(denied.res.statusCode, 401);
    denied.destroy();
  });
});

describe('routes', () => {
  const source = fakeSource();
  let server: DashboardServer;
  let port: number;
  before(async () => {
    server = await start({ source, pageDir: pageDir() });
    port = server.port;
  });
  after(() => server.close());

  const SECURITY = (r: Reply): void => {
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['referrer-policy'], 'no-referrer');
    const csp = String(r.headers['content-security-policy']);
    for (const d of ["script-src 'self'", "style-src 'self'", "connect-src 'self'", "default-src 'none'"]) assert.ok(csp.includes(d), `${d} in ${csp}`);
  };

  it('/metrics: Prometheus text, not stored', async () => {
    const r = await get(port, '/metrics');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.match(r.body, /^guild_up 1$/m);
    SECURITY(r);
  });

  it('/api/state: the source state as JSON', async () => {
    const r = await get(port, '/api/state');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body));
    assert.deepEqual(JSON.parse(r.body), SERVED);
    SECURITY(r);
  });

  it("/api/state: settings are the source's own where it has them, else the state's memory thresholds, else the defaults", async () => {
    const thresholds = { moderate: 0.5, high: 0.6, critical: 0.7, emergency: 0.8, kill: 0.85 };
    const memory = { used_bytes: 1, limit_bytes: 2, available_bytes: 1, agents_rss_bytes: 0, reserved_bytes: 0, budget_bytes: 1, level: 'optimal' as const, thresholds };
    const own = { thresholds: { ...thresholds, kill: 0.9 }, kpi_points: { excellent: 90, good: 60, poor: 30, critical: 5 }, kpi_interval_ms: 1500, kpi_minimums: { cpu: { samples: 3, seconds: 1, of: 'samples' } } };
    const cases: Array<[DashboardSource, object]> = [
      [{ ...fakeSource(), state: () => ({ ...STATE, memory }) }, { ...DEFAULT_SETTINGS, thresholds }],
      [{ ...fakeSource(), settings: () => own }, own],
      [{ ...fakeSource(), state: () => ({ ...STATE, memory }), settings: () => ({ kpi_interval_ms: 2000 }) }, { ...DEFAULT_SETTINGS, thresholds, kpi_interval_ms: 2000 }],
    ];
    for (const [src, settings] of cases) {
      const s = await start({ source: src });
      try {
        const body = JSON.parse((await get(s.port, '/api/state')).body);
        assert.deepEqual(body.settings, settings);
        const sse = await openSse(s.port);
        await until(() => sse.frames().length >= 2, 'the first state');
        assert.deepEqual(JSON.parse(sse.frames()[1]!.data!).settings, settings, 'the first state event carries them too');
        sse.destroy();
      } finally {
        await s.close();
      }
    }
  });

  it('/api/runs: limit defaults to 50, is clamped to 500, and must be a positive integer', async () => {
    const r = await get(port, '/api/runs');
    assert.equal(r.status, 200);
    assert.equal(source.lastLimit, 50);
    assert.deepEqual(JSON.parse(r.body), [summary(0), summary(1), summary(2)]);
    await get(port, '/api/runs?limit=2');
    assert.equal(source.lastLimit, 2);
    await get(port, '/api/runs?limit=100000');
    assert.equal(source.lastLimit, 500);
    for (const bad of ['abc', '0', '-1', '1.5']) {
      const b = await get(port, `/api/runs?limit=${bad}`);
      assert.equal(b.status, 400, bad);
      assert.match(JSON.parse(b.body).error, /Expected limit/);
    }
  });

  it('/api/runs/<id>: the run, or 404', async () => {
    for (const id of ['last', 'r-abc', 'r-abc123']) {
      const r = await get(port, `/api/runs/${id}`);
      assert.equal(r.status, 200, id);
      assert.deepEqual(JSON.parse(r.body), { report: { id: 'r-abc123' }, markdown: '# demo', series: [] });
    }
    for (const id of ['nope', 'r-abc/extra', '', '%E0%A4%A']) {
      const r = await get(port, `/api/runs/${id}`);
      assert.equal(r.status, 404, id);
      assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    }
  });

  it('the page and uPlot, with content types, ETags and 304s', async () => {
    const cases: Array<[string, RegExp]> = [
      ['/', /^text\/html; charset=utf-8$/],
      ['/index.html', /^text\/html/],
      ['/app.js', /^text\/javascript/],
      ['/style.css', /^text\/css/],
      ['/vendor/uPlot.iife.min.js', /^text\/javascript/],
      ['/vendor/uPlot.min.css', /^text\/css/],
    ];
    for (const [path, type] of cases) {
      const r = await get(port, path);
      assert.equal(r.status, 200, path);
      assert.match(String(r.headers['content-type']), type, path);
      assert.ok(r.body.length > 0, path);
      assert.match(String(r.headers.etag), /^".+"$/);
      SECURITY(r);
      const again = await get(port, path, { headers: { 'if-none-match': String(r.headers.etag) } });
      assert.equal(again.status, 304, path);
      assert.equal(again.body, '');
    }
    assert.match((await get(port, '/')).body, /<title>Guild<\/title>/);
  });

  it('HEAD answers like GET without a body; other methods get 405 with Allow', async () => {
    const head = await get(port, '/api/state', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal(Number(head.headers['content-length']), Buffer.byteLength(JSON.stringify(SERVED)));
    assert.equal((await get(port, '/api/events', { method: 'HEAD' })).headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.equal(server.clients(), 0);
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      for (const path of ['/api/state', '/', '/metrics']) {
        const r = await get(port, path, { method });
        assert.equal(r.status, 405, `${method} ${path}`);
        assert.equal(r.headers.allow, 'GET, HEAD');
        assert.deepEqual(JSON.parse(r.body), { error: 'method not allowed' });
      }
    }
  });

  it('unknown paths, traversal, encoded slashes, dotfiles, subfolders and symlinks are 404 JSON', async () => {
    const paths = [
      '/nope',
      '/api/nope',
      '/api',
      '/..%2Fpackage.json',
      '/%2e%2e/package.json',
      '/%2E%2E%2Fpackage.json',
      '/../package.json',
      '/page/../package.json',
      '/.env',
      '/%2eenv',
      '/sub/inner.js',
      '/sub%2Finner.js',
      '/linked.json',
      '/index.html%00',
      '/vendor/package.json',
      '/vendor/../index.html',
      '//etc/passwd',
    ];
    for (const path of paths) {
      const r = await get(port, path);
      assert.equal(r.status, 404, path);
      assert.equal(r.headers['content-type'], 'application/json; charset=utf-8', path);
      assert.doesNotMatch(r.body, /escaped|SECRET|nested/, path);
      SECURITY(r);
    }
  });

  it('a failing source is a 500 without its message or stack', async () => {
    source.failState = true;
    source.failMetrics = true;
    try {
      for (const path of ['/api/state', '/metrics', '/api/events']) {
        const r = await get(port, path);
        assert.equal(r.status, 500, path);
        assert.deepEqual(JSON.parse(r.body), { error: 'internal error' });
      }
    } finally {
      source.failState = false;
      source.failMetrics = false;
    }
    assert.equal(server.clients(), 0);
  });

  it('without a token, answers only requests whose Host names loopback (DNS rebinding)', async () => {
    assert.equal((await get(port, '/api/state', { headers: { host: 'evil.example:8090' } })).status, 403);
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]) assert.equal((await get(port, '/api/state', { headers: { host } })).status, 200, host);
  });
});

describe('the route table', () => {
  const named = (name: string): RouteHandler => Object.assign(() => undefined, { route: name });
  const nameOf = (h: RouteHandler): string => (h as RouteHandler & { route: string }).route;

  it('finds the exact path first, then the longest prefix, then the fallback', () => {
    const table = new RouteTable(
      [
        { path: '/api/', prefix: true, handle: named('api/*') },
        { path: '/api/runs', handle: named('runs') },
        { path: '/api/runs/', prefix: true, handle: named('runs/*') },
      ],
      named('page'),
    );
    const cases: Array<[string, string]> = [
      ['/api/runs', 'runs'],
      ['/api/runs/', 'runs/*'],
      ['/api/runs/abc', 'runs/*'],
      ['/api/runsx', 'api/*'],
      ['/api/', 'api/*'],
      ['/api', 'page'],
      ['/', 'page'],
      ['/app.js', 'page'],
    ];
    for (const [path, want] of cases) assert.equal(nameOf(table.find(path)), want, path);
  });

  it('refuses two routes for one path, and a prefix that does not end with /', () => {
    const h = named('x');
    const invalid = (e: unknown): boolean => e instanceof GuildError && e.code === 'INVALID_OPTION';
    assert.throws(() => new RouteTable([{ path: '/a', handle: h }, { path: '/a', handle: h }], h), invalid);
    assert.throws(() => new RouteTable([{ path: '/a/', prefix: true, handle: h }, { path: '/a/', prefix: true, handle: h }], h), invalid);
    assert.throws(() => new RouteTable([{ path: '/a', prefix: true, handle: h }], h), invalid);
    // The same path as an exact route and as a prefix is two routes, not a clash.
    assert.doesNotThrow(() => new RouteTable([{ path: '/a/', handle: h }, { path: '/a/', prefix: true, handle: h }], h));
  });
});

describe('server-sent events', () => {
  it('50 clients: state first, then every source message in order, byte-identical, from one subscription', async () => {
    const source = fakeSource();
    const server = await start({ source });
    try {
      const clients = await Promise.all(Array.from({ length: 50 }, () => openSse(server.port)));
      assert.equal(server.clients(), 50);
      for (const c of clients) {
        assert.equal(c.res.statusCode, 200);
        assert.equal(c.res.headers['content-type'], 'text/event-stream; charset=utf-8');
        assert.equal(c.res.headers['cache-control'], 'no-cache');
        assert.equal(c.res.headers.connection, 'keep-alive');
        assert.equal(c.res.headers['x-accel-buffering'], 'no');
      }
      const head = `retry: 2000\n\nevent: state\ndata: ${JSON.stringify(SERVED)}\n\n`;
      await until(() => clients.every((c) => c.raw.length >= head.length), 'state on every client');

      // One subscription for all 50: the source serializes each message once.
      assert.equal(source.subscriptions, 1);
      const sent: Array<[string, string]> = [];
      for (let i = 0; i < 100; i++) {
        const msg: [string, string] = [i % 10 === 0 ? 'alert' : 'tick', JSON.stringify({ i, text: 'é ✓ "quoted"', pad: 'x'.repeat(i * 10) })];
        sent.push(msg);
        source.emit(...msg);
        if (i % 20 === 0) await delay(1);
      }
      // A data string with line breaks still arrives as one event.
      source.emit('kpis', 'line one\nline two\r\nline three');
      const expected = head + sent.map(([e, d]) => `event: ${e}\ndata: ${d}\n\n`).join('') + 'event: kpis\ndata: line one\ndata: line two\ndata: line three\n\n';
      await until(() => clients.every((c) => Buffer.byteLength(c.raw) >= Buffer.byteLength(expected)), 'every message on every client');
      for (const c of clients) assert.equal(c.raw, expected);

      const frames = clients[7]!.frames();
      assert.deepEqual(frames[0], { retry: '2000' });
      assert.equal(frames[1]!.event, 'state');
      assert.deepEqual(JSON.parse(frames[1]!.data!), SERVED);
      assert.deepEqual(
        frames.slice(2, -1).map((f) => JSON.parse(f.data!).i),
        sent.map((_, i) => i),
      );
      assert.equal(frames.at(-1)!.data, 'line one\nline two\nline three');

      // Clients that disconnect are removed; the last one out unsubscribes.
      clients.slice(0, 10).forEach((c) => c.destroy());
      await until(() => server.clients() === 40, 'clients() to drop to 40');
      clients.slice(10).forEach((c) => c.destroy());
      await until(() => server.clients() === 0, 'clients() to drop to 0');
      assert.equal(source.listeners, 0);
    } finally {
      await server.close();
    }
  });

  it('sends a comment heartbeat on one timer', async () => {
    const server = await start({ source: fakeSource(), heartbeatMs: 30 });
    try {
      const a = await openSse(server.port);
      const b = await openSse(server.port);
      await until(() => [a, b].every((c) => c.frames().filter((f) => f.comment === 'ping').length >= 2), 'two pings each');
      assert.ok(a.raw.includes('\n\n: ping\n\n'));
      a.destroy();
      b.destroy();
    } finally {
      await server.close();
    }
  });

  it('drops a client that stops reading instead of buffering for it; the others keep everything', async () => {
    const source = fakeSource();
    const server = await start({ source, maxBufferedBytes: 64 * 1024 });
    try {
      const slow = await openSse(server.port, { pause: true });
      const healthy = await openSse(server.port, { keep: false });
      assert.equal(server.clients(), 2);
      await until(() => healthy.bytes > 0, 'healthy head');
      const headBytes = healthy.bytes;
      const data = JSON.stringify({ pad: 'y'.repeat(256 * 1024) });
      const frameBytes = Buffer.byteLength(`event: tick\ndata: ${data}\n\n`);
      let sent = 0;
      while (server.clients() === 2) {
        assert.ok(sent < 1000, 'the slow client was never dropped');
        source.emit('tick', data);
        sent++;
        await delay(1);
      }
      assert.equal(server.clients(), 1);
      // Paused, the client does not read its socket, so it learns of the disconnection once it reads again.
      slow.res.resume();
      await until(() => slow.closed, 'the slow client to see the disconnection');
      await until(() => healthy.bytes === headBytes + sent * frameBytes, 'every frame on the healthy client');
      assert.equal(healthy.closed, false);
      healthy.destroy();
    } finally {
      await server.close();
    }
  });

  it('refuses clients beyond maxClients with 503', async () => {
    const server = await start({ source: fakeSource(), maxClients: 2 });
    try {
      const a = await openSse(server.port);
      const b = await openSse(server.port);
      const c = await get(server.port, '/api/events');
      assert.equal(c.status, 503);
      assert.match(JSON.parse(c.body).error, /too many/);
      a.destroy();
      await until(() => server.clients() === 1, 'a slot to free');
      const d = await openSse(server.port);
      assert.equal(d.res.statusCode, 200);
      b.destroy();
      d.destroy();
    } finally {
      await server.close();
    }
  });

  it('close() ends open streams, unsubscribes and stops listening', async () => {
    const source = fakeSource();
    const server = await start({ source });
    const clients = await Promise.all(Array.from({ length: 5 }, () => openSse(server.port)));
    const ended = clients.map((c) => new Promise<void>((r) => (c.closed ? r() : c.res.once('close', () => r()))));
    await until(() => clients.every((c) => c.raw.includes('event: state')), 'state');
    await server.close();
    await Promise.all(ended);
    assert.equal(server.clients(), 0);
    assert.equal(source.listeners, 0);
    assert.ok(await refused(server.port), 'nothing listens after close');
    await server.close(); // idempotent
  });
});
