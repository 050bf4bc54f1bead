import { DEFAULTS } from '../config/defaults.js';
import { GuildError } from '../errors.js';
import type { ReportDocument } from '../telemetry/report-markdown.js';
import type { RunSummary, Score, SeriesPoint } from '../telemetry/state.js';
import type { Db } from './db.js';


export interface TelemetryHistoryOptions {
  /**
   * Metric snapshots kept per run. When a run reaches it, every other stored point is deleted and
   * from then on only every other offered point is stored (the stride doubles each time), so a run
   * of any length keeps between half and all of this many points, evenly spread over the whole
   * run. At least 2.
   * @default 2000
   */
  maxPointsPerRun?: number;
}

export interface PruneOptions {
  /** Runs, newest first by start, whose metric snapshots are kept. @default DEFAULTS.telemetry.keepSnapshots (20) */
  snapshotRuns?: number;
  /**
   * Runs, newest first by start, whose JSON and Markdown reports are kept. Older runs keep their
   * `runs` row with its listing figures and their `tasks` rows (learned memory profiles read them).
   * @default DEFAULTS.telemetry.keepReports (200)
   */
  reportRuns?: number;
}

/** What `prune` removed. */
export interface PruneResult {
  /** Metric snapshot rows deleted. */
  snapshots: number;
  /** Runs whose report JSON and Markdown were cleared. */
  reports: number;
}

/** A prefix given to `resolveRunId` matches more than one run. Code `AMBIGUOUS`: the user must type more. */
export class AmbiguousRunIdError extends GuildError {
  /** What the user gave. */
  readonly ref: string;
  /** Some of the matching run ids (at most 5), in id order. */
  readonly matches: readonly string[];
  constructor(ref: string, matches: readonly string[], more: boolean) {
    super('AMBIGUOUS', `run id prefix '${ref}' matches ${more ? 'more than ' : ''}${matches.length} runs: ${matches.join(', ')}${more ? ', …' : ''}; give more of the id`);
    this.ref = ref;
    this.matches = matches;
  }
}

/** Where the bound of one run's series stands. */
interface SeriesState {
  /** Points offered so far (stored or not). */
  offered: number;
  /** Points stored now. */
  stored: number;
  /** Only every `stride`-th offered point is stored. */
  stride: number;
}

/** Shown when a prefix matches too many runs to list. */
const SHOWN_MATCHES = 5;

/**
 * The telemetry history in the embedded store: metric snapshots taken during a run, the report of
 * each run (JSON and Markdown) with the figures runs are listed by, and bounded retention of both.
 * Shares the store's connection with `RunHistory`; runs are created and finished there.
 */
export class TelemetryHistory {
  readonly #db: Db;
  readonly #maxPoints: number;
  readonly #series = new Map<string, SeriesState>();
  readonly #insertPoint;
  readonly #countPoints;
  readonly #thinPoints;
  readonly #selectPoints;
  readonly #updateReport;

  constructor(db: Db, options: TelemetryHistoryOptions = {}) {
    this.#db = db;
    this.#maxPoints = wholeNumber('maxPointsPerRun', options.maxPointsPerRun ?? DEFAULTS.telemetry.maxSnapshotPoints, 2);
    this.#insertPoint = db.prepare(`INSERT INTO metric_snapshots (run_id, at_ms, data) VALUES (?, ?, ?)`);
    this.#countPoints = db.prepare(`SELECT COUNT(*) FROM metric_snapshots WHERE run_id = ?`).pluck();
    // Keeps the 1st, 3rd, 5th… point in time order: on an even grid of offered points, the kept
    // ones are again an even grid at twice the stride.
    this.#thinPoints = db.prepare(
      `DELETE FROM metric_snapshots WHERE rowid IN (
         SELECT rowid FROM (SELECT rowid, ROW_NUMBER() OVER (ORDER BY at_ms, rowid) AS n FROM metric_snapshots WHERE run_id = ?)
         WHERE n % 2 = 0)`,
    );
    this.#selectPoints = db.prepare(`SELECT data FROM metric_snapshots WHERE run_id = ? ORDER BY at_ms, rowid`).pluck();
    this.#updateReport = db.prepare(
      `UPDATE runs SET report = @report, report_md = @report_md, tasks = @tasks, failed = @failed, cache_hit_rate = @cache_hit_rate,
       kpi_overall = @kpi_overall WHERE id = @id`,
    );
  }

  /**
   * Stores one point of a run's series, within the per-run bound (see `maxPointsPerRun`). Called
   * every few seconds during a run: one prepared INSERT; the thinning DELETE runs once each time
   * the stored points reach the bound (log2 of the run's length times in all). The run must be in
   * the store (`RunHistory.startRun`): a foreign key ties its points to it.
   * @returns whether the point was stored (false: thinned out).
   */
  addSnapshot(runId: string, point: SeriesPoint): boolean {
    let s = this.#series.get(runId);
    if (s === undefined) {
      // A run this object has not seen (e.g. a second handle on a live run): start from what is stored.
      const stored = this.#countPoints.get(runId) as number;
      s = { offered: stored, stored, stride: 1 };
      this.#series.set(runId, s);
    }
    const i = s.offered++;
    if (i % s.stride !== 0) return false;
    while (s.stored >= this.#maxPoints) {
      s.stored -= this.#thinPoints.run(runId).changes;
      s.stride *= 2;
    }
    if (i % s.stride !== 0) return false;
    this.#insertPoint.run(runId, point.t, JSON.stringify(point));
    s.stored++;
    return true;
  }

  /** A run's stored points, oldest first; empty when none (or pruned). */
  snapshots(runId: string): SeriesPoint[] {
    return (this.#selectPoints.all(runId) as string[]).map((d) => JSON.parse(d) as SeriesPoint);
  }

  /**
   * Stores a finished run's report: the whole JSON (KPIs included), its Markdown rendering, and
   * the figures runs are listed by. Call after `RunHistory.finishRun` (this replaces the JSON it wrote).
   * @throws GuildError `STORE` when the store has no such run.
   */
  saveReport(runId: string, report: ReportDocument, markdown: string): void {
    const changes = this.#updateReport.run({
      id: runId,
      report: JSON.stringify(report),
      report_md: markdown,
      tasks: report.tasks.length,
      failed: report.counts.failed,
      cache_hit_rate: report.cache.hit_rate,
      kpi_overall: report.kpis?.overall.score ?? null,
    }).changes;
    if (changes === 0) throw new GuildError('STORE', `cannot save the report of run ${runId}: the store has no such run`);
  }

  /**
   * Past runs, newest first by start (at most `limit`), of one workflow file when given. The
   * listing figures (tasks, failed, cache hit rate, KPI grade) are null until a run's report is
   * saved; they outlive the report when `prune` clears it.
   */
  runs(limit = 50, workflow?: string): RunSummary[] {
    const n = wholeNumber('limit', limit, 0);
    const rows = this.#db
      .prepare(
        `SELECT id, workflow, name, status, started_at, ended_at, makespan_ms, peak_rss_bytes, tasks, failed, cache_hit_rate, kpi_overall,
                json_extract(report, '$.metrics.tokens_in') + 0 AS tin, json_extract(report, '$.metrics.tokens_out') + 0 AS tout,
                json_extract(report, '$.metrics.cost_usd') AS cost_usd
         FROM runs ${workflow === undefined ? '' : 'WHERE workflow = @workflow'} ORDER BY started_at DESC, rowid DESC LIMIT @n`,
      )
      .all(workflow === undefined ? { n } : { n, workflow }) as (Omit<RunSummary, 'kpi_overall' | 'tokens'> & { kpi_overall: string | null; tin: number | null; tout: number | null })[];
    return rows.map(({ tin, tout, ...r }) => ({ ...r, kpi_overall: r.kpi_overall as Score | null, tokens: tin === null && tout === null ? null : (tin ?? 0) + (tout ?? 0) }));
  }

  /**
   * The run a user means: `last` (the newest finished run by start, i.e. the first row of `runs()`
   * that is neither still running nor crashed (a crashed run has no report); of `workflow` when given), a whole run id, or a prefix of exactly
   * one. Ids and prefixes are looked up over the whole store: an id names one run whatever the
   * workflow. `last` wins over a run id that happens to begin with "last".
   * @returns the run id, or null when nothing matches.
   * @throws AmbiguousRunIdError when a prefix matches several runs.
   * @throws GuildError `INVALID_OPTION` when `ref` is empty.
   */
  resolveRunId(ref: string, workflow?: string): string | null {
    const r = ref.trim();
    if (r === '') throw new GuildError('INVALID_OPTION', `Expected a run id, a prefix of one, or 'last', got '${ref}'`);
    if (r === 'last') {
      const id = this.#db
        .prepare(
          `SELECT id FROM runs WHERE status NOT IN ('running', 'crashed') ${workflow === undefined ? '' : 'AND workflow = @workflow'}
           ORDER BY started_at DESC, rowid DESC LIMIT 1`,
        )
        .pluck()
        .get(workflow === undefined ? {} : { workflow }) as string | undefined;
      return id ?? null;
    }
    if (this.#db.prepare(`SELECT 1 FROM runs WHERE id = ?`).get(r) !== undefined) return r;
    // The range lets the primary key's index find the prefix: every id that starts with `r` lies
    // in [r, r with its last character incremented).
    const chars = Array.from(r);
    const last = chars.pop()!.codePointAt(0)!;
    const hi = chars.join('') + String.fromCodePoint(Math.min(last + 1, 0x10ffff));
    const matches = this.#db
      .prepare(`SELECT id FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT ?`)
      .pluck()
      .all(r, hi, SHOWN_MATCHES + 1) as string[];
    if (matches.length === 0) return null;
    if (matches.length === 1) return matches[0]!;
    throw new AmbiguousRunIdError(r, matches.slice(0, SHOWN_MATCHES), matches.length > SHOWN_MATCHES);
  }

  /**
   * A run's report as stored: the JSON, its Markdown, and the run's name and start (what the
   * Markdown is rendered with). The store renders nothing: `markdown` is null for runs stored
   * before the Markdown existed (schema version 3 and earlier), and telemetry renders those from
   * the JSON (`storedReport` in telemetry/reports.ts).
   * @returns null when the run is unknown, still running, or its report was pruned.
   * @throws GuildError `STORE` when the stored JSON is unreadable.
   */
  report(runId: string): { json: ReportDocument; markdown: string | null; name: string; startedAt: number } | null {
    const row = this.#db.prepare(`SELECT name, started_at, report, report_md FROM runs WHERE id = ?`).get(runId) as
      | { name: string; started_at: number; report: string | null; report_md: string | null }
      | undefined;
    if (row === undefined || row.report === null) return null;
    let json: ReportDocument;
    try {
      json = JSON.parse(row.report) as ReportDocument;
    } catch (cause) {
      throw new GuildError('STORE', `the stored report of run ${runId} is not valid JSON: ${(cause as Error).message}`, { cause });
    }
    return { json, markdown: row.report_md, name: row.name, startedAt: row.started_at };
  }

  /**
   * Bounded retention: metric snapshots of the newest `snapshotRuns` runs and reports of the newest
   * `reportRuns` runs survive; "newest" by start over the whole store, finished or not. `runs` and
   * `tasks` rows are never deleted. One transaction.
   */
  prune(options: PruneOptions = {}): PruneResult {
    const snapshotRuns = wholeNumber('snapshotRuns', options.snapshotRuns ?? DEFAULTS.telemetry.keepSnapshots, 0);
    const reportRuns = wholeNumber('reportRuns', options.reportRuns ?? DEFAULTS.telemetry.keepReports, 0);
    const newest = `SELECT id FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?`;
    const result = this.#db.transaction((): PruneResult => {
      const snapshots = this.#db.prepare(`DELETE FROM metric_snapshots WHERE run_id NOT IN (${newest})`).run(snapshotRuns).changes;
      const reports = this.#db
        .prepare(`UPDATE runs SET report = NULL, report_md = NULL WHERE (report IS NOT NULL OR report_md IS NOT NULL) AND id NOT IN (${newest})`)
        .run(reportRuns).changes;
      return { snapshots, reports };
    })();
    if (result.snapshots > 0) {
      // Forget the bound state of runs whose points went, so a later addSnapshot recounts them.
      const kept = new Set(this.#db.prepare(newest).pluck().all(snapshotRuns) as string[]);
      for (const id of this.#series.keys()) if (!kept.has(id)) this.#series.delete(id);
    }
    return result;
  }
}

/** Validates a count at the boundary. */
function wholeNumber(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) {
    throw new GuildError('INVALID_OPTION', `Expected ${name} to be a whole number >= ${min}, got ${String(value)}`);
  }
  return value;
}
