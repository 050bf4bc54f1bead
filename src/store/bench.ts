import type { BenchRunRecord, Fingerprint, Iteration, MachineRecord } from '../regression/types.js';
import type { Db } from './db.js';

// `guild bench`'s stored runs (migration 9): a run of one scenario, its iterations with the
// machine meanwhile, and every metric of every iteration as its own row, so a baseline or a
// history is one indexed query and any figure can be read back with plain SQL.

interface RunRow {
  id: string;
  workflow: string;
  scenario: string;
  started_at: number;
  commit_sha: string | null;
  dirty: number;
  guild_version: string;
  fingerprint: string;
  fingerprint_hash: string;
  mode: 'baseline' | 'against';
  side: 'base' | 'head' | null;
}

/** Stores one run with its iterations and samples, in one transaction. */
export function saveBenchRun(db: Db, r: BenchRunRecord): void {
  const run = db.prepare(
    `INSERT INTO bench_runs (id, workflow, scenario, started_at, commit_sha, dirty, guild_version, fingerprint, fingerprint_hash, mode, side)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const iteration = db.prepare('INSERT INTO bench_iterations (run_id, iteration, disturbed, machine) VALUES (?, ?, ?, ?)');
  const sample = db.prepare('INSERT INTO bench_samples (run_id, iteration, metric, value) VALUES (?, ?, ?, ?)');
  db.transaction(() => {
    run.run(r.id, r.workflow, r.scenario, r.startedAt.getTime(), r.commit, r.dirty ? 1 : 0, r.guildVersion, JSON.stringify(r.fingerprint), r.fingerprintHash, r.mode, r.side);
    for (const it of r.iterations) {
      iteration.run(r.id, it.index, it.machine.disturbed ? 1 : 0, JSON.stringify(it.machine));
      for (const [metric, value] of Object.entries(it.metrics)) if (Number.isFinite(value)) sample.run(r.id, it.index, metric, value);
    }
  })();
}

/** The runs of these rows with their iterations, in the rows' order. */
function hydrate(db: Db, rows: readonly RunRow[]): BenchRunRecord[] {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const marks = ids.map(() => '?').join(', ');
  const iterations = db.prepare(`SELECT run_id, iteration, machine FROM bench_iterations WHERE run_id IN (${marks}) ORDER BY run_id, iteration`).all(...ids) as {
    run_id: string;
    iteration: number;
    machine: string;
  }[];
  const samples = db.prepare(`SELECT run_id, iteration, metric, value FROM bench_samples WHERE run_id IN (${marks})`).all(...ids) as {
    run_id: string;
    iteration: number;
    metric: string;
    value: number;
  }[];
  const byRun = new Map<string, Map<number, Iteration>>(ids.map((id) => [id, new Map()]));
  for (const i of iterations) byRun.get(i.run_id)!.set(i.iteration, { index: i.iteration, metrics: {}, machine: JSON.parse(i.machine) as MachineRecord });
  for (const s of samples) {
    const it = byRun.get(s.run_id)!.get(s.iteration);
    if (it !== undefined) it.metrics[s.metric] = s.value;
  }
  return rows.map((r) => ({
    id: r.id,
    scenario: r.scenario,
    workflow: r.workflow,
    startedAt: new Date(r.started_at),
    commit: r.commit_sha,
    dirty: r.dirty === 1,
    guildVersion: r.guild_version,
    fingerprint: JSON.parse(r.fingerprint) as Fingerprint,
    fingerprintHash: r.fingerprint_hash,
    mode: r.mode,
    side: r.side,
    iterations: [...byRun.get(r.id)!.values()],
  }));
}

const COLUMNS = 'id, workflow, scenario, started_at, commit_sha, dirty, guild_version, fingerprint, fingerprint_hash, mode, side';

/** A run by its id or a prefix of it that names one run; null when none (or the prefix is ambiguous or empty). */
export function getBenchRun(db: Db, idOrPrefix: string): BenchRunRecord | null {
  if (idOrPrefix.length === 0) return null;
  const escaped = idOrPrefix.replace(/[\\%_]/g, (c) => `\\${c}`);
  const rows = db.prepare(`SELECT ${COLUMNS} FROM bench_runs WHERE id LIKE ? ESCAPE '\\' LIMIT 2`).all(`${escaped}%`) as RunRow[];
  const exact = rows.find((r) => r.id === idOrPrefix);
  if (exact !== undefined) return hydrate(db, [exact])[0]!;
  return rows.length === 1 ? hydrate(db, rows)[0]! : null;
}

/**
 * The baseline of a scenario: its newest stored 'baseline' runs on the same machine fingerprint
 * (and, when given, of the same workflow file), newest first. `--against` sides never count.
 */
export function baselineRuns(db: Db, o: { scenario: string; fingerprintHash: string; limit: number; workflow?: string }): BenchRunRecord[] {
  const rows = db
    .prepare(
      `SELECT ${COLUMNS} FROM bench_runs
       WHERE scenario = ? AND fingerprint_hash = ? AND mode = 'baseline' AND (? IS NULL OR workflow = ?)
       ORDER BY started_at DESC, rowid DESC LIMIT ?`,
    )
    .all(o.scenario, o.fingerprintHash, o.workflow ?? null, o.workflow ?? null, o.limit) as RunRow[];
  return hydrate(db, rows);
}

/** Stored runs, newest first. */
export function listBenchRuns(db: Db, o: { scenario?: string; workflow?: string; limit?: number } = {}): BenchRunRecord[] {
  const rows = db
    .prepare(
      `SELECT ${COLUMNS} FROM bench_runs
       WHERE (? IS NULL OR scenario = ?) AND (? IS NULL OR workflow = ?)
       ORDER BY started_at DESC, rowid DESC LIMIT ?`,
    )
    .all(o.scenario ?? null, o.scenario ?? null, o.workflow ?? null, o.workflow ?? null, o.limit ?? -1) as RunRow[];
  return hydrate(db, rows);
}
