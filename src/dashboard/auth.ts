/**
 * Who may talk to the dashboard. Two rules:
 * - Without a token the server binds only to loopback, and answers only requests whose `Host` names
 *   loopback (a web page that DNS-rebinds its name to 127.0.0.1 would otherwise read /api/state).
 * - With a token, every request carries it: `Authorization: Bearer`, `?token=`, or the cookie the
 *   server sets after a `?token=` request (a page loaded from `/?token=…` fetches `/app.js` without
 *   the query, and EventSource cannot set headers).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIPv4, isIPv6 } from 'node:net';

/** The environment variable read when no token is passed. */
export const TOKEN_ENV = 'GUILD_DASHBOARD_TOKEN';

/** 127.0.0.0/8, ::1, localhost (and v4-mapped 127/8). Anything else reaches other machines. */
export function isLoopbackHost(host: string): boolean {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (h.startsWith('::ffff:') && isIPv4(h.slice(7))) h = h.slice(7);
  if (isIPv4(h)) return h.startsWith('127.');
  if (isIPv6(h)) return h === '::1' || h === '0:0:0:0:0:0:0:1';
  return false;
}

/** The host part of a `Host` header (`[::1]:8090` → `[::1]`, `localhost:8090` → `localhost`). */
function hostOfHeader(header: string): string {
  if (header.startsWith('[')) {
    const end = header.indexOf(']');
    return end === -1 ? header : header.slice(0, end + 1);
  }
  const colon = header.indexOf(':');
  return colon === -1 ? header : header.slice(0, colon);
}

/**
 * Decides whether a request may proceed. Built once per server; `check` runs on every request, so
 * the expected token is hashed once here and each presented token once per request.
 */
export class Gate {
  /** sha256 of the token: both sides hash to 32 bytes, so timingSafeEqual never sees unequal lengths (which would leak the length). */
  readonly #expected: Buffer | null;
  readonly #cookie: string;

  /** `cookieName` must be unique per port: cookies are not port-scoped, two dashboards on one host would overwrite each other's. */
  constructor(token: string | null, cookieName: string) {
    this.#expected = token === null ? null : sha256(token);
    this.#cookie = cookieName;
  }

  get requiresToken(): boolean {
    return this.#expected !== null;
  }

  /**
   * 'ok', 'unauthorized' (token missing or wrong), or 'forbidden-host' (no token, and the Host
   * header names something other than loopback). `query` is the raw query string (after `?`).
   * Precedence: the header, then `?token=`, then the cookie; the first present one is the only one checked.
   */
  check(req: IncomingMessage, query: URLSearchParams | null): 'ok' | 'unauthorized' | 'forbidden-host' {
    if (this.#expected === null) {
      // No Host header: not a browser (every browser sends one), so not a rebinding attack.
      const host = req.headers.host;
      return host === undefined || isLoopbackHost(hostOfHeader(host)) ? 'ok' : 'forbidden-host';
    }
    const presented = this.#presented(req, query);
    if (presented === null) return 'unauthorized';
    return timingSafeEqual(sha256(presented), this.#expected) ? 'ok' : 'unauthorized';
  }

  /**
   * The `Set-Cookie` value to send with a request that passed `check` with the token in its query,
   * so the page's own requests (scripts, styles, fetches) carry it; null otherwise.
   * HttpOnly: the page's scripts never need to read it. SameSite=Strict: other sites' pages never send it.
   */
  cookieFor(req: IncomingMessage, query: URLSearchParams | null): string | null {
    if (this.#expected === null || req.headers.authorization !== undefined) return null;
    const token = query?.get('token');
    return token == null ? null : `${this.#cookie}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict`;
  }

  #presented(req: IncomingMessage, query: URLSearchParams | null): string | null {
    return bearer(req) ?? query?.get('token') ?? cookie(req, this.#cookie);
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

function bearer(req: IncomingMessage): string | null {
  const h = req.headers.authorization;
  if (h === undefined) return null;
  const m = /^Bearer[ \t]+(.*)$/i.exec(h.trim());
  // A malformed Authorization header counts as a wrong token, not as no header: it must not fall through to the cookie.
  return m ? m[1]!.trim() : '';
}

function cookie(req: IncomingMessage, name: string): string | null {
  const h = req.headers.cookie;
  if (h === undefined) return null;
  for (const part of h.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return '';
      }
    }
  }
  return null;
}
