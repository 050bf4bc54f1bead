/**
 * The webhook never follows a redirect: a configured secret header must not reach an origin the
 * receiver names in a Location. Two real HTTP servers on different ports are two origins.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { WebhookSender } from '../src/telemetry/webhook.js';
import type { WebhookPayload } from '../src/telemetry/webhook.js';

interface Hit {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingHttpHeaders;
}

/** A real server on 127.0.0.1 recording every request it receives. */
async function recorder(answer: (res: ServerResponse) => void): Promise<{ origin: string; hits: Hit[]; close: () => Promise<void> }> {
  const hits: Hit[] = [];
  const srv = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      hits.push({ method: req.method, url: req.url, headers: req.headers });
      answer(res);
    });
  });
  await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
  const { port } = srv.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    hits,
    close: () =>
      new Promise<void>((ok) => {
        srv.closeAllConnections();
        srv.close(() => ok());
      }),
  };
}

const payload: WebhookPayload = {
  source: 'guild',
  run_id: 'r1',
  workflow: 'wf',
  alert: { at_ms: 0, at: 0, rule: 'cache', severity: 'warning', message: 'x', key: 'cache', repeats: 0 },
};

const SECRETS = { 'x-api-key': 'k-123-secret', authorization: 'Bearer t0k' };

describe('webhook redirects', () => {
  for (const status of [301, 302, 303, 307, 308]) {
    test(`a ${status} to another origin is a failed delivery, not retried; the other origin never sees the request or its headers`, async () => {
      const second = await recorder((res) => void res.writeHead(204).end());
      const first = await recorder((res) => void res.writeHead(status, { location: `${second.origin}/steal?token=abc` }).end());
      const errors: string[] = [];
      try {
        const w = new WebhookSender({ url: `${first.origin}/hook`, headers: SECRETS, timeoutMs: 2000, retries: 3, backoffMs: 5, onError: (e) => errors.push(e) });
        w.send(payload);
        assert.equal(await w.flush(5000), true);
        assert.equal(first.hits.length, 1, 'one attempt: a redirect is not retried');
        assert.equal(first.hits[0]!.headers['x-api-key'], 'k-123-secret', 'the configured origin gets the headers');
        assert.deepEqual(second.hits, [], 'the redirect target never receives anything');
        assert.deepEqual(errors, [`webhook ${first.origin}/hook failed after 1 attempt: answered ${status} → ${second.origin}: redirects are not followed (not retried)`]);
      } finally {
        await first.close();
        await second.close();
      }
    });
  }

  test('a same-origin redirect is not followed either', async () => {
    let n = 0;
    const only = await recorder((res) => void (n++ === 0 ? res.writeHead(302, { location: '/elsewhere' }).end() : res.writeHead(204).end()));
    const errors: string[] = [];
    try {
      const w = new WebhookSender({ url: `${only.origin}/hook`, headers: SECRETS, retries: 2, backoffMs: 5, onError: (e) => errors.push(e) });
      w.send(payload);
      await w.flush(5000);
      assert.deepEqual(only.hits.map((h) => h.url), ['/hook']);
      assert.deepEqual(errors, [`webhook ${only.origin}/hook failed after 1 attempt: answered 302 → ${only.origin}: redirects are not followed (not retried)`]);
    } finally {
      await only.close();
    }
  });
});
