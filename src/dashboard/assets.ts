/**
 * The page's static files. Only a whitelist of URL paths, fixed when the server starts, is
 * served: the regular files directly in the page folder and uPlot's files. A URL path is looked up
 * verbatim (never decoded, never joined to a folder), so `..`, `%2e%2e` and `%2F` can only miss.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { etagMatches, send, sendJson } from './http.js';

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  html: 'text/html; charset=utf-8',
  // The page's ES modules included: a browser runs a module only when its type is a JavaScript MIME type.
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  json: 'application/json; charset=utf-8',
  map: 'application/json; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
  txt: 'text/plain; charset=utf-8',
  woff2: 'font/woff2',
};

/** A name as it may appear in a URL path: no slash, no percent sign, no leading dot. */
const SAFE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/** uPlot's files the page loads: the ES module its charts import, and its stylesheet (the IIFE build for pages that still load it). */
const UPLOT_FILES = ['uPlot.esm.js', 'uPlot.iife.min.js', 'uPlot.min.css'] as const;

/**
 * The files the page may load: the regular files directly in pageDir (no dotfiles, no subfolders,
 * no symlinks) and uPlot's. Each is read on first request and kept in memory (the page is a few
 * hundred KB).
 */
export class Assets {
  readonly #paths: ReadonlyMap<string, string>;
  readonly #cache = new Map<string, Promise<Asset | null>>();

  private constructor(paths: ReadonlyMap<string, string>) {
    this.#paths = paths;
  }

  static async open(pageDir: string): Promise<Assets> {
    const paths = new Map<string, string>();
    try {
      for (const entry of await readdir(pageDir, { withFileTypes: true })) {
        if (entry.isFile() && SAFE_NAME.test(entry.name)) paths.set(`/${entry.name}`, join(pageDir, entry.name));
      }
    } catch {
      // No page folder: the API still serves (`guild dashboard` scripts, curl); the page 404s.
    }
    const uplot = uplotDist();
    if (uplot !== null) for (const name of UPLOT_FILES) paths.set(`/vendor/${name}`, join(uplot, name));
    return new Assets(paths);
  }

  /** The URL paths served, in no particular order. */
  paths(): string[] {
    return [...this.#paths.keys()];
  }

  get(urlPath: string): Promise<Asset | null> {
    const file = this.#paths.get(urlPath);
    if (file === undefined) return Promise.resolve(null);
    let asset = this.#cache.get(urlPath);
    if (asset === undefined) {
      // The promise is cached, so concurrent first requests read the file once.
      asset = readFile(file).then(
        (body) => ({ body, type: contentType(urlPath), etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` }),
        () => null,
      );
      this.#cache.set(urlPath, asset);
    }
    return asset;
  }

  /** Answers a GET or HEAD for `urlPath` (`/` is the index): the file with its ETag, a 304, or 404 JSON. */
  async serve(req: IncomingMessage, res: ServerResponse, urlPath: string): Promise<void> {
    const asset = await this.get(urlPath === '/' ? '/index.html' : urlPath);
    if (asset === null) return sendJson(req, res, 404, { error: 'not found' });
    const headers = { 'content-type': asset.type, etag: asset.etag, 'cache-control': 'no-cache' };
    if (etagMatches(req.headers['if-none-match'], asset.etag)) return send(req, res, 304, headers, null);
    return send(req, res, 200, headers, asset.body);
  }
}

function contentType(path: string): string {
  const dot = path.lastIndexOf('.');
  return (dot === -1 ? undefined : CONTENT_TYPES[path.slice(dot + 1).toLowerCase()]) ?? 'application/octet-stream';
}

function uplotDist(): string | null {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');
  } catch {
    return null;
  }
}
