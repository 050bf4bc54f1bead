import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { GuildError } from '../src/errors.js';
import { openDatabase, type Db } from '../src/store/db.js';
import { MIGRATIONS } from '../src/store/migrations.js';
import { RunHistory, type TaskRow } from '../src/store/runs.js';
import { AmbiguousRunIdError, TelemetryHistory } from '../src/store/telemetry.js';
import { renderReportMarkdown, type ReportDocument } from '../src/telemetry/report-markdown.js';
import { storedReport } from '../src/telemetry/reports.js';
import type { KpiReport, SeriesPoint } from '../src/telemetry/state.js';
import type { TaskReport } from '../src/workflow/report.js';
import { MB, tempDir } from './helpers.js';

const open: Db[] = [];
after(() => {
  for (const db of open) if (db.open) db.close();
});

/** A fresh store in its own temp folder, as a workflow folder would have it. */
function store(): { db: Db; runs: RunHistory; history: TelemetryHistory; file: string } {
  const file = join(tempDir('guild-history-'), '.guild', 'guild.db');
  const db = openDatabase(file);
  open.push(db);
  return { db, runs: new RunHistory(db), history: new TelemetryHistory(db), file };
}

const T0 = Date.UTC(2025, 2, 1, 12, 0, 0);

/** Run ids as newRunId makes them: the start in UTC, then 4 hex digits. */
function runId(minute: number, suffix = 'a1b2'): string {
  return `20250301-12${String(minute).padStart(2, '0')}00-${suffix}`;
}

function task(over: Partial<TaskReport> & { id: string }): TaskReport {
  return {
    agent: 'analyzer',
    priority: 'medium',
    status: 'succeeded',
    exit_code: 0,
    signal: null,
    started_ms: 10,
    ended_ms: 1410,
    duration_ms: 1400,
    peak_rss_bytes: 610 * MB,
    attempts: 1,
    error: null,
    log_file: null,
    memory_estimate_bytes: 700 * MB,
    paused_ms: 0,
    kills: [],
    cache: { status: 'miss', reason: null, fingerprint: 'f'.repeat(64), saved_ms: 0, serve_ms: null },
    metrics: {},
    metrics_malformed: 0,
    ...over,
  };
}

const KPIS: KpiReport = {
  overall: { score: 'good', points: 71.7 },
  scores: [
    {
      kpi: 'response_time',
      subject: 'analyzer',
      label: 'response time · analyzer',
      value: 1400,
      unit: 'ms',
      score: 'excellent',
      thresholds: { good: 2000, acceptable: 4000, poor: 8000, higher_is_better: false },
      samples: 2,
      note: null,
    },
    {
      kpi: 'memory_efficiency',
      subject: null,
      label: 'memory efficiency',
      value: 0.42,
      unit: 'ratio',
      score: 'poor',
      thresholds: { good: 0.8, acceptable: 0.6, poor: 0.4, higher_is_better: true },
      samples: 12,
      note: 'peak | budget',
    },
    {
      kpi: 'cache_hit_rate',
      subject: null,
      label: 'cache hit rate',
      value: null,
      unit: 'ratio',
      score: null,
      thresholds: { good: 0.8, acceptable: 0.5, poor: 0.2, higher_is_better: true },
      samples: 0,
      note: 'cold cache',
    },
  ],
  recommendations: ['Lower the declared memory of analyzer to 700 MB: it peaked at 610 MB.', 'Declare inputs for lint so it can be cached.'],
};

/** A realistic RunReport with every field filled: three tasks (succeeded, cached, failed). */
function fixtureReport(id: string, over: Partial<ReportDocument> = {}): ReportDocument {
  const tasks = [
    task({ id: 'analyze' }),
    task({ id: 'docs', agent: 'writer', status: 'cached', duration_ms: 40, peak_rss_bytes: null, attempts: 0, cache: { status: 'hit', reason: null, fingerprint: 'a'.repeat(64), saved_ms: 5200, serve_ms: 40 } }),
    task({
      id: 'lint|strict',
      agent: 'linter',
      status: 'failed',
      exit_code: 1,
      duration_ms: 850,
      peak_rss_bytes: 90 * MB,
      attempts: 2,
      error: 'exit 1\nsrc/a.ts: unused | variable',
      kills: [{ reason: 'pressure', level: 'emergency', attempt: 1, at_ms: 900, rss_bytes: 95 * MB, message: 'killed under pressure' }],
      cache: { status: 'off', reason: 'no inputs declared', fingerprint: null, saved_ms: 0, serve_ms: null },
    }),
  ];
  return {
    ok: false,
    run_id: id,
    workflow: '/work/project/guild.yaml',
    interrupted: false,
    makespan_ms: 3200,
    lower_bound_ms: 2600,
    lower_bound: { chain_ms: 2600, memory_ms: 1900, cpu_ms: 700 },
    budget_bytes: 1536 * MB,
    budget_source: 'workflow',
    effective_limit_bytes: 8192 * MB,
    memory_source: 'cgroup-v2',
    peak_rss_bytes: 700 * MB,
    guild_peak_rss_bytes: 80 * MB,
    guild_health: {
      rss_peak_bytes: 80 * MB,
      event_loop_delay_p50_ms: 10.2,
      event_loop_delay_p99_ms: 14.8,
      event_loop_delay_max_ms: 21,
      gc_count: 4,
      gc_pause_total_ms: 3.5,
      gc_pause_max_ms: 1.2,
    },
    cores: 8,
    cpu_cap: 6.4,
    max_parallel: null,
    sample_interval_ms: 200,
    samples: 16,
    failed_samples: 0,
    admissions: { admitted: 3, backfilled: 1, denied: { memory: 2, cpu: 0 } },
    pools: {
      critical: { share: 0.2, bytes: 307 * MB },
      execution: { share: 0.4, bytes: 614 * MB },
      caching: { share: 0.25, bytes: 384 * MB },
      buffer: { share: 0.15, bytes: 230 * MB },
      non_critical_limit_bytes: 1306 * MB,
      peak_reserved_bytes: { critical: 0, other: 790 * MB },
    },
    counts: { succeeded: 1, cached: 1, failed: 1, skipped: 0, cancelled: 0 },
    pressure: { highest: 'emergency', time_ms: { optimal: 2000, moderate: 600, high: 300, critical: 200, emergency: 100 } },
    guild_kills: 1,
    oom_kills: 0,
    profiles: { analyzer: { declared_bytes: 700 * MB, learned_p90_bytes: null, samples: 0, estimate_bytes: 700 * MB, source: 'declared' } },
    responses: [
      { at_ms: 500, type: 'level', from: 'optimal', to: 'moderate', fraction: 0.72 },
      { at_ms: 500, type: 'cap', cap: 4 },
      { at_ms: 800, type: 'pause', id: 'analyze' },
      { at_ms: 900, type: 'kill', id: 'lint|strict', level: 'emergency', rssBytes: 95 * MB },
      { at_ms: 1000, type: 'resume', id: 'analyze' },
    ],
    cache: { enabled: true, disabled_by: null, hits: 1, misses: 1, hit_rate: 0.5, saved_ms: 5200, not_cacheable: 1, tiers: ['memory', 'sqlite'], context: null },
    metrics: {},
    spend: { totals: {}, by_agent: {}, malformed_lines: 0, limits: { cost_usd: null, tokens: null, exceeded: null } },
    saved: { time_ms: 5200, tokens: 0, cost_usd: 0 },
    alerts: [
      { at_ms: 900, severity: 'critical', message: 'memory at 96% of the limit', rule: 'memory-pressure', repeats: 2 },
      { at_ms: 1200, severity: 'warning', message: 'lint failed', rule: 'agent-failure' },
    ],
    warnings: ['budget 1.50 GB leaves little room'],
    log_dir: null,
    tasks,
    kpis: KPIS,
    ...over,
  };
}

/** A run as the run loop records it: started, its tasks, finished with its JSON report. */
function recordRun(runs: RunHistory, id: string, opts: { startedAt: number; workflow?: string; status?: string; report?: ReportDocument | null }): ReportDocument {
  const report = opts.report === undefined ? fixtureReport(id) : opts.report;
  const workflow = opts.workflow ?? '/work/project/guild.yaml';
  runs.startRun({ id, workflow, name: 'project', started_at: opts.startedAt, budget_bytes: 1536 * MB });
  const rows: TaskRow[] = (report?.tasks ?? [task({ id: 'analyze' })]).map((t) => ({
    run_id: id,
    id: t.id,
    agent: t.agent,
    status: t.status,
    exit_code: t.exit_code,
    signal: t.signal,
    started_ms: t.started_ms,
    ended_ms: t.ended_ms,
    duration_ms: t.duration_ms,
    peak_rss_bytes: t.peak_rss_bytes,
    memory_source: t.peak_rss_bytes === null ? null : 'tree-rss',
    attempts: t.attempts,
    error: t.error,
  }));
  runs.recordTasks(rows);
  if (opts.status !== 'running') {
    runs.finishRun({
      id,
      status: opts.status ?? 'failed',
      ended_at: opts.startedAt + 3200,
      makespan_ms: 3200,
      lower_bound_ms: 2600,
      peak_rss_bytes: 700 * MB,
      report: report === null ? 'null' : JSON.stringify(report),
    });
  }
  return report ?? fixtureReport(id);
}

function point(t: number, over: Partial<SeriesPoint> = {}): SeriesPoint {
  return {
    t,
    used_bytes: 4096 * MB + t,
    limit_bytes: 8192 * MB,
    agents_rss_bytes: 600 * MB,
    reserved_bytes: 700 * MB,
    budget_bytes: 1536 * MB,
    level: 'optimal',
    running: 2,
    queued: 1,
    paused: 0,
    done: 3,
    cpu: 0.4,
    guild_rss_bytes: 70 * MB,
    cache_hit_rate: null,
    ...over,
  };
}

describe('history: schema migration', () => {
  it('a store at version 3 moves to version 4 and keeps its runs; their reports render from the JSON', () => {
    const file = join(tempDir('guild-history-'), 'guild.db');
    const old = new Database(file);
    for (const sql of MIGRATIONS.slice(0, 3)) old.exec(sql);
    old.pragma('user_version = 3');
    // A report as an early Guild wrote it: no cache, pools, health or KPIs.
    const { cache: _c, pools: _p, guild_health: _h, kpis: _k, ...early } = fixtureReport(runId(1));
    old.prepare(
      `INSERT INTO runs (id, workflow, name, status, started_at, ended_at, makespan_ms, lower_bound_ms, budget_bytes, peak_rss_bytes, report)
       VALUES (?, '/work/project/guild.yaml', 'project', 'failed', ?, ?, 3200, 2600, ?, ?, ?)`,
    ).run(runId(1), T0, T0 + 3200, 1536 * MB, 700 * MB, JSON.stringify(early));
    old.prepare(`INSERT INTO tasks (run_id, id, agent, status, attempts) VALUES (?, 'analyze', 'analyzer', 'succeeded', 1)`).run(runId(1));
    old.close();

    const db = openDatabase(file);
    open.push(db);
    assert.equal(db.pragma('user_version', { simple: true }), MIGRATIONS.length);
    const history = new TelemetryHistory(db);
    const [row] = history.runs();
    assert.deepEqual(
      { id: row!.id, tasks: row!.tasks, failed: row!.failed, cache_hit_rate: row!.cache_hit_rate, kpi_overall: row!.kpi_overall },
      { id: runId(1), tasks: 3, failed: 1, cache_hit_rate: null, kpi_overall: null },
      'the listing figures are filled from the stored JSON',
    );
    assert.equal(new RunHistory(db).tasksOf(runId(1)).length, 1);
    assert.equal(history.report(runId(1))?.markdown, null, 'the store renders nothing: it has no Markdown for this run');
    const got = storedReport(history, runId(1));
    assert.ok(got);
    assert.equal(got.json.run_id, runId(1));
    assert.equal(got.json.kpis, undefined);
    assert.match(got.markdown, /^# project: run `20250301-120100-a1b2`/);
    assert.match(got.markdown, /\| analyze \| analyzer \| succeeded \| 1\.4 s \| 610 MB \| 1 \| miss \|/);
    assert.match(got.markdown, /_No KPIs for this run\._/);
    assert.match(got.markdown, /## Cache\n\n_Not recorded for this run\._/);
    assert.match(got.markdown, /- \*\*Started:\*\* 2025-03-01 12:00:00 UTC/);
  });

  it('a snapshot goes with its run', () => {
    const { db, runs, history } = store();
    recordRun(runs, runId(1), { startedAt: T0 });
    history.addSnapshot(runId(1), point(0));
    db.prepare(`DELETE FROM runs WHERE id = ?`).run(runId(1));
    assert.deepEqual(history.snapshots(runId(1)), []);
  });
});

describe('history: metric snapshots', () => {
  it('are read back whole and in time order, per run', () => {
    const { runs, history } = store();
    recordRun(runs, runId(1), { startedAt: T0, status: 'running' });
    recordRun(runs, runId(2), { startedAt: T0 + 60_000, status: 'running' });
    const points = [0, 5000, 10_000, 15_000].map((t, i) => point(t, { level: i === 2 ? 'high' : 'optimal', cpu: i === 1 ? null : 0.5, cache_hit_rate: i / 4 }));
    for (const p of points) assert.equal(history.addSnapshot(runId(1), p), true);
    history.addSnapshot(runId(2), point(0));
    assert.deepEqual(history.snapshots(runId(1)), points);
    assert.equal(history.snapshots(runId(2)).length, 1);
    assert.deepEqual(history.snapshots('nope'), []);
  });

  it('stay within maxPointsPerRun by thinning evenly over the whole run', () => {
    const { db, runs } = store();
    const history = new TelemetryHistory(db, { maxPointsPerRun: 10 });
    recordRun(runs, runId(1), { startedAt: T0, status: 'running' });
    let stored = 0;
    for (let i = 0; i < 100; i++) if (history.addSnapshot(runId(1), point(i * 1000))) stored++;
    const ts = history.snapshots(runId(1)).map((p) => p.t);
    assert.ok(ts.length <= 10 && ts.length >= 5, `${ts.length} points kept`);
    assert.ok(stored > ts.length, 'points were thinned after being stored');
    assert.equal(ts[0], 0, 'the start of the run stays');
    const gaps = new Set(ts.slice(1).map((t, i) => t - ts[i]!));
    assert.equal(gaps.size, 1, `evenly spaced: ${ts.join(', ')}`);
    assert.ok(ts.at(-1)! >= 99_000 - [...gaps][0]!, 'the end of the run is covered');

    // A second handle on the same run starts from what is stored and keeps the bound.
    const again = new TelemetryHistory(db, { maxPointsPerRun: 10 });
    for (let i = 100; i < 130; i++) again.addSnapshot(runId(1), point(i * 1000));
    assert.ok(history.snapshots(runId(1)).length <= 10);
  });

  it('reject a bound that cannot thin', () => {
    const { db } = store();
    assert.throws(() => new TelemetryHistory(db, { maxPointsPerRun: 1 }), (e: unknown) => e instanceof GuildError && /Expected maxPointsPerRun to be a whole number >= 2, got 1/.test(e.message));
  });
});

describe('history: reports and the run listing', () => {
  it('saveReport stores the JSON with KPIs, the Markdown and the listing figures; runs() lists newest first', () => {
    const { runs, history } = store();
    recordRun(runs, runId(1), { startedAt: T0 });
    recordRun(runs, runId(2), { startedAt: T0 + 60_000, workflow: '/work/other/guild.yaml' });
    recordRun(runs, runId(3), { startedAt: T0 + 120_000, status: 'running' });
    const report = fixtureReport(runId(1));
    history.saveReport(runId(1), report, '# saved');
    assert.deepEqual(history.report(runId(1)), { json: report, markdown: '# saved', name: 'project', startedAt: T0 });
    assert.deepEqual(storedReport(history, runId(1)), { json: report, markdown: '# saved' });
    assert.deepEqual(
      history.runs().map((r) => r.id),
      [runId(3), runId(2), runId(1)],
    );
    const listed = history.runs(50, '/work/project/guild.yaml');
    assert.deepEqual(
      listed.map((r) => [r.id, r.status, r.tasks, r.failed, r.cache_hit_rate, r.kpi_overall]),
      [
        [runId(3), 'running', null, null, null, null],
        [runId(1), 'failed', 3, 1, 0.5, 'good'],
      ],
    );
    assert.equal(history.runs(1).length, 1);
    assert.equal(history.report(runId(3)), null, 'a running run has no report yet');
    assert.equal(history.report('nope'), null);
    assert.throws(() => history.saveReport('nope', report, ''), (e: unknown) => e instanceof GuildError && e.code === 'STORE');
  });
});

describe('history: resolveRunId', () => {
  const { runs, history } = store();
  recordRun(runs, '20250301-120000-aaaa', { startedAt: T0 });
  recordRun(runs, '20250301-120000-aabb', { startedAt: T0 + 1000, workflow: '/work/other/guild.yaml' });
  recordRun(runs, '20250301-130000-cccc', { startedAt: T0 + 3_600_000 });
  recordRun(runs, '20250301-140000-dddd', { startedAt: T0 + 7_200_000, status: 'running' });

  it('a whole id, and a prefix of exactly one run', () => {
    assert.equal(history.resolveRunId('20250301-120000-aaaa'), '20250301-120000-aaaa');
    assert.equal(history.resolveRunId('20250301-13'), '20250301-130000-cccc');
    assert.equal(history.resolveRunId(' 20250301-120000-aab '), '20250301-120000-aabb');
    assert.equal(history.resolveRunId('20250301-14'), '20250301-140000-dddd', 'a running run resolves by id');
    assert.equal(history.resolveRunId('2026'), null);
    assert.equal(history.resolveRunId('20250301-120000-aaaax'), null);
  });

  it('an ambiguous prefix is an error that lists the matches', () => {
    assert.throws(
      () => history.resolveRunId('20250301-120000-aa'),
      (e: unknown) =>
        e instanceof AmbiguousRunIdError && e.code === 'AMBIGUOUS' && e.matches.join() === '20250301-120000-aaaa,20250301-120000-aabb' && e.message.includes('matches 2 runs'),
    );
    assert.throws(() => history.resolveRunId('2025'), (e: unknown) => e instanceof AmbiguousRunIdError && e.matches.length === 4);
  });

  it('last: the newest finished run, of one workflow when given', () => {
    assert.equal(history.resolveRunId('last'), '20250301-130000-cccc', 'the running one is skipped');
    assert.equal(history.resolveRunId('last', '/work/other/guild.yaml'), '20250301-120000-aabb');
    assert.equal(history.resolveRunId('last', '/nowhere/guild.yaml'), null);
  });

  it('an empty reference is a usage error', () => {
    assert.throws(() => history.resolveRunId('  '), (e: unknown) => e instanceof GuildError && e.code === 'INVALID_OPTION');
  });
});

describe('history: retention', () => {
  it('prune keeps snapshots and reports of exactly the newest runs and leaves runs and tasks rows', () => {
    const { db, runs, history } = store();
    const ids = Array.from({ length: 6 }, (_, i) => runId(i));
    ids.forEach((id, i) => {
      const report = recordRun(runs, id, { startedAt: T0 + i * 60_000 });
      history.saveReport(id, report, renderReportMarkdown(report));
      for (let t = 0; t < 3; t++) history.addSnapshot(id, point(t * 5000));
    });
    const tasksBefore = db.prepare(`SELECT COUNT(*) FROM tasks`).pluck().get();

    assert.deepEqual(history.prune({ snapshotRuns: 2, reportRuns: 4 }), { snapshots: 4 * 3, reports: 2 });
    assert.deepEqual(
      ids.map((id) => history.snapshots(id).length),
      [0, 0, 0, 0, 3, 3],
    );
    assert.deepEqual(
      ids.map((id) => history.report(id) !== null),
      [false, false, true, true, true, true],
    );
    assert.equal(db.prepare(`SELECT COUNT(*) FROM tasks`).pluck().get(), tasksBefore);
    const listed = history.runs();
    assert.equal(listed.length, 6, 'every run stays listed');
    assert.deepEqual([listed.at(-1)!.tasks, listed.at(-1)!.kpi_overall], [3, 'good'], 'with its listing figures');
    assert.deepEqual(history.prune({ snapshotRuns: 2, reportRuns: 4 }), { snapshots: 0, reports: 0 }, 'nothing more to remove');
    assert.deepEqual(history.prune(), { snapshots: 0, reports: 0 }, 'the defaults (20, 200) keep everything here');
    assert.throws(() => history.prune({ snapshotRuns: -1 }), (e: unknown) => e instanceof GuildError && /Expected snapshotRuns to be a whole number >= 0, got -1/.test(e.message));
  });
});

describe('history: the Markdown report', () => {
  const report = fixtureReport(runId(7));
  const md = renderReportMarkdown(report, { name: 'project', startedAt: T0 });

  it('names the run and summarises it', () => {
    assert.match(md, /^# project: run `20250301-120700-a1b2`\n/);
    assert.match(md, /- \*\*Status:\*\* failed/);
    assert.match(md, /- \*\*Started:\*\* 2025-03-01 12:00:00 UTC/);
    assert.match(md, /- \*\*Makespan:\*\* 3\.2 s \(1\.23× the lower bound\)/);
    assert.match(md, /- \*\*Budget:\*\* 1\.50 GB \(from workflow\); effective limit 8\.00 GB via cgroup-v2/);
    assert.match(md, /- \*\*Peak memory:\*\* 700 MB of agents \(45\.6% of the budget\); Guild itself 80\.0 MB/);
    assert.match(md, /- \*\*Tasks:\*\* 3 \(1 succeeded, 1 cached, 1 failed\)/);
  });

  it('has a row per task, with pipes and newlines escaped', () => {
    assert.match(md, /\| Task \| Agent \| Status \| Duration \| Peak RSS \| Attempts \| Cache \|\n\|---\|---\|---\|---:\|---:\|---:\|---\|/);
    assert.match(md, /\| analyze \| analyzer \| succeeded \| 1\.4 s \| 610 MB \| 1 \| miss \|/);
    assert.match(md, /\| docs \| writer \| cached \| — \| — \| 0 \| hit, saved 5\.2 s \|/);
    assert.match(md, /\| lint\\\|strict \| linter \| failed \| 850 ms \| 90\.0 MB \| 2 \| off \(no inputs declared\) \|/);
    assert.match(md, /- `lint\|strict` \(linter, failed\): exit 1 src\/a\.ts: unused \| variable; killed at 900 ms \(pressure emergency, 95\.0 MB\)/);
    // Every row of every table has as many cells as its header: no pipe or newline leaked.
    const cells = (line: string): number => line.split(/(?<!\\)\|/).length;
    const tables = md.split(/\n\n/).filter((block) => block.startsWith('|'));
    assert.equal(tables.length, 3);
    for (const block of tables) {
      const [head, ...rows] = block.split('\n');
      assert.ok(rows.length >= 2);
      for (const row of rows) assert.equal(cells(row), cells(head!), row);
    }
  });

  it('scores the KPIs and lists the recommendations', () => {
    assert.match(md, /Overall: \*\*good\*\* \(71\.7 points\)/);
    assert.match(md, /\| response time · analyzer \| 1\.4 s \| excellent \| 2\.0 s \/ 4\.0 s \/ 8\.0 s, lower is better \| 2 \| {2}\|/);
    assert.match(md, /\| memory efficiency \| 42% \| poor \| 80% \/ 60% \/ 40%, higher is better \| 12 \| peak \\\| budget \|/);
    assert.match(md, /\| cache hit rate \| — \| not scored \| .* \| 0 \| cold cache \|/);
    assert.match(md, /## Recommendations\n\n- Lower the declared memory of analyzer to 700 MB: it peaked at 610 MB\.\n- Declare inputs for lint so it can be cached\.\n/);
  });

  it('covers alerts, the governor, the cache and Guild itself', () => {
    assert.match(md, /## Alerts\n\n- 900 ms \*\*critical\*\* \(memory-pressure\): memory at 96% of the limit; repeated 2 more times within the cooldown\n- 1\.2 s \*\*warning\*\* \(agent-failure\): lint failed\n/);
    assert.match(md, /### Warnings\n\n- budget 1\.50 GB leaves little room/);
    assert.match(md, /Highest pressure: \*\*emergency\*\*/);
    assert.match(md, /\| optimal \| 2\.0 s \| 62\.5% \|/);
    assert.match(md, /- \*\*Responses:\*\* 1 level change, 1 concurrency cap, 1 pause, 1 resume, 1 kill/);
    assert.match(md, / {2}- killed `lint\|strict` at 900 ms \(emergency, 95\.0 MB\)/);
    assert.match(md, /- \*\*Hits:\*\* 1\n- \*\*Misses:\*\* 1\n- \*\*Hit rate:\*\* 50%\n- \*\*Time saved:\*\* 5\.2 s/);
    assert.match(md, /- \*\*Peak RSS:\*\* 80\.0 MB/);
    assert.match(md, /- \*\*Event-loop delay:\*\* p50 10\.2 ms, p99 14\.8 ms, max 21 ms/);
  });

  it('is deterministic', () => {
    assert.equal(renderReportMarkdown(structuredClone(report), { name: 'project', startedAt: T0 }), md);
  });

  it('renders a run with no KPIs and no tasks', () => {
    const empty = fixtureReport(runId(8), {
      ok: true,
      tasks: [],
      counts: { succeeded: 0, cached: 0, failed: 0, skipped: 0, cancelled: 0 },
      responses: [],
      alerts: [],
      warnings: [],
      makespan_ms: 0,
      lower_bound_ms: 0,
      cache: { enabled: false, disabled_by: 'flag', hits: 0, misses: 0, hit_rate: null, saved_ms: 0, not_cacheable: 0, tiers: [], context: null },
    });
    // As a run stored before KPIs existed: no `kpis` key at all.
    const { kpis: _kpis, ...older } = empty;
    const text = renderReportMarkdown(older as ReportDocument);
    assert.match(text, /^# \/work\/project\/guild\.yaml: run `20250301-120800-a1b2`/);
    assert.match(text, /- \*\*Started:\*\* 2025-03-01 12:08:00 UTC/, 'the start is read from the run id');
    assert.match(text, /- \*\*Tasks:\*\* 0\n/);
    assert.match(text, /## Tasks\n\n_No tasks\._/);
    assert.match(text, /## KPIs\n\n_No KPIs for this run\._/);
    assert.match(text, /- \*\*Responses:\*\* none/);
    assert.match(text, /Task memoization was off \(--no-cache\)\./);
    assert.doesNotMatch(text, /NaN|undefined|Infinity/);
    assert.match(renderReportMarkdown({ ...empty, kpis: null }), /_No KPIs for this run\._/);
  });
});
