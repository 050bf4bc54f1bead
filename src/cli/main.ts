import { existsSync, readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { DEFAULTS } from '../config/defaults.js';
import { GuildError } from '../errors.js';
import { addBenchCommands } from './bench-commands.js';
import { EXIT, exit, fail } from './exit.js';
import { addMcpCommands } from './mcp-commands.js';
import { commanderParser, defineRun } from './run-definition.js';
import { parsePort, type RunOpts } from './run-options.js';
import { addWorkerCommands, queueName, redisUrl } from './worker-commands.js';

/**
 * The `guild` command: parses flags, calls the library, prints. Heavy modules load lazily so
 * `guild --version` starts fast; `guild run` with an ordinary command line does not come here at
 * all (run-main.ts). Exit codes: exit.ts.
 */

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

const { host: DASHBOARD_HOST, port: DASHBOARD_PORT } = DEFAULTS.dashboard;

const port = commanderParser(parsePort);

const program = new Command('guild')
  .description('Run multi-agent development workflows as fast as memory and CPU allow, and never more than fit.')
  .version(pkg.version, '-v, --version')
  .showHelpAfterError('(run guild --help for usage)')
  // An option belongs to the command it follows: `guild bench history --json` is history's, not bench's.
  .enablePositionalOptions()
  .exitOverride();

defineRun(program).action(async (file: string, opts: RunOpts) => (await import('./run-command.js')).runCommand(file, opts).catch(fail));

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
      const removed = await clearCache(namedWorkflow(cmd), namespace, { wait: opts.wait, onWait: await (await import('./run-command.js')).lockWaitNotice() });
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
      const r = await pruneCache(namedWorkflow(cmd), { wait: opts.wait, onWait: await (await import('./run-command.js')).lockWaitNotice() });
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
      const server = await (await import('./run-command.js')).serveDashboard(source, opts);
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
