import { writeFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';

// `guild bench [FILE]`, `guild bench compare A B`, `guild bench history`: catching performance
// regressions of a workflow. Heavy modules load inside the actions (`guild --version` stays fast).

function count(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`Expected a positive integer, got '${v}'.`);
  return n;
}

interface BenchOpts {
  workflow?: string;
  scenario?: string;
  against?: string;
  confirm?: boolean;
  repeat?: number;
  excludeDisturbed?: boolean;
  json?: boolean;
  markdown?: string;
  progress: boolean;
}

/** `fail` prints a GuildError and exits with its code; `exit` exits. */
export function addBenchCommands(program: Command, fail: (e: unknown) => never, exit: (code: number) => never): void {
  const workflow = (): Option => new Option('-w, --workflow <file>', 'the workflow file (default guild.yaml)');
  const bench = program
    .command('bench')
    // `bench history --json`: an option after a subcommand is the subcommand's, not bench's own
    // (the program enables positional options too, which commander needs for this to apply).
    .enablePositionalOptions()
    .description('measure a workflow and catch performance regressions: against its stored baseline, or a git revision (--against)')
    .argument('[file]', 'workflow file (default guild.yaml)')
    .addOption(workflow())
    .option('-s, --scenario <name>', 'only this scenario of the bench: section')
    .option('--against <rev>', 'measure this git revision against the working tree, interleaved in one session; ratios with 95 % intervals')
    .option('--confirm', 're-run a scenario that regressed; keep the regression only if it repeats')
    .option('--repeat <n>', "measured runs per scenario (default: the scenario's repeat, 5)", count)
    .option('--exclude-disturbed', 'leave out iterations measured under outside pressure (PSI, other processes’ CPU)')
    .option('--json', 'print the result as JSON')
    .option('--markdown <file>', 'also write a Markdown report (for a pull-request comment)')
    .option('--no-progress', 'no progress lines on stderr')
    .action(async (file: string | undefined, opts: BenchOpts) => {
      const { runBench } = await import('../regression/runner.js');
      const { formatBenchTable, formatBenchMarkdown } = await import('../regression/report.js');
      const ac = new AbortController();
      let signalled: 'SIGINT' | 'SIGTERM' | null = null;
      const onSignal = (sig: 'SIGINT' | 'SIGTERM') => (): void => {
        if (signalled !== null) exit(sig === 'SIGINT' ? 130 : 143);
        signalled = sig;
        process.stderr.write(`\nguild bench: ${sig}: stopping (again to force)\n`);
        ac.abort();
      };
      const handlers = { SIGINT: onSignal('SIGINT'), SIGTERM: onSignal('SIGTERM') };
      process.on('SIGINT', handlers.SIGINT);
      process.on('SIGTERM', handlers.SIGTERM);
      try {
        const result = await runBench({
          file: file ?? opts.workflow ?? 'guild.yaml',
          ...(opts.scenario !== undefined && { scenario: opts.scenario }),
          ...(opts.against !== undefined && { against: opts.against }),
          ...(opts.confirm && { confirm: true }),
          ...(opts.repeat !== undefined && { repeat: opts.repeat }),
          ...(opts.excludeDisturbed && { excludeDisturbed: true }),
          signal: ac.signal,
          onProgress: (p) => {
            if (!opts.progress) return;
            if (p.type === 'waiting') process.stderr.write(`guild bench: waiting for the bench lock (held by pid ${p.holderPid})\n`);
            else
              process.stderr.write(
                `guild bench: ${p.scenario}${p.side ? ` [${p.side}]` : ''} ${p.warmup ? 'warm-up' : 'run'} ${p.index}/${p.of}: ${(p.ms / 1000).toFixed(2)} s${p.disturbed ? ' (disturbed)' : ''}\n`,
              );
          },
        });
        if (signalled !== null) exit(signalled === 'SIGINT' ? 130 : 143);
        if (opts.markdown !== undefined) writeFileSync(opts.markdown, formatBenchMarkdown(result));
        process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatBenchTable(result, { color: process.stdout.isTTY === true })}\n`);
        exit(result.exitCode);
      } catch (e) {
        if (signalled !== null) exit(signalled === 'SIGINT' ? 130 : 143);
        fail(e);
      }
    });

  bench
    .command('compare')
    .description('compare two stored bench runs (ids or unique prefixes, from guild bench history)')
    .argument('<a>', 'the earlier run')
    .argument('<b>', 'the later run')
    .addOption(workflow())
    .option('--json', 'print JSON')
    .action(async (a: string, b: string, opts: { workflow?: string; json?: boolean }) => {
      try {
        const { compareStoredRuns } = await import('../regression/stored.js');
        const { formatBenchCompare } = await import('../regression/report.js');
        const r = compareStoredRuns(opts.workflow ?? 'guild.yaml', a, b);
        process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : `${formatBenchCompare(r.a, r.b, r.comparisons)}\n`);
        exit(r.comparisons.some((c) => c.verdict === 'regression') ? 1 : 0);
      } catch (e) {
        fail(e);
      }
    });

  bench
    .command('history')
    .description('stored bench runs, newest first, with a chart per metric over commits')
    .addOption(workflow())
    .option('-s, --scenario <name>', 'only this scenario')
    .option('-m, --metric <name...>', 'metrics to plot (default makespan_ms and peak_rss_bytes)')
    .option('-n, --limit <n>', 'at most this many runs (default 30)', count, 30)
    .option('--json', 'print JSON')
    .action(async (opts: { workflow?: string; scenario?: string; metric?: string[]; limit: number; json?: boolean }) => {
      try {
        const { benchHistory } = await import('../regression/stored.js');
        const { plotHistory } = await import('../regression/report.js');
        const runs = benchHistory(opts.workflow ?? 'guild.yaml', { ...(opts.scenario !== undefined && { scenario: opts.scenario }), limit: opts.limit });
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(runs, null, 2)}\n`);
          exit(0);
        }
        if (runs.length === 0) {
          process.stdout.write('no bench runs stored yet (guild bench measures and stores one)\n');
          exit(0);
        }
        const lines = runs.map(
          (r) =>
            `${r.id.slice(0, 8)}  ${r.startedAt.toISOString().slice(0, 16).replace('T', ' ')}  ${r.scenario.padEnd(16)} ${(r.commit ?? '—').slice(0, 7)}${r.dirty ? '+' : ' '} ${r.mode === 'against' ? `against (${r.side})` : 'baseline'}  ${r.iterations.length} runs`,
        );
        const scenarios = [...new Set(runs.map((r) => r.scenario))];
        const charts = scenarios.map((s) => `${s}:\n${plotHistory(runs.filter((r) => r.scenario === s && r.mode === 'baseline'), opts.metric ?? ['makespan_ms', 'peak_rss_bytes'])}`);
        process.stdout.write(`${lines.join('\n')}\n\n${charts.join('\n\n')}\n`);
        exit(0);
      } catch (e) {
        fail(e);
      }
    });
}
