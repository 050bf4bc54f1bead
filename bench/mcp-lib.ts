/**
 * Shared parts of the MCP gateway benchmark (bench/mcp-gateway.ts): the three published servers,
 * SDK clients over stdio and streamable HTTP, server-everything in its own HTTP mode, `guild mcp
 * serve` as a child process (on the host or inside a memory cgroup), and what a set of process
 * trees holds (RSS and PSS, from /proc). Not a benchmark itself.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { GatewayStatus } from '../src/telemetry/mcp-status.js';
import { REPO_ROOT, scanProc, sleep, type BenchCgroup } from './lib.js';

const PKG = join(REPO_ROOT, 'node_modules', '@modelcontextprotocol');
export const SERVER_SCRIPTS = {
  everything: join(PKG, 'server-everything', 'dist', 'index.js'),
  memory: join(PKG, 'server-memory', 'dist', 'index.js'),
  filesystem: join(PKG, 'server-filesystem', 'dist', 'index.js'),
} as const;
export type ServerName = keyof typeof SERVER_SCRIPTS;

/**
 * The CLI the gateway runs from (`bin/guild.js` only imports it); `--cli=PATH` benchmarks
 * another build's (e.g. another worktree's dist/src/cli/main.js) with this benchmark.
 */
export const GUILD_MAIN = process.argv.find((a) => a.startsWith('--cli='))?.slice('--cli='.length) ?? join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

/** One server as a client would configure it: `node <script> ...args` with `env` added. */
export interface ServerSpec {
  name: ServerName;
  args: string[];
  env: Record<string, string>;
}

/**
 * The three servers of one client (or of the gateway): server-everything over stdio,
 * server-memory with its own data file (never the default one inside node_modules), and
 * server-filesystem on `filesDir`.
 */
export function threeServers(memoryFile: string, filesDir: string): ServerSpec[] {
  return [
    everythingSpec(),
    { name: 'memory', args: [SERVER_SCRIPTS.memory], env: { MEMORY_FILE_PATH: memoryFile } },
    { name: 'filesystem', args: [SERVER_SCRIPTS.filesystem, filesDir], env: {} },
  ];
}

/** server-everything over stdio, alone. */
export const everythingSpec = (): ServerSpec => ({ name: 'everything', args: [SERVER_SCRIPTS.everything, 'stdio'], env: {} });

/** The tool each client calls once per server in the memory part: fast, read-only, no state. */
export const ONE_CALL: Record<ServerName, { tool: string; args: Record<string, unknown> }> = {
  everything: { tool: 'echo', args: { message: 'hello' } },
  memory: { tool: 'read_graph', args: {} },
  filesystem: { tool: 'list_allowed_directories', args: {} },
};

/**
 * argv that runs `argv` inside `cg` from its first byte: a shell writes its own pid into the
 * group, then execs (so the pid a caller sees becomes the program). As bench/lib's runGuildCli.
 */
function wrap(argv: readonly string[], cg: BenchCgroup | undefined): { command: string; args: string[] } {
  if (!cg) return { command: argv[0]!, args: argv.slice(1) };
  return { command: '/bin/sh', args: ['-c', 'echo $$ > "$1" && shift && exec "$@"', 'sh', cg.procsFile, ...argv] };
}

const CLIENT_INFO = { name: 'guild-bench', version: '0.0.0' };
const tail = (s: string): string => s.slice(-1500);

/** An SDK client connected to a server it spawned over stdio (the direct way). */
export interface StdioConnection {
  server: ServerName;
  client: Client;
  pid: number;
  stderr: () => string;
  close: () => Promise<void>;
}

export async function connectStdio(spec: ServerSpec, cg?: BenchCgroup): Promise<StdioConnection> {
  const { command, args } = wrap([process.execPath, ...spec.args], cg);
  const transport = new StdioClientTransport({ command, args, env: spec.env, stderr: 'pipe' });
  let err = '';
  transport.stderr?.on('data', (d: Buffer) => (err = tail(err + d.toString())));
  const client = new Client(CLIENT_INFO, { capabilities: {} });
  try {
    await client.connect(transport);
  } catch (e) {
    await transport.close().catch(() => undefined);
    throw new Error(`${spec.name} over stdio did not initialize: ${(e as Error).message}\n${err}`);
  }
  return { server: spec.name, client, pid: transport.pid!, stderr: () => err, close: () => client.close() };
}

/** An SDK client over streamable HTTP (the gateway's clients, and the fair HTTP baseline). */
export async function connectHttp(url: string): Promise<Client> {
  const client = new Client(CLIENT_INFO, { capabilities: {} });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

/** Ends an HTTP session politely (DELETE), then the client. */
export async function closeHttp(client: Client): Promise<void> {
  const t = client.transport as StreamableHTTPClientTransport | undefined;
  await t?.terminateSession().catch(() => undefined);
  await client.close().catch(() => undefined);
}

/**
 * Calls `tool` and throws unless it answered without `isError` (a benchmark of failures would
 * measure nothing). The result is not validated against an output schema: echo has none, and
 * the same call is made on every path.
 */
export async function callOk(client: Client, tool: string, args: Record<string, unknown>): Promise<void> {
  const r = await client.callTool({ name: tool, arguments: args }, undefined, { timeout: 120_000 });
  if (r.isError) throw new Error(`${tool} answered isError: ${JSON.stringify(r.content).slice(0, 300)}`);
}

/**
 * The name a gateway exposes for `server`'s `tool`: `<server>__<tool>` when it prefixes, else
 * `tool` unchanged (issue 12's rule), whichever the listed tools hold.
 */
export function exposedName(names: ReadonlySet<string>, server: string, tool: string): string {
  if (names.has(`${server}__${tool}`)) return `${server}__${tool}`;
  if (names.has(tool)) return tool;
  throw new Error(`the gateway lists neither ${server}__${tool} nor ${tool} (it lists ${names.size} tools: ${[...names].slice(0, 8).join(', ')}…)`);
}

export async function toolNames(client: Client): Promise<Set<string>> {
  const names = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await client.listTools(cursor ? { cursor } : undefined);
    for (const t of page.tools) names.add(t.name);
    cursor = page.nextCursor;
  } while (cursor);
  return names;
}

/**
 * Runs every `open` at once; if any fails, closes the ones that opened and throws the first
 * failure, so a benchmark that stops half-way leaves no server behind.
 */
export async function openAll<T>(opens: readonly (() => Promise<T>)[], close: (t: T) => Promise<void>): Promise<T[]> {
  const settled = await Promise.allSettled(opens.map((o) => o()));
  const ok = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(ok.map((t) => close(t).catch(() => undefined)));
    throw failed.reason;
  }
  return ok;
}

/** A port nobody holds right now (the kernel's pick, released before the server binds it). */
export function freePort(): Promise<number> {
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

/** A child process this benchmark started and must end, by its pid. */
export interface Child {
  pid: number;
  stderr: () => string;
  stop: () => Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
async function terminate(child: ChildProcess, graceMs: number): Promise<void> {
  const done = exited(child);
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(timer);
}

/**
 * server-everything in its own streamable HTTP mode (express + the SDK's server transport):
 * `PORT=<free> node index.js streamableHttp`, ready when it logs "listening on port" on stderr.
 * Its stdout (a line per request) goes nowhere, so logging costs it as little as it can.
 */
export async function startEverythingHttp(): Promise<Child & { url: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [SERVER_SCRIPTS.everything, 'streamableHttp'], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server-everything streamableHttp not listening after 30 s:\n${err}`)), 30_000);
    child.stderr!.on('data', (d: Buffer) => {
      err = tail(err + d.toString());
      if (/listening on port/i.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server-everything streamableHttp exited ${code}:\n${err}`));
    });
  });
  return { pid: child.pid!, url: `http://127.0.0.1:${port}/mcp`, stderr: () => err, stop: () => terminate(child, 5000) };
}

// ---------------------------------------------------------------------------------------------
// The gateway: `node dist/src/cli/main.js mcp serve CONFIG --port 0 --json` (COMMON.md's contract).

/** What a gateway row says when this build has no `guild mcp serve`. */
export const NOT_BUILT = 'gateway not built';

/** Why the gateway cannot run on this build (starting with NOT_BUILT), or null when `guild mcp serve` exists. */
export function gatewayMissing(): string | null {
  const r = spawnSync(process.execPath, [GUILD_MAIN, 'mcp', 'serve', '--help'], { encoding: 'utf8', timeout: 30_000 });
  if (r.error) return `${NOT_BUILT}: cannot run ${GUILD_MAIN}: ${r.error.message}`;
  if (r.status === 0 && /Usage: guild mcp serve/.test(r.stdout)) return null;
  const why = r.stderr.trim().split('\n')[0];
  return `${NOT_BUILT}: this build of guild has no \`mcp serve\` command${why ? ` (${why})` : ''}`;
}

export interface RunningGateway extends Child {
  url: string;
  /** Where `/status` answers (same origin as `url`). */
  statusUrl: string;
  /** Pids of backends the gateway left alive after it exited (each was then SIGKILLed here). */
  orphans: number[];
}

/** Process start time (clock ticks since boot), to tell a pid from a later process with the same number. */
function startTime(pid: number): string | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/**
 * Starts the gateway on `configFile` (optionally inside `cg`) and waits for its ready line:
 * `{"url": …}` with --json, or the text form `guild mcp: serving http://…/mcp (…)`. `stop()` sends
 * SIGTERM (the contract: every backend ended, exit 0), then checks that no backend outlived it.
 */
export async function startGateway(configFile: string, cwd: string, cg?: BenchCgroup, readyTimeoutMs = 90_000): Promise<RunningGateway> {
  const { command, args } = wrap([process.execPath, GUILD_MAIN, 'mcp', 'serve', configFile, '--port', '0', '--json'], cg);
  const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (err = tail(err + d.toString())));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`guild mcp serve printed no ready line in ${readyTimeoutMs / 1000} s:\n${err}`));
    }, readyTimeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n').slice(0, -1)) {
        let found: string | undefined;
        if (line.trim().startsWith('{')) {
          try {
            found = (JSON.parse(line) as { url?: string }).url;
          } catch {
            /* not the ready line */
          }
        }
        found ??= /serving (http:\/\/\S+\/mcp)/.exec(line)?.[1];
        if (found) {
          clearTimeout(timer);
          resolve(found);
          return;
        }
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`guild mcp serve exited ${code ?? signal} before it was ready:\n${err}`));
    });
  });
  const pid = child.pid!;
  const gw: RunningGateway = {
    pid,
    url,
    statusUrl: new URL('/status', url).href,
    orphans: [],
    stderr: () => err,
    stop: async () => {
      const procs = scanProc();
      const backends = treePids(procs, pid, false).map((p) => ({ pid: p, start: startTime(p) }));
      await terminate(child, 15_000);
      await sleep(200);
      for (const b of backends) {
        const now = startTime(b.pid);
        if (now === null || now !== b.start) continue;
        const e = scanProc().get(b.pid);
        if (!e || e.zombie) continue;
        gw.orphans.push(b.pid);
        try {
          process.kill(b.pid, 'SIGKILL');
        } catch {
          /* gone meanwhile */
        }
      }
    },
  };
  return gw;
}

export async function gatewayStatus(gw: RunningGateway): Promise<GatewayStatus | null> {
  try {
    const r = await fetch(gw.statusUrl);
    return r.ok ? ((await r.json()) as GatewayStatus) : null;
  } catch {
    return null;
  }
}

/** A gateway config file's content with `servers` (written as JSON, which YAML reads as it is). */
export function gatewayConfig(servers: readonly ServerSpec[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of servers) out[s.name] = { command: process.execPath, args: s.args, ...(Object.keys(s.env).length ? { env: s.env } : {}), ...extra };
  return { mcp: { servers: out } };
}

// ---------------------------------------------------------------------------------------------
// Memory of process trees, independent of Guild's own probes.

/** Every live descendant of `root` (and root itself with `includeRoot`). */
export function treePids(procs: ReturnType<typeof scanProc>, root: number, includeRoot: boolean): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, e] of procs) {
    let l = children.get(e.ppid);
    if (!l) children.set(e.ppid, (l = []));
    l.push(pid);
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    const e = procs.get(pid);
    if (e && !e.zombie && (pid !== root || includeRoot)) out.push(pid);
    for (const c of children.get(pid) ?? []) stack.push(c);
  }
  return out;
}

/** Pss of one process (bytes) from /proc/<pid>/smaps_rollup, or null if unreadable. */
export function pssBytes(pid: number): number | null {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export interface TreeMemory {
  processes: number;
  /** Σ RSS: counts every shared page (Node's text) once per process. */
  rssBytes: number;
  /** Σ PSS: each shared page split among the processes that map it. */
  pssBytes: number;
  /** Processes whose smaps_rollup could not be read (their PSS is missing from the sum). */
  pssMissing: number;
}

/** What the trees under `roots` (roots included) hold now. */
export function measureTrees(roots: readonly number[]): TreeMemory {
  const procs = scanProc();
  const pids = new Set(roots.flatMap((r) => treePids(procs, r, true)));
  let rss = 0;
  let pss = 0;
  let missing = 0;
  for (const pid of pids) {
    rss += procs.get(pid)?.rssBytes ?? 0;
    const p = pssBytes(pid);
    if (p === null) missing++;
    else pss += p;
  }
  return { processes: pids.size, rssBytes: rss, pssBytes: pss, pssMissing: missing };
}

/** The median of three readings `gapMs` apart, per field (a single reading can catch a GC mid-way). */
export async function measureSettled(roots: readonly number[], gapMs = 250): Promise<TreeMemory> {
  const xs: TreeMemory[] = [];
  for (let i = 0; i < 3; i++) {
    if (i > 0) await sleep(gapMs);
    xs.push(measureTrees(roots));
  }
  const mid = <K extends keyof TreeMemory>(k: K): number => xs.map((x) => x[k]).sort((a, b) => a - b)[1]!;
  return { processes: mid('processes'), rssBytes: mid('rssBytes'), pssBytes: mid('pssBytes'), pssMissing: mid('pssMissing') };
}

/** What a memory cgroup is charged now, less its inactive page cache (DESIGN.md's reading); null if unreadable. */
export function cgroupUsage(cg: BenchCgroup): number | null {
  try {
    const usage = Number(readFileSync(join(cg.dir, cg.version === 1 ? 'memory.usage_in_bytes' : 'memory.current'), 'utf8').trim());
    const stat = readFileSync(join(cg.dir, 'memory.stat'), 'utf8');
    const inactive = Number(new RegExp(`^${cg.version === 1 ? 'total_inactive_file' : 'inactive_file'} (\\d+)$`, 'm').exec(stat)?.[1] ?? 0);
    return Number.isFinite(usage) ? usage - inactive : null;
  } catch {
    return null;
  }
}
