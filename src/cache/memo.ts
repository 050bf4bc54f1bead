import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AgentProfile, TaskSpec } from '../config/resolve.js';
import { GuildError } from '../errors.js';
import type { BatchOptions, FileData } from '../io/files.js';
import type { LayeredCache } from './layered-cache.js';

/**
 * Bumped whenever what a fingerprint covers or how an entry is laid out changes: old entries
 * then simply stop matching. 2: outputs carry their type (a symlink is stored as its target),
 * and links out of the project are refused. Entries of version 1 may hold what a followed link
 * read outside the project (and a shared Redis may hold such entries of other checkouts), so
 * they miss once rather than serve. The decoder still reads an output without `type` as a file.
 */
export const CACHE_FORMAT_VERSION = 2;

/** The namespace task results live in. */
export const TASKS_NAMESPACE = 'tasks';

/** A stored task result. */
export interface MemoEntry {
  readonly task: string;
  readonly fingerprint: string;
  /** Epoch ms when it was stored. */
  readonly createdAt: number;
  /** How long the task ran when it produced this result: what a hit saves. */
  readonly durationMs: number;
  readonly peakRssBytes: number | null;
  /** What the run that produced it reported spending (tokens, cost…): what a hit saves besides time. {} for entries stored before. */
  readonly metrics?: Readonly<Record<string, number>>;
  /** The task's log (every attempt of the run that produced it). */
  readonly log: Buffer;
  readonly outputs: readonly FileData[];
}

export interface Fingerprint {
  /** sha256 hex of everything the result depends on. */
  readonly key: string;
  readonly inputFiles: number;
  readonly inputBytes: number;
}

interface Header {
  v: number;
  task: string;
  fingerprint: string;
  created_at: number;
  duration_ms: number;
  peak_rss_bytes: number | null;
  /** Optional within format 2: entries stored before it existed read as having spent nothing. */
  metrics?: Record<string, number>;
  log_bytes: number;
  /**
   * One per output, its bytes in this order after the log: a file's content, a symlink's target
   * text. `type` absent (entries stored before links were kept): a file.
   */
  outputs: { path: string; type?: 'file' | 'symlink'; mode?: number; size: number }[];
}

const bytesOf = (o: FileData): Buffer => (o.type === 'file' ? o.data : Buffer.from(o.target));

/** Code-unit order of [key, value] pairs: stable across locales, unlike localeCompare. */
const byKey = ([a]: readonly [string, string], [b]: readonly [string, string]): number => (a < b ? -1 : a > b ? 1 : 0);

/** [u32 header length][header JSON][log][output files…]: one buffer, no base64. */
export function encodeEntry(e: MemoEntry): Buffer {
  const header: Header = {
    v: CACHE_FORMAT_VERSION,
    task: e.task,
    fingerprint: e.fingerprint,
    created_at: e.createdAt,
    duration_ms: e.durationMs,
    peak_rss_bytes: e.peakRssBytes,
    ...(e.metrics !== undefined && Object.keys(e.metrics).length > 0 && { metrics: { ...e.metrics } }),
    log_bytes: e.log.length,
    outputs: e.outputs.map((o) => (o.type === 'file' ? { path: o.path, type: o.type, mode: o.mode, size: o.data.length } : { path: o.path, type: o.type, size: Buffer.byteLength(o.target) })),
  };
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32BE(json.length, 0);
  return Buffer.concat([len, json, e.log, ...e.outputs.map(bytesOf)]);
}

/** Throws on anything that is not a whole entry of this format. */
export function decodeEntry(buf: Buffer): MemoEntry {
  const hlen = buf.readUInt32BE(0);
  const h = JSON.parse(buf.subarray(4, 4 + hlen).toString('utf8')) as Header;
  if (h.v !== CACHE_FORMAT_VERSION) throw new Error(`entry format ${h.v}, expected ${CACHE_FORMAT_VERSION}`);
  let at = 4 + hlen;
  if (!Number.isSafeInteger(h.log_bytes) || h.log_bytes < 0 || !Array.isArray(h.outputs)) throw new Error('entry has a malformed header');
  const take = (n: number): Buffer => {
    if (at + n > buf.length) throw new Error('entry is truncated');
    const part = buf.subarray(at, at + n);
    at += n;
    return part;
  };
  const log = take(h.log_bytes);
  const outputs = h.outputs.map((o): FileData => {
    if (typeof o.path !== 'string' || !Number.isSafeInteger(o.size) || o.size < 0) throw new Error('entry has a malformed output');
    const data = take(o.size);
    if (o.type === 'symlink') return { type: 'symlink', path: o.path, target: data.toString('utf8') };
    if ((o.type !== undefined && o.type !== 'file') || typeof o.mode !== 'number') throw new Error(`entry has an output of unknown type ${String(o.type)}`);
    return { type: 'file', path: o.path, mode: o.mode, data };
  });
  if (at !== buf.length) throw new Error('entry has trailing bytes');
  const metrics: Record<string, number> = {};
  if (h.metrics !== null && typeof h.metrics === 'object') for (const [k, v] of Object.entries(h.metrics)) if (typeof v === 'number' && Number.isFinite(v)) metrics[k] = v;
  return { task: h.task, fingerprint: h.fingerprint, createdAt: h.created_at, durationMs: h.duration_ms, peakRssBytes: h.peak_rss_bytes, metrics, log, outputs };
}

/**
 * Task memoization in the style of Turborepo: a task's fingerprint covers its command, its agent
 * profile as declared, its declared env values, the content of every input file, the format
 * version and the fingerprints of the tasks it needs. A hit restores the outputs byte for byte
 * (symlinks as the same links) and the log; no process starts. Nothing outside the project (the
 * workflow's folder) is read to store or hash, nor written to restore.
 */
let io: Promise<typeof import('../io/files.js')> | undefined;
let hashing: Promise<typeof import('node:crypto')> | undefined;
// The file batcher, tinyglobby and node:crypto load with the first cacheable task: a run of tasks
// without inputs or outputs never needs them.
const files = (): Promise<typeof import('../io/files.js')> => (io ??= import('../io/files.js'));
const nodeCrypto = (): Promise<typeof import('node:crypto')> => (hashing ??= import('node:crypto'));

export class TaskMemo {
  readonly #cache: LayeredCache;
  readonly #dir: string;
  readonly #io: BatchOptions;

  constructor(cache: LayeredCache, dir: string, io: BatchOptions = {}) {
    this.#cache = cache;
    this.#dir = dir;
    this.#io = io;
  }

  async fingerprint(spec: TaskSpec, profile: AgentProfile, needs: ReadonlyMap<string, string>): Promise<Fingerprint> {
    const [{ expandGlobs, hashFiles }, { createHash }] = await Promise.all([files(), nodeCrypto()]);
    const digests = await hashFiles(await expandGlobs(spec.inputs, this.#dir), this.#dir, this.#io);
    const doc = {
      v: CACHE_FORMAT_VERSION,
      task: spec.id,
      run: spec.run,
      agent: { name: profile.name, memory: profile.memoryBytes, limit: profile.limitBytes, cpu: profile.cpu, node_heap_mb: profile.nodeHeapMb, timeout: profile.timeoutMs },
      env: Object.entries(spec.env).sort(byKey),
      inputs: spec.inputs,
      outputs: spec.outputs,
      // A regular file as ever ([path, mode, sha]); a link not followed or a special file names its
      // type in place of the mode, so it never equals a file holding the same bytes.
      files: digests.map((d) => (d.type === 'file' ? [d.path, d.mode, d.sha256] : [d.path, d.type, d.sha256])),
      needs: [...needs].sort(byKey),
    };
    return {
      key: createHash('sha256').update(JSON.stringify(doc)).digest('hex'),
      inputFiles: digests.length,
      inputBytes: digests.reduce((n, d) => n + d.size, 0),
    };
  }

  /** The stored result, or undefined. An entry that does not decode is removed and is a miss. */
  async lookup(fingerprint: string): Promise<MemoEntry | undefined> {
    const buf = await this.#cache.get(TASKS_NAMESPACE, fingerprint);
    if (buf === undefined) return undefined;
    try {
      return decodeEntry(buf);
    } catch {
      await this.#cache.delete(TASKS_NAMESPACE, fingerprint);
      return undefined;
    }
  }

  /**
   * Writes the outputs and the log of a stored result. Outputs are never written through a
   * symlink nor outside the project: an entry that would (a poisoned shared entry) is refused
   * with UNSAFE_PATH, its paths checked before anything is written.
   */
  async restore(entry: MemoEntry, logFile: string | null): Promise<void> {
    try {
      await (await files()).writeFiles(entry.outputs, this.#dir, this.#io);
    } catch (e) {
      if (e instanceof GuildError && e.code === 'UNSAFE_PATH') throw new GuildError('UNSAFE_PATH', `task ${entry.task}: cached output ${e.message}: not restored`, { cause: e });
      throw e;
    }
    if (logFile !== null) {
      await mkdir(dirname(logFile), { recursive: true });
      await writeFile(logFile, entry.log);
    }
  }

  /**
   * Stores a successful result: the declared outputs as they are now (files with their bytes and
   * modes, symlinks as links), and the log. Rejects with UNSAFE_PATH, naming the task and the path,
   * when an output is a symlink out of the project (or under one) or neither file nor link: such a
   * result is not stored, and nothing outside the project is read.
   */
  async save(fingerprint: string, spec: TaskSpec, logFile: string | null, durationMs: number, peakRssBytes: number | null, metrics: Readonly<Record<string, number>> = {}): Promise<{ files: number; bytes: number }> {
    let outputs: FileData[];
    let log: Buffer;
    try {
      const { listOutputs, readFiles } = await files();
      const paths = await listOutputs(spec.outputs, this.#dir);
      [outputs, log] = await Promise.all([readFiles(paths, this.#dir, this.#io), logFile ? readFile(logFile).catch(() => Buffer.alloc(0)) : Buffer.alloc(0)]);
    } catch (e) {
      if (e instanceof GuildError && e.code === 'UNSAFE_PATH') throw new GuildError('UNSAFE_PATH', `task ${spec.id}: output ${e.message}: not stored`, { cause: e });
      throw e;
    }
    const value = encodeEntry({ task: spec.id, fingerprint, createdAt: Date.now(), durationMs, peakRssBytes, metrics, log, outputs });
    await this.#cache.set(TASKS_NAMESPACE, fingerprint, value);
    this.#cache.recordCompute(TASKS_NAMESPACE, durationMs);
    return { files: outputs.length, bytes: outputs.reduce((n, o) => n + bytesOf(o).length, 0) };
  }
}
