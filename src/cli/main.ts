import { closeSync, existsSync, readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { DEFAULTS } from '../config/defaults.js';
import { ConfigErrors, EXIT_CODE_OF, GuildError } from '../errors.js';
import type { DashboardServer, DashboardSource } from '../dashboard/server.js';
import type { AlertRecord, WorkersSnapshot } from '../telemetry/state.js';
import type { GatewayStatus } from '../telemetry/mcp-status.js';
import type { RunEvent } from '../workflow/events.js';
import type { RunLockHolder } from '../store/lease.js';
import { addBenchCommands } from './bench-commands.js';
import { addMcpCommands } from './mcp-commands.js';
import { addWorkerCommands, queueName, redisUrl } from './worker-commands.js';

/**
 * The `guild` command: parses flags, calls the library, prints. The only place that calls
 * process.exit. Heavy modules load lazily so `guild --version` starts fast.
 *
 * Exit codes: 0 all tasks succeeded; 1 a task failed (or the store, a probe, the cache, a
 * dashboard, a run or the folder's run lock — LOCKED, `run --no-wait` — was unavailable);
 * 2 usage or config error; 130 / 143 interrupted by SIGINT / SIGTERM (SIGHUP counts as SIGTERM).
 */
const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

function fail(e: unknown): never {
  if (e instanceof GuildError) {
    process.stderr.write(`guild: ${e instanceof ConfigErrors && e.errors.length > 1 ? `invalid configuration:\n${indent(e.message)}` : e.message}\n`);
    exit(EXIT_CODE_OF[e.code]);
  }
  process.stderr.write(`guild: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  exit(EXIT.failed);
}

const indent = (s: string): string =>
  s
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');

const { host: DASHBOARD_HOST, port: DASHBOARD_PORT } = DEFAULTS.dashboard;

interface RunOpts {
  budget?: string;
  maxParallel?: number;
  keepGoing?: boolean;
  cache: boolean;
  json?: boolean;
  progress: string;
  dashboard?: number | true;
  host?: string;
  token?: string;
  dashboardLinger?: number;
  telemetry: boolean;
  wait: boolean;
  redis?: string;
}

/**
 * After SIGHUP the terminal may be gone: every write to it fails with EIO, and Node's exit (which
 * restores the terminal's modes) aborts when tcsetattr fails. So the errors are swallowed, and
 * before exiting the standard descriptors are closed: Node leaves closed ones alone.
 */
let hungUp = false;
const ignoreStreamError = (): void => undefined;
function onHangup(): void {
  if (hungUp) return;
  hungUp = true;
  process.stdout.on('error', ignoreStreamError);
  process.stderr.on('error', ignoreStreamError);
}
function exit(code: number): never {
  if (hungUp) {
    for (const fd of [0, 1, 2]) {
      try {
        closeSync(fd);
      } catch {
        /* already closed */
      }
    }
  }
  process.exit(code);
}

/**
 * Writes to stdout and waits until it is written. Into a pipe, stdout takes what fits and queues
 * the rest, which exit() would drop: a --json report of a few hundred tasks came out cut at 64 KiB.
 * A reader that went away (EPIPE, `| head`) ends the wait; its error is ignored, as before.
 */
function writeOut(text: string): Promise<void> {
  process.stdout.on('error', ignoreStreamError);
  return new Promise((resolve) => process.stdout.write(text, () => resolve()));
}

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`Expected a port from 0 to 65535, got '${v}'.`);
  return n;
}

function nonNegative(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`Expected a number >= 0, got '${v}'.`);
  return n;
}

/** Starts the dashboard over a source and says where it is (the token is never printed). */
async function serveDashboard(source: DashboardSource, opts: { dashboard?: number | true; port?: number; host?: string; token?: string }, feeds: { mcp?: () => GatewayStatus | null; workers?: () => WorkersSnapshot | null } = {}): Promise<DashboardServer> {
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

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`Expected a whole number >= 1, got '${v}'.`);
  return n;
}

const program = new Command('guild')
  .description('Run multi-agent development workflows as fast as memory and CPU allow, and never more than fit.')
  .version(pkg.version, '-v, --version')
  .showHelpAfterError('(run guild --help for usage)')
  // An option belongs to the command it follows: `guild bench history --json` is history's, not bench's.
  .enablePositionalOptions()
  .exitOverride();

program
  .command('run')
  .description('run a workflow file')
  .argument('<file>', 'workflow file (YAML)')
  .option('--budget <size>', 'memory budget for agents, e.g. 1.5GB (default: workflow, instructions.md, else 75% of the effective limit)')
  .option('--max-parallel <n>', 'at most N tasks at once', positiveInt)
  .option('--keep-going', 'keep running independent tasks after a failure')
  .option('--no-cache', 'run every task and store nothing (task memoization off for this run)')
  .option('--json', 'print one JSON document with the results on stdout (progress goes to stderr)')
  .addOption(new Option('--progress <mode>', 'progress display').choices(['auto', 'tty', 'plain', 'none']).default('auto'))
  .option('--dashboard [port]', `serve the live dashboard, /metrics and the API (default port ${DASHBOARD_PORT})`, port)
  .option('--host <address>', `address the dashboard binds (default ${DASHBOARD_HOST}; any other needs a token)`)
  .option('--token <token>', 'token every dashboard request must carry (default: $GUILD_DASHBOARD_TOKEN)')
  .option('--dashboard-linger <seconds>', 'keep serving the dashboard this long after the run ends', nonNegative)
  .option('--no-telemetry', 'no KPIs, alerts or history for this run')
  .option('--no-wait', "if another run in this folder is still going, exit 1 (LOCKED) instead of waiting for it")
  .option('--redis <url>', 'run the tasks on guild workers through BullMQ on this Redis (default: the file\'s distributed.redis; needs GUILD_CLUSTER_KEY)')
  .action(async (file: string, opts: RunOpts) => {
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
  });

program
  .command('init')
  .description('write a starter workflow')
  .argument('[file]', 'where to write it', 'guild.yaml')
  .option('--force', 'overwrite an existing file')
  .action(async (file: string, opts: { force?: boolean }) => {
    const { existsSync, writeFileSync } = await import('node:fs');
    const { STARTER_WORKFLOW } = await import('./init-template.js');
    if (existsSync(file) && !opts.force) {
      process.stderr.write(`guild: ${file} exists; use --force to overwrite it\n`);
      process.exit(EXIT.usage);
    }
    writeFileSync(file, STARTER_WORKFLOW);
    process.stdout.write(`wrote ${file}; run it with: guild run ${file}\n`);
  });

program
  .command('profiles')
  .description('declared vs learned memory and duration per agent type, from the run history')
  .argument('[file]', 'workflow file', 'guild.yaml')
  .option('--json', 'print JSON')
  .action(async (file: string, opts: { json?: boolean }) => {
    const { loadConfig } = await import('../workflow/run-workflow.js');
    const { agentProfiles } = await import('../workflow/profiles.js');
    const { formatProfiles } = await import('./profiles-format.js');
    let profiles;
    try {
      profiles = agentProfiles(loadConfig(file));
    } catch (e) {
      fail(e);
    }
    process.stdout.write(opts.json ? `${JSON.stringify(profiles, null, 2)}\n` : `${formatProfiles(profiles)}\n`);
  });

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
async function lockWaitNotice(): Promise<(h: RunLockHolder) => void> {
  const { describeLockHolder } = await import('../store/lease.js');
  return (h) => void process.stderr.write(`guild: waiting for ${describeLockHolder(h)} to finish; --no-wait to refuse\n`);
}

/**
 * A workflow file named with -w must exist: a typo must not serve or change the store of the
 * current folder. The default (guild.yaml) may be absent where a run left `.guild/`.
 */
function namedWorkflow(cmd: Command): string {
  const file = cmd.getOptionValue('workflow') as string;
  if (cmd.getOptionValueSource('workflow') !== 'default' && !existsSync(file)) {
    throw new GuildError('NOT_FOUND', `no workflow file at ${file}`);
  }
  return file;
}

const cache = program.command('cache').description("the workflow's cache: statistics, clearing, pruning");
const workflowOption = new Option('-w, --workflow <file>', 'workflow file whose cache (its .guild/guild.db, Redis if configured) to use').default('guild.yaml');

cache
  .command('stats')
  .description('entries, bytes, hits, misses and evictions per tier and namespace, summed over every run')
  .addOption(workflowOption)
  .option('--json', 'print JSON')
  .action(async (opts: { workflow: string; json?: boolean }, cmd: Command) => {
    const { cacheStats } = await import('../cache/admin.js');
    const { formatCacheStats } = await import('./cache-format.js');
    try {
      const stats = await cacheStats(namedWorkflow(cmd));
      process.stdout.write(opts.json ? `${JSON.stringify(stats, null, 2)}\n` : `${formatCacheStats(stats)}\n`);
    } catch (e) {
      fail(e);
    }
  });

cache
  .command('clear')
  .description('remove every entry of a namespace (e.g. routing, tasks), or of all namespaces, in every tier')
  .argument('[namespace]', 'namespace to clear (default: all)')
  .addOption(workflowOption)
  .option('--no-wait', 'fail (exit 1, LOCKED) instead of waiting while a run holds the folder')
  .action(async (namespace: string | undefined, opts: { workflow: string; wait: boolean }, cmd: Command) => {
    const { clearCache } = await import('../cache/admin.js');
    try {
      const removed = await clearCache(namedWorkflow(cmd), namespace, { wait: opts.wait, onWait: await lockWaitNotice() });
      const parts = Object.entries(removed).map(([tier, n]) => `${n} from ${tier}`);
      process.stdout.write(`cleared ${namespace ? `namespace '${namespace}'` : 'every namespace'}: ${parts.join(', ')}\n`);
    } catch (e) {
      fail(e);
    }
  });

cache
  .command('prune')
  .description('remove expired entries, then the least recently used beyond the byte and entry caps')
  .addOption(workflowOption)
  .option('--no-wait', 'fail (exit 1, LOCKED) instead of waiting while a run holds the folder')
  .action(async (opts: { workflow: string; wait: boolean }, cmd: Command) => {
    const { pruneCache } = await import('../cache/admin.js');
    try {
      const r = await pruneCache(namedWorkflow(cmd), { wait: opts.wait, onWait: await lockWaitNotice() });
      const parts = Object.entries(r).map(([tier, x]) => `${tier}: ${x.expired} expired, ${x.evicted} over the caps`);
      process.stdout.write(`pruned: ${parts.join('; ')}\n`);
    } catch (e) {
      fail(e);
    }
  });

program
  .command('dashboard')
  .description("serve the dashboard over a workflow's run history (no run)")
  .addOption(new Option('-w, --workflow <file>', 'workflow file whose history (.guild/guild.db) to serve').default('guild.yaml'))
  .option('-p, --port <port>', `port (default ${DASHBOARD_PORT})`, port)
  .option('--host <address>', `address to bind (default ${DASHBOARD_HOST}; any other needs a token)`)
  .option('--token <token>', 'token every request must carry (default: $GUILD_DASHBOARD_TOKEN)')
  .action(async (opts: { workflow: string; port?: number; host?: string; token?: string }, cmd: Command) => {
    const { dirname, resolve } = await import('node:path');
    const { HistorySource } = await import('../dashboard/history-source.js');
    const { GuildMetrics } = await import('../telemetry/metrics.js');
    let source;
    try {
      source = new HistorySource(dirname(resolve(namedWorkflow(cmd))), new GuildMetrics({ agents: [] }));
      const server = await serveDashboard(source, opts);
      const stop = (): void => void server.close().then(() => process.exit(EXIT.ok));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    } catch (e) {
      source?.close();
      fail(e);
    }
  });

program
  .command('status')
  .description('the state of a running Guild, from its dashboard API')
  .option('--url <url>', `the dashboard's address (default http://${DASHBOARD_HOST}:${DASHBOARD_PORT}/)`)
  .option('--token <token>', 'its token (default: $GUILD_DASHBOARD_TOKEN)')
  .option('--json', 'print the /api/state JSON')
  .option('--redis <url>', "instead: a cluster's live workers, read from their heartbeats in this Redis (no run needed)", redisUrl)
  .option('--queue <name>', 'with --redis: the queue family (default guild)', queueName)
  .action(async (opts: { url?: string; token?: string; json?: boolean; redis?: string; queue?: string }) => {
    const { fetchState } = await import('../dashboard/client.js');
    const { formatStatus, formatWorkers } = await import('./status-format.js');
    if (opts.queue !== undefined && opts.redis === undefined) fail(new GuildError('USAGE', '--queue goes with --redis'));
    try {
      if (opts.redis !== undefined) {
        const { readClusterWorkers } = await import('../distributed/cluster-view.js');
        const w = await readClusterWorkers(opts.redis, opts.queue);
        process.stdout.write(opts.json ? `${JSON.stringify(w, null, 2)}\n` : `${formatWorkers(w).join('\n')}\n`);
        return;
      }
      const state = await fetchState(opts.url ?? `http://${DASHBOARD_HOST}:${DASHBOARD_PORT}/`, opts.token ?? process.env.GUILD_DASHBOARD_TOKEN ?? null);
      process.stdout.write(opts.json ? `${JSON.stringify(state, null, 2)}\n` : `${formatStatus(state)}\n`);
    } catch (e) {
      fail(e);
    }
  });

program
  .command('report')
  .description("a past run's report (Markdown, or --json) from the run history")
  .argument('[run]', "a run id, a unique prefix of one, or 'last'", 'last')
  .addOption(new Option('-w, --workflow <file>', 'workflow file whose history (.guild/guild.db) to read').default('guild.yaml'))
  .option('--json', 'print the JSON report (the run --json document with KPIs and alerts)')
  .action(async (ref: string, opts: { workflow: string; json?: boolean }, cmd: Command) => {
    const { readReport } = await import('../telemetry/reports.js');
    try {
      const r = readReport(namedWorkflow(cmd), ref);
      process.stdout.write(opts.json ? `${JSON.stringify(r.json, null, 2)}\n` : r.markdown.endsWith('\n') ? r.markdown : `${r.markdown}\n`);
    } catch (e) {
      fail(e);
    }
  });

program
  .command('doctor')
  .description('show what the system probes measure and which source is in force')
  .option('--json', 'print JSON')
  .action(async (opts: { json?: boolean }) => {
    const { createSystemProbe } = await import('../system/probe.js');
    const { inspectSystem } = await import('../config/doctor.js');
    const { formatDoctor } = await import('./doctor-format.js');
    const probe = createSystemProbe();
    const report = await inspectSystem(probe);
    probe.close();
    process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatDoctor(report)}\n`);
  });

addMcpCommands(program, fail, exit);
addBenchCommands(program, fail, exit);
addWorkerCommands(program, fail, exit);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    process.exit(e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help' ? EXIT.ok : EXIT.usage);
  }
  fail(e);
}
