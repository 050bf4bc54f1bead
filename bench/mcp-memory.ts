/**
 * The memory half of bench/mcp-gateway.ts: N clients, each configured with the same three servers,
 * direct (every client spawns its own three) against one gateway (every client a session on it,
 * all on one project). Counted: the servers' process trees (direct) or the gateway's tree with its
 * backends, once every client has initialized and called one tool per server; the clients (this
 * process) are on neither side.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { fmtMs, makeMemoryCgroup, scanProc, sleep, type BenchCgroup } from './lib.js';
import {
  callOk,
  cgroupUsage,
  closeHttp,
  connectHttp,
  connectStdio,
  exposedName,
  gatewayConfig,
  measureSettled,
  ONE_CALL,
  pssBytes,
  startGateway,
  threeServers,
  openAll,
  toolNames,
  type TreeMemory,
} from './mcp-lib.js';

/** The container case: each configuration alone in a fresh memory cgroup of this size. */
export const MEMORY_CGROUP_LIMIT = 4 * 1024 ** 3;
/** After the last call, before reading: lets start-up garbage go and RSS settle alike on both sides. */
const SETTLE_MS = 1000;

export interface SideMemory extends TreeMemory {
  /** Spawn of the first process to the last client's last call. */
  setupMs: number;
  /** In a cgroup: what it is charged, less inactive page cache (Node's text is charged to whoever read it first); else null. */
  cgroupBytes: number | null;
  /** The gateway process alone (the rest of its tree is its backends). */
  gatewayRssBytes?: number;
  gatewayPssBytes?: number;
}

export interface MemoryRow {
  where: 'host' | 'cgroup';
  clients: number;
  direct: SideMemory;
  gateway: SideMemory | null;
  /** Why the gateway side has no figures (not built, or failed); null when it has them. */
  gatewayNote: string | null;
  rssRatio: number | null;
  pssRatio: number | null;
  cgroupRatio: number | null;
}

async function withCgroup<T>(where: 'host' | 'cgroup', name: string, f: (cg: BenchCgroup | undefined) => Promise<T>): Promise<T> {
  if (where === 'host') return f(undefined);
  const cg = makeMemoryCgroup(name, MEMORY_CGROUP_LIMIT);
  if (typeof cg === 'string') throw new Error(cg);
  try {
    return await f(cg);
  } finally {
    await cg.remove();
  }
}

/** N clients × 3 servers, each spawned by its client over stdio. */
async function direct(n: number, dir: string, cg: BenchCgroup | undefined): Promise<SideMemory> {
  const t0 = performance.now();
  const opens = [];
  for (let i = 0; i < n; i++) {
    for (const spec of threeServers(join(dir, `memory-${i}.jsonl`), join(dir, 'files'))) opens.push(() => connectStdio(spec, cg));
  }
  const conns = await openAll(opens, (c) => c.close());
  try {
    await Promise.all(conns.map((c) => callOk(c.client, ONE_CALL[c.server].tool, ONE_CALL[c.server].args)));
    const setupMs = performance.now() - t0;
    await sleep(SETTLE_MS);
    const m = await measureSettled(conns.map((c) => c.pid));
    return { ...m, setupMs, cgroupBytes: cg ? cgroupUsage(cg) : null };
  } finally {
    await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
  }
}

/** One gateway with the 3 servers; N HTTP sessions on its default project. */
async function throughGateway(n: number, dir: string, cg: BenchCgroup | undefined, fail: (message: string) => void): Promise<SideMemory> {
  const config = join(dir, 'guild.yaml');
  writeFileSync(config, JSON.stringify(gatewayConfig(threeServers(join(dir, 'memory.jsonl'), join(dir, 'files'))), null, 2));
  const t0 = performance.now();
  const gw = await startGateway(config, dir, cg);
  let clients: Client[] = [];
  try {
    clients = await openAll(Array.from({ length: n }, () => () => connectHttp(gw.url)), closeHttp);
    await Promise.all(
      clients.map(async (c) => {
        const names = await toolNames(c);
        for (const [server, call] of Object.entries(ONE_CALL)) await callOk(c, exposedName(names, server, call.tool), call.args);
      }),
    );
    const setupMs = performance.now() - t0;
    await sleep(SETTLE_MS);
    const m = await measureSettled([gw.pid]);
    return {
      ...m,
      setupMs,
      cgroupBytes: cg ? cgroupUsage(cg) : null,
      gatewayRssBytes: scanProc().get(gw.pid)?.rssBytes ?? 0,
      gatewayPssBytes: pssBytes(gw.pid) ?? 0,
    };
  } catch (e) {
    throw new Error(`${(e as Error).message}\ngateway stderr:\n${gw.stderr()}`);
  } finally {
    await Promise.all(clients.map((c) => closeHttp(c)));
    await gw.stop();
    if (gw.orphans.length > 0) fail(`the gateway left ${gw.orphans.length} backend(s) alive after SIGTERM: pids ${gw.orphans.join(', ')} (killed here)`);
  }
}

const ratio = (a: number | null | undefined, b: number | null | undefined): number | null => (a != null && b != null && b > 0 ? a / b : null);

/**
 * Every N in `counts`, direct then through the gateway, in `where`. `gatewayNote()` non-null:
 * the gateway side is skipped with that note (asked before each N, so one failure skips the
 * rest). A gateway failure is noted on its row and handed to `onGatewayFailure`, not thrown, so
 * the direct figures still come out.
 */
export async function memoryPart(
  where: 'host' | 'cgroup',
  counts: readonly number[],
  gatewayNote: () => string | null,
  onGatewayFailure: (message: string) => void,
): Promise<MemoryRow[]> {
  const rows: MemoryRow[] = [];
  for (const n of counts) {
    const dir = mkdtempSync(join(tmpdir(), 'guild-bench-mcp-mem-'));
    try {
      mkdirSync(join(dir, 'files'));
      writeFileSync(join(dir, 'files', 'README.md'), 'a file for server-filesystem to list\n');
      process.stdout.write(`  ${where}, ${n} client(s): direct … `);
      const d = await withCgroup(where, `mcp-direct-${n}`, (cg) => direct(n, dir, cg));
      process.stdout.write(`${fmtMs(d.setupMs)}; gateway … `);
      let g: SideMemory | null = null;
      let note = gatewayNote()?.split(':')[0] ?? null;
      if (note === null) {
        try {
          g = await withCgroup(where, `mcp-gateway-${n}`, (cg) => throughGateway(n, dir, cg, onGatewayFailure));
        } catch (e) {
          note = `gateway FAILED: ${(e as Error).message.split('\n')[0]}`;
          onGatewayFailure((e as Error).message);
        }
      }
      console.log(g ? fmtMs(g.setupMs) : note);
      rows.push({
        where,
        clients: n,
        direct: d,
        gateway: g,
        gatewayNote: note,
        rssRatio: ratio(g?.rssBytes, d.rssBytes),
        pssRatio: ratio(g?.pssBytes, d.pssBytes),
        cgroupRatio: ratio(g?.cgroupBytes, d.cgroupBytes),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return rows;
}
