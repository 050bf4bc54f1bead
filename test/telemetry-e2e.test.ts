/**
 * Telemetry end to end, with real runs of the CLI: /metrics checked by promtool during a run, 50
 * SSE clients on a live run, the token rules, guild status, guild report, guild dashboard, history
 * in the store, and a webhook receiving a real run's alerts.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer as createHttpServer, get, type IncomingMessage } from 'node:http';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { freePort, GUILD, guild, hog, ROOT, sleep, writeWorkflow } from './helpers.js';
import type { RunReport } from '../src/workflow/report.js';
import type { DashboardState } from '../src/telemetry/state.js';

/** `guild run <file> --json --dashboard <port>`, stdout (the report) and stderr collected. */
function startRun(file: string, port: number, extra: string[] = []): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, [GUILD, 'run', file, '--json', '--progress', 'none', '--dashboard', String(port), ...extra], { cwd: ROOT });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { child, done };
}

async function fetchJson<T>(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: T | null }> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as T) : null };
}

/** Polls /api/state until `ok(state)` holds. */
async function waitForState(port: number, ok: (s: DashboardState) => boolean, timeoutMs = 20_000): Promise<DashboardState> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetchJson<DashboardState>(`http://127.0.0.1:${port}/api/state`);
      if (r.status === 200 && r.body && ok(r.body)) return r.body;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error('timed out waiting for the dashboard state');
    await sleep(25);
  }
}

/** One SSE client: every event in order, until the stream ends. */
function sseClient(port: number): { events: { event: string; data: string }[]; closed: Promise<void> } {
  const events: { event: string; data: string }[] = [];
  const closed = new Promise<void>((resolve, reject) => {
    get(`http://127.0.0.1:${port}/api/events`, (res: IncomingMessage) => {
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data.push(line.slice(6));
          }
          if (data.length > 0) events.push({ event, data: data.join('\n') });
        }
      });
      res.on('end', resolve);
      res.on('close', resolve);
      res.on('error', reject);
    }).on('error', reject);
  });
  return { events, closed };
}

const WORKFLOW = (dir: string, extra = ''): string =>
  writeWorkflow(
    `name: telemetry-e2e
telemetry:
  snapshot_interval: 100ms
${extra}
agents:
  analyzer: { memory: 40MB, kind: code-analysis }
  builder: { memory: 60MB }
tasks:
  - { id: scan-a, agent: analyzer, run: "${hog(30, 1500)}", inputs: guild.yaml }
  - { id: scan-b, agent: analyzer, run: "${hog(30, 1500)}", inputs: guild.yaml }
  - { id: build, agent: builder, run: "${hog(50, 1500)}", needs: [scan-a, scan-b], inputs: guild.yaml }
`,
    dir,
  );

const ISSUE_METRICS = [
  'guild_tasks_running',
  'guild_tasks_queued',
  'guild_tasks_total',
  'guild_task_duration_seconds',
  'guild_agent_rss_bytes',
  'guild_memory_used_bytes',
  'guild_memory_budget_bytes',
  'guild_memory_pressure_level',
  'guild_admissions_denied_total',
  'guild_agents_paused',
  'guild_agent_kills_total',
  'guild_cache_requests_total',
  'guild_event_loop_delay_p99_seconds',
  'guild_gc_pause_seconds_total',
  'guild_rss_bytes',
];

describe('metrics during a real run', () => {
  it('/metrics carries every listed metric with measured values, and promtool check metrics passes', async (t) => {
    const file = WORKFLOW(dirname(writeWorkflow('')));
    const port = await freePort();
    const run = startRun(file, port, ['--no-cache']);
    try {
      // A task's cgroup (where the machine gives one) is charged only what it faulted in: wait until a hog holds its 30 MB.
      await waitForState(port, (s) => s.tasks.some((x) => x.status === 'running' && (x.rss_bytes ?? 0) > 25 * 1024 * 1024));
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      for (const name of ISSUE_METRICS) assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} missing`);
      const rss = /^guild_agent_rss_bytes\{agent="analyzer"\} (\d+)/m.exec(text);
      assert.ok(rss && Number(rss[1]) > 25 * 1024 * 1024, 'the analyzers are measured (30 MB hogs)');
      assert.match(text, /^guild_tasks_running\{agent="analyzer"\} 2$/m);
      assert.match(text, /^guild_memory_budget_bytes [1-9]/m);
      const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      if (promtool.error) t.skip('promtool not installed: apt-get install -y prometheus');
      else assert.equal(promtool.status, 0, `promtool: ${promtool.stdout}${promtool.stderr}`);
    } finally {
      const r = await run.done;
      assert.equal(r.code, 0, r.stderr);
    }
  });

  it('counts cache lookups by tier, namespace and result, and finished tasks by status', async () => {
    const dir = dirname(writeWorkflow(''));
    const file = WORKFLOW(dir);
    assert.equal((await guild(['run', file, '--progress', 'none'])).code, 0); // fills the cache
    const port = await freePort();
    const run = startRun(file, port, ['--dashboard-linger', '3']);
    await waitForState(port, (s) => s.run?.status === 'succeeded');
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    run.child.kill('SIGINT'); // ends the linger; the run's own exit code stands
    assert.equal((await run.done).code, 0);
    assert.match(text, /^guild_cache_requests_total\{tier="sqlite",namespace="tasks",result="hit"\} 3$/m);
    assert.match(text, /^guild_tasks_total\{agent="analyzer",status="cached"\} 2$/m);
    assert.match(text, /^guild_tasks_total\{agent="builder",status="cached"\} 1$/m);
  });
});

describe('the dashboard under load', () => {
  it('50 concurrent SSE clients each get state, ticks and the end, and the run is not disturbed', async () => {
    const file = WORKFLOW(dirname(writeWorkflow('')));
    const port = await freePort();
    const run = startRun(file, port, ['--no-cache']);
    await waitForState(port, () => true);
    const clients = Array.from({ length: 50 }, () => sseClient(port));
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    await Promise.all(clients.map((c) => c.closed));
    const report = JSON.parse(r.stdout) as RunReport;
    assert.equal(report.counts.succeeded, 3);
    for (const c of clients) {
      assert.equal(c.events[0]?.event, 'state');
      assert.ok(c.events.some((e) => e.event === 'tick'), 'ticks arrive');
      const end = c.events.find((e) => e.event === 'end');
      assert.ok(end, 'the end arrives');
      const final = JSON.parse(end.data) as DashboardState;
      assert.equal(final.run?.status, 'succeeded');
      assert.ok(final.tasks.every((t) => t.status === 'succeeded'));
    }
    // Same messages in the same order for everyone from the moment all were attached (each is
    // serialized once): every client's stream ends with the same run of events.
    const shortest = Math.min(...clients.map((c) => c.events.length));
    const tails = clients.map((c) => JSON.stringify(c.events.slice(c.events.length - shortest + 1)));
    assert.equal(new Set(tails).size, 1);
    // Guild stays far under the seed's active target with 50 clients attached (a bound, not a timing).
    assert.ok(report.guild_peak_rss_bytes < 200 * 1024 * 1024, `Guild peaked at ${report.guild_peak_rss_bytes} bytes`);
    // Not disturbed: nothing was lost or killed, and the two scans ran side by side.
    assert.equal(report.guild_kills, 0);
    const scan = (id: string): { started_ms: number | null; ended_ms: number | null } => report.tasks.find((t) => t.id === id)!;
    const [a, b] = [scan('scan-a'), scan('scan-b')];
    assert.ok(a.started_ms! < b.ended_ms! && b.started_ms! < a.ended_ms!, 'the two scans overlapped');
  });
});

describe('dashboard access', () => {
  it('refuses a non-loopback address without a token, before running anything', async () => {
    const dir = dirname(writeWorkflow(''));
    const file = WORKFLOW(dir);
    const r = await guild(['run', file, '--dashboard', String(await freePort()), '--host', '0.0.0.0'], { env: { GUILD_DASHBOARD_TOKEN: '' } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--token/);
    assert.match(r.stderr, /GUILD_DASHBOARD_TOKEN/);
    assert.doesNotMatch(r.stdout + r.stderr, /scan-a/);
  });

  it('with a token, every request must carry it: none or a wrong one gets 401', async () => {
    const file = WORKFLOW(dirname(writeWorkflow('')));
    const port = await freePort();
    const run = startRun(file, port, ['--no-cache', '--host', '0.0.0.0', '--token', 's3cret-token']);
    try {
      const base = `http://127.0.0.1:${port}`;
      const until = Date.now() + 20_000;
      while ((await fetch(`${base}/api/state`, { headers: { authorization: 'Bearer s3cret-token' } }).catch(() => null))?.status !== 200) {
        assert.ok(Date.now() < until, 'the dashboard came up');
        await sleep(25);
      }
      for (const path of ['/api/state', '/metrics', '/api/events', '/', '/api/runs']) {
        assert.equal((await fetch(`${base}${path}`)).status, 401, `${path} without a token`);
        assert.equal((await fetch(`${base}${path}`, { headers: { authorization: 'Bearer wrong' } })).status, 401, `${path} with a wrong token`);
      }
      assert.equal((await fetch(`${base}/api/state?token=s3cret-token`)).status, 200);
      const status = await guild(['status', '--url', `${base}/`, '--token', 'wrong']);
      assert.equal(status.code, 1);
      assert.match(status.stderr, /refused the token/);
    } finally {
      assert.equal((await run.done).code, 0);
    }
  });
});

describe('guild status', () => {
  it('shows a live run from its API, and says so when nothing answers', async () => {
    const file = WORKFLOW(dirname(writeWorkflow('')));
    const port = await freePort();
    const run = startRun(file, port, ['--no-cache']);
    await waitForState(port, (s) => s.tasks.some((x) => x.status === 'running' && x.rss_bytes !== null));
    const r = await guild(['status', '--url', `http://127.0.0.1:${port}/`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^run \S+ \(telemetry-e2e\): running/);
    assert.match(r.stdout, /RUNNING\n\s+scan-a\s+analyzer\s+\d/);
    const json = await guild(['status', '--url', `http://127.0.0.1:${port}/`, '--json']);
    assert.equal((JSON.parse(json.stdout) as DashboardState).version, 1);
    assert.equal((await run.done).code, 0);
    const down = await guild(['status', '--url', `http://127.0.0.1:${port}/`]);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /no Guild dashboard answers at http:\/\/127\.0\.0\.1:\d+/);
  });
});

describe('history and reports', () => {
  it('stores snapshots and the report; guild report and guild dashboard read them back', async () => {
    const dir = dirname(writeWorkflow(''));
    const file = WORKFLOW(dir);
    const run = await guild(['run', file, '--json', '--progress', 'none', '--no-cache']);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as RunReport;
    assert.ok(report.kpis, 'the --json report carries KPIs');
    // Two analyzer tasks: measured and shown, too few to grade (KPI_MINIMUMS.response_time).
    const analyzer = report.kpis.scores.find((s) => s.kpi === 'response_time' && s.subject === 'analyzer');
    assert.ok(analyzer && analyzer.value !== null && analyzer.samples === 2, JSON.stringify(analyzer));
    assert.deepEqual([analyzer.score, analyzer.note], [null, 'not scored: too little data (2 of 5 tasks)']);
    const db = new Database(join(dir, '.guild', 'guild.db'), { readonly: true });
    const points = (db.prepare('SELECT count(*) AS n FROM metric_snapshots WHERE run_id = ?').get(report.run_id) as { n: number }).n;
    db.close();
    assert.ok(points >= 10, `a point every 100 ms over ~3 s, got ${points}`);

    const md = await guild(['report', 'last', '-w', file]);
    assert.equal(md.code, 0, md.stderr);
    assert.match(md.stdout, new RegExp(report.run_id));
    assert.match(md.stdout, /## KPIs/);
    assert.match(md.stdout, /\| scan-a \| analyzer \| succeeded \|/);
    const json = await guild(['report', report.run_id.slice(0, 17), '-w', file, '--json']);
    assert.equal((JSON.parse(json.stdout) as RunReport).kpis?.overall.points, report.kpis.overall.points);
    const missing = await guild(['report', 'nope', '-w', file]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no run 'nope'/);

    const port = await freePort();
    const server = spawn(process.execPath, [GUILD, 'dashboard', '-w', file, '--port', String(port)], { cwd: ROOT, stdio: 'ignore' });
    try {
      const state = await waitForState(port, () => true);
      assert.equal(state.mode, 'history');
      const runs = await fetchJson<{ id: string; kpi_overall: string | null }[]>(`http://127.0.0.1:${port}/api/runs`);
      assert.equal(runs.body?.[0]?.id, report.run_id);
      assert.equal(runs.body?.[0]?.kpi_overall, report.kpis.overall.score);
      const one = await fetchJson<{ series: unknown[]; markdown: string }>(`http://127.0.0.1:${port}/api/runs/last`);
      assert.equal(one.body?.series.length, points);
      assert.match(one.body?.markdown ?? '', /## KPIs/);
    } finally {
      server.kill('SIGTERM');
    }
  });

  it('--no-telemetry runs without KPIs', async () => {
    const file = WORKFLOW(dirname(writeWorkflow('')));
    const r = await guild(['run', file, '--json', '--progress', 'none', '--no-telemetry', '--no-cache']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as RunReport).kpis, null);
  });
});

describe('alerts from a real run', () => {
  it('reach the log and the webhook (POST JSON), one per agent type within the cooldown', async () => {
    const received: { rule: string; run_id: string; message: string }[] = [];
    const hook = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const p = JSON.parse(body) as { source: string; run_id: string; alert: { rule: string; message: string } };
        assert.equal(req.headers['content-type'], 'application/json');
        received.push({ rule: p.alert.rule, run_id: p.run_id, message: p.alert.message });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const hookPort = (hook.address() as { port: number }).port;
    try {
      const file = writeWorkflow(`name: failing
telemetry:
  alerts: { webhook: "http://127.0.0.1:${hookPort}/hook" }
keep_going: true
agents:
  flaky: { memory: 20MB }
tasks:
  - { id: f1, agent: flaky, run: "exit 3" }
  - { id: f2, agent: flaky, run: "exit 4" }
`);
      const r = await guild(['run', file, '--json', '--progress', 'plain']);
      assert.equal(r.code, 1);
      const report = JSON.parse(r.stdout) as RunReport;
      const failures = received.filter((a) => a.rule === 'agent-failure');
      assert.equal(failures.length, 1, JSON.stringify(received));
      assert.equal(failures[0]!.run_id, report.run_id);
      const alert = report.alerts.find((a) => a.rule === 'agent-failure');
      assert.equal(alert?.repeats, 1, 'the second failure counted as a repeat');
      assert.match(r.stderr, /ALERT \(warning\): task f\d \(flaky\) failed/);
    } finally {
      hook.close();
    }
  });
});

describe('telemetry configuration', () => {
  it('names the file, line and key of a bad webhook header or an unset variable in one', async () => {
    const bad = writeWorkflow(`agents: { a: {} }
telemetry:
  alerts:
    webhook: http://127.0.0.1:9/hook
    webhook_headers: { "Bad Header": x }
tasks:
  - { id: t, agent: a, run: "true" }
`);
    const r1 = await guild(['run', bad]);
    assert.equal(r1.code, 2);
    assert.match(r1.stderr, /guild\.yaml:5:\d+: telemetry\.alerts\.webhook_headers\.Bad Header: Expected an HTTP header name/);
    const unset = writeWorkflow(`agents: { a: {} }
telemetry:
  alerts:
    webhook: http://127.0.0.1:9/hook
    webhook_headers:
      Authorization: "Bearer \${GUILD_TEST_UNSET_VAR}"
tasks:
  - { id: t, agent: a, run: "true" }
`);
    const r2 = await guild(['run', unset]);
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /guild\.yaml:6:\d+: telemetry\.alerts\.webhook_headers\.Authorization: names an unset environment variable \$\{GUILD_TEST_UNSET_VAR\}/);
  });
});
