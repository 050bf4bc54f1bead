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
  // 3: the persistent cache tier (cache/sqlite-tier.ts) and its cumulative counters.
  `
  CREATE TABLE cache_entries (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    size INTEGER NOT NULL,            -- bytes of value
    checksum INTEGER NOT NULL,        -- crc32 of value: a mismatch is a miss and the row goes
    created_at INTEGER NOT NULL,      -- unix ms
    expires_at INTEGER NOT NULL,      -- unix ms; 0 never
    accessed_at INTEGER NOT NULL,     -- unix ms; eviction takes the oldest first
    PRIMARY KEY (ns, key)
  );
  CREATE INDEX cache_entries_accessed ON cache_entries (accessed_at);
  CREATE INDEX cache_entries_expires ON cache_entries (expires_at) WHERE expires_at > 0;
  CREATE TABLE cache_stats (
    ns TEXT NOT NULL,
    tier TEXT NOT NULL,               -- sqlite, or 'cache' for the layered cache's own figures
    hits INTEGER NOT NULL DEFAULT 0,
    misses INTEGER NOT NULL DEFAULT 0,
    evictions INTEGER NOT NULL DEFAULT 0,
    expired INTEGER NOT NULL DEFAULT 0,
    corrupt INTEGER NOT NULL DEFAULT 0,
    computes INTEGER NOT NULL DEFAULT 0,
    compute_ms REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (ns, tier)
  );
  `,
  // 4: telemetry history (store/telemetry.ts): metric snapshots per run, the Markdown report, and
  // the figures `guild report` and the dashboard list runs by without parsing each report.
  `
  CREATE TABLE metric_snapshots (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    at_ms REAL NOT NULL,              -- the point's t: ms from the run's start
    data TEXT NOT NULL                -- one SeriesPoint as JSON (the shape evolves without migrations)
  );
  CREATE INDEX metric_snapshots_run ON metric_snapshots (run_id, at_ms);
  ALTER TABLE runs ADD COLUMN report_md TEXT;
  ALTER TABLE runs ADD COLUMN tasks INTEGER;              -- tasks in the run; null until its report is saved
  ALTER TABLE runs ADD COLUMN failed INTEGER;             -- tasks that failed
  ALTER TABLE runs ADD COLUMN cache_hit_rate REAL;        -- 0..1; null when no task was looked up
  ALTER TABLE runs ADD COLUMN kpi_overall TEXT;           -- excellent | good | poor | critical; null when not scored
  CREATE INDEX runs_workflow_started ON runs (workflow, started_at);
  -- Runs recorded before this version: the listing figures from their JSON reports.
  UPDATE runs SET
    tasks = json_array_length(report, '$.tasks'),
    failed = json_extract(report, '$.counts.failed'),
    cache_hit_rate = json_extract(report, '$.cache.hit_rate'),
    kpi_overall = json_extract(report, '$.kpis.overall.score')
  WHERE report IS NOT NULL AND json_valid(report);
  `,
  // 5: leases (store/lease.ts). A run records its owner (pid, start time: field 22 of
  // /proc/<pid>/stat, host) and each attempt where it runs (cgroup dirs, or its leader), so the
  // next start in the folder can tell a dead owner from a live one, end what it left, and mark
  // the run 'crashed' (a new status: running | succeeded | failed | interrupted | crashed). A run
  // still 'running' is the folder's run lock.
  `
  ALTER TABLE runs ADD COLUMN owner_pid INTEGER;
  ALTER TABLE runs ADD COLUMN owner_start_time INTEGER;   -- clock ticks since boot
  ALTER TABLE runs ADD COLUMN owner_host TEXT;
  ALTER TABLE runs ADD COLUMN note TEXT;                  -- crashed: who found it dead and what was ended
  CREATE INDEX runs_running ON runs (status) WHERE status = 'running';
  CREATE TABLE task_leases (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    cgroups TEXT NOT NULL,            -- JSON array of cgroup dirs, one per hierarchy; [] when none
    pid INTEGER,                      -- the attempt's leader; null for in-process functions
    start_time INTEGER,               -- the leader's field 22, so a reused pid is never taken for it
    PRIMARY KEY (run_id, task_id, attempt)
  );
  `,
  // 6: which way each task's peak was measured ('cgroup': its cgroup's usage − inactive_file;
  // 'tree-rss': the RSS summed over its process tree; 'remote'). The two differ (a tree counts
  // shared pages once per process), so learned profiles never mix them. Rows from before are
  // tree sums.
  `
  ALTER TABLE tasks ADD COLUMN memory_source TEXT;
  UPDATE tasks SET memory_source = 'tree-rss' WHERE peak_rss_bytes IS NOT NULL;
  `,
  // 7: the folder's lock held by something other than a run (`guild cache clear|prune`): one
  // row per holder, with its owner as runs record theirs. A start finds the lock free only when
  // neither a live `running` run nor a live row here holds it; rows of dead owners are deleted.
  `
  CREATE TABLE folder_locks (
    id TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,            -- what holds it, as users read it: 'cache clear', 'cache prune', …
    started_at INTEGER NOT NULL,      -- unix ms
    owner_pid INTEGER NOT NULL,
    owner_start_time INTEGER NOT NULL,
    owner_host TEXT NOT NULL
  );
  `,
  // 8: what each MCP server of the folder's gateway offers (store/mcp-catalog.ts): its tools,
  // resources, templates, prompts, capabilities and instructions as its newest instance said,
  // with the command that was learned, so `guild mcp status` can tell them without a gateway.
  `
  CREATE TABLE mcp_catalog (
    server TEXT PRIMARY KEY,
    command TEXT NOT NULL,            -- JSON [command, ...args] of the instance that said it
    learned_at INTEGER NOT NULL,      -- unix ms
    offer TEXT NOT NULL               -- JSON: tools, resources, resourceTemplates, prompts, capabilities, instructions
  );
  `,
  // 9: `guild bench` (store/bench.ts): one row per stored run of one scenario (one side of an
  // --against), its iterations with the machine meanwhile, and every metric of every iteration.
  // A baseline is the newest 'baseline' runs of one workflow's scenario on one fingerprint.
  `
  CREATE TABLE bench_runs (
    id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,           -- the workflow file, absolute
    scenario TEXT NOT NULL,
    started_at INTEGER NOT NULL,      -- unix ms
    commit_sha TEXT,                  -- null outside a git repository
    dirty INTEGER NOT NULL,           -- 1: the working tree had uncommitted changes
    guild_version TEXT NOT NULL,
    fingerprint TEXT NOT NULL,        -- JSON: node, cpuModel, cores, memoryLimitBytes
    fingerprint_hash TEXT NOT NULL,
    mode TEXT NOT NULL,               -- baseline | against
    side TEXT                         -- against: base | head
  );
  CREATE INDEX bench_runs_baseline ON bench_runs (workflow, scenario, fingerprint_hash, mode, started_at);
  CREATE INDEX bench_runs_started ON bench_runs (started_at);
  CREATE TABLE bench_iterations (
    run_id TEXT NOT NULL REFERENCES bench_runs (id) ON DELETE CASCADE,
    iteration INTEGER NOT NULL,
    disturbed INTEGER NOT NULL,
    machine TEXT NOT NULL,            -- JSON: load1, memAvailableBytes, outsideCpuCores, psi…, reasons
    PRIMARY KEY (run_id, iteration)
  );
  CREATE TABLE bench_samples (
    run_id TEXT NOT NULL REFERENCES bench_runs (id) ON DELETE CASCADE,
    iteration INTEGER NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (run_id, iteration, metric)
  );
  `,
  // 10: compressed cache entries (cache/compression.ts). `value` may now hold a frame (magic,
  // codec, original length, compressed bytes); `size` and `checksum` still describe the stored
  // bytes. The original length is kept beside them so `guild cache stats` can show stored against
  // original bytes without reading every value; rows from before are null: stored as they are,
  // their original is `size`.
  `
  ALTER TABLE cache_entries ADD COLUMN original_size INTEGER;  -- bytes of the value before compression; null: same as size
  `,
];
