/**
 * The dashboard's workers panel in headless Chromium: the server is given a workers feed (a
 * function returning a fixed WorkersSnapshot the test changes; real heartbeats are read in
 * distributed-visible.test.ts), and the page shows the panel only while there is a snapshot, and
 * the task table's worker column only for a distributed run.
 * The screenshot is kept in test-output/dashboard-workers.png.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startDashboard, type DashboardServer, type DashboardSource } from '../src/dashboard/server.js';
import type { DashboardState, RunSummary, TaskRow, WorkersSnapshot } from '../src/telemetry/state.js';
import { ROOT, sleep } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];
const MB = 1024 * 1024;
const NOW = Date.UTC(2026, 11, 2, 11, 0, 0);

const task = (id: string, status: TaskRow['status'], worker?: string): TaskRow => ({
  id,
  agent: 'build',
  status,
  started_ms: status === 'pending' ? null : 100,
  ended_ms: status === 'succeeded' ? 900 : null,
  duration_ms: status === 'succeeded' ? 800 : null,
  rss_bytes: null,
  peak_rss_bytes: status === 'succeeded' ? 40 * MB : null,
  attempts: status === 'pending' ? 0 : 1,
  error: null,
  ...(worker !== undefined && { worker }),
});

function state(tasks: TaskRow[]): DashboardState {
  return {
    version: 1,
    mode: 'run',
    run: { id: '20261202-110000-abcd', workflow: '/w/guild.yaml', name: 'dist', started_at: NOW - 5000, elapsed_ms: 5000, status: 'running', total_tasks: tasks.length, cores: 4 },
    memory: null,
    pressure: null,
    queue: { queued: 0, running: 1, paused: 0, done: 1, total: tasks.length, blocked: null },
    tasks,
    agents: [],
    series: [],
    cache: { hits: 0, misses: 0, hit_rate: null, saved_ms: 0 },
    kpis: null,
    alerts: [],
    guild: { rss_bytes: 60 * MB, event_loop_delay_p99_ms: null, gc_pause_total_ms: 0 },
  };
}

/** A past distributed run as history keeps it: its report's tasks say where each ran, its `workers[]` what the run kept of each. */
const PAST_ID = '20261201-090000-beef';
const PAST_SUMMARY: RunSummary = { id: PAST_ID, workflow: '/w/guild.yaml', name: 'dist', status: 'succeeded', started_at: NOW - 86_400_000, ended_at: NOW - 86_398_000, makespan_ms: 2000, peak_rss_bytes: 80 * MB, tasks: 2, failed: 0, cache_hit_rate: null, kpi_overall: null, tokens: null, cost_usd: null };
const PAST_REPORT = {
  run_id: PAST_ID,
  workflow: '/w/guild.yaml',
  ok: true,
  interrupted: false,
  makespan_ms: 2000,
  lower_bound_ms: 1000,
  budget_bytes: 1024 * MB,
  effective_limit_bytes: 8192 * MB,
  peak_rss_bytes: 80 * MB,
  cores: 4,
  counts: { succeeded: 2 },
  cache: { hits: 0, misses: 0, hit_rate: null, saved_ms: 0 },
  tasks: [
    { id: 'compile', agent: 'build', status: 'succeeded', started_ms: 0, ended_ms: 1000, duration_ms: 1000, peak_rss_bytes: 40 * MB, attempts: 1, error: null, worker: 'big' },
    { id: 'test', agent: 'build', status: 'succeeded', started_ms: 1000, ended_ms: 2000, duration_ms: 1000, peak_rss_bytes: 80 * MB, attempts: 1, error: null, worker: 'small' },
  ],
  workers: [
    { name: 'big', host: 'box-a', budget_bytes: 2048 * MB, peak_bytes: 300 * MB, tasks: 1, pressure: 'optimal', rejected: 0 },
    { name: 'small', host: 'box-b', budget_bytes: 512 * MB, peak_bytes: 200 * MB, tasks: 1, pressure: 'moderate', rejected: 0 },
  ],
};

const sourceOf = (s: DashboardState, past = false): DashboardSource => ({
  state: () => s,
  metrics: async () => ({ contentType: 'text/plain; version=0.0.4; charset=utf-8', body: '' }),
  subscribe: () => () => {},
  runs: () => (past ? [PAST_SUMMARY] : []),
  run: (id) => (past && PAST_ID.startsWith(id) ? { report: PAST_REPORT, markdown: '# dist', series: [] } : null),
});

function snapshotOf(): WorkersSnapshot {
  return {
    queue: 'guild',
    at: NOW,
    workers: [
      { name: 'big', host: 'box-a', pid: 4100, budget_bytes: 2048 * MB, used_bytes: 512 * MB, free_bytes: 1536 * MB, running: 2, pressure: 'optimal', peak_bytes: 700 * MB, rejected: 0, last_heartbeat: NOW - 400, heartbeat_age_ms: 400, tasks: 3 },
      { name: 'small', host: 'box-b', pid: 4200, budget_bytes: 512 * MB, used_bytes: 460 * MB, free_bytes: 52 * MB, running: 1, pressure: 'high', peak_bytes: 480 * MB, rejected: 2, last_heartbeat: NOW - 1500, heartbeat_age_ms: 1500, tasks: 1 },
    ],
  };
}

interface Cell {
  textContent: string | null;
  className: string;
}
interface PageGlobals {
  document: {
    querySelector(selector: string): (Cell & { hidden: boolean }) | null;
    querySelectorAll(selector: string): Iterable<{ children: Iterable<Cell> }>;
  };
  getComputedStyle(e: unknown): { display: string };
}

const rows = (page: Page, table: string): Promise<string[][]> =>
  page.evaluate((sel) => [...(globalThis as unknown as PageGlobals).document.querySelectorAll(`${sel} tbody tr`)].map((tr) => [...tr.children].map((td) => td.textContent ?? '')), table);

/** Whether the task table shows its worker column (the header cell is displayed). */
const workerColumnShown = (page: Page): Promise<boolean> =>
  page.evaluate(() => {
    const g = globalThis as unknown as PageGlobals;
    const th = g.document.querySelector('#task-table th.worker-col');
    return th !== null && g.getComputedStyle(th).display !== 'none';
  });

const panelShown = (page: Page, shown: boolean): Promise<unknown> =>
  page.waitForFunction((want) => (globalThis as unknown as PageGlobals).document.querySelector('[data-testid=workers-panel]')?.hidden === !want, shown, { timeout: 10_000 });

function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.stack ?? e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/^Failed to load resource: net::ERR_/.test(m.text())) errors.push(`console.error: ${m.text()}`);
  });
  return errors;
}

describe('the dashboard with a workers feed (distributed run)', () => {
  let snapshot: WorkersSnapshot | null = null;
  let reads = 0;
  let server: DashboardServer;
  let plain: DashboardServer;
  let browser: Browser | null = null;

  before(async () => {
    const distributed = state([task('compile', 'succeeded', 'big'), task('test', 'running', 'small'), task('lint', 'queued')]);
    server = await startDashboard({
      source: sourceOf(distributed),
      port: 0,
      token: null,
      workers: () => {
        reads++;
        return snapshot;
      },
      workersIntervalMs: 100,
    });
    plain = await startDashboard({ source: sourceOf(state([task('compile', 'succeeded'), task('lint', 'queued')]), true), port: 0, token: null });
  });
  after(async () => {
    await browser?.close();
    await server.close();
    await plain.close();
  });

  it('/api/state carries the snapshot as `workers` (null before the first heartbeat read); a local run has no `workers`', async () => {
    let s = (await (await fetch(`${server.url}api/state`)).json()) as Record<string, unknown>;
    assert.equal(s.workers, null);
    snapshot = snapshotOf();
    s = (await (await fetch(`${server.url}api/state`)).json()) as Record<string, unknown>;
    assert.deepEqual(s.workers, snapshot);
    assert.deepEqual((s.tasks as TaskRow[]).map((t) => t.worker ?? null), ['big', 'small', null]);
    snapshot = null;
    s = (await (await fetch(`${plain.url}api/state`)).json()) as Record<string, unknown>;
    assert.equal('workers' in s, false);
  });

  it('rejects a workers option that is not a function', async () => {
    await assert.rejects(startDashboard({ source: sourceOf(state([])), port: 0, token: null, workers: 'no' as unknown as () => null }), { code: 'INVALID_OPTION' });
  });

  it('shows the panel and the worker column only for a distributed run, and follows the stream', { timeout: 60_000 }, async (t) => {
    if (!existsSync(CHROMIUM)) {
      t.skip('chromium not installed: apt-get install -y chromium');
      return;
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors = collectErrors(page);

    // A local run: no panel, no worker column.
    await page.goto(plain.url);
    await page.waitForSelector('[data-testid=connection][data-state=live]', { timeout: 10_000 });
    await page.waitForSelector('[data-testid=task-row]', { timeout: 10_000 });
    assert.equal(await page.isHidden('[data-testid=workers-panel]'), true);
    assert.equal(await workerColumnShown(page), false);

    // A past distributed run opened from history: what its report kept of each worker, and where each task ran.
    await page.click(`[data-testid=runs-table] tr[data-run-id="${PAST_ID}"]`);
    await panelShown(page, true);
    assert.equal(await page.textContent('#workers-meta'), '2 workers served the run · budget 2.5 GB in all');
    assert.deepEqual(await rows(page, '[data-testid=workers-table]'), [
      ['big', 'box-a', '2 GB', '–', '–', 'optimal', '300 MB', '–', '1', '0'],
      ['small', 'box-b', '512 MB', '–', '–', 'moderate', '200 MB', '–', '1', '0'],
    ]);
    assert.equal(await workerColumnShown(page), true);
    assert.deepEqual((await rows(page, '[data-testid=task-table]')).map((r) => r.slice(0, 3)), [['compile', 'build', 'big'], ['test', 'build', 'small']]);
    await page.click('#back-live');
    await panelShown(page, false);
    assert.equal(await workerColumnShown(page), false);

    // A distributed run before any heartbeat was read: no panel, but its rows name their workers.
    await page.goto(server.url);
    await page.waitForSelector('[data-testid=connection][data-state=live]', { timeout: 10_000 });
    await page.waitForSelector('[data-testid=task-row]', { timeout: 10_000 });
    assert.equal(await page.isHidden('[data-testid=workers-panel]'), true);
    assert.equal(await workerColumnShown(page), true);
    assert.deepEqual((await rows(page, '[data-testid=task-table]')).map((r) => r.slice(0, 4)), [
      ['compile', 'build', 'big', 'succeeded'],
      ['test', 'build', 'small', 'running'],
      ['lint', 'build', '–', 'queued'],
    ]);

    // Heartbeats arrive: the next `workers` event shows the panel.
    snapshot = snapshotOf();
    await panelShown(page, true);
    assert.match((await page.textContent('#workers-meta')) ?? '', /queue guild · 2 live · 3 jobs running · budget 2\.5 GB in all/);
    assert.deepEqual(await rows(page, '[data-testid=workers-table]'), [
      ['big', 'box-a · pid 4100', '2 GB', '512 MB (25%)', '2', 'optimal', '700 MB', '400 ms ago', '3', '0'],
      ['small', 'box-b · pid 4200', '512 MB', '460 MB (90%)', '1', 'high', '480 MB', '1.50 s ago', '1', '2'],
    ]);

    const outDir = join(ROOT, 'test-output');
    mkdirSync(outDir, { recursive: true });
    const shot = join(outDir, 'dashboard-workers.png');
    await page.locator('[data-testid=workers-panel]').screenshot({ path: shot });
    t.diagnostic(`screenshot: ${shot}`);

    // A worker's heartbeat expires: its row goes.
    const next = snapshotOf();
    next.workers.pop();
    snapshot = next;
    await page.waitForFunction(() => [...(globalThis as unknown as PageGlobals).document.querySelectorAll('[data-testid=workers-table] tbody tr')].length === 1, null, { timeout: 10_000 });

    // No snapshot any more: the panel goes.
    snapshot = null;
    await panelShown(page, false);
    assert.deepEqual(errors, [], 'no page errors, no CSP violations');

    await page.close();
    for (const end = Date.now() + 10_000; server.clients() > 0 && Date.now() < end; ) await sleep(50);
    const idle = reads;
    await sleep(400);
    assert.equal(reads, idle, 'no client attached, no snapshot read');
  });
});
