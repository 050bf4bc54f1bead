/**
 * Dashboard overhead: the memory-bound workload of bench/memory-bound.ts (the same 24 agent
 * simulators, same seed, 1.1 GB budget, through the CLI) run three ways in every round, the order
 * rotated from round to round:
 *   off        `--no-telemetry`: no KPIs, alerts, history or metrics;
 *   telemetry  the default: KPIs, alerts and history, no HTTP server, no prom-client;
 *   dashboard  `--dashboard <free port>`, with 50 server-sent-event clients (node:http GET
 *              /api/events from this process, each counting events and bytes) attached as soon as
 *              /api/state answers (polled every 20 ms from spawn) until the run ends, plus a
 *              Prometheus-like scraper on /metrics every 1 s and the page's /api/state every 2 s.
 * Each run gets a fresh directory, so none learns profiles or history from another.
 * Measures the makespan (the report's `makespan_ms`), Guild's RSS two ways (its report's
 * `guild_health.rss_peak_bytes`, and VmRSS of the Guild process read from /proc every 100 ms by
 * this process), the event-loop delay p99 from the report, and per SSE client the events and bytes
 * received and whether the final `end` event arrived.
 * Goals: makespan(dashboard + 50 SSE) / makespan(off) <= 1.03; Guild's peak RSS with 50 clients
 * < 200 MB (the seed's active target). The machine is shared and noisy, so a ratio only ever
 * compares runs of the same round: the headline is the median of the per-round ratios.
 * The clients and scraper run in this process, on the same cores as Guild: a real watcher on the
 * same host competes for CPU just the same.
 *
 * Run: npx tsc -p . && node dist/bench/dashboard-overhead.js [--rounds=3]   (~12 s a run, 3 runs a round)
 * Writes bench/results/dashboard-overhead.json.
 */
import { spawn } from 'node:child_process';
import { Agent, createServer, get, type IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunReport } from '../src/workflow/report.js';
import { argNumber, environment, fmtMB, fmtMs, fmtRatio, GUILD_BIN, isMain, MB, median, printTable, sleep, vmRss, writeResult } from './lib.js';
import { SEED, simulators, workflowYaml } from './memory-bound.js';

const BUDGET = '1.1GB';
const SSE_CLIENTS = 50;
const STATE_POLL_MS = 20;
const METRICS_EVERY_MS = 1000;
const STATE_EVERY_MS = 2000;
const RSS_EVERY_MS = 100;
const MAKESPAN_GOAL = 1.03;
const RSS_GOAL_BYTES = 200 * MB;
/** How long clients may take to see their stream end once Guild has exited. */
const CLIENT_DRAIN_MS = 5000;

type ConfigName = 'off' | 'telemetry' | 'dashboard';
const CONFIGS: readonly { name: ConfigName; label: string }[] = [
  { name: 'off', label: 'off (--no-telemetry)' },
  { name: 'telemetry', label: 'telemetry, no server' },
  { name: 'dashboard', label: `dashboard + ${SSE_CLIENTS} SSE` },
];

interface ClientStats {
  /** HTTP status of /api/events, or null if the request failed. */
  status: number | null;
  /** ms from Guild's spawn to the response headers. */
  connectedMs: number | null;
  events: number;
  bytes: number;
  sawEnd: boolean;
  error: string | null;
}

interface ScrapeStats {
  path: string;
  ok: number;
  failed: number;
  latenciesMs: number[];
  bytes: number;
}

interface DashboardObs {
  port: number;
  /** ms from spawn until /api/state first answered 200 (null: never). */
  stateReadyMs: number | null;
  /** Guild's VmRSS once every client had its headers (before: the run's own RSS). */
  rssAllAttachedBytes: number | null;
  clients: ClientStats[];
  /** Events by name, as the first client saw them. */
  eventTypes: Record<string, number>;
  scrapes: ScrapeStats[];
}

interface RunResult {
  config: ConfigName;
  round: number;
  makespanMs: number;
  /** Spawn to exit, node start-up and the dashboard's start and close included. */
  wallMs: number;
  reportRssPeakBytes: number;
  externalRssPeakBytes: number;
  rssSamples: number;
  eventLoopP99Ms: number;
  hasKpis: boolean;
  /** To tell noise from a different schedule when one run is an outlier. */
  lowerBoundMs: number;
  admissions: RunReport['admissions'];
  pressure: RunReport['pressure'];
  guildKills: number;
  ok: boolean;
  note?: string;
  dashboard?: DashboardObs;
}

function waitExit(child: ReturnType<typeof spawn>): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('error', () => resolve(null));
    child.once('exit', (code) => resolve(code));
  });
}

/** A port nobody holds right now (the kernel's pick; released before Guild binds it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** One GET, body drained and counted. */
function fetchOnce(port: number, path: string, agent: Agent | false): Promise<{ status: number; bytes: number; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path, agent }, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => (bytes += d.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
  });
}

/**
 * One SSE client: counts events (frames with an `event:` line; comments and the `retry:` frame are
 * not events) and bytes until the server ends the stream. Resolves when the stream is over.
 */
function sseClient(port: number, spawnedAt: number, stats: ClientStats, types: Record<string, number> | null): Promise<void> {
  return new Promise((resolve) => {
    let buf = '';
    const done = (error: string | null): void => {
      if (error !== null && stats.error === null) stats.error = error;
      resolve();
    };
    const req = get({ host: '127.0.0.1', port, path: '/api/events', agent: false, headers: { accept: 'text/event-stream' } }, (res: IncomingMessage) => {
      stats.status = res.statusCode ?? null;
      stats.connectedMs = performance.now() - spawnedAt;
      if (res.statusCode !== 200) {
        res.resume();
        return done(`HTTP ${res.statusCode}`);
      }
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        stats.bytes += Buffer.byteLength(chunk);
        buf += chunk;
        let end: number;
        while ((end = buf.indexOf('\n\n')) !== -1) {
          const frame = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const m = /^event: (.*)$/m.exec(frame);
          if (!m) continue;
          stats.events++;
          if (m[1] === 'end') stats.sawEnd = true;
          if (types) types[m[1]!] = (types[m[1]!] ?? 0) + 1;
        }
      });
      res.on('end', () => done(null));
      res.on('close', () => done(res.complete ? null : 'stream closed before its end'));
      res.on('error', (e) => done(e.message));
    });
    req.on('error', (e) => done(e.message));
  });
}

/** Fetches `path` every `everyMs` until stopped; one request at a time, like a Prometheus target. */
function startScraper(port: number, path: string, everyMs: number, agent: Agent, runEnded: () => boolean): { stats: ScrapeStats; stop: () => Promise<void> } {
  const stats: ScrapeStats = { path, ok: 0, failed: 0, latenciesMs: [], bytes: 0 };
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const next = performance.now() + everyMs;
      try {
        const r = await fetchOnce(port, path, agent);
        if (r.status === 200) {
          stats.ok++;
          stats.latenciesMs.push(r.ms);
          stats.bytes += r.bytes;
        } else stats.failed++;
      } catch {
        // Refused once the run has ended is the server closing, as it should: not a failure.
        if (!stopped && !runEnded()) stats.failed++;
      }
      const wait = next - performance.now();
      if (wait > 0 && !stopped) await sleep(wait);
    }
  })();
  return {
    stats,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

/** Guild's own VmRSS (the process, not its agents) every `RSS_EVERY_MS`. */
function startRssSampler(pid: number): { now: () => number | null; stop: () => { peak: number; samples: number } } {
  let peak = 0;
  let samples = 0;
  const tick = (): number | null => {
    const b = vmRss(pid);
    if (b !== null) {
      samples++;
      if (b > peak) peak = b;
    }
    return b;
  };
  tick();
  const timer = setInterval(tick, RSS_EVERY_MS);
  return {
    now: tick,
    stop: () => {
      clearInterval(timer);
      return { peak, samples };
    },
  };
}

/** The watchers of a dashboard run: waits for /api/state, then attaches the clients and scrapers. */
async function watch(port: number, spawnedAt: number, exited: () => boolean, rssNow: () => number | null): Promise<{ obs: DashboardObs; finish: () => Promise<void> }> {
  const obs: DashboardObs = { port, stateReadyMs: null, rssAllAttachedBytes: null, clients: [], eventTypes: {}, scrapes: [] };
  while (!exited()) {
    try {
      if ((await fetchOnce(port, '/api/state', false)).status === 200) {
        obs.stateReadyMs = performance.now() - spawnedAt;
        break;
      }
    } catch {
      // Not listening yet.
    }
    await sleep(STATE_POLL_MS);
  }
  if (obs.stateReadyMs === null) return { obs, finish: async () => undefined };

  const streams: Promise<void>[] = [];
  for (let i = 0; i < SSE_CLIENTS; i++) {
    const stats: ClientStats = { status: null, connectedMs: null, events: 0, bytes: 0, sawEnd: false, error: null };
    obs.clients.push(stats);
    streams.push(sseClient(port, spawnedAt, stats, i === 0 ? obs.eventTypes : null));
  }
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const ended = (): boolean => exited() || obs.clients.some((c) => c.sawEnd);
  const scrapers = [startScraper(port, '/metrics', METRICS_EVERY_MS, agent, ended), startScraper(port, '/api/state', STATE_EVERY_MS, agent, ended)];
  obs.scrapes = scrapers.map((s) => s.stats);
  // Guild's RSS once all 50 have their headers: the cost of attaching, before the run's growth.
  void (async () => {
    while (!exited() && obs.clients.some((c) => c.status === null && c.error === null)) await sleep(10);
    if (!exited()) obs.rssAllAttachedBytes = rssNow();
  })();

  return {
    obs,
    finish: async () => {
      await Promise.all(scrapers.map((s) => s.stop()));
      agent.destroy();
      const timeout = sleep(CLIENT_DRAIN_MS).then(() => 'timeout' as const);
      if ((await Promise.race([Promise.all(streams), timeout])) === 'timeout') {
        for (const c of obs.clients) if (!c.sawEnd && c.error === null) c.error = `stream still open ${CLIENT_DRAIN_MS} ms after Guild exited`;
      }
    },
  };
}

async function runOnce(config: ConfigName, round: number, yaml: string, base: string): Promise<RunResult> {
  const dir = mkdtempSync(join(base, `${config}-`));
  const file = join(dir, 'memory-bound.yaml');
  writeFileSync(file, yaml);
  const port = config === 'dashboard' ? await freePort() : 0;
  const flags = config === 'off' ? ['--no-telemetry'] : config === 'dashboard' ? ['--dashboard', String(port)] : [];
  const t0 = performance.now();
  const child = spawn(process.execPath, [GUILD_BIN, 'run', file, '--json', '--budget', BUDGET, '--progress', 'none', ...flags], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let hasExited = false;
  const exit = waitExit(child).then((code) => ((hasExited = true), code));
  const rss = startRssSampler(child.pid!);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const watcher = config === 'dashboard' ? watch(port, t0, () => hasExited, rss.now) : null;
  const code = await exit;
  const wallMs = performance.now() - t0;
  const ext = rss.stop();
  const w = watcher ? await watcher : null;
  await w?.finish();
  rmSync(dir, { recursive: true, force: true });

  let report: RunReport;
  try {
    report = JSON.parse(stdout) as RunReport;
  } catch {
    throw new Error(`guild (${config}) exited ${code} without a JSON report:\n${stderr.slice(-2000)}`);
  }
  const notes: string[] = [];
  if (code !== 0 || !report.ok) notes.push(`exit ${code}; ${stderr.slice(-300)}`);
  if (w && w.obs.stateReadyMs === null) notes.push('/api/state never answered');
  return {
    config,
    round,
    makespanMs: report.makespan_ms,
    wallMs,
    reportRssPeakBytes: report.guild_health.rss_peak_bytes,
    externalRssPeakBytes: ext.peak,
    rssSamples: ext.samples,
    eventLoopP99Ms: report.guild_health.event_loop_delay_p99_ms,
    hasKpis: report.kpis !== null,
    lowerBoundMs: report.lower_bound_ms,
    admissions: report.admissions,
    pressure: report.pressure,
    guildKills: report.guild_kills,
    ok: notes.length === 0,
    ...(notes.length > 0 ? { note: notes.join('; ') } : {}),
    ...(w ? { dashboard: w.obs } : {}),
  };
}

export interface DashboardOverheadSummary {
  config: ConfigName;
  label: string;
  makespanMs: number;
  wallMs: number;
  /** Median over rounds of makespan(config) / makespan(off) of the same round. */
  makespanOverOff: number;
  reportRssPeakBytes: number;
  externalRssPeakBytes: number;
  eventLoopP99Ms: number;
  ok: boolean;
}

export interface DashboardOverheadResult {
  rounds: number;
  runs: RunResult[];
  perRound: { round: number; dashboardOverOff: number; telemetryOverOff: number }[];
  summary: DashboardOverheadSummary[];
  headline: {
    dashboardOverOff: number;
    telemetryOverOff: number;
    makespanGoalMet: boolean;
    /** Worst round, the larger of the report's and the external sampler's peaks. */
    guildRssWithClientsWorstBytes: number;
    guildRssWithClientsMedianReportBytes: number;
    guildRssWithClientsMedianExternalBytes: number;
    rssGoalMet: boolean;
    clientsMissingEnd: number;
    clientsTotal: number;
  };
}

export async function main(): Promise<DashboardOverheadResult> {
  const rounds = Math.max(1, argNumber('rounds', 3));
  const sims = simulators(SEED);
  const yaml = workflowYaml(sims);
  console.log(
    `dashboard-overhead: the memory-bound workload (${sims.length} simulators, seed 0x${SEED.toString(16)}, budget ${BUDGET}) ` +
      `off / telemetry / dashboard + ${SSE_CLIENTS} SSE clients + /metrics every ${METRICS_EVERY_MS / 1000} s; ${rounds} round(s), order rotated`,
  );
  const base = mkdtempSync(join(tmpdir(), 'guild-bench-dash-'));
  const runs: RunResult[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      // Rotate the order each round so slow drift in machine load spreads over every configuration.
      for (let k = 0; k < CONFIGS.length; k++) {
        const c = CONFIGS[(k + r) % CONFIGS.length]!;
        process.stdout.write(`  round ${r + 1}/${rounds}: ${c.label.padEnd(22)} … `);
        const x = await runOnce(c.name, r, yaml, base);
        runs.push(x);
        const sse = x.dashboard ? `; SSE ${x.dashboard.clients.filter((s) => s.sawEnd).length}/${x.dashboard.clients.length} got end, median ${median(x.dashboard.clients.map((s) => s.events))} events` : '';
        console.log(`makespan ${fmtMs(x.makespanMs)}, Guild RSS ${fmtMB(x.reportRssPeakBytes)} (VmRSS ${fmtMB(x.externalRssPeakBytes)})${sse}${x.ok ? '' : ` — ${x.note}`}`);
      }
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }

  const of = (config: ConfigName): RunResult[] => runs.filter((x) => x.config === config);
  const inRound = (config: ConfigName, r: number): RunResult => runs.find((x) => x.config === config && x.round === r)!;
  const perRound = Array.from({ length: rounds }, (_, r) => ({
    round: r + 1,
    dashboardOverOff: inRound('dashboard', r).makespanMs / inRound('off', r).makespanMs,
    telemetryOverOff: inRound('telemetry', r).makespanMs / inRound('off', r).makespanMs,
  }));
  const summary: DashboardOverheadSummary[] = CONFIGS.map(({ name, label }) => {
    const rs = of(name);
    return {
      config: name,
      label,
      makespanMs: median(rs.map((x) => x.makespanMs)),
      wallMs: median(rs.map((x) => x.wallMs)),
      makespanOverOff: median(perRound.map((p) => (name === 'off' ? 1 : name === 'dashboard' ? p.dashboardOverOff : p.telemetryOverOff))),
      reportRssPeakBytes: median(rs.map((x) => x.reportRssPeakBytes)),
      externalRssPeakBytes: median(rs.map((x) => x.externalRssPeakBytes)),
      eventLoopP99Ms: median(rs.map((x) => x.eventLoopP99Ms)),
      ok: rs.every((x) => x.ok),
    };
  });

  const dash = of('dashboard');
  const clients = dash.flatMap((x) => x.dashboard?.clients ?? []);
  const perRun = (f: (o: DashboardObs) => number): number => median(dash.map((x) => (x.dashboard ? f(x.dashboard) : NaN)));
  const sse = {
    eventsMin: perRun((o) => Math.min(...o.clients.map((c) => c.events))),
    eventsMedian: perRun((o) => median(o.clients.map((c) => c.events))),
    eventsMax: perRun((o) => Math.max(...o.clients.map((c) => c.events))),
    bytesMedian: perRun((o) => median(o.clients.map((c) => c.bytes))),
    bytesTotal: perRun((o) => o.clients.reduce((a, c) => a + c.bytes, 0)),
    lastConnectMs: perRun((o) => Math.max(...o.clients.map((c) => c.connectedMs ?? NaN))),
    stateReadyMs: perRun((o) => o.stateReadyMs ?? NaN),
  };

  console.log('');
  const dash0 = (x: DashboardOverheadSummary, s: string): string => (x.config === 'dashboard' ? s : '—');
  printTable(
    ['configuration', 'makespan', 'wall', 'makespan/off', 'Guild RSS (report)', 'Guild VmRSS (100 ms)', 'loop p99', 'SSE events/client min/med', 'SSE bytes/client', 'all ok'],
    summary.map((s) => [
      s.label,
      fmtMs(s.makespanMs),
      fmtMs(s.wallMs),
      s.config === 'off' ? '1.000' : s.makespanOverOff.toFixed(3),
      fmtMB(s.reportRssPeakBytes),
      fmtMB(s.externalRssPeakBytes),
      `${s.eventLoopP99Ms.toFixed(1)} ms`,
      dash0(s, `${sse.eventsMin} / ${sse.eventsMedian}`),
      dash0(s, `${(sse.bytesMedian / 1024).toFixed(0)} KiB`),
      s.ok ? 'yes' : 'NO',
    ]),
  );
  console.log(`(medians of ${rounds} round(s); makespan/off = median of the per-round ratios, each against the off run of the same round)`);
  for (const x of dash) {
    const missing = x.dashboard?.clients.filter((c) => !c.sawEnd) ?? [];
    if (x.dashboard && x.dashboard.clients.length < SSE_CLIENTS) console.log(`WARNING  round ${x.round + 1}: only ${x.dashboard.clients.length}/${SSE_CLIENTS} SSE clients were attached (${x.note ?? ''})`);
    if (missing.length > 0) {
      const why = [...new Set(missing.map((c) => c.error ?? 'stream ended without it'))].join('; ');
      console.log(`WARNING  round ${x.round + 1}: ${missing.length}/${x.dashboard!.clients.length} SSE clients did not receive the final end event (${why})`);
    }
  }

  const dashOverOff = median(perRound.map((p) => p.dashboardOverOff));
  const telOverOff = median(perRound.map((p) => p.telemetryOverOff));
  const worstRss = Math.max(...dash.map((x) => Math.max(x.reportRssPeakBytes, x.externalRssPeakBytes)));
  const clientsMissingEnd = clients.filter((c) => !c.sawEnd).length + dash.reduce((a, x) => a + (SSE_CLIENTS - (x.dashboard?.clients.length ?? 0)), 0);
  const headline: DashboardOverheadResult['headline'] = {
    dashboardOverOff: dashOverOff,
    telemetryOverOff: telOverOff,
    makespanGoalMet: dashOverOff <= MAKESPAN_GOAL,
    guildRssWithClientsWorstBytes: worstRss,
    guildRssWithClientsMedianReportBytes: summary[2]!.reportRssPeakBytes,
    guildRssWithClientsMedianExternalBytes: summary[2]!.externalRssPeakBytes,
    rssGoalMet: worstRss < RSS_GOAL_BYTES,
    clientsMissingEnd,
    clientsTotal: SSE_CLIENTS * dash.length,
  };
  const rs = (f: (p: (typeof perRound)[number]) => number): string => perRound.map((p) => f(p).toFixed(3)).join(', ');
  console.log('');
  console.log(
    `makespan dashboard + ${SSE_CLIENTS} SSE / off: ${dashOverOff.toFixed(3)} (median of per-round ratios ${rs((p) => p.dashboardOverOff)}; goal <= ${MAKESPAN_GOAL}: ${headline.makespanGoalMet ? 'met' : 'MISSED'})`,
  );
  console.log(`makespan telemetry / off:            ${telOverOff.toFixed(3)} (median of per-round ratios ${rs((p) => p.telemetryOverOff)})`);
  console.log(
    `Guild peak RSS with ${SSE_CLIENTS} SSE clients: ${fmtMB(headline.guildRssWithClientsMedianReportBytes)} (report), ${fmtMB(headline.guildRssWithClientsMedianExternalBytes)} (external VmRSS) median; ` +
      `worst round ${fmtMB(worstRss)} (goal < ${fmtMB(RSS_GOAL_BYTES)}: ${headline.rssGoalMet ? 'met' : 'MISSED'})`,
  );
  const growth = median(Array.from({ length: rounds }, (_, r) => inRound('dashboard', r).externalRssPeakBytes - inRound('telemetry', r).externalRssPeakBytes));
  const atAttach = perRun((o) => o.rssAllAttachedBytes ?? NaN);
  console.log(`Guild VmRSS peak, dashboard + clients − telemetry alone (same round): ${growth >= 0 ? '+' : ''}${fmtMB(growth)} median; VmRSS once all ${SSE_CLIENTS} clients were attached: ${fmtMB(atAttach)}`);
  console.log(
    `SSE: ${headline.clientsTotal - clientsMissingEnd}/${headline.clientsTotal} clients received the final end event; events per client min ${sse.eventsMin}, median ${sse.eventsMedian}, max ${sse.eventsMax}; ` +
      `${(sse.bytesMedian / 1024).toFixed(0)} KiB per client, ${(sse.bytesTotal / MB).toFixed(1)} MB to all ${SSE_CLIENTS}; /api/state first answered ${fmtMs(sse.stateReadyMs)} after spawn, last client attached ${fmtMs(sse.lastConnectMs)} (medians)`,
  );
  const last = dash[dash.length - 1]?.dashboard;
  if (last) console.log(`event types (last round, client 0): ${JSON.stringify(last.eventTypes)}`);
  for (const path of ['/metrics', '/api/state']) {
    const ss = dash.flatMap((x) => x.dashboard?.scrapes.filter((s) => s.path === path) ?? []);
    const lat = ss.flatMap((s) => s.latenciesMs);
    if (ss.length === 0) continue;
    console.log(
      `scrapes of ${path}: ${ss.reduce((a, s) => a + s.ok, 0)} ok, ${ss.reduce((a, s) => a + s.failed, 0)} failed; latency median ${median(lat).toFixed(1)} ms, max ${Math.max(...lat).toFixed(1)} ms; ` +
        `${(median(ss.map((s) => s.bytes / Math.max(1, s.ok))) / 1024).toFixed(1)} KiB per response`,
    );
  }

  const result: DashboardOverheadResult = { rounds, runs, perRound, summary, headline };
  const file = writeResult('dashboard-overhead', {
    benchmark: 'dashboard-overhead',
    environment: environment(),
    settings: { seed: SEED, budget: BUDGET, sseClients: SSE_CLIENTS, metricsEveryMs: METRICS_EVERY_MS, stateEveryMs: STATE_EVERY_MS, rssEveryMs: RSS_EVERY_MS, statePollMs: STATE_POLL_MS },
    ...result,
  });
  console.log(`wrote ${file}`);
  return result;
}

if (isMain(import.meta.url)) await main();
