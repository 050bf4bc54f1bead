/**
 * Task memoization on the quickstart workflow (examples/quickstart/: 15 real processes —
 * simulated agents, the TypeScript compiler, node --test shards, shell tools).
 *
 * Each round copies examples/quickstart/ (without out/, .guild/guild.db*, .guild/runs) to a
 * fresh temp dir laid out as
 *     <tmp>/node_modules -> <repo>/node_modules        (symlink)
 *     <tmp>/ws/quickstart/                             (the copy)
 * so that the build task's `node ../../node_modules/typescript/bin/tsc` and its declared input
 * `../../node_modules/typescript/package.json` resolve, from the copy, to the repository's
 * TypeScript exactly as they do from examples/quickstart/. Then, with
 * `node bin/guild.js run <copy>/guild.yaml --json --progress none`:
 *   1. cold run (fresh store): the peer of run 2, in the same round;
 *   2. the same again: makespan ratio run 2 / run 1 (goal <= 0.3), run 2's cache.hit_rate
 *      (goal >= 0.7), the median of tasks[].cache.serve_ms over cached tasks (goal < 20 ms),
 *      cache.saved_ms;
 *   3. one byte appended to sample-project/test/stats.test.ts, run again: which tasks re-ran
 *      (status succeeded) and which were served from the cache, and that makespan.
 * Medians over `--rounds` (default 2). Goals are reported, never enforced.
 *
 * Run: npx tsc -p . && node dist/bench/memo-quickstart.js [--rounds=2]
 * Writes bench/results/memo-quickstart.json.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import type { RunReport, TaskStatus } from '../src/workflow/report.js';
import { argNumber, environment, fmtMs, fmtRatio, GUILD_BIN, isMain, median, printTable, REPO_ROOT, writeResult } from './lib.js';

const SOURCE = join(REPO_ROOT, 'examples', 'quickstart');
const CHANGED_FILE = join('sample-project', 'test', 'stats.test.ts');
const GOALS = { makespanRatio: 0.3, hitRate: 0.7, serveMedianMs: 20 } as const;

interface RunFigures {
  ok: boolean;
  exitCode: number | null;
  /** The report's makespan. */
  makespanMs: number;
  /** Wall time of the whole `guild run` process (node start-up, config, store, exit included). */
  wallMs: number;
  hits: number;
  misses: number;
  hitRate: number | null;
  savedMs: number;
  notCacheable: number;
  counts: Record<TaskStatus, number>;
  /** serve_ms of each cached task. */
  serveMs: Record<string, number>;
  statuses: Record<string, TaskStatus>;
  /** Tasks not looked up, and why. */
  uncachedReasons: Record<string, string>;
}

interface Round {
  dir: string;
  cold: RunFigures;
  warm: RunFigures;
  changed: RunFigures;
  warmOverCold: number;
  changedOverCold: number;
  serveMedianMs: number;
  /** out/ after the warm run is byte-identical to out/ after the cold run. */
  outputsIdentical: boolean;
  reran: string[];
  cachedAfterChange: string[];
}

/** A copy of the quickstart where `../../node_modules` is the repository's node_modules. */
function prepare(): { root: string; dir: string } {
  const root = mkdtempSync(join(tmpdir(), 'guild-bench-memo-'));
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'), 'dir');
  const dir = join(root, 'ws', 'quickstart');
  mkdirSync(join(root, 'ws'));
  cpSync(SOURCE, dir, {
    recursive: true,
    filter: (src) => {
      const rel = relative(SOURCE, src);
      if (rel === 'out' || rel.startsWith(`out${sep}`)) return false;
      if (rel === join('.guild', 'runs') || rel.startsWith(join('.guild', 'runs') + sep)) return false;
      if (rel.startsWith(join('.guild', 'guild.db'))) return false;
      return true;
    },
  });
  if (!existsSync(join(dir, '..', '..', 'node_modules', 'typescript', 'package.json'))) throw new Error(`layout: ../../node_modules/typescript not found from ${dir}`);
  return { root, dir };
}

function guildRun(dir: string): RunFigures {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [GUILD_BIN, 'run', join(dir, 'guild.yaml'), '--json', '--progress', 'none'], {
    cwd: dir,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    timeout: 15 * 60_000,
  });
  const wallMs = performance.now() - t0;
  const out = r.stdout ?? '';
  if (!out.trim().startsWith('{')) throw new Error(`guild run printed no JSON (exit ${r.status ?? r.signal}): ${(r.stderr ?? '').slice(-2000)}`);
  const rep = JSON.parse(out) as RunReport;
  const serveMs: Record<string, number> = {};
  const statuses: Record<string, TaskStatus> = {};
  const uncachedReasons: Record<string, string> = {};
  for (const t of rep.tasks) {
    statuses[t.id] = t.status;
    if (t.status === 'cached' && t.cache.serve_ms !== null) serveMs[t.id] = t.cache.serve_ms;
    if (t.cache.status === 'off' && t.cache.reason !== null) uncachedReasons[t.id] = t.cache.reason;
  }
  return {
    ok: rep.ok,
    exitCode: r.status,
    makespanMs: rep.makespan_ms,
    wallMs,
    hits: rep.cache.hits,
    misses: rep.cache.misses,
    hitRate: rep.cache.hit_rate,
    savedMs: rep.cache.saved_ms,
    notCacheable: rep.cache.not_cacheable,
    counts: rep.counts,
    serveMs,
    statuses,
    uncachedReasons,
  };
}

/** sha256 over every file under `dir` (paths and contents), in sorted order. */
function treeHash(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else h.update(relative(dir, p)).update('\0').update(readFileSync(p)).update('\0');
    }
  };
  if (existsSync(dir)) walk(dir);
  return h.digest('hex');
}

function round(i: number, keep: boolean): Round {
  const { root, dir } = prepare();
  try {
    console.log(`round ${i + 1}: ${dir}`);
    const cold = guildRun(dir);
    console.log(`  cold     makespan ${fmtMs(cold.makespanMs)}  ok ${cold.ok}  ${JSON.stringify(cold.counts)}`);
    const outCold = treeHash(join(dir, 'out'));
    const warm = guildRun(dir);
    const outWarm = treeHash(join(dir, 'out'));
    console.log(`  again    makespan ${fmtMs(warm.makespanMs)}  ok ${warm.ok}  hit rate ${warm.hitRate}  saved ${fmtMs(warm.savedMs)}`);
    appendFileSync(join(dir, CHANGED_FILE), '\n');
    const changed = guildRun(dir);
    const reran = Object.entries(changed.statuses).filter(([, s]) => s === 'succeeded').map(([id]) => id);
    const cachedAfterChange = Object.entries(changed.statuses).filter(([, s]) => s === 'cached').map(([id]) => id);
    console.log(`  +1 byte  makespan ${fmtMs(changed.makespanMs)}  re-ran ${reran.length} [${reran.join(', ')}]  cached ${cachedAfterChange.length}`);
    return {
      dir,
      cold,
      warm,
      changed,
      warmOverCold: warm.makespanMs / cold.makespanMs,
      changedOverCold: changed.makespanMs / cold.makespanMs,
      serveMedianMs: median(Object.values(warm.serveMs)),
      outputsIdentical: outCold === outWarm,
      reran,
      cachedAfterChange,
    };
  } finally {
    if (!keep) rmSync(root, { recursive: true, force: true });
  }
}

export async function main(): Promise<Round[]> {
  const rounds = Math.max(1, argNumber('rounds', 2));
  const keep = process.argv.includes('--keep');
  console.log(`memo-quickstart: ${rounds} round(s) of cold run, same run again, run after a 1-byte change to ${CHANGED_FILE}`);
  const results: Round[] = [];
  for (let i = 0; i < rounds; i++) results.push(round(i, keep));

  const med = (f: (r: Round) => number): number => median(results.map(f));
  const summary = {
    coldMakespanMs: med((r) => r.cold.makespanMs),
    warmMakespanMs: med((r) => r.warm.makespanMs),
    changedMakespanMs: med((r) => r.changed.makespanMs),
    coldWallMs: med((r) => r.cold.wallMs),
    warmWallMs: med((r) => r.warm.wallMs),
    warmOverCold: med((r) => r.warmOverCold),
    warmWallOverColdWall: med((r) => r.warm.wallMs / r.cold.wallMs),
    changedOverCold: med((r) => r.changedOverCold),
    warmHitRate: med((r) => r.warm.hitRate ?? 0),
    changedHitRate: med((r) => r.changed.hitRate ?? 0),
    serveMedianMs: med((r) => r.serveMedianMs),
    serveMaxMs: Math.max(...results.flatMap((r) => Object.values(r.warm.serveMs))),
    warmSavedMs: med((r) => r.warm.savedMs),
    changedSavedMs: med((r) => r.changed.savedMs),
    allOk: results.every((r) => r.cold.ok && r.warm.ok && r.changed.ok),
    outputsIdentical: results.every((r) => r.outputsIdentical),
  };
  const goalsMet = {
    makespanRatio: summary.warmOverCold <= GOALS.makespanRatio,
    hitRate: summary.warmHitRate >= GOALS.hitRate,
    serveMedianMs: summary.serveMedianMs < GOALS.serveMedianMs,
  };

  console.log('');
  const v = (ok: boolean): string => (ok ? 'met' : 'NOT met');
  printTable(
    ['figure', 'median', 'rounds', 'goal', ''],
    [
      ['cold run makespan (peer)', fmtMs(summary.coldMakespanMs), results.map((r) => fmtMs(r.cold.makespanMs)).join(' / '), '', ''],
      ['same run again: makespan', fmtMs(summary.warmMakespanMs), results.map((r) => fmtMs(r.warm.makespanMs)).join(' / '), '', ''],
      ['again / cold makespan', fmtRatio(summary.warmOverCold), results.map((r) => fmtRatio(r.warmOverCold)).join(' / '), `<= ${GOALS.makespanRatio}`, v(goalsMet.makespanRatio)],
      ['again / cold wall (incl. node start)', fmtRatio(summary.warmWallOverColdWall), results.map((r) => fmtRatio(r.warm.wallMs / r.cold.wallMs)).join(' / '), 'info', ''],
      ['again: cache.hit_rate', summary.warmHitRate.toFixed(3), results.map((r) => String(r.warm.hitRate)).join(' / '), `>= ${GOALS.hitRate}`, v(goalsMet.hitRate)],
      ['again: median serve_ms (cached tasks)', `${summary.serveMedianMs.toFixed(1)} ms`, results.map((r) => `${r.serveMedianMs.toFixed(1)} ms`).join(' / '), `< ${GOALS.serveMedianMs} ms`, v(goalsMet.serveMedianMs)],
      ['again: max serve_ms', `${summary.serveMaxMs.toFixed(1)} ms`, '', 'info', ''],
      ['again: cache.saved_ms', fmtMs(summary.warmSavedMs), results.map((r) => fmtMs(r.warm.savedMs)).join(' / '), 'info', ''],
      ['+1 byte in stats.test.ts: makespan', fmtMs(summary.changedMakespanMs), results.map((r) => fmtMs(r.changed.makespanMs)).join(' / '), 'info', ''],
      ['+1 byte / cold makespan', fmtRatio(summary.changedOverCold), results.map((r) => fmtRatio(r.changedOverCold)).join(' / '), 'info', ''],
      ['+1 byte: tasks re-ran / cached', '', results.map((r) => `${r.reran.length}/${r.cachedAfterChange.length}`).join(' / '), 'info', ''],
    ],
  );
  console.log('');
  const last = results[results.length - 1]!;
  console.log(`after the change, re-ran: ${last.reran.join(', ') || '(none)'}`);
  console.log(`after the change, cached: ${last.cachedAfterChange.join(', ') || '(none)'}`);
  const uncached = Object.entries(last.warm.uncachedReasons);
  if (uncached.length > 0) console.log(`not looked up on the second run: ${uncached.map(([id, why]) => `${id} (${why})`).join(', ')}`);
  console.log(`serve_ms per cached task (last round): ${Object.entries(last.warm.serveMs).map(([id, ms]) => `${id} ${ms}`).join(', ')}`);
  console.log(`all runs ok: ${summary.allOk ? 'yes' : 'NO'}; out/ identical after the cached run: ${summary.outputsIdentical ? 'yes' : 'NO'}`);

  const file = writeResult('memo-quickstart', { benchmark: 'memo-quickstart', environment: environment(), rounds, changedFile: CHANGED_FILE, goals: GOALS, goalsMet, summary, results });
  console.log(`wrote ${file}`);
  return results;
}

if (isMain(import.meta.url)) await main();
