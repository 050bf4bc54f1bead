import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { glob } from 'tinyglobby';

/** Options of the batched file operations. */
export interface BatchOptions {
  /** Files open at once, over all directories. @default 16 */
  concurrency?: number;
  /** Files larger than this are hashed as a stream instead of read whole. @default 1 MiB (the seed's threshold) */
  streamAboveBytes?: number;
}

export interface FileDigest {
  /** As given (relative to the base folder). */
  readonly path: string;
  readonly size: number;
  readonly mode: number;
  /** sha256, hex. */
  readonly sha256: string;
}

export interface FileData {
  readonly path: string;
  readonly mode: number;
  readonly data: Buffer;
}

const DEFAULT_CONCURRENCY = 16;
const STREAM_ABOVE = 1024 * 1024;

/**
 * Files matching `patterns` under `dir`, as sorted paths relative to it (directories excluded,
 * dotfiles included, symlinks followed). Sorting makes a fingerprint independent of the order
 * in which the file system lists entries.
 */
export async function expandGlobs(patterns: readonly string[], dir: string): Promise<string[]> {
  if (patterns.length === 0) return [];
  const files = await glob([...patterns], { cwd: dir, dot: true, onlyFiles: true, expandDirectories: false });
  return files.sort();
}

const same = (p: string): string => p;

/**
 * Orders items directory by directory (the seed's grouping: files of one directory are read
 * together, so directory lookups stay warm) and runs `work` over them with at most
 * `concurrency` in flight. Results come back in the order of `paths`.
 */
export async function inBatches<I, T>(items: readonly I[], pathOf: (item: I) => string, concurrency: number, work: (item: I) => Promise<T>): Promise<T[]> {
  const byDir = new Map<string, number[]>();
  items.forEach((item, i) => {
    const d = dirname(pathOf(item));
    const list = byDir.get(d);
    if (list) list.push(i);
    else byDir.set(d, [i]);
  });
  const order = [...byDir.values()].flat();
  const results = new Array<T>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < order.length) {
      const i = order[next++]!;
      results[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, concurrency), order.length) }, worker));
  return results;
}

/** sha256 of each file under `dir`: small files read whole, large ones streamed (bounded memory). */
export function hashFiles(paths: readonly string[], dir: string, options: BatchOptions = {}): Promise<FileDigest[]> {
  const streamAbove = options.streamAboveBytes ?? STREAM_ABOVE;
  return inBatches(paths, same, options.concurrency ?? DEFAULT_CONCURRENCY, async (path) => {
    const full = resolve(dir, path);
    const st = await stat(full);
    const hash = createHash('sha256');
    if (st.size > streamAbove) {
      for await (const chunk of createReadStream(full, { highWaterMark: 256 * 1024 })) hash.update(chunk as Buffer);
    } else {
      hash.update(await readFile(full));
    }
    return { path, size: st.size, mode: st.mode & 0o777, sha256: hash.digest('hex') };
  });
}

/** Reads files under `dir` in directory batches. */
export function readFiles(paths: readonly string[], dir: string, options: BatchOptions = {}): Promise<FileData[]> {
  return inBatches(paths, same, options.concurrency ?? DEFAULT_CONCURRENCY, async (path) => {
    const full = resolve(dir, path);
    const [st, data] = await Promise.all([stat(full), readFile(full)]);
    return { path, mode: st.mode & 0o777, data };
  });
}

/** Writes files under `dir` byte for byte with their modes; each directory is created once. */
export async function writeFiles(files: readonly FileData[], dir: string, options: BatchOptions = {}): Promise<void> {
  const dirs = new Set(files.map((f) => dirname(resolve(dir, f.path))));
  await Promise.all([...dirs].map((d) => mkdir(d, { recursive: true })));
  await inBatches(files, (f) => f.path, options.concurrency ?? DEFAULT_CONCURRENCY, async (f) => {
    const full = resolve(dir, f.path);
    await writeFile(full, f.data);
    await chmod(full, f.mode);
  });
}
