/**
 * Versioned schema migrations. Each entry moves the database from version i to i + 1 and runs in
 * one transaction; `PRAGMA user_version` records where a database stands. Never edit a migration
 * that has shipped: add a new one.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: run history.
  `
  CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,             -- running | succeeded | failed | interrupted
    started_at INTEGER NOT NULL,      -- unix ms
    ended_at INTEGER,
    makespan_ms REAL,
    lower_bound_ms REAL,
    budget_bytes INTEGER NOT NULL,
    peak_rss_bytes INTEGER,
    report TEXT                       -- the whole --json document
  );
  CREATE INDEX runs_started ON runs (started_at);
  CREATE TABLE tasks (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    agent TEXT NOT NULL,
    status TEXT NOT NULL,
    exit_code INTEGER,
    signal TEXT,
    started_ms REAL,
    ended_ms REAL,
    duration_ms REAL,
    peak_rss_bytes INTEGER,
    attempts INTEGER NOT NULL,
    error TEXT,
    PRIMARY KEY (run_id, id)
  );
  CREATE INDEX tasks_agent ON tasks (agent, status);
  `,
  // 2: the queue as it stood when the governor killed an agent (read after an emergency).
  `
  CREATE TABLE queue_snapshots (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    at_ms REAL NOT NULL,
    reason TEXT NOT NULL,
    state TEXT NOT NULL
  );
  CREATE INDEX queue_snapshots_run ON queue_snapshots (run_id, at_ms);
  `,
];
