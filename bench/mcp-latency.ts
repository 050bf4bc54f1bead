/**
 * The latency and throughput halves of bench/mcp-gateway.ts, on server-everything's `echo`
 * (read-only and idempotent, so the gateway caches it by default) and its
 * `trigger-long-running-operation` (duration in seconds, as its zod schema says).
 *
 * Paths, all SDK clients in this process:
 *   direct stdio       a Client that spawned its own server-everything (StdioClientTransport);
 *   direct HTTP        a Client over StreamableHTTPClientTransport to server-everything in its own
 *                      `streamableHttp` mode: the same client transport as the gateway's, so the
 *                      fair baseline for what the gateway adds;
 *   gateway uncached   through `guild mcp serve` (one server: names unchanged), a new message every
 *                      call, so every call misses the tool-result cache;
 *   gateway cached     the same message every call (warmed first): served from the cache;
 *   ping               `ping` direct over HTTP and to the gateway: the HTTP round trip alone.
 * The paths take turns call by call (the order rotated every round), so drift in the machine's
 * load reaches them all alike.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { median, quantile } from './lib.js';
import { callOk, closeHttp, connectHttp, connectStdio, everythingSpec, openAll, type StdioConnection } from './mcp-lib.js';

export interface LatencyStats {
  calls: number;
  p50Ms: number;
  p95Ms: number;
  meanMs: number;
}

const stats = (ms: readonly number[]): LatencyStats => ({ calls: ms.length, p50Ms: median(ms), p95Ms: quantile(ms, 0.95), meanMs: ms.reduce((a, b) => a + b, 0) / ms.length });

/** The servers and clients the latency and throughput halves share. */
export interface Rig {
  stdio: StdioConnection;
  /** A client of server-everything in streamableHttp mode, and its URL. */
  http: Client;
  httpUrl: string;
  /** Two sessions on the gateway (uncached, cached) and its URL; null when it does not run. */
  gateway: { uncached: Client; cached: Client; url: string } | null;
}

export type PathName = 'direct stdio' | 'direct HTTP' | 'gateway uncached' | 'gateway cached' | 'ping direct HTTP' | 'ping gateway';

export interface LatencyResult {
  calls: number;
  warmup: number;
  paths: Partial<Record<PathName, LatencyStats>>;
  /** p50(gateway uncached) − p50(direct HTTP), ms. Goal <= 2. */
  overheadUncachedP50Ms: number | null;
  /** p50 of a cached call through the gateway, ms (the SDK's HTTP round trip included). */
  cachedP50Ms: number | null;
  /** p50(gateway cached) − p50(ping gateway): what serving a hit adds to the round trip, ms. Goal <= 1. */
  cachedOverPingP50Ms: number | null;
  long: {
    durationS: number;
    calls: number;
    directStdio: LatencyStats;
    gatewayUncached: LatencyStats | null;
    gatewayCached: LatencyStats | null;
    /** p50 cached / p50 uncached through the gateway. */
    cachedOverUncached: number | null;
  };
}

/** `f` timed, in ms. */
async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

export async function latencyPart(rig: Rig, calls: number, warmup: number, longCalls: number): Promise<LatencyResult> {
  const nonce = randomUUID().slice(0, 8);
  // Distinct messages of one length on every uncached path: the same bytes to move everywhere.
  const msg = (path: string, i: number): string => `${path}-${nonce}-${String(i).padStart(6, '0')}`;
  const cachedMsg = `c-${nonce}-cached`;
  const paths: [PathName, (i: number) => Promise<unknown>][] = [
    ['direct stdio', (i) => callOk(rig.stdio.client, 'echo', { message: msg('s', i) })],
    ['direct HTTP', (i) => callOk(rig.http, 'echo', { message: msg('h', i) })],
    ['ping direct HTTP', () => rig.http.ping()],
  ];
  const gw = rig.gateway;
  if (gw) {
    paths.push(
      ['gateway uncached', (i) => callOk(gw.uncached, 'echo', { message: msg('g', i) })],
      ['gateway cached', () => callOk(gw.cached, 'echo', { message: cachedMsg })],
      ['ping gateway', () => gw.cached.ping()],
    );
  }
  const samples = new Map<PathName, number[]>(paths.map(([name]) => [name, []]));
  for (let i = -warmup; i < calls; i++) {
    for (let k = 0; k < paths.length; k++) {
      const [name, call] = paths[(k + i + warmup) % paths.length]!;
      const ms = await timed(() => call(i + warmup));
      if (i >= 0) samples.get(name)!.push(ms);
    }
  }
  const out: LatencyResult['paths'] = {};
  for (const [name, xs] of samples) out[name] = stats(xs);
  const p50 = (name: PathName): number | null => out[name]?.p50Ms ?? null;
  const diff = (a: number | null, b: number | null): number | null => (a !== null && b !== null ? a - b : null);

  // The 300 ms tool: a few calls each; uncached ones differ by a microsecond of duration, which
  // no sleep can tell apart but the cache key does.
  const durationS = 0.3;
  const longArgs = (i: number): Record<string, unknown> => ({ duration: durationS + (i + 1) * 1e-6, steps: 1 });
  const longRun = async (client: Client, args: (i: number) => Record<string, unknown>): Promise<LatencyStats> => {
    const xs: number[] = [];
    for (let i = 0; i < longCalls; i++) xs.push(await timed(() => callOk(client, 'trigger-long-running-operation', args(i))));
    return stats(xs);
  };
  const directLong = await longRun(rig.stdio.client, longArgs);
  let uncachedLong: LatencyStats | null = null;
  let cachedLong: LatencyStats | null = null;
  if (gw) {
    uncachedLong = await longRun(gw.uncached, (i) => longArgs(1000 + i));
    await callOk(gw.cached, 'trigger-long-running-operation', { duration: durationS, steps: 1 });
    cachedLong = await longRun(gw.cached, () => ({ duration: durationS, steps: 1 }));
  }
  return {
    calls,
    warmup,
    paths: out,
    overheadUncachedP50Ms: diff(p50('gateway uncached'), p50('direct HTTP')),
    cachedP50Ms: p50('gateway cached'),
    cachedOverPingP50Ms: diff(p50('gateway cached'), p50('ping gateway')),
    long: {
      durationS,
      calls: longCalls,
      directStdio: directLong,
      gatewayUncached: uncachedLong,
      gatewayCached: cachedLong,
      cachedOverUncached: uncachedLong && cachedLong ? cachedLong.p50Ms / uncachedLong.p50Ms : null,
    },
  };
}

export interface ThroughputResult {
  clients: number;
  /** Seconds each path is driven per round. */
  seconds: number;
  rounds: number;
  /** echo calls per second, all clients together: the median over rounds. */
  directStdio: number;
  directHttp: number;
  gatewayUncached: number | null;
  gatewayCached: number | null;
  /** Every round's figure per path, in round order. */
  perRound: Record<string, number[]>;
  /** gateway uncached ÷ direct stdio (the ratio), and the same over direct HTTP: medians of same-round ratios. */
  uncachedOverStdio: number | null;
  uncachedOverHttp: number | null;
  cachedOverStdio: number | null;
}

/** How long each throughput path runs, uncounted, before its rounds. */
const WARM_MS = 300;

/** Every client calls echo back to back until the deadline; calls/s over all of them. */
async function drive(clients: readonly Client[], ms: number, message: (c: number, i: number) => string): Promise<number> {
  const t0 = performance.now();
  const deadline = t0 + ms;
  const counts = await Promise.all(
    clients.map(async (cl, c) => {
      let n = 0;
      while (performance.now() < deadline) await callOk(cl, 'echo', { message: message(c, n++) });
      return n;
    }),
  );
  return counts.reduce((a, b) => a + b, 0) / ((performance.now() - t0) / 1000);
}

/**
 * `clients` concurrent clients: each with its own stdio server (direct), over HTTP to one
 * server-everything, and through the gateway, uncached then cached (the same sessions, told
 * apart by their messages). Every round drives each path for `seconds`, the order rotated from
 * round to round; each path's figure is its median round.
 */
export async function throughputPart(rig: Rig, clients: number, seconds: number, rounds: number): Promise<ThroughputResult> {
  const ms = seconds * 1000;
  const nonce = randomUUID().slice(0, 8);
  let seq = 0;
  const distinct = (tag: string) => (c: number, i: number): string => `${tag}-${nonce}-${c}-${seq}-${i}`;
  const n = Array.from({ length: clients });
  const closers: (() => Promise<void>)[] = [];
  try {
    const stdio = await openAll(n.map(() => () => connectStdio(everythingSpec())), (s) => s.close());
    closers.push(...stdio.map((s) => () => s.close()));
    const http = await openAll(n.map(() => () => connectHttp(rig.httpUrl)), closeHttp);
    closers.push(...http.map((c) => () => closeHttp(c)));
    const gw = rig.gateway ? await openAll(n.map(() => () => connectHttp(rig.gateway!.url)), closeHttp) : null;
    if (gw) closers.push(...gw.map((c) => () => closeHttp(c)));
    const paths: [string, (ms: number) => Promise<number>][] = [
      ['direct stdio', (t) => drive(stdio.map((x) => x.client), t, distinct('s'))],
      ['direct HTTP', (t) => drive(http, t, distinct('h'))],
    ];
    if (gw) {
      paths.push(['gateway uncached', (t) => drive(gw, t, distinct('g'))], ['gateway cached', (t) => drive(gw, t, () => `t-${nonce}-cached`)]);
    }
    // Warm every path (JIT, connections, the cached entry) before anything counts.
    for (const [, run] of paths) {
      seq++;
      await run(WARM_MS);
    }
    const perRound: Record<string, number[]> = Object.fromEntries(paths.map(([name]) => [name, []]));
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < paths.length; k++) {
        const [name, run] = paths[(k + r) % paths.length]!;
        seq++;
        perRound[name]!.push(await run(ms));
      }
    }
    const med = (name: string): number | null => (perRound[name] ? median(perRound[name]) : null);
    const directStdio = med('direct stdio')!;
    const directHttp = med('direct HTTP')!;
    const gatewayUncached = med('gateway uncached');
    const gatewayCached = med('gateway cached');
    // A ratio compares the same round only: the machine's load drifts between rounds.
    const ratio = (a: string, b: string): number | null => {
      const xs = perRound[a];
      const ys = perRound[b]!;
      return xs ? median(xs.map((x, r) => x / ys[r]!)) : null;
    };
    return {
      clients,
      seconds,
      rounds,
      directStdio,
      directHttp,
      gatewayUncached,
      gatewayCached,
      perRound,
      uncachedOverStdio: ratio('gateway uncached', 'direct stdio'),
      uncachedOverHttp: ratio('gateway uncached', 'direct HTTP'),
      cachedOverStdio: ratio('gateway cached', 'direct stdio'),
    };
  } finally {
    await Promise.all(closers.map((c) => c().catch(() => undefined)));
  }
}
