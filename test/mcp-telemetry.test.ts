/**
 * The MCP gateway's telemetry (McpTelemetry) fed with call events, and `guild mcp status`'s text
 * (formatGatewayStatus) from a snapshot: quantiles on known data, the reservoir past its size,
 * label cardinality folded into `other`, response targets by kind, and a /metrics exposition that
 * promtool accepts, its counters never going down when a backend slot leaves the snapshot.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { formatGatewayStatus } from '../src/cli/mcp-status-format.js';
import { GuildError } from '../src/errors.js';
import { latencyTargets, McpTelemetry, OTHER_NAME } from '../src/telemetry/mcp-metrics.js';
import type { GatewayStatus, McpCallEvent } from '../src/telemetry/mcp-status.js';
import { GuildMetrics } from '../src/telemetry/metrics.js';
import { gatewayStatus, MB } from './mcp-status-fixture.js';
import { prng } from '../bench/lib.js';

function call(over: Partial<McpCallEvent> = {}): McpCallEvent {
  return { server: 'everything', method: 'tools/call', name: 'echo', project: '/p', durationMs: 1, cached: false, outcome: 'ok', ...over };
}

/** A deterministic uniform [0, 1) (mulberry32, bench/lib.ts's), so the reservoir's choices are the same on every run. */
const seeded = prng;

/** 0..n-1 in a seeded random order. */
function shuffled(n: number, random: () => number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** The value of one sample line of an exposition, by its exact name and labels; undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function promtool(t: { skip(msg: string): void }, text: string): void {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error) t.skip('promtool not installed: apt-get install -y prometheus');
  else assert.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}`);
}

describe('McpTelemetry latency', () => {
  it('gives nearest-rank p50/p95 and counts on known data, per (server, method, name)', () => {
    const tel = new McpTelemetry();
    const random = seeded(1);
    // 1..100 ms in a random order: nearest-rank p50 is 50, p95 is 95.
    for (const i of shuffled(100, random)) tel.record(call({ durationMs: i + 1, cached: i % 10 === 0, outcome: i % 25 === 0 ? 'tool-error' : 'ok' }));
    tel.record(call({ name: 'get-sum', durationMs: 7, outcome: 'error', errorCode: -32603 }));
    tel.record(call({ method: 'resources/read', name: 'file:///secret/a.txt', durationMs: 3 }));
    tel.record(call({ method: 'resources/read', name: 'file:///secret/b.txt', durationMs: 5 }));

    const rows = tel.latency();
    assert.deepEqual(rows.map((r) => [r.method, r.name]), [['resources/read', null], ['tools/call', 'echo'], ['tools/call', 'get-sum']]);
    const echo = rows[1]!;
    assert.equal(echo.p50Ms, 50);
    assert.equal(echo.p95Ms, 95);
    // Calls and cache hits are disjoint (as in McpBackendStatus): 10 of the 100 came from the cache.
    assert.equal(echo.calls, 90);
    assert.equal(echo.cacheHits, 10);
    assert.equal(echo.errors, 4);
    assert.equal(echo.targetMs, null);
    assert.deepEqual(rows[2], { server: 'everything', method: 'tools/call', name: 'get-sum', calls: 1, cacheHits: 0, errors: 1, p50Ms: 7, p95Ms: 7, targetMs: null });
    // A resource's URI is no series of its own (URIs are unbounded and may name private files).
    assert.equal(rows[0]!.calls, 2);
    assert.equal(rows[0]!.p95Ms, 5);
  });

  it('keeps a bounded uniform sample past the reservoir size, and stays close to the true quantiles', () => {
    const random = seeded(7);
    const tel = new McpTelemetry({ reservoirSize: 512, random });
    // 20 000 calls of 0..19 999 ms, in a random order: true p50 ≈ 10 000, p95 ≈ 19 000.
    for (const v of shuffled(20_000, random)) tel.record(call({ durationMs: v }));
    const [row] = tel.latency();
    assert.equal(row!.calls, 20_000);
    // A 512-sample reservoir puts p50's rank within ± 2.2 % (one σ) and p95's within ± 1 %; the bounds are 4σ.
    assert.ok(Math.abs(row!.p50Ms - 10_000) < 1800, `p50 ${row!.p50Ms}`);
    assert.ok(Math.abs(row!.p95Ms - 19_000) < 800, `p95 ${row!.p95Ms}`);
  });

  it('scores against the response target of each server kind', () => {
    const targets = latencyTargets([
      { name: 'serena', kind: 'code-analysis' },
      { name: 'archon', kind: 'knowledge' },
      { name: 'fs', kind: 'file-ops' },
      { name: 'plain', kind: null },
    ]);
    assert.deepEqual(targets, { serena: 200, archon: 300, fs: 100, plain: null });
    const tel = new McpTelemetry();
    tel.record(call({ server: 'serena', name: 'find_symbol', durationMs: 250 }));
    tel.record(call({ server: 'plain', durationMs: 2 }));
    const rows = tel.latency(targets);
    assert.deepEqual(rows.map((r) => [r.server, r.targetMs]), [['plain', null], ['serena', 200]]);
  });

  it('refuses a bad option with INVALID_OPTION', () => {
    assert.throws(() => new McpTelemetry({ reservoirSize: 0 }), (e: unknown) => e instanceof GuildError && e.code === 'INVALID_OPTION');
    assert.throws(() => new McpTelemetry({ maxNamesPerServer: 1.5 }), (e: unknown) => e instanceof GuildError && e.code === 'INVALID_OPTION');
  });
});

describe('McpTelemetry label cardinality', () => {
  it('folds names past the cap per server into `other`, in latency and on /metrics', async () => {
    const tel = new McpTelemetry({ maxNamesPerServer: 3 });
    for (let i = 0; i < 10; i++) tel.record(call({ name: `tool-${i}`, durationMs: i }));
    // Another server has a cap of its own.
    tel.record(call({ server: 'memory', name: 'read_graph' }));
    const rows = tel.latency().filter((r) => r.server === 'everything');
    assert.deepEqual(rows.map((r) => r.name), ['other', 'tool-0', 'tool-1', 'tool-2']);
    assert.equal(rows.find((r) => r.name === OTHER_NAME)!.calls, 7);
    // Names already admitted keep their series.
    tel.record(call({ name: 'tool-1' }));
    assert.equal(tel.latency().find((r) => r.name === 'tool-1')!.calls, 2);

    const { body } = await tel.metrics();
    const tools = new Set([...body.matchAll(/^guild_mcp_call_duration_seconds_count\{[^}]*server="everything"[^}]*tool="([^"]*)"/gm)].map((m) => m[1]));
    assert.deepEqual([...tools].sort(), ['other', 'tool-0', 'tool-1', 'tool-2']);
    assert.match(body, /guild_mcp_call_duration_seconds_count\{server="memory",method="tools\/call",tool="read_graph",cached="false"\} 1/);
  });

  it('gives series only to the names a server declared, once it has declared them', () => {
    const tel = new McpTelemetry();
    tel.declareNames('everything', ['echo', 'get-sum']);
    tel.record(call({ name: 'echo' }));
    tel.record(call({ name: 'made-up-by-a-client' }));
    tel.record(call({ name: 'another-made-up-one' }));
    tel.record(call({ name: 'get-sum' }));
    assert.deepEqual(tel.latency().map((r) => [r.name, r.calls]), [['echo', 1], ['get-sum', 1], ['other', 2]]);
  });
});

describe('McpTelemetry on /metrics', () => {
  it('exposes calls, cache hits and misses, backend RSS, instances, restarts, recycles, sessions and reservations, and promtool accepts it', async (t) => {
    let status: GatewayStatus | null = gatewayStatus();
    let reads = 0;
    const tel = new McpTelemetry({
      status: () => {
        reads++;
        return status;
      },
    });
    // serena: find_symbol cacheable (2 hits, 3 forwarded of which 1 errored), rename not cacheable.
    for (const cached of [true, true, false, false, false]) tel.record(call({ server: 'serena', name: 'find_symbol', cached, durationMs: cached ? 0.3 : 150 }));
    tel.record(call({ server: 'serena', name: 'find_symbol', outcome: 'error', errorCode: -32603, durationMs: 30_000 }));
    tel.record(call({ server: 'serena', name: 'rename', durationMs: 400 }));
    tel.record(call({ server: 'memory', method: 'resources/read', name: 'memory://knowledge-graph', durationMs: 2 }));

    const first = (await tel.metrics()).body;
    // Every collect() of one scrape reads the same snapshot.
    assert.equal(reads, 1);
    promtool(t, first);
    const v = (series: string): number | undefined => sample(first, series);
    assert.equal(v('guild_mcp_calls_total{server="serena",method="tools/call",outcome="ok"}'), 6);
    assert.equal(v('guild_mcp_calls_total{server="serena",method="tools/call",outcome="error"}'), 1);
    assert.equal(v('guild_mcp_calls_total{server="memory",method="resources/read",outcome="ok"}'), 1);
    assert.equal(v('guild_mcp_cache_hits_total{server="serena"}'), 2);
    assert.equal(v('guild_mcp_cache_hits_total{server="memory"}'), 0);
    assert.equal(v('guild_mcp_cache_misses_total{server="serena"}'), 4, 'forwarded calls of cacheable find_symbol, not rename');
    assert.equal(v('guild_mcp_call_duration_seconds_count{server="serena",method="tools/call",tool="find_symbol",cached="true"}'), 2);
    assert.equal(v('guild_mcp_call_duration_seconds_bucket{le="0.2",server="serena",method="tools/call",tool="find_symbol",cached="false"}'), 3);
    assert.equal(v('guild_mcp_call_duration_seconds_count{server="memory",method="resources/read",tool="",cached="false"}'), 1);
    assert.equal(v('guild_mcp_backend_rss_bytes{server="serena",project="/home/dev/alpha"}'), 180 * MB);
    assert.equal(v('guild_mcp_backend_rss_bytes{server="serena",project="/home/dev/beta"}'), 70 * MB);
    assert.equal(v('guild_mcp_instances{server="serena"}'), 3);
    assert.equal(v('guild_mcp_instances{server="memory"}'), 1);
    assert.equal(v('guild_mcp_backend_restarts_total{server="serena"}'), 1);
    assert.equal(v('guild_mcp_backend_restarts_total{server="memory"}'), 0);
    assert.equal(v('guild_mcp_backend_recycles_total{server="serena",reason="limit"}'), 1);
    assert.equal(v('guild_mcp_backend_recycles_total{server="serena",reason="pressure"}'), 2);
    assert.equal(v('guild_mcp_sessions'), 5);
    assert.equal(v('guild_mcp_reserved_bytes'), 300 * MB);

    // The beta slot goes away and alpha's serena restarts again: the counters only grow, its RSS series goes.
    const s = gatewayStatus();
    s.backends = s.backends.filter((b) => b.project !== '/home/dev/beta');
    s.backends[0]!.restarts = 2;
    status = s;
    tel.record(call({ server: 'serena', name: 'find_symbol', durationMs: 100 }));
    const second = (await tel.metrics()).body;
    assert.equal(reads, 2);
    promtool(t, second);
    assert.equal(sample(second, 'guild_mcp_backend_restarts_total{server="serena"}'), 2);
    assert.equal(sample(second, 'guild_mcp_backend_recycles_total{server="serena",reason="pressure"}'), 2);
    assert.equal(sample(second, 'guild_mcp_backend_rss_bytes{server="serena",project="/home/dev/beta"}'), undefined);
    assert.equal(sample(second, 'guild_mcp_cache_misses_total{server="serena"}'), 5);

    // No snapshot (the gateway has not started, or has stopped): the call metrics and counters stay, the backend gauges are empty or 0.
    status = null;
    const third = (await tel.metrics()).body;
    promtool(t, third);
    assert.equal(sample(third, 'guild_mcp_sessions'), 0);
    assert.equal(sample(third, 'guild_mcp_reserved_bytes'), 0);
    assert.equal(sample(third, 'guild_mcp_backend_rss_bytes{server="serena",project="/home/dev/alpha"}'), undefined);
    assert.equal(sample(third, 'guild_mcp_backend_restarts_total{server="serena"}'), 2);
    assert.equal(sample(third, 'guild_mcp_calls_total{server="serena",method="tools/call",outcome="ok"}'), 7);
  });

  it("shares a run's registry with Guild's own metrics, and the whole exposition passes promtool", async (t) => {
    const run = new GuildMetrics({ agents: ['worker'], processMetrics: false });
    const tel = new McpTelemetry({ registry: run.registry, status: () => gatewayStatus() });
    tel.record(call());
    const { body, contentType } = await run.text();
    assert.match(contentType, /text\/plain/);
    assert.match(body, /^guild_tasks_running\{agent="worker"\} 0$/m);
    assert.match(body, /^guild_mcp_calls_total\{server="everything",method="tools\/call",outcome="ok"\} 1$/m);
    promtool(t, body);
  });
});

describe('formatGatewayStatus', () => {
  it('shows the gateway, servers, backends and latency against targets with the figures of the snapshot', () => {
    const text = formatGatewayStatus(gatewayStatus());
    const lines = text.split('\n');
    const line = (re: RegExp): string => {
      const l = lines.find((x) => re.test(x));
      assert.ok(l, `no line matches ${re}:\n${text}`);
      return l;
    };
    assert.match(lines[0]!, /gateway http:\/\/127\.0\.0\.1:8091\/mcp \(pid 4242\), up 2m05s, 5 sessions; default project \/home\/dev\/alpha/);
    assert.match(line(/memory:/), /level moderate; backends reserve 300 MB of budget 2\.00 GB \(15%\)/);
    assert.match(line(/cache:/), /25 hits, 20 misses \(hit rate 56%\), 18 stored, 3 invalidations, 2 not stored/);
    // Servers: live instances (min–max), calls, cache hits and rate, the slowest p95 vs the kind's target.
    const serena = line(/^ {2}serena +code-analysis/);
    assert.match(serena, /per-project +3 \(1–5\) +17 \(2 cacheable\) +45 +10 \(18%\) +450ms! find_symbol +200ms/);
    assert.match(line(/^ {2}memory +knowledge/), /shared +1 \(1–2\) +9 \(1 cacheable\) +15 +15 \(50%\) +13ms read_graph +300ms/);
    // Backends: pids, project, RSS, peak, calls, hits, restarts, recycles by reason, what it does now.
    const alpha = line(/^ {2}serena +\/home\/dev\/alpha +31337,31338/);
    assert.match(alpha, /180 MB +212 MB +40 +10 +1 +1 \(limit 1\) +2 instances, 1 in flight/);
    const beta = line(/^ {2}serena +\/home\/dev\/beta/);
    assert.match(beta, /31500 +70\.0 MB +75\.0 MB +5 +0 +0 +2 \(pressure 2\) +1 instance, 2 waiting, held back: the memory budget 2\.00 GB has 100 MB free/);
    // Latency: p50/p95 per tool, marked over the target.
    assert.match(line(/LATENCY/), /!: over the server's response target/);
    assert.match(line(/^ {2}serena +tools\/call +find_symbol/), /30 +10 +1 +120ms +450ms! +200ms/);
    assert.match(line(/^ {2}serena +tools\/call +read_file/), /15 +0 +0 +8\.3ms +31ms +200ms$/);
    assert.match(line(/^ {2}memory +tools\/call +read_graph/), /0\.42ms +13ms +300ms$/);
  });

  it('says when no backend has started and no call was made', () => {
    const text = formatGatewayStatus(gatewayStatus({ backends: [], latency: [], sessions: 1, cache: { hits: 0, misses: 0, stores: 0, invalidations: 0, skipped: 0 } }));
    assert.match(text, /1 session;/);
    assert.match(text, /BACKENDS\n {2}none started yet/);
    assert.doesNotMatch(text, /LATENCY/);
    assert.match(text, /cache: 0 hits, 0 misses, 0 stored/);
    // Before any call, the target still comes from the kind.
    assert.match(text, /serena +code-analysis +per-project +0 \(1–5\) +17 \(2 cacheable\) +0 +0 +— +200ms/);
  });
});
