import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { GuildError } from '../src/errors.js';
import { agentFailure, highMemory, lowCacheHitRate, slowExecution, SLOW_FACTOR } from '../src/telemetry/alert-rules.js';
import { AlertManager, alertText } from '../src/telemetry/alerts.js';
import type { AlertRecord } from '../src/telemetry/state.js';
import { maskUrl, WebhookSender, type WebhookOptions, type WebhookPayload } from '../src/telemetry/webhook.js';

// Every background delivery must settle inside the sender; any rejection escaping it fails the file.
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
process.on('unhandledRejection', onUnhandled);
after(() => process.off('unhandledRejection', onUnhandled));

const GB = 1024 ** 3;

/** A clock the test moves by hand. */
function clock(start = 1_700_000_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A real HTTP server on 127.0.0.1 and a free port. `reply(n, res)` answers request n (0-based);
 * leaving `res` alone makes the server never answer.
 */
async function server(reply: (n: number, res: ServerResponse, req: IncomingMessage) => void): Promise<{ url: string; received: Received[]; close: () => Promise<void> }> {
  const received: Received[] = [];
  const srv = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const n = received.length;
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      reply(n, res, req);
    });
  });
  await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
  const { port } = srv.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    close: () =>
      new Promise<void>((ok) => {
        srv.closeAllConnections();
        srv.close(() => ok());
      }),
  };
}

/** A port nothing listens on: bound, then released. */
async function deadUrl(): Promise<string> {
  const s = await server(() => undefined);
  await s.close();
  return s.url;
}

function status(code: number): (n: number, res: ServerResponse) => void {
  return (_n, res) => void res.writeHead(code).end();
}

const fast = { timeoutMs: 1000, retries: 3, backoffMs: 5 } satisfies Partial<WebhookOptions>;

function payload(message: string): WebhookPayload {
  return { source: 'guild', run_id: 'r1', workflow: 'wf', alert: { at_ms: 0, at: 0, rule: 'cache', severity: 'warning', message, key: 'cache', repeats: 0 } };
}

describe('AlertManager: de-duplication and cooldown', () => {
  test('the first raise of a key is sent, timed from the run start, keyed by its rule by default', () => {
    const c = clock();
    const seen: AlertRecord[] = [];
    const m = new AlertManager({ now: c.now, runStart: c.now() - 1500, onAlert: (r) => seen.push(r) });
    const r = m.raise({ rule: 'high-memory', severity: 'warning', message: 'memory at 86 %' });
    assert.deepEqual(r, { at_ms: 1500, at: c.now(), rule: 'high-memory', severity: 'warning', message: 'memory at 86 %', key: 'high-memory', repeats: 0 });
    assert.deepEqual(seen, [r]);
    assert.deepEqual(m.alerts(), [r]);
  });

  test('repeats within the cooldown are suppressed and counted on the sent record', () => {
    const c = clock();
    const seen: AlertRecord[] = [];
    const m = new AlertManager({ now: c.now, cooldownMs: 60_000, onAlert: (r) => seen.push(r) });
    const first = { rule: 'agent-failure', key: 'agent-failure:analyzer', severity: 'warning', message: 'task a failed' } as const;
    assert.notEqual(m.raise(first), null);
    for (let i = 0; i < 3; i++) {
      c.advance(10_000);
      assert.equal(m.raise({ ...first, message: `task b${i} failed` }), null);
    }
    assert.equal(seen.length, 1, 'onAlert only hears sent alerts');
    const [only] = m.alerts();
    assert.equal(only?.repeats, 3);
    assert.equal(only?.message, 'task a failed', 'the sent record keeps its own message');
    assert.equal(alertText(only!), 'task a failed (×4)');
  });

  test('after the cooldown the key is sent again as a new record; the cooldown runs from the last send', () => {
    const c = clock();
    const m = new AlertManager({ now: c.now, cooldownMs: 60_000 });
    const a = { rule: 'high-memory', severity: 'warning', message: 'high' } as const;
    m.raise(a);
    c.advance(59_999);
    assert.equal(m.raise(a), null, 'one ms before the cooldown ends');
    c.advance(1);
    const again = m.raise(a);
    assert.equal(again?.repeats, 0);
    c.advance(30_000);
    assert.equal(m.raise(a), null, 'the cooldown restarted at the second send');
    assert.deepEqual(m.alerts().map((r) => r.repeats), [1, 1]);
  });

  test('different keys are independent', () => {
    const c = clock();
    const m = new AlertManager({ now: c.now });
    assert.notEqual(m.raise({ rule: 'agent-failure', key: 'agent-failure:a', severity: 'warning', message: 'a' }), null);
    assert.notEqual(m.raise({ rule: 'agent-failure', key: 'agent-failure:b', severity: 'warning', message: 'b' }), null);
    assert.notEqual(m.raise({ rule: 'agent-failure', severity: 'warning', message: 'rule as key' }), null);
    assert.equal(m.raise({ rule: 'agent-failure', key: 'agent-failure:a', severity: 'warning', message: 'a' }), null);
    assert.deepEqual(m.alerts().map((r) => [r.key, r.repeats]), [['agent-failure:a', 1], ['agent-failure:b', 0], ['agent-failure', 0]]);
  });

  test('an escalation to critical is sent despite the cooldown; a warning after it is suppressed', () => {
    const c = clock();
    const m = new AlertManager({ now: c.now });
    m.raise({ rule: 'high-memory', severity: 'warning', message: 'high' });
    c.advance(1000);
    assert.equal(m.raise({ rule: 'high-memory', severity: 'critical', message: 'emergency' })?.severity, 'critical');
    c.advance(1000);
    assert.equal(m.raise({ rule: 'high-memory', severity: 'warning', message: 'high' }), null);
    assert.deepEqual(m.alerts().map((r) => [r.severity, r.repeats]), [['warning', 0], ['critical', 1]]);
  });

  test('callers get copies: mutating them does not change the list', () => {
    const m = new AlertManager();
    const r = m.raise({ rule: 'cache', severity: 'warning', message: 'x' })!;
    r.repeats = 99;
    m.alerts()[0]!.message = 'changed';
    assert.deepEqual(m.alerts().map((a) => [a.message, a.repeats]), [['x', 0]]);
  });

  test('the default cooldown is five minutes', () => {
    const c = clock();
    const m = new AlertManager({ now: c.now });
    m.raise({ rule: 'cache', severity: 'warning', message: 'x' });
    c.advance(299_999);
    assert.equal(m.raise({ rule: 'cache', severity: 'warning', message: 'x' }), null);
    c.advance(1);
    assert.notEqual(m.raise({ rule: 'cache', severity: 'warning', message: 'x' }), null);
  });

  test('options are validated once, with "Expected X, got Y"', () => {
    assert.throws(() => new AlertManager({ cooldownMs: -1 }), (e: unknown) => e instanceof GuildError && e.code === 'INVALID_OPTION' && /Expected cooldownMs .* got -1/.test(e.message));
    assert.throws(() => new AlertManager({ webhook: { url: 'ftp://x' } }), /Expected an http or https webhook URL, got ftp:/);
    assert.throws(() => new AlertManager({ webhook: { url: 'not a url' } }), /Expected a webhook URL/);
    assert.throws(() => new AlertManager({ webhook: { url: 'http://x', retries: 1.5 } }), /Expected webhook retries to be an integer >= 0, got 1.5/);
  });
});

describe('rules', () => {
  test('slowExecution: past target × 2000/300, not at it; no target, no alert', () => {
    const limit = 3000 * SLOW_FACTOR; // 20 s
    assert.equal(slowExecution({ taskId: 't1', agent: 'analyzer', elapsedMs: limit, targetMs: 3000 }), null);
    const hit = slowExecution({ taskId: 't1', agent: 'analyzer', elapsedMs: limit + 1, targetMs: 3000 });
    assert.equal(hit?.rule, 'slow-execution');
    assert.equal(hit?.severity, 'warning');
    assert.equal(hit?.key, 'slow-execution:t1');
    assert.match(hit!.message, /^task t1 \(analyzer\) has been running for 20\.0s, over 20\.0s \(its target 3\.0s × 6\.7\)$/);
    assert.match(slowExecution({ taskId: 't1', agent: 'analyzer', elapsedMs: 25_000, targetMs: 3000, finished: true })!.message, /took 25\.0s/);
    assert.equal(slowExecution({ taskId: 't1', agent: 'analyzer', elapsedMs: 1e9, targetMs: null }), null);
    assert.equal(slowExecution({ taskId: 't1', agent: 'analyzer', elapsedMs: 1e9, targetMs: 0 }), null);
  });

  test('highMemory: silent below high; a warning at high and critical; critical at emergency; names both views', () => {
    const m = { limitBytes: 8 * GB, agentsBytes: 1.2 * GB, budgetBytes: 1.1 * GB };
    assert.equal(highMemory({ ...m, usedFraction: 0.79, level: 'moderate' }), null);
    assert.equal(highMemory({ ...m, usedFraction: 0.5, level: 'optimal' }), null);
    assert.deepEqual(highMemory({ ...m, usedFraction: 0.864, level: 'high' }), {
      rule: 'high-memory',
      key: 'high-memory',
      severity: 'warning',
      message: 'memory pressure high: the machine at 86 % of its 8 GB limit, agents at 1.2 GB of the 1.1 GB budget',
    });
    assert.equal(highMemory({ ...m, usedFraction: 0.91, level: 'critical' })?.severity, 'warning');
    const e = highMemory({ usedFraction: 0.96, level: 'emergency', limitBytes: 512 * 1024 ** 2, agentsBytes: 300 * 1024 ** 2, budgetBytes: 384 * 1024 ** 2 });
    assert.equal(e?.severity, 'critical');
    assert.equal(e?.message, 'memory pressure emergency: the machine at 96 % of its 512 MB limit, agents at 300 MB of the 384 MB budget');
    assert.equal(e?.key, 'high-memory', 'one key, so escalation and repeats share a cooldown');
  });

  test('lowCacheHitRate: needs 10 lookups and a warm cache; alerts under 70 % only', () => {
    assert.deepEqual(lowCacheHitRate({ hits: 12, misses: 17, cold: false }), {
      rule: 'low-cache-hit-rate',
      key: 'low-cache-hit-rate',
      severity: 'warning',
      message: 'cache hit rate 41 % is under 70 % (12 hits, 17 misses)',
    });
    assert.equal(lowCacheHitRate({ hits: 0, misses: 9, cold: false }), null, '9 lookups');
    assert.notEqual(lowCacheHitRate({ hits: 0, misses: 10, cold: false }), null, '10 lookups');
    assert.equal(lowCacheHitRate({ hits: 0, misses: 100, cold: true }), null, 'cold');
    assert.equal(lowCacheHitRate({ hits: 7, misses: 3, cold: false }), null, 'exactly 70 %');
    assert.match(lowCacheHitRate({ hits: 696, misses: 304, cold: false })!.message, /^cache hit rate 69 % is under 70 %/);
  });

  test('agentFailure: keyed by agent type; names the task, its error and how it ended', () => {
    const a = agentFailure({ taskId: 'lint-3', agent: 'linter', error: 'boom\nstack…', exitCode: 1, signal: null });
    assert.deepEqual(a, { rule: 'agent-failure', key: 'agent-failure:linter', severity: 'warning', message: 'task lint-3 (linter) failed: boom (exit code 1)' });
    assert.equal(agentFailure({ taskId: 't', agent: 'x', error: null, exitCode: null, signal: 'SIGKILL' }).message, 'task t (x) failed (killed by SIGKILL)');
    assert.equal(agentFailure({ taskId: 't', agent: 'x', error: 'e'.repeat(500) }).message.length, 'task t (x) failed: '.length + 200);
  });

  test('a storm of one agent type\'s failures is one alert with its repeats', () => {
    const m = new AlertManager({ now: clock().now });
    for (let i = 0; i < 5; i++) m.raise(agentFailure({ taskId: `t${i}`, agent: 'coder', error: 'exit 1', exitCode: 1, signal: null }));
    m.raise(agentFailure({ taskId: 'u', agent: 'tester', error: 'x', exitCode: 2, signal: null }));
    assert.deepEqual(m.alerts().map((r) => [r.key, r.repeats]), [['agent-failure:coder', 4], ['agent-failure:tester', 0]]);
  });
});

describe('webhook delivery (a real HTTP server)', () => {
  test('POSTs the alert as JSON with the run, the content-type and the extra headers', async () => {
    const s = await server(status(204));
    try {
      const c = clock();
      const m = new AlertManager({ now: c.now, runStart: c.now() - 42, runInfo: { run_id: 'run-7', workflow: 'build' }, webhook: { url: s.url, headers: { authorization: 'Bearer t0k' } } });
      const sent = m.raise({ rule: 'low-cache-hit-rate', severity: 'warning', message: 'cache hit rate 41 % is under 70 %' });
      assert.equal(await m.flush(2000), true);
      assert.equal(s.received.length, 1);
      const [req] = s.received;
      assert.equal(req?.headers['content-type'], 'application/json');
      assert.equal(req?.headers.authorization, 'Bearer t0k');
      assert.deepEqual(JSON.parse(req!.body), { source: 'guild', run_id: 'run-7', workflow: 'build', alert: sent });
      m.close();
    } finally {
      await s.close();
    }
  });

  test('the payload is the alert as sent: later repeats do not change a queued body', async () => {
    const s = await server(status(200));
    try {
      const c = clock();
      const m = new AlertManager({ now: c.now, webhook: { url: s.url } });
      m.raise({ rule: 'cache', severity: 'warning', message: 'x' });
      m.raise({ rule: 'cache', severity: 'warning', message: 'x' });
      await m.flush(2000);
      assert.equal((JSON.parse(s.received[0]!.body) as WebhookPayload).alert.repeats, 0);
      assert.equal((JSON.parse(s.received[0]!.body) as WebhookPayload).run_id, null);
      assert.equal(m.alerts()[0]?.repeats, 1);
    } finally {
      await s.close();
    }
  });

  test('503 twice, then 200: delivered on the third attempt, no error', async () => {
    const s = await server((n, res) => void res.writeHead(n < 2 ? 503 : 200).end());
    const errors: string[] = [];
    try {
      const w = new WebhookSender({ url: s.url, ...fast, onError: (e) => errors.push(e) });
      w.send(payload('a'));
      assert.equal(await w.flush(2000), true);
      assert.equal(s.received.length, 3);
      assert.deepEqual(errors, []);
    } finally {
      await s.close();
    }
  });

  test('429 is retried like a 5xx', async () => {
    const s = await server((n, res) => void res.writeHead(n < 1 ? 429 : 200).end());
    try {
      const w = new WebhookSender({ url: s.url, ...fast });
      w.send(payload('a'));
      await w.flush(2000);
      assert.equal(s.received.length, 2);
    } finally {
      await s.close();
    }
  });

  test('a 5xx that never clears fails after 1 + retries attempts, reported once', async () => {
    const s = await server(status(503));
    const errors: string[] = [];
    try {
      const w = new WebhookSender({ url: s.url, ...fast, onError: (e) => errors.push(e) });
      w.send(payload('a'));
      await w.flush(2000);
      assert.equal(s.received.length, 4);
      assert.deepEqual(errors, [`webhook ${s.url} failed after 4 attempts: HTTP 503`]);
    } finally {
      await s.close();
    }
  });

  test('a 400 is not retried and is reported', async () => {
    const s = await server(status(400));
    const errors: string[] = [];
    try {
      const w = new WebhookSender({ url: s.url, ...fast, onError: (e) => errors.push(e) });
      w.send(payload('a'));
      await w.flush(2000);
      assert.equal(s.received.length, 1);
      assert.deepEqual(errors, [`webhook ${s.url} failed after 1 attempt: HTTP 400 (not retried)`]);
    } finally {
      await s.close();
    }
  });

  test('a server that never answers: each attempt times out, and is retried', async () => {
    const s = await server(() => undefined);
    const errors: string[] = [];
    try {
      const w = new WebhookSender({ url: s.url, timeoutMs: 100, retries: 2, backoffMs: 5, onError: (e) => errors.push(e) });
      const t0 = performance.now();
      w.send(payload('a'));
      assert.equal(await w.flush(3000), true);
      assert.ok(performance.now() - t0 >= 290, 'three attempts of 100 ms each');
      assert.equal(s.received.length, 3);
      assert.deepEqual(errors, [`webhook ${s.url} failed after 3 attempts: no answer within 100 ms`]);
    } finally {
      await s.close();
    }
  });

  test('an unreachable port: reported after the retries', async () => {
    const url = await deadUrl();
    const errors: string[] = [];
    const w = new WebhookSender({ url, ...fast, retries: 2, onError: (e) => errors.push(e) });
    w.send(payload('a'));
    assert.equal(await w.flush(3000), true);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /^webhook http:\/\/127\.0\.0\.1:\d+\/hook failed after 3 attempts: .*ECONNREFUSED/);
  });

  test('several alerts arrive in the order they were raised, even when the first needs retries', async () => {
    const s = await server((n, res) => void res.writeHead(n < 2 ? 500 : 200).end());
    try {
      const c = clock();
      const m = new AlertManager({ now: c.now, webhook: { url: s.url, ...fast } });
      for (const k of ['a', 'b', 'c', 'd']) m.raise({ rule: 'cache', key: k, severity: 'warning', message: k });
      assert.equal(await m.flush(3000), true);
      const messages = s.received.map((r) => (JSON.parse(r.body) as WebhookPayload).alert.message);
      assert.deepEqual(messages, ['a', 'a', 'a', 'b', 'c', 'd']);
    } finally {
      await s.close();
    }
  });

  test('send() never blocks the caller; flush() waits for every pending delivery', async () => {
    const s = await server((_n, res) => void setTimeout(() => res.writeHead(200).end(), 30));
    try {
      const w = new WebhookSender({ url: s.url, ...fast });
      for (let i = 0; i < 3; i++) w.send(payload(String(i)));
      assert.equal(w.pending, 3, 'send() returned before any answer');
      assert.equal(await w.flush(3000), true);
      assert.equal(w.pending, 0);
      assert.equal(s.received.length, 3);
      assert.equal(await w.flush(0), true, 'nothing pending: at once');
    } finally {
      await s.close();
    }
  });

  test('flush() resolves false at its timeout when deliveries are still pending; close() drops them', async () => {
    const s = await server(() => undefined);
    const errors: string[] = [];
    try {
      const w = new WebhookSender({ url: s.url, timeoutMs: 5000, retries: 0, onError: (e) => errors.push(e) });
      w.send(payload('a'));
      w.send(payload('b'));
      const t0 = performance.now();
      assert.equal(await w.flush(80), false);
      const waited = performance.now() - t0;
      assert.ok(waited >= 70 && waited < 1000, `waited ${waited} ms`);
      w.close();
      assert.equal(await w.flush(1000), true, 'after close nothing is pending');
      w.send(payload('c'));
      assert.equal(w.pending, 0, 'ignored after close');
      assert.equal(s.received.length, 1);
      assert.deepEqual(errors, [`webhook ${s.url}: 2 alert(s) not delivered (closed)`]);
    } finally {
      await s.close();
    }
  });

  test('without a webhook, flush() resolves true at once', async () => {
    const m = new AlertManager();
    m.raise({ rule: 'cache', severity: 'warning', message: 'x' });
    assert.equal(await m.flush(1000), true);
    m.close();
  });

  test('credentials in the URL are sent as Basic auth and masked in messages', async () => {
    const s = await server(status(401));
    const errors: string[] = [];
    try {
      const port = new URL(s.url).port;
      const w = new WebhookSender({ url: `http://bob:s3cret@127.0.0.1:${port}/hook?token=abc&x=1`, ...fast, onError: (e) => errors.push(e) });
      assert.equal(w.url, `http://***@127.0.0.1:${port}/hook?token=***&x=***`);
      w.send(payload('a'));
      await w.flush(2000);
      assert.equal(s.received[0]?.headers.authorization, `Basic ${Buffer.from('bob:s3cret').toString('base64')}`);
      assert.equal(errors.length, 1);
      assert.doesNotMatch(errors[0]!, /s3cret|abc|bob/);
      assert.match(errors[0]!, /HTTP 401 \(not retried\)$/);
    } finally {
      await s.close();
    }
  });

  test('maskUrl leaves URLs without credentials alone and hides unparseable ones', () => {
    assert.equal(maskUrl('https://hooks.example.com/a/b'), 'https://hooks.example.com/a/b');
    assert.equal(maskUrl('nonsense'), '***');
  });

  test('an onError that throws does not escape the background delivery', async () => {
    const s = await server(status(500));
    try {
      const w = new WebhookSender({ url: s.url, ...fast, retries: 0, onError: () => { throw new Error('sink broke'); } });
      w.send(payload('a'));
      assert.equal(await w.flush(2000), true);
    } finally {
      await s.close();
    }
  });
});

test('no unhandled rejections', async () => {
  await new Promise((ok) => setImmediate(ok));
  assert.deepEqual(unhandled, []);
});
