/** Responses: the headers every answer carries, JSON, and conditional requests. */
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * On every response, errors included. The CSP lets the page load its own scripts (classic and
 * `type="module"`, whose imports are same-origin too), styles and event stream, and nothing else
 * (uPlot styles its elements through the CSSOM, which style-src does not restrict). no-referrer
 * also keeps a `?token=` from leaking through a Referer header.
 */
export const SECURITY_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ['x-content-type-options', 'nosniff'],
  ['referrer-policy', 'no-referrer'],
  [
    'content-security-policy',
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  ],
  ['x-frame-options', 'DENY'],
  ['cross-origin-resource-policy', 'same-origin'],
];

export function send(req: IncomingMessage, res: ServerResponse, status: number, headers: Readonly<Record<string, string>>, body: string | Buffer | null): void {
  res.writeHead(status, body === null ? headers : { ...headers, 'content-length': String(typeof body === 'string' ? Buffer.byteLength(body) : body.length) });
  res.end(req.method === 'HEAD' || body === null ? undefined : body);
}

export function sendJson(req: IncomingMessage, res: ServerResponse, status: number, value: unknown): void {
  send(req, res, status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }, JSON.stringify(value));
}

/** Whether an `If-None-Match` header names this ETag (weak or strong, or `*`). */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}
