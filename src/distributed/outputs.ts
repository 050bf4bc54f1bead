import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { relative } from 'node:path';
import type { Redis } from 'ioredis';
import { decodeEntry, encodeEntry } from '../cache/memo.js';
import { GuildError } from '../errors.js';
import { listOutputs, readFiles, writeFiles, type FileData } from '../io/files.js';
import { metricsFileFor } from '../workflow/task-metrics.js';
import type { clusterKeys } from './names.js';

/**
 * A task's files travelling between machines of a cluster: its declared outputs, its log and
 * its GUILD_METRICS file, packed in the task memo's entry format (the same checks on restore:
 * nothing written through a link or outside the folder) and stored in Redis under the SHA-256 of
 * the pack, so the same files are stored once. A worker packs what a task left; the submitter
 * restores it into its own folder before the task counts as done (so memoization and dependents
 * see the files), and a dependent's worker restores its ancestors' packs before it starts.
 */

/** A stored pack, as a result names it. */
export interface Bundle {
  sha: string;
  files: number;
  bytes: number;
}

/** Packs are kept this long: a run (and a dependent's restore) is over well before. */
const BUNDLE_TTL_S = 24 * 3600;

/**
 * Packs the files of a task that ran in `folder`: `outputs` (globs, as declared) and, when given,
 * its log and the metrics file beside it, with paths relative to `folder`. Stores the pack and
 * returns its name; null when there is nothing to carry.
 */
export async function storeBundle(client: Redis, keys: ReturnType<typeof clusterKeys>, folder: string, task: string, outputs: readonly string[], logFile: string | null): Promise<Bundle | null> {
  const paths = await listOutputs(outputs, folder);
  if (logFile !== null) {
    // The log and metrics are written by the worker itself under .guild/runs: plain files when present.
    for (const f of [logFile, metricsFileFor(logFile)]) {
      const rel = relative(folder, f);
      if (!rel.startsWith('..') && statSync(f, { throwIfNoEntry: false })?.isFile()) paths.push(rel);
    }
  }
  if (paths.length === 0) return null;
  const files = await readFiles(paths, folder);
  const pack = encodeEntry({ task, fingerprint: '', createdAt: Date.now(), durationMs: 0, peakRssBytes: null, metrics: {}, log: Buffer.alloc(0), outputs: files });
  const sha = createHash('sha256').update(pack).digest('hex');
  await client.set(keys.bundle(sha), pack, 'EX', BUNDLE_TTL_S);
  return { sha, files: files.length, bytes: pack.length };
}

/**
 * Writes a stored pack's files into `folder`. Rejects with BUNDLE when the pack is gone (expired,
 * or Redis lost it) or does not decode, UNSAFE_PATH when it would write outside the folder.
 */
export async function restoreBundle(client: Redis, keys: ReturnType<typeof clusterKeys>, sha: string, folder: string): Promise<number> {
  const pack = await client.getBuffer(keys.bundle(sha));
  if (pack === null) throw new GuildError('BUNDLE', `the files of pack ${sha.slice(0, 12)} are no longer in Redis (expired, or Redis restarted empty)`);
  if (createHash('sha256').update(pack).digest('hex') !== sha) throw new GuildError('BUNDLE', `pack ${sha.slice(0, 12)} does not match its name: not restored`);
  let files: readonly FileData[];
  try {
    files = decodeEntry(pack).outputs;
  } catch (e) {
    throw new GuildError('BUNDLE', `pack ${sha.slice(0, 12)} does not decode: ${(e as Error).message}`);
  }
  await writeFiles(files, folder);
  return files.length;
}
