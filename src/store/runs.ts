import type { Db } from './db.js';

/** A run as the history keeps it. */
export interface RunRow {
  id: string;
  workflow: string;
  name: string;
  status: string;
  started_at: number;
  ended_at: number | null;
  makespan_ms: number | null;
  lower_bound_ms: number | null;
  budget_bytes: number;
  peak_rss_bytes: number | null;
}

/** A task of a run as the history keeps it. */
export interface TaskRow {
  run_id: string;
  id: string;
  agent: string;
  status: string;
  exit_code: number | null;
  signal: string | null;
  started_ms: number | null;
  ended_ms: number | null;
  duration_ms: number | null;
  peak_rss_bytes: number | null;
  /** How the peak was measured: 'cgroup', 'tree-rss' or 'remote'; null without a measurement. */
  memory_source: string | null;
  attempts: number;
  error: string | null;
}

/** Run history: one row per run, one per task, written as results arrive so none is lost. */
export class RunHistory {
  readonly #insertRun;
  readonly #finishRun;
  readonly #upsertTask;
  readonly #db: Db;

  /** The open store (the cache's SQLite tier shares it). */
  get db(): Db {
    return this.#db;
  }

  constructor(db: Db) {
    this.#db = db;
    this.#insertRun = db.prepare(
      `INSERT INTO runs (id, workflow, name, status, started_at, budget_bytes) VALUES (@id, @workflow, @name, 'running', @started_at, @budget_bytes)`,
    );
    this.#finishRun = db.prepare(
      `UPDATE runs SET status = @status, ended_at = @ended_at, makespan_ms = @makespan_ms, lower_bound_ms = @lower_bound_ms,
       peak_rss_bytes = @peak_rss_bytes, report = @report WHERE id = @id`,
    );
    this.#upsertTask = db.prepare(
      `INSERT INTO tasks (run_id, id, agent, status, exit_code, signal, started_ms, ended_ms, duration_ms, peak_rss_bytes, memory_source, attempts, error)
       VALUES (@run_id, @id, @agent, @status, @exit_code, @signal, @started_ms, @ended_ms, @duration_ms, @peak_rss_bytes, @memory_source, @attempts, @error)
       ON CONFLICT (run_id, id) DO UPDATE SET status = excluded.status, exit_code = excluded.exit_code, signal = excluded.signal,
         started_ms = excluded.started_ms, ended_ms = excluded.ended_ms, duration_ms = excluded.duration_ms,
         peak_rss_bytes = excluded.peak_rss_bytes, memory_source = excluded.memory_source, attempts = excluded.attempts, error = excluded.error`,
    );
  }

  saveQueueState(runId: string, atMs: number, reason: string, state: string): void {
    this.#db.prepare(`INSERT INTO queue_snapshots (run_id, at_ms, reason, state) VALUES (?, ?, ?, ?)`).run(runId, atMs, reason, state);
  }

  startRun(run: { id: string; workflow: string; name: string; started_at: number; budget_bytes: number }): void {
    this.#insertRun.run(run);
  }

  recordTask(task: TaskRow): void {
    this.#upsertTask.run(task);
  }

  /** Records many tasks in one transaction (one fsync instead of many). */
  recordTasks(tasks: readonly TaskRow[]): void {
    this.#db.transaction((rows: readonly TaskRow[]) => {
      for (const t of rows) this.#upsertTask.run(t);
    })(tasks);
  }

  finishRun(run: {
    id: string;
    status: string;
    ended_at: number;
    makespan_ms: number;
    lower_bound_ms: number;
    peak_rss_bytes: number | null;
    report: string;
  }): void {
    this.#finishRun.run(run);
  }

  /** The newest runs first. */
  listRuns(limit = 20): RunRow[] {
    return this.#db
      .prepare(
        `SELECT id, workflow, name, status, started_at, ended_at, makespan_ms, lower_bound_ms, budget_bytes, peak_rss_bytes FROM runs ORDER BY started_at DESC LIMIT ?`,
      )
      .all(limit) as RunRow[];
  }

  getRun(id: string): (RunRow & { report: string | null }) | undefined {
    return this.#db.prepare(`SELECT * FROM runs WHERE id = ?`).get(id) as (RunRow & { report: string | null }) | undefined;
  }

  tasksOf(runId: string): TaskRow[] {
    return this.#db.prepare(`SELECT * FROM tasks WHERE run_id = ? ORDER BY started_ms`).all(runId) as TaskRow[];
  }
}
