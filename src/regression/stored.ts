import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { loadBenchConfig } from '../config/load-config.js';
import { GuildError } from '../errors.js';
import { getBenchRun, listBenchRuns } from '../store/bench.js';
import { openDatabase, storeFile } from '../store/db.js';
import { metricSpec } from './metrics.js';
import type { BenchRunRecord, Comparison } from './types.js';
import { compare } from './verdict.js';

// `guild bench compare A B` and `guild bench history`: what the store holds, read back.

/** The thresholds, test and level the file sets for a scenario (defaults when the file is gone or has none). */
function judging(file: string, scenario: string): { thresholds: Readonly<Record<string, number>>; alpha: number; test: 'mann-whitney' | 'welch' } {
  const config = existsSync(file) ? loadBenchConfig(file) : null;
  const s = config?.bench.scenarios.find((x) => x.name === scenario);
  return { thresholds: s?.thresholds ?? {}, alpha: config?.bench.alpha ?? 0.05, test: config?.bench.test ?? 'mann-whitney' };
}

function storeOf(file: string): string {
  const path = storeFile(dirname(resolve(file)));
  if (!existsSync(path)) throw new GuildError('NOT_FOUND', `no store at ${path}: nothing was measured for ${file} yet`);
  return path;
}

/** Two stored runs (ids or unique prefixes), every metric both have, judged B against A. */
export function compareStoredRuns(file: string, a: string, b: string): { a: BenchRunRecord; b: BenchRunRecord; comparisons: Comparison[] } {
  const db = openDatabase(storeOf(file));
  try {
    const ra = getBenchRun(db, a);
    const rb = getBenchRun(db, b);
    if (ra === null) throw new GuildError('NOT_FOUND', `no stored bench run '${a}' (guild bench history lists them)`);
    if (rb === null) throw new GuildError('NOT_FOUND', `no stored bench run '${b}' (guild bench history lists them)`);
    const j = judging(file, rb.scenario);
    const values = (r: BenchRunRecord, m: string): number[] => r.iterations.flatMap((i) => (m in i.metrics ? [i.metrics[m]!] : []));
    const names = [...new Set(rb.iterations.flatMap((i) => Object.keys(i.metrics)))].filter((m) => values(ra, m).length > 0).sort();
    const comparisons = names.map((m) => compare(metricSpec(m, j.thresholds), values(ra, m), values(rb, m), { alpha: j.alpha, test: j.test }));
    return { a: ra, b: rb, comparisons };
  } finally {
    db.close();
  }
}

/** Stored runs of the file's folder, newest first. */
export function benchHistory(file: string, o: { scenario?: string; limit?: number } = {}): BenchRunRecord[] {
  const db = openDatabase(storeOf(file));
  try {
    return listBenchRuns(db, o);
  } finally {
    db.close();
  }
}
