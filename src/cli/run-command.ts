import { DEFAULTS } from '../config/defaults.js';
import { GuildError } from '../errors.js';
import type { DashboardServer, DashboardSource } from '../dashboard/server.js';
import type { AlertRecord, WorkersSnapshot } from '../telemetry/state.js';
import type { GatewayStatus } from '../telemetry/mcp-status.js';
import type { RunEvent } from '../workflow/events.js';
import type { RunLockHolder } from '../store/lease.js';
import { EXIT, exit, fail, onHangup, writeOut } from './exit.js';
import type { RunOpts } from './run-options.js';

/**
 * `guild run <file>`: loads the workflow (in a child process), runs it with progress, telemetry
 * and the dashboard as its flags say, prints the summary or the JSON report, and exits with the
 * run's code. Reached through commander (main.ts) or, for a plain command line, straight from
 * bin/guild.js (run-main.ts), so that a waiting run does not hold commander.
 */
export async function runCommand(file: string, opts: RunOpts): Promise<never> {
  const flags = {
    ...(opts.budget !== undefined ? { budget: opts.budget } : {}),
    ...(opts.maxParallel !== undefined ? { maxParallel: opts.maxParallel } : {}),
    ...(opts.keepGoing ? { keepGoing: true } : {}),
    ...(opts.cache === false ? { noCache: true } : {}),
  };
  // The file loads in a child process while this one loads the run: YAML, zod and the config
  // modules never enter the memory this process keeps while it waits on agents (config/load-isolated.ts).
  const { loadConfigIsolated } = await import('../config/load-isolated.js');
  const loading = loadConfigIsolated(file, flags);
  loading.catch(() => undefined); // awaited below, once the run's modules are loaded
  const { runResolved } = await import('../workflow/run-resolved.js');
  const { createSystemProbe } = await import('../system/probe.js');
  const { createProgress } = await import('./progress.js');
  const { liveGroups } = await import('../executors/process-groups.js');
  const { idleMemoryReducer } = await import('../system/idle-memory.js');
  const probe = createSystemProbe();
  let config;
  try {
    config = await loading; // every config error exits 2 before anything starts
  } catch (e) {
    fail(e);
  }
  // Distributed: the tasks go to `guild worker`s; the loop, summary and report stay this run's.
  const redisUrl = opts.redis ?? config.distributed?.redisUrl;
  let cluster = null;
  try {
    if (redisUrl !== undefined) cluster = (await import('../distributed/cluster-run.js')).clusterRun(config, { redisUrl });
  } catch (e) {
    fail(e);
  }
  if (cluster) config = cluster.config;
  const ac = new AbortController();
  let exitSignal: 'SIGINT' | 'SIGTERM' | null = null;
  const onSignal = (sig: 'SIGINT' | 'SIGTERM', hangup = false) => (): void => {
    // A closed terminal ends the run like SIGTERM: the same orderly stop, recorded `interrupted`.
    if (hangup) onHangup();
    if (exitSignal !== null) {
      // A second signal: stop waiting for graceful TERM. The exit hook SIGKILLs every group.
      process.stderr.write(`guild: ${hangup ? 'SIGHUP' : sig} again: killing ${liveGroups().length} process group(s) now\n`);
      exit(sig === 'SIGINT' ? 130 : 143);
    }
    exitSignal = sig;
    process.stderr.write(`\nguild: ${hangup ? 'SIGHUP' : sig}: cancelling queued tasks, stopping running ones (again to force)\n`);
    ac.abort();
  };
  const handlers = { SIGINT: onSignal('SIGINT'), SIGTERM: onSignal('SIGTERM'), SIGHUP: onSignal('SIGTERM', true) };
  for (const [sig, h] of Object.entries(handlers)) process.on(sig, h);

  const mode = opts.progress === 'auto' ? (process.stderr.isTTY ? 'tty' : 'plain') : opts.progress;
  const progress = mode === 'none' ? undefined : createProgress(process.stderr, mode === 'tty');
  const telemetryOn = opts.telemetry && config.telemetry.enabled;
  if (opts.dashboard !== undefined && !telemetryOn) fail(new GuildError('USAGE', '--dashboard needs telemetry (drop --no-telemetry, or set telemetry.enabled: true)'));
  let telemetry;
  let dashboard;
  let metrics = null;
  let gatewayStatus: (() => GatewayStatus) | null = null;
  if (telemetryOn) {
    const { RunTelemetry } = await import('../telemetry/run-telemetry.js');
    // Alerts reach the log through telemetry, de-duplicated; the run's own alert events are not printed twice.
    const onAlert = (a: AlertRecord): void => progress?.({ type: 'alert', t: a.at_ms, severity: a.severity, message: a.message, rule: a.rule, key: a.key });
    const onWebhookError = (m: string): void => void process.stderr.write(`guild: ${m}\n`);
    if (opts.dashboard !== undefined) {
      const { GuildMetrics } = await import('../telemetry/metrics.js');
      metrics = new GuildMetrics({ agents: Object.keys(config.agents) });
    }
    try {
      const t = (telemetry = new RunTelemetry(config, { onAlert, onWebhookError, metrics }));
      // Distributed: the workers' heartbeats the submitter reads anyway reach the dashboard, `guild status` and /metrics.
      if (cluster) t.watchWorkers(cluster.queue, cluster.workers);
      const feeds = { ...(config.mcp && { mcp: () => gatewayStatus?.() ?? null }), ...(cluster && { workers: () => t.workers() }) };
      if (opts.dashboard !== undefined) dashboard = await serveDashboard(t, opts, feeds);
    } catch (e) {
      telemetry?.close();
      probe.close();
      fail(e);
    }
  }
  const shown = progress && telemetry ? (e: RunEvent): void => void (e.type !== 'alert' && progress(e)) : progress;
  // Once the agents are started and the run waits on them, V8's heap gives back what the burst
  // of starts grew (system/idle-memory.ts); a library user's process is left to V8.
  const reducer = idleMemoryReducer();
  const onEvent = reducer
    ? (e: RunEvent): void => {
        if (e.type === 'run-start' || e.type === 'task-start' || e.type === 'task-end') reducer.activity();
        shown?.(e);
      }
    : shown;
  // `mcp:` beside tasks: the run's own MCP gateway, for as long as the run lasts.
  const services = config.mcp
    ? (await import('../gateway/run-services.js')).gatewayServices(config, {
        ...(metrics !== null && { registry: (metrics as { registry: import('prom-client').Registry }).registry }),
        onStarted: (status) => void (gatewayStatus = status),
      })
    : null;
  let report;
  try {
    await benchQuiet(opts.wait, ac.signal);
    const onWait = await lockWaitNotice();
    report = await runResolved(config, { probe, signal: ac.signal, telemetry: telemetry ?? false, wait: opts.wait, onWait, ...(onEvent ? { onEvent } : {}), ...(services ? { services } : {}), ...(cluster && { executors: cluster.executors, services: cluster.services, remoteAdmission: true }) });
  } catch (e) {
    await dashboard?.close();
    telemetry?.close();
    // Interrupted while waiting for the run lock: nothing ran; exit as the signal says.
    if (exitSignal !== null && ((e instanceof GuildError && e.code === 'LOCKED') || (e as Error).name === 'AbortError')) exit(exitSignal === 'SIGINT' ? 130 : 143);
    fail(e);
  } finally {
    reducer?.stop();
    probe.close();
  }
  // The summary's formatting loads once the run is over: a waiting run does not hold it.
  await writeOut(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${(await import('./summary.js')).formatSummary(report)}\n`);
  const code = exitSignal ? (exitSignal === 'SIGINT' ? 130 : 143) : report.ok ? EXIT.ok : EXIT.failed;
  if (dashboard) {
    const linger = opts.dashboardLinger ?? 0;
    if (linger > 0 && !exitSignal) {
      // The run is over: a signal now only ends the linger, and the exit code stays the run's.
      for (const [sig, h] of Object.entries(handlers)) process.off(sig, h);
      process.stderr.write(`guild: the run ended; the dashboard stays at ${dashboard.url} for ${linger} s (Ctrl-C to stop)\n`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, linger * 1000);
        for (const sig of Object.keys(handlers)) process.once(sig, () => (clearTimeout(timer), resolve()));
      });
    }
    await dashboard.close();
  }
  telemetry?.close();
  exit(code);
}

const { host: DASHBOARD_HOST, port: DASHBOARD_PORT } = DEFAULTS.dashboard;

/** Starts the dashboard over a source and says where it is (the token is never printed). */
export async function serveDashboard(source: DashboardSource, opts: { dashboard?: number | true; port?: number; host?: string; token?: string }, feeds: { mcp?: () => GatewayStatus | null; workers?: () => WorkersSnapshot | null } = {}): Promise<DashboardServer> {
  const { startDashboard } = await import('../dashboard/server.js');
  const server = await startDashboard({
    source,
    ...feeds,
    host: opts.host ?? DASHBOARD_HOST,
    port: typeof opts.dashboard === 'number' ? opts.dashboard : (opts.port ?? DASHBOARD_PORT),
    ...(opts.token !== undefined ? { token: opts.token } : {}),
  });
  const auth = opts.token || process.env.GUILD_DASHBOARD_TOKEN ? ' (token required: add ?token=… to the URL)' : '';
  process.stderr.write(`guild: dashboard on ${server.url}${auth}; metrics at ${server.url}metrics\n`);
  return server;
}

/**
 * While `guild bench` measures on this machine, a run waits for it (saying so once), or with
 * --no-wait refuses: its work would be in the benchmark's figures.
 */
async function benchQuiet(wait: boolean, signal: AbortSignal): Promise<void> {
  const { foreignBenchHolder, waitWhileBenchLocked } = await import('../system/bench-lock.js');
  const notice = (h: { pid: number }): string => `guild bench (pid ${h.pid}) is measuring on this machine`;
  if (!wait) {
    const h = foreignBenchHolder();
    if (h !== null) throw new GuildError('LOCKED', `${notice(h)}; not waiting (--no-wait)`);
    return;
  }
  await waitWhileBenchLocked({ signal, onWait: (h) => void process.stderr.write(`guild: ${notice(h)}; waiting for it to finish; --no-wait to refuse\n`) });
}

/** Says once that a command waits for the folder's run lock (and how not to). */
export async function lockWaitNotice(): Promise<(h: RunLockHolder) => void> {
  const { describeLockHolder } = await import('../store/lease.js');
  return (h) => void process.stderr.write(`guild: waiting for ${describeLockHolder(h)} to finish; --no-wait to refuse\n`);
}
