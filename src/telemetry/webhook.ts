import { describeValue } from '../util/describe.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULTS } from '../config/defaults.js';
import { GuildError } from '../errors.js';
import type { AlertRecord } from './state.js';

/** What a webhook receives: one alert per POST, as JSON. */
export interface WebhookPayload {
  source: 'guild';
  run_id: string | null;
  workflow: string | null;
  alert: AlertRecord;
}

/** Options of {@link WebhookSender}. */
export interface WebhookOptions {
  /**
   * Where alerts are POSTed (http or https). Credentials in the URL (`https://user:pass@host/…`)
   * are sent as Basic authorization, since fetch refuses URLs that carry them; messages mask them.
   */
  url: string;
  /** Extra request headers, e.g. `{ authorization: 'Bearer …' }`. `content-type` is always JSON. @default {} */
  headers?: Readonly<Record<string, string>>;
  /** One attempt gives up after this long (ms). @default 5000 */
  timeoutMs?: number;
  /**
   * Attempts after the first one, on network errors, timeouts, 5xx and 429; other 4xx are not
   * retried, nor is a redirect (3xx), which is never followed: it is a failed delivery. @default 3
   */
  retries?: number;
  /** Wait before retry n is `backoffMs × 2^(n-1)`: 500 ms, 1 s, 2 s by default. @default 500 */
  backoffMs?: number;
  /** Told once about each delivery that finally failed, and about deliveries dropped by `close()`. @default ignore */
  onError?: (message: string) => void;
  /** The HTTP client. @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
}

/** The defaults of {@link WebhookOptions}, from `config/defaults.ts`. */
export const WEBHOOK_DEFAULTS = DEFAULTS.telemetry.webhook;

interface Resolved {
  url: string;
  masked: string;
  headers: Headers;
  timeoutMs: number;
  retries: number;
  backoffMs: number;
  onError: (message: string) => void;
  fetch: typeof globalThis.fetch;
}

type Outcome = { ok: true } | { ok: false; retry: boolean; reason: string };

/**
 * Delivers alerts to one webhook. Deliveries are serialized in the order they were sent (a
 * receiver sees alerts in the order the run raised them) and run in the background: `send()`
 * returns at once and nothing a delivery does ever throws or rejects into the caller; a delivery
 * that finally fails is reported through `onError`.
 */
export class WebhookSender {
  readonly #o: Resolved;
  /** Bodies waiting, the one in flight first. Serialized when sent: alert records mutate later (repeats). */
  readonly #queue: string[] = [];
  /** Aborts the attempt in flight and any backoff wait on close(). */
  readonly #closing = new AbortController();
  #draining = false;
  #idle: (() => void)[] = [];

  constructor(options: WebhookOptions) {
    this.#o = resolve(options);
  }

  /** The URL with its credentials masked, as messages show it. */
  get url(): string {
    return this.#o.masked;
  }

  /** Deliveries not yet finished, the one in flight included. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Queues one delivery; returns at once. Ignored after `close()`. */
  send(payload: WebhookPayload): void {
    if (this.#closing.signal.aborted) return;
    this.#queue.push(JSON.stringify(payload));
    if (!this.#draining) {
      this.#draining = true;
      // #drain catches everything itself; the catch only keeps a bug there from becoming an unhandled rejection.
      void this.#drain().catch(() => undefined);
    }
  }

  /**
   * Resolves true once every delivery queued so far has finished (delivered or failed), or false
   * when `timeoutMs` passed first. Never rejects.
   */
  flush(timeoutMs: number): Promise<boolean> {
    checkMs('flush timeoutMs', timeoutMs, 0);
    if (!this.#draining) return Promise.resolve(true);
    return new Promise((done) => {
      const finished = (): void => {
        clearTimeout(timer);
        done(true);
      };
      // Ref'd on purpose: a run awaiting flush() must not exit before the bound it asked for.
      const timer = setTimeout(() => {
        this.#idle = this.#idle.filter((f) => f !== finished);
        done(false);
      }, timeoutMs);
      this.#idle.push(finished);
    });
  }

  /** Stops: the attempt in flight is aborted and queued deliveries are dropped (reported once through `onError`). */
  close(): void {
    if (this.#closing.signal.aborted) return;
    const dropped = this.#queue.length;
    this.#closing.abort();
    if (dropped > 0) this.#report(`webhook ${this.#o.masked}: ${dropped} alert(s) not delivered (closed)`);
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#closing.signal.aborted) {
        await this.#deliver(this.#queue[0]!);
        this.#queue.shift();
      }
    } finally {
      this.#queue.length = 0;
      this.#draining = false;
      const idle = this.#idle;
      this.#idle = [];
      for (const f of idle) f();
    }
  }

  async #deliver(body: string): Promise<void> {
    const { retries, backoffMs, masked } = this.#o;
    const signal = this.#closing.signal;
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#attempt(body);
      if (outcome.ok || signal.aborted) return;
      if (!outcome.retry || attempt > retries) {
        const tail = outcome.retry ? '' : ' (not retried)';
        this.#report(`webhook ${masked} failed after ${attempt} attempt${attempt === 1 ? '' : 's'}: ${outcome.reason}${tail}`);
        return;
      }
      try {
        // Unref'd: a backoff alone must not hold the process open; flush() holds it when asked to.
        await sleep(backoffMs * 2 ** (attempt - 1), undefined, { signal, ref: false });
      } catch {
        return; // closed while waiting
      }
    }
  }

  async #attempt(body: string): Promise<Outcome> {
    const { url, headers, timeoutMs } = this.#o;
    try {
      const res = await this.#o.fetch(url, {
        method: 'POST',
        headers,
        body,
        // A redirect is a failed delivery, never followed: fetch would carry every configured
        // header (an `X-Api-Key`, anything but Authorization) to whatever origin the answer names.
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), this.#closing.signal]),
      });
      // The body is never read; cancelling it frees the connection for the next delivery.
      await res.body?.cancel().catch(() => undefined);
      if (res.ok) return { ok: true };
      // Not retried: the same URL would answer the same redirect.
      if (res.status >= 300 && res.status < 400) return { ok: false, retry: false, reason: redirectReason(res, url) };
      return { ok: false, retry: res.status >= 500 || res.status === 429, reason: `HTTP ${res.status}` };
    } catch (e) {
      if ((e as Error | undefined)?.name === 'TimeoutError') return { ok: false, retry: true, reason: `no answer within ${timeoutMs} ms` };
      return { ok: false, retry: true, reason: this.#mask(describeError(e)) };
    }
  }

  #report(message: string): void {
    try {
      this.#o.onError(message);
    } catch {
      // A failing log sink must not turn into an unhandled rejection in a background delivery.
    }
  }

  #mask(text: string): string {
    return text.split(this.#o.url).join(this.#o.masked);
  }
}

/** The URL with credentials hidden: user info and query values become `***`. Unparseable input is hidden whole. */
export function maskUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return '***';
  }
  // Webhook URLs carry tokens in their query (…?token=…) as often as in their user info.
  const query = [...u.searchParams.keys()].map((k) => `${encodeURIComponent(k)}=***`).join('&');
  const auth = u.username || u.password ? '***@' : '';
  return `${u.protocol}//${auth}${u.host}${u.pathname}${query ? `?${query}` : ''}`;
}

function resolve(options: WebhookOptions): Resolved {
  if (typeof options !== 'object' || options === null) throw new GuildError('INVALID_OPTION', `Expected webhook options as an object, got ${describeValue(options)}`);
  const { url: raw } = options;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new GuildError('INVALID_OPTION', `Expected a webhook URL such as https://example.com/hook, got ${typeof raw === 'string' ? JSON.stringify(maskUrl(raw)) : describeValue(raw)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new GuildError('INVALID_OPTION', `Expected an http or https webhook URL, got ${u.protocol}`);
  const headers = new Headers(options.headers ?? {});
  if (u.username || u.password) {
    if (!headers.has('authorization')) headers.set('authorization', `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`);
    u.username = '';
    u.password = '';
  }
  headers.set('content-type', 'application/json');
  const o: Resolved = {
    url: u.href,
    masked: maskUrl(raw),
    headers,
    timeoutMs: options.timeoutMs ?? WEBHOOK_DEFAULTS.timeoutMs,
    retries: options.retries ?? WEBHOOK_DEFAULTS.retries,
    backoffMs: options.backoffMs ?? WEBHOOK_DEFAULTS.backoffMs,
    onError: options.onError ?? (() => undefined),
    fetch: options.fetch ?? globalThis.fetch,
  };
  checkMs('webhook timeoutMs', o.timeoutMs, 1);
  checkMs('webhook backoffMs', o.backoffMs, 0);
  if (!Number.isInteger(o.retries) || o.retries < 0) throw new GuildError('INVALID_OPTION', `Expected webhook retries to be an integer >= 0, got ${describeValue(o.retries)}`);
  if (typeof o.onError !== 'function') throw new GuildError('INVALID_OPTION', `Expected webhook onError to be a function, got ${describeValue(o.onError)}`);
  if (typeof o.fetch !== 'function') throw new GuildError('INVALID_OPTION', `Expected webhook fetch to be a function, got ${describeValue(o.fetch)}`);
  return o;
}

/** @internal Shared with alerts.ts for its own "Expected X, got Y" checks. */
export function checkMs(name: string, value: unknown, min: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new GuildError('INVALID_OPTION', `Expected ${name} to be a number of ms >= ${min}, got ${describeValue(value)}`);
  }
}

/**
 * `answered 302 → https://other.example: redirects are not followed`. Only the target's origin is
 * shown: its path and query may carry a token of their own.
 */
function redirectReason(res: Response, url: string): string {
  const location = res.headers.get('location');
  let target = '';
  if (location !== null) {
    try {
      target = ` → ${new URL(location, url).origin}`;
    } catch {
      target = ' → (an unparseable Location)';
    }
  }
  return `answered ${res.status}${target}: redirects are not followed`;
}

/** fetch reports network failures as `TypeError: fetch failed` with the reason in `cause`. */
function describeError(e: unknown): string {
  const err = e as (Error & { cause?: unknown }) | undefined;
  const cause = err?.cause as (Error & { code?: string }) | undefined;
  if (cause && typeof cause.message === 'string' && cause.message !== '') return cause.message;
  if (err && typeof err.message === 'string' && err.message !== '') return err.message;
  return String(e);
}
