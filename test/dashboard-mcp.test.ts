/**
 * The dashboard's MCP gateway panel in headless Chromium: the server is given a gateway source (a
 * function returning a fixed GatewayStatus-shaped snapshot the test changes; the real gateway
 * behind it is tested end to end elsewhere), and the page shows the panel only while there is a
 * snapshot, with the servers, backends and latency of the one the stream brought last.
 * The screenshot is kept in test-output/dashboard-mcp.png.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startDashboard, type DashboardServer, type DashboardSource } from '../src/dashboard/server.js';
import type { GatewayStatus } from '../src/telemetry/mcp-status.js';
import type { DashboardState } from '../src/telemetry/state.js';
import { ROOT, sleep } from './helpers.js';
import { gatewayStatus, MB } from './mcp-status-fixture.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];

/** A process serving only a gateway: no run, nothing measured yet by a run. */
const STATE: DashboardState = {
  version: 1,
  mode: 'run',
  run: null,
  memory: null,
  pressure: null,
  queue: { queued: 0, running: 0, paused: 0, done: 0, total: 0, blocked: null },
  tasks: [],
  agents: [],
  series: [],
  cache: { hits: 0, misses: 0, hit_rate: null, saved_ms: 0 },
  kpis: null,
  alerts: [],
  guild: { rss_bytes: 60 * MB, event_loop_delay_p99_ms: null, gc_pause_total_ms: 0 },
};

const source: DashboardSource = {
  state: () => STATE,
  metrics: async () => ({ contentType: 'text/plain; version=0.0.4; charset=utf-8', body: '' }),
  subscribe: () => () => {},
  runs: () => [],
  run: () => null,
};

/** What the page-side functions touch (the project compiles without the DOM lib; see dashboard-browser.test.ts). */
interface Cell {
  textContent: string | null;
  className: string;
}
interface PageGlobals {
  document: {
    querySelector(selector: string): (Cell & { hidden: boolean }) | null;
    querySelectorAll(selector: string): Iterable<{ children: Iterable<Cell> }>;
  };
}

/** The rows of a table body as cell texts, with ` [over]` after a cell marked over its target. */
const rows = (page: Page, table: string): Promise<string[][]> =>
  page.evaluate(
    (sel) => [...(globalThis as unknown as PageGlobals).document.querySelectorAll(`${sel} tbody tr`)].map((tr) => [...tr.children].map((td) => `${td.textContent ?? ''}${td.className.split(' ').includes('over') ? ' [over]' : ''}`)),
    table,
  );

const panelShown = (page: Page, shown: boolean): Promise<unknown> =>
  page.waitForFunction((want) => (globalThis as unknown as PageGlobals).document.querySelector('[data-testid=mcp-panel]')?.hidden === !want, shown, { timeout: 10_000 });

/** Uncaught exceptions and console errors (CSP violations land there too). */
function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.stack ?? e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/^Failed to load resource: net::ERR_/.test(m.text())) errors.push(`console.error: ${m.text()}`);
  });
  return errors;
}

describe('the dashboard with an MCP gateway source', () => {
  let snapshot: GatewayStatus | null = null;
  let reads = 0;
  let server: DashboardServer;
  let plain: DashboardServer;
  let browser: Browser | null = null;

  before(async () => {
    server = await startDashboard({
      source,
      port: 0,
      token: null,
      mcp: () => {
        reads++;
        return snapshot;
      },
      mcpIntervalMs: 100,
    });
    plain = await startDashboard({ source, port: 0, token: null });
  });
  after(async () => {
    await browser?.close();
    await server.close();
    await plain.close();
  });

  it('/api/state carries the snapshot as `mcp` (null while the gateway is not up); without a source there is no `mcp`', async () => {
    let state = (await (await fetch(`${server.url}api/state`)).json()) as Record<string, unknown>;
    assert.equal(state.mcp, null);
    assert.equal(state.version, 1);
    snapshot = gatewayStatus();
    state = (await (await fetch(`${server.url}api/state`)).json()) as Record<string, unknown>;
    assert.deepEqual(state.mcp, snapshot);
    snapshot = null;
    state = (await (await fetch(`${plain.url}api/state`)).json()) as Record<string, unknown>;
    assert.equal('mcp' in state, false);
  });

  it('shows the panel only while there is a snapshot, and follows the stream', { timeout: 60_000 }, async (t) => {
    if (!existsSync(CHROMIUM)) {
      t.skip('chromium not installed: apt-get install -y chromium');
      return;
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors = collectErrors(page);

    // Without a gateway source: the page is up and live, and has no panel.
    await page.goto(plain.url);
    await page.waitForSelector('[data-testid=connection][data-state=live]', { timeout: 10_000 });
    assert.equal(await page.isHidden('[data-testid=mcp-panel]'), true);

    // With one, while the gateway is not up: no panel either.
    await page.goto(server.url);
    await page.waitForSelector('[data-testid=connection][data-state=live]', { timeout: 10_000 });
    assert.equal(await page.isHidden('[data-testid=mcp-panel]'), true);

    // The gateway comes up: the next `mcp` event shows the panel with its figures.
    snapshot = gatewayStatus();
    await panelShown(page, true);
    assert.equal(await page.textContent('[data-testid=mcp-level]'), 'moderate');
    const meta = (await page.textContent('#mcp-meta')) ?? '';
    assert.match(meta, /5 sessions · reserved 300 MB of budget 2 GB · cache 25 hits · 20 misses \(56%\)/);

    // Servers: live instances (min–max), calls, cache hit rate, the slowest tool's p50/p95 against the kind's target.
    assert.deepEqual(await rows(page, '[data-testid=mcp-servers]'), [
      ['serena', 'code-analysis', 'per-project', '3 (1–5)', '45', '18%', 'find_symbol', '120 ms', '450 ms ! [over]', '200 ms'],
      ['memory', 'knowledge', 'shared', '1 (1–2)', '15', '50%', 'read_graph', '0.42 ms', '12.5 ms', '300 ms'],
    ]);
    // Backends: project by its folder name, pids, RSS, peak, calls, cache hits, restarts, recycles, what it does now.
    assert.deepEqual(await rows(page, '[data-testid=mcp-backends]'), [
      ['serena', 'alpha', '31337, 31338', '180 MB', '212 MB', '40', '10', '1', '1', '2 live · 1 in flight'],
      ['serena', 'beta', '31500', '70 MB', '75 MB', '5', '0', '0', '2', '1 live · 2 waiting · held back: the memory budget 2.00 GB has 100 MB free'],
      ['memory', 'alpha', '32000', '50 MB', '66 MB', '15', '15', '0', '0', '1 live'],
    ]);
    const latency = await rows(page, '[data-testid=mcp-latency]');
    assert.deepEqual(latency[1], ['serena', 'tools/call', 'find_symbol', '30', '10', '1', '120 ms', '450 ms ! [over]', '200 ms']);

    const outDir = join(ROOT, 'test-output');
    mkdirSync(outDir, { recursive: true });
    const shot = join(outDir, 'dashboard-mcp.png');
    await page.locator('[data-testid=mcp-panel]').screenshot({ path: shot });
    t.diagnostic(`screenshot: ${shot}`);

    // A backend crashes and restarts with a new pid: the row follows.
    const next = gatewayStatus();
    next.backends[0]!.pids = [31337, 40001];
    next.backends[0]!.restarts = 2;
    snapshot = next;
    await page.waitForFunction(
      () => [...(globalThis as unknown as PageGlobals).document.querySelectorAll('[data-testid=mcp-backends] tbody tr')].some((tr) => [...tr.children][2]?.textContent === '31337, 40001'),
      null,
      { timeout: 10_000 },
    );
    assert.deepEqual((await rows(page, '[data-testid=mcp-backends]'))[0]!.slice(2, 8), ['31337, 40001', '180 MB', '212 MB', '40', '10', '2']);

    // The gateway stops: the panel goes.
    snapshot = null;
    await panelShown(page, false);
    assert.deepEqual(errors, [], 'no page errors, no CSP violations');

    // The snapshot is read for attached clients only: with the page gone, no more reads.
    await page.close();
    for (const end = Date.now() + 10_000; server.clients() > 0 && Date.now() < end; ) await sleep(50);
    assert.equal(server.clients(), 0);
    const idle = reads;
    await sleep(500);
    assert.equal(reads, idle, 'no client attached, no snapshot read');
  });
});
