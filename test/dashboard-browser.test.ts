/**
 * The dashboard page in a real browser during a real run: `guild run --dashboard` serves it,
 * headless Chromium (playwright-core) loads it with a token, sees tasks running and the memory
 * series gaining points, then the finished state, and still shows it after the server has gone.
 * The screenshot is kept in test-output/dashboard.png.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freePort, GUILD, hog, ROOT, sleep, writeWorkflow } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];
const LINGER_S = 5;

/**
 * Three levels, six tasks of 1.5–3 s: the run lasts ~7–9 s once `prepare` may go. `prepare` waits
 * for a file the test writes once the page is open, so a browser slow to start on a loaded machine
 * cannot miss the live part.
 */
const WORKFLOW = `name: dashboard-e2e
budget: 1GB
agents:
  worker: { memory: 120MB, cpu: 0.1 }
tasks:
  - { id: prepare, agent: worker, timeout: 5m, run: "while [ ! -e go ]; do sleep 0.05; done; ${hog(40, 1500)}" }
  - { id: analyze-a, agent: worker, needs: [prepare], run: "${hog(80, 2500)}" }
  - { id: analyze-b, agent: worker, needs: [prepare], run: "${hog(60, 2000)}" }
  - { id: analyze-c, agent: worker, needs: [prepare], run: "${hog(50, 3000)}" }
  - { id: build, agent: worker, needs: [analyze-a, analyze-b], run: "${hog(70, 2000)}" }
  - { id: report, agent: worker, needs: [build, analyze-c], run: "${hog(30, 1500)}" }
`;

/** Polls /api/state until it answers 200; fails early if the CLI exits first. */
async function waitForServer(base: string, token: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    assert.equal(child.exitCode, null, `guild exited (${child.exitCode}) before the dashboard answered:\n${output()}`);
    try {
      const res = await fetch(`${base}/api/state`, { headers: { authorization: `Bearer ${token}` } });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  assert.fail(`the dashboard did not answer within 20 s:\n${output()}`);
}

function exited(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** Uncaught exceptions and console errors, except network failures (expected once the server goes away). */
function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.stack ?? e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (/^Failed to load resource: net::ERR_/.test(m.text())) return;
    errors.push(`console.error: ${m.text()}`); // CSP violations land here too
  });
  return errors;
}

/**
 * What the page-side functions below touch. The project compiles without the DOM lib (and must not
 * pull it in for everyone), and string expressions are no way out: Playwright evaluates them with
 * `eval`, which the page's CSP forbids. Page functions cannot close over anything, hence the casts.
 */
interface PageGlobals {
  document: {
    querySelector(selector: string): { textContent: string | null } | null;
    querySelectorAll(selector: string): Iterable<{ dataset: Record<string, string | undefined> }>;
  };
  __guild: { points: number; state: { run: { id: string } } };
}

const taskStatuses = (page: Page): Promise<Record<string, string | undefined>> =>
  page.evaluate(() => {
    const rows = [...(globalThis as unknown as PageGlobals).document.querySelectorAll('[data-testid=task-row]')];
    return Object.fromEntries(rows.map((r) => [r.dataset.taskId, r.dataset.status]));
  });
const points = (page: Page): Promise<number> => page.evaluate(() => (globalThis as unknown as PageGlobals).__guild.points);

it('the dashboard follows a real run live, shows the finished state, and keeps it after the server stops', { timeout: 120_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip('chromium not installed: apt-get install -y chromium');
    return;
  }
  const workflow = writeWorkflow(WORKFLOW);
  const port = await freePort();
  const token = randomBytes(12).toString('hex');
  const base = `http://127.0.0.1:${port}`;
  const env = { ...process.env };
  delete env.GUILD_DASHBOARD_TOKEN;
  const child = spawn(
    process.execPath,
    [GUILD, 'run', workflow, '--dashboard', String(port), '--token', token, '--progress', 'none', '--dashboard-linger', String(LINGER_S)],
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  let browser: Browser | null = null;
  try {
    await waitForServer(base, token, child, () => output);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors = collectErrors(page);
    // The token in the page's URL only: the page must carry it to every API and stream request.
    await page.goto(`${base}/?token=${token}`);

    // Live: a task running, and the memory series gaining points while the run goes on.
    await page.waitForSelector('[data-testid=task-row][data-status=running]', { timeout: 30_000 });
    writeFileSync(join(dirname(workflow), 'go'), '');
    await page.waitForFunction(() => (globalThis as unknown as PageGlobals).__guild.points > 0, null, { timeout: 5_000 });
    const before = await points(page);
    await sleep(1000);
    const afterOne = await points(page);
    assert.equal(await page.textContent('[data-testid=status]'), 'running', 'still running across the two reads');
    assert.ok(afterOne > before, `memory points grew while running: ${before} → ${afterOne}`);
    assert.ok(await page.$('[data-testid=memory-chart] canvas'), 'the memory chart is drawn');

    // Finished: the status, every row, and the run among past runs.
    await page.waitForFunction(() => (globalThis as unknown as PageGlobals).document.querySelector('[data-testid=status]')?.textContent === 'succeeded', null, { timeout: 30_000 });
    await page.waitForFunction(() => [...(globalThis as unknown as PageGlobals).document.querySelectorAll('[data-testid=task-row]')].every((r) => r.dataset.status === 'succeeded'), null, { timeout: 5_000 });
    const final = await taskStatuses(page);
    assert.deepEqual(Object.keys(final).sort(), ['analyze-a', 'analyze-b', 'analyze-c', 'build', 'prepare', 'report']);
    assert.ok(Object.values(final).every((s) => s === 'succeeded'), JSON.stringify(final));
    const runId = await page.evaluate(() => (globalThis as unknown as PageGlobals).__guild.state.run.id);
    // The store writes the run's end as it closes; the page re-reads history until it shows it.
    await page.waitForSelector(`[data-testid=runs-table] tr[data-run-id="${runId}"][data-status=succeeded]`, { timeout: 5_000 });

    const outDir = join(ROOT, 'test-output');
    mkdirSync(outDir, { recursive: true });
    const shot = join(outDir, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`screenshot: ${shot}`);

    // The run's stored summary, from history, while the server lingers; then back to the live view.
    await page.click(`[data-testid=runs-table] tr[data-run-id="${runId}"]`);
    await page.waitForSelector('[data-testid=run-summary]:not([hidden])', { timeout: 5_000 });
    const markdown = (await page.textContent('[data-testid=run-summary] pre')) ?? '';
    assert.ok(markdown.includes('prepare'), `the run's Markdown summary names its tasks:\n${markdown.slice(0, 500)}`);
    await page.click('#back-live');

    // After the run: the CLI lingers, then stops; the page says so and keeps what it received.
    assert.equal(await exited(child, (LINGER_S + 15) * 1000), 0, `guild exits 0 after lingering:\n${output}`);
    await page.waitForSelector('[data-testid=connection][data-state=stopped]', { timeout: 10_000 });
    assert.deepEqual(await taskStatuses(page), final, 'the finished rows stay on the page');
    assert.equal(await page.textContent('[data-testid=status]'), 'succeeded');
    assert.ok((await points(page)) >= afterOne, 'the memory series stays plotted');

    assert.deepEqual(errors, [], 'no page errors, no CSP violations');
  } finally {
    await browser?.close();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      if ((await exited(child, 3000)) === null && child.exitCode === null) child.kill('SIGKILL');
    }
  }
});
