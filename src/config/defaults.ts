/**
 * Every default in one place (the seed documents' numbers, see DESIGN.md). Nothing else in the
 * code base invents a default.
 */
export const DEFAULTS = {
  /** Share of the effective memory limit given to agents when no budget is set. */
  budgetShare: 0.75,
  /** Admission needs free budget >= headroom × expected memory. */
  headroom: 1.2,
  /** Admission keeps the sum of CPU shares <= cpuShare × cores. */
  cpuShare: 0.8,
  /** Per agent type when not declared: the seed's per-agent limit. */
  agentMemoryBytes: 100 * 1024 ** 2,
  agentCpu: 0.25,
  timeoutMs: 30_000,
  retries: 0,
  retryBackoffMs: 1000,
  retryBackoffMaxMs: 30_000,
  sampleIntervalMs: 200,
  killGraceMs: 3000,
  agingMs: 60_000,
  starvationLimitMs: 30_000,
  /** Pressure levels begin at these fractions (the seed's 70 / 80 / 90 / 95 / 98 %). */
  thresholds: { moderate: 0.7, high: 0.8, critical: 0.9, emergency: 0.95, ceiling: 0.98 },
  pressureMargin: 0.05,
  /** A level is left after the reading has stayed below it (minus the margin) this long; then it falls straight to the level the reading supports. */
  pressureHoldMs: 1000,
  /**
   * The governor's budget view reads a budget fully reserved by running tasks, each within its
   * reservation, as this fraction: clearly below moderate − margin, so memory admission paid for
   * is `optimal` and a level raised for another reason can still fall; memory above the
   * reservations adds to it byte for byte of the budget.
   */
  pressureBudgetAt: 0.6,
  /**
   * The governor's system view never judges unpaid memory against less than this share of the
   * effective limit (the share outside the default budget), even when reservations leave less.
   */
  pressureRoomFloor: 0.25,
  killCooldownMs: 2000,
  /** The seed's budget pools. */
  pools: { critical: 0.2, execution: 0.4, caching: 0.25, buffer: 0.15 },
  /** `node_heap: auto`: V8's old space gets this share of the agent's hard limit. */
  nodeHeapShare: 0.75,
  /**
   * The cache: L1 in Guild's memory (the seed's cache memory limit), L2 on disk, reuse threshold of
   * the routing cache; values from 4 KiB compressed with brotli quality 1, and the level each
   * codec gets when only the codec is chosen. Measured by bench/cache-compression.ts (Node 20,
   * figures in NOTES-compression.md): on real source and logs from 4 KiB to 5 MiB brotli-1
   * compresses at 101–339 MB/s, 1.3–1.7× gzip-1 and deflate-1 (77–205 MB/s), to within 0.02 of
   * their ratio (0.21–0.36; a little worse at 16 KiB, better from 256 KiB); brotli 2–4 save
   * another 0.01–0.07 for 1.5–4× the time. At 1 KiB every codec runs at 29–68 MB/s (the fixed cost
   * of a call dominates) to save ~550 bytes, less than one 4 KiB SQLite page; from 4 KiB a value
   * keeps 0.28–0.36 of its bytes. zstd is not in Node 20.
   */
  cache: {
    memoryBytes: 256 * 1024 ** 2,
    diskBytes: 1024 ** 3,
    routingSimilarity: 0.7,
    compression: { thresholdBytes: 4096, codec: 'brotli', level: 1 },
    compressionLevels: { brotli: 1, gzip: 1, deflate: 1, zstd: 1 },
  },
  /** Telemetry: snapshot interval, history retention, alert cooldown; the dashboard's address. */
  telemetry: {
    snapshotIntervalMs: 1000,
    keepSnapshots: 20,
    keepReports: 200,
    /** Snapshots kept per run before they are thinned evenly (2000 at 1 s cover 33 min; after that every other point, and so on). */
    maxSnapshotPoints: 2000,
    alertCooldownMs: 300_000,
    /** Webhook deliveries: per-attempt timeout, retries, first backoff (doubling). */
    webhook: { timeoutMs: 5000, retries: 3, backoffMs: 500 },
  },
  /**
   * The dashboard: address, SSE clients at once, heartbeat, unsent bytes before a client is
   * dropped, /api/runs limits, EventSource retry; and its bounds: connections at most
   * min(maxConnections, soft nofile ÷ fdShareDivisor) but always maxClients + nonSseConnections,
   * time to send headers, idle time of a non-SSE connection.
   */
  dashboard: {
    host: '127.0.0.1',
    port: 8090,
    maxClients: 256,
    heartbeatMs: 15_000,
    maxBufferedBytes: 1024 * 1024,
    runsLimit: 50,
    runsLimitMax: 500,
    retryMs: 2000,
    maxConnections: 1024,
    fdShareDivisor: 4,
    nonSseConnections: 32,
    headersTimeoutMs: 10_000,
    idleTimeoutMs: 30_000,
  },
  /**
   * The MCP gateway's backends (the seed's agent pool, for long-lived servers).
   * `memoryBytes`: one instance's expected RSS when a server declares no `memory`. The reference
   * servers (server-everything, server-memory, server-filesystem) measured 67–69 MB RSS each once
   * started (issue 12: 15 of them came to 991 MB); 100 MB leaves them about 45% to grow under
   * load (results held, caches warmed) and is the same estimate an undeclared agent gets, so an
   * admitted instance rarely outgrows its reservation. Heavier servers (Serena with its language
   * servers, Python servers with models) declare their own.
   * `instances`: per (server, project): started on first use, at most 5 (the seed's pool).
   * `scaleUpWaiting`: a new instance when more than this many calls wait on the busiest one.
   * `idleTimeoutMs`: an instance idle this long is stopped (down to `instances.min`).
   * `admissionWaitMs`: a call still waiting for memory after this fails with an MCP error naming the budget.
   * `toolTtlMs`: how long a cached tool result is served.
   * `drainTimeoutMs`: a recycled instance's calls in flight get this long to finish (the MCP SDK's default request timeout).
   */
  mcp: {
    /** `guild mcp serve`'s port (the dashboard's is 8090). */
    port: 8091,
    /** A client session with no request and no open stream for this long is closed. */
    sessionIdleMs: 30 * 60_000,
    memoryBytes: 100 * 1024 ** 2,
    instances: { min: 1, max: 5 },
    scaleUpWaiting: 3,
    idleTimeoutMs: 60_000,
    admissionWaitMs: 30_000,
    toolTtlMs: 300_000,
    isolation: 'per-project',
    drainTimeoutMs: 60_000,
  },
  /**
   * `guild bench` (seed 1's PerformanceRegressionDetector): the baseline is the last 10 comparable
   * runs, at least 5; thresholds per metric kind are the seed's (memory +15 %, response time +25 %,
   * throughput −20 %); rates are compared in percentage points (+1 point: a 0 % baseline has no
   * relative change); counts (tokens, money) like memory, ratios like time. 5 measured runs after
   * one warm-up fit a quick check; Mann–Whitney U needs no normality (timings are skewed).
   */
  bench: {
    repeat: 5,
    warmup: 1,
    baselineRuns: 10,
    minBaseline: 5,
    alpha: 0.05,
    test: 'mann-whitney',
    thresholds: { time: 0.25, memory: 0.15, throughput: 0.2, rate: 1, count: 0.15, ratio: 0.25 },
    metrics: ['makespan_ms', 'makespan_ratio', 'peak_rss_bytes', 'guild_rss_bytes', 'error_rate', 'throughput_tasks_per_s', 'tokens', 'cost_usd'],
  },
  /** The seed's response-time targets per component kind (ms). */
  kindTargetsMs: { 'code-analysis': 200, knowledge: 300, coordination: 500, 'file-ops': 100 },
  /**
   * The least evidence a KPI is graded on: `samples` (what one is, per KPI, in telemetry/kpi.ts
   * `KPI_MINIMUMS`) and `seconds` of run they cover (0: any). Below either, a KPI shows its value,
   * reads "not scored: too little data" and recommends nothing. Why these numbers: a mean of fewer
   * than 5 task durations is mostly the first task's cold start; 10 outcomes or lookups is the
   * fewest where one of them moves the rate by no more than a grade (the low-cache-hit-rate alert
   * waits for 10 lookups too); CPU is a rate, and one node process's start-up (~50 ms of CPU) is
   * 1 % of one core only over 5 s; a speed-up needs 4 tasks to show parallelism and 2 s of makespan
   * for the run's fixed costs (planning, the first spawn) to stay under 5 %; 10 memory samples at
   * the 200 ms interval cover 2 s. `memory_declaration` is advice, not a KPI: "declare less" needs
   * 5 tasks whose peak was measured ("declare more" needs one task over its declaration).
   */
  kpiMinimums: {
    response_time: { samples: 5, seconds: 0 },
    memory_efficiency: { samples: 10, seconds: 2 },
    throughput: { samples: 4, seconds: 2 },
    cpu: { samples: 10, seconds: 5 },
    error_rate: { samples: 10, seconds: 0 },
    cache_hit_rate: { samples: 10, seconds: 0 },
    token_efficiency: { samples: 5, seconds: 0 },
    memory_declaration: { samples: 5, seconds: 0 },
  },
} as const;
