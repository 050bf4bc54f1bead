import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { DEFAULTS } from '../config/defaults.js';
import { GuildError } from '../errors.js';
import { describeValue } from '../util/describe.js';
import { quantile } from '../util/quantile.js';
import type { GatewayStatus, McpCallEvent, McpCallOutcome, McpLatencyStatus } from './mcp-status.js';

/**
 * Call durations from 0.5 ms (a cached result) to 5 min (a long tool). 0.1, 0.2, 0.3 and 0.5 s are
 * bucket bounds so that the share of calls within each kind's response target (DEFAULTS.kindTargetsMs)
 * is exact in PromQL (`le="0.2"`), not interpolated.
 */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** The label and latency name every name past a server's cap is folded into. */
export const OTHER_NAME = 'other';

/** The MCP methods whose `name` (a tool or a prompt, from the server's own lists) gets a series of its own. */
const NAMED_METHODS: ReadonlySet<string> = new Set(['tools/call', 'prompts/get']);

/** Methods per server with series of their own; the gateway forwards a dozen, so this only guards a bug. */
const MAX_METHODS = 32;

/** The snapshot the scrape-time gauges read. `latency` is not read, so a source may leave it out (and the work it costs). */
export type GatewayStatusSource = () => Omit<GatewayStatus, 'latency'> | null;

/** Response-time targets by server name (ms); a server absent or null has none. */
export type LatencyTargets = Readonly<Record<string, number | null | undefined>>;

export interface McpTelemetryOptions {
  /** Where the metrics are registered (a run's registry, to share its `/metrics`). @default a registry of its own */
  registry?: Registry;
  /** The gateway's snapshot, read at scrape time for the backend gauges and counters. @default none: those metrics stay empty */
  status?: GatewayStatusSource;
  /**
   * Names (tools, prompts) per server with series of their own; every further name is folded into
   * `other`, which bounds both the label cardinality and the memory a client sending made-up tool
   * names can cost. @default 200
   */
  maxNamesPerServer?: number;
  /** Durations kept per series for p50/p95 (a uniform sample of every call: exact up to this many). @default 512 */
  reservoirSize?: number;
  /** Uniform in [0, 1), for the reservoir; injected by tests. @default Math.random */
  random?: () => number;
}

/** One (server, method, name): its counts, a reservoir of durations, and its histogram children. */
class Series {
  /** Forwarded to a backend (not from the cache), and answered from the cache: disjoint, as in McpBackendStatus. */
  forwarded = 0;
  cacheHits = 0;
  readonly outcomes: Record<McpCallOutcome, number> = { ok: 0, 'tool-error': 0, error: 0 };
  /** A uniform sample of every duration (ms) this series saw (algorithm R); `seen` counts them all. */
  readonly samples: number[] = [];
  seen = 0;
  /** `samples` sorted, kept until the next record(): a status read every second sorts only what changed. */
  sorted: number[] | null = null;
  /** The forwarded calls already counted as cache misses (see `#missCollector`). */
  missesCounted = 0;
  /** Histogram children for cached=false and cached=true; resolved once, since `labels()` hashes its arguments on every call. */
  readonly observers: [{ observe(v: number): void } | null, { observe(v: number): void } | null] = [null, null];

  constructor(
    readonly server: string,
    readonly method: string,
    /** The backend's name of the tool or prompt, `other` when folded; null for methods without one (resources/read: URIs are unbounded and may name private files). */
    readonly name: string | null,
  ) {}
}

/** A server's series, and which names may have their own. */
class ServerSeries {
  /** method → name ('' for none) → series. */
  readonly byMethod = new Map<string, Map<string, Series>>();
  /** Names with a series of their own, over every method. */
  readonly names = new Set<string>();
  /** The names the server itself lists, once declared; until then names are admitted first come, up to the cap. */
  declared: ReadonlySet<string> | null = null;

  constructor(readonly server: string) {}
}

/**
 * What the MCP gateway's calls cost: latency per (server, method, tool) with p50/p95 scored against
 * the seed's response targets, call and cache counters, and on a Prometheus registry:
 * `guild_mcp_call_duration_seconds`, `guild_mcp_calls_total`, `guild_mcp_cache_{hits,misses}_total`
 * and the backend gauges read from the gateway's snapshot at scrape time.
 *
 * Cost model: `record()` runs on every call, so it does three Map lookups, a few increments, a
 * reservoir insert and one observe on a prom-client histogram child resolved once per series:
 * ≈ 0.75 µs per call measured (Node 20, 2 CPUs), of which ≈ 0.7 µs is prom-client's observe (it
 * hashes its labels on every call); the rest is ≈ 40 ns. Everything else (counters, gauges,
 * quantiles) is computed from those counts when somebody reads: a scrape or a status.
 *
 * Why a reservoir for p50/p95 and not the histogram: bucket interpolation is off by up to a bucket's
 * width, which around a 200 ms target is 100 ms; a prom-client Summary (t-digest) costs ≈ 0.65 µs per
 * observe and still approximates. Algorithm R keeps a uniform sample of the gateway's whole life in
 * a fixed array: exact up to `reservoirSize` calls, then a p95 whose rank is off by ≈ 1 % (512 samples).
 */
export class McpTelemetry {
  readonly registry: Registry;
  readonly #servers = new Map<string, ServerSeries>();
  readonly #maxNames: number;
  readonly #reservoir: number;
  readonly #random: () => number;
  readonly #duration: Histogram<'server' | 'method' | 'tool' | 'cached'>;
  readonly #status: GatewayStatusSource | null;
  /** One snapshot per scrape: prom-client runs every collect() in one synchronous pass, so a microtask later the next scrape takes a fresh one. */
  #snapshot: Omit<GatewayStatus, 'latency'> | null | undefined = undefined;

  constructor(options: McpTelemetryOptions = {}) {
    this.registry = options.registry ?? new Registry();
    this.#maxNames = positiveInt('maxNamesPerServer', options.maxNamesPerServer, 200);
    this.#reservoir = positiveInt('reservoirSize', options.reservoirSize, 512);
    this.#random = options.random ?? Math.random;
    this.#status = options.status ?? null;
    const registers = [this.registry];
    this.#duration = new Histogram({
      name: 'guild_mcp_call_duration_seconds',
      help: 'Calls through the MCP gateway as the client waited for them, by server, method, tool (or prompt) and whether the cache answered.',
      labelNames: ['server', 'method', 'tool', 'cached'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.#counters(registers);
    this.#gauges(registers);
  }

  /**
   * The names a server lists itself (its tools and prompts, by the backend's names). From then on,
   * only these get series of their own (up to the cap); any other name a client sends is `other`.
   * Call again when the lists change; names already given a series keep it.
   */
  declareNames(server: string, names: Iterable<string>): void {
    this.#serverOf(server).declared = new Set(names);
  }

  /** Counts one call as it ends. Cheap enough for every call (see the class's cost model). */
  record(e: McpCallEvent): void {
    const s = this.#seriesOf(e);
    if (e.cached) s.cacheHits++;
    else s.forwarded++;
    s.outcomes[e.outcome]++;
    const ms = e.durationMs;
    // Algorithm R: the n-th value replaces a random slot with probability size / n.
    const n = ++s.seen;
    if (s.samples.length < this.#reservoir) s.samples.push(ms);
    else {
      const j = Math.floor(this.#random() * n);
      if (j < this.#reservoir) s.samples[j] = ms;
    }
    s.sorted = null;
    const c = e.cached ? 1 : 0;
    // Children are resolved lazily: a series that was never served from the cache has no cached="true" buckets.
    const observer = (s.observers[c] ??= this.#duration.labels(s.server, s.method, s.name ?? '', e.cached ? 'true' : 'false'));
    observer.observe(ms / 1000);
  }

  /**
   * p50/p95 and counts per (server, method, name), each with its server's response target. Sorted
   * by server, method, name. Calls and cache hits are disjoint (as in McpBackendStatus); `errors`
   * counts both MCP errors and tool errors; the percentiles cover every call, cached ones included,
   * since the target is about what the client waits.
   */
  latency(targets: LatencyTargets = {}): McpLatencyStatus[] {
    const out: McpLatencyStatus[] = [];
    for (const s of this.#allSeries()) {
      if (s.seen === 0) continue;
      // A typed array sorts numerically with no comparator call per comparison (latency() of 40 full series: 5.1 → 1.9 ms).
      s.sorted ??= Array.from(Float64Array.from(s.samples).sort());
      out.push({
        server: s.server,
        method: s.method,
        name: s.name,
        calls: s.forwarded,
        cacheHits: s.cacheHits,
        errors: s.outcomes.error + s.outcomes['tool-error'],
        p50Ms: roundMs(quantile(s.sorted, 0.5)),
        p95Ms: roundMs(quantile(s.sorted, 0.95)),
        targetMs: targets[s.server] ?? null,
      });
    }
    return out.sort((a, b) => cmp(a.server, b.server) || cmp(a.method, b.method) || cmp(a.name ?? '', b.name ?? ''));
  }

  /** The Prometheus text exposition of the registry (every metric on it, not only these). */
  async metrics(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  #serverOf(server: string): ServerSeries {
    let v = this.#servers.get(server);
    if (v === undefined) this.#servers.set(server, (v = new ServerSeries(server)));
    return v;
  }

  #seriesOf(e: McpCallEvent): Series {
    const v = this.#serverOf(e.server);
    let byName = v.byMethod.get(e.method);
    let method = e.method;
    if (byName === undefined) {
      if (v.byMethod.size >= MAX_METHODS) {
        method = OTHER_NAME;
        byName = v.byMethod.get(method);
      }
      if (byName === undefined) v.byMethod.set(method, (byName = new Map()));
    }
    const named = NAMED_METHODS.has(e.method) && e.name !== null;
    const key = named ? e.name! : '';
    const hit = byName.get(key);
    if (hit !== undefined) return hit;
    // A name not seen before: its own series if the server lists it (or lists nothing yet) and the cap allows.
    let name: string | null = null;
    if (named) {
      const admitted = (v.declared === null || v.declared.has(key)) && (v.names.has(key) || v.names.size < this.#maxNames);
      name = admitted ? key : OTHER_NAME;
      if (admitted) v.names.add(key);
      else {
        const other = byName.get(OTHER_NAME);
        if (other !== undefined) return other;
      }
    }
    const s = new Series(e.server, method, name);
    byName.set(name ?? '', s);
    return s;
  }

  *#allSeries(): Generator<Series> {
    for (const v of this.#servers.values()) for (const byName of v.byMethod.values()) yield* byName.values();
  }

  #snap(): Omit<GatewayStatus, 'latency'> | null {
    if (this.#status === null) return null;
    if (this.#snapshot === undefined) {
      this.#snapshot = this.#status();
      queueMicrotask(() => (this.#snapshot = undefined));
    }
    return this.#snapshot;
  }

  /** Counters from the series' cumulative counts, set at scrape (reset, then the totals: they only grow). */
  #counters(registers: Registry[]): void {
    const t = this;
    new Counter({
      name: 'guild_mcp_calls_total',
      help: 'Calls through the MCP gateway, by server, method and outcome (ok, tool-error: isError, error: an MCP error).',
      labelNames: ['server', 'method', 'outcome'],
      registers,
      collect() {
        this.reset();
        const sums = new Map<string, { server: string; method: string; o: Record<McpCallOutcome, number> }>();
        for (const s of t.#allSeries()) {
          const k = `${s.server}\0${s.method}`;
          let sum = sums.get(k);
          if (sum === undefined) sums.set(k, (sum = { server: s.server, method: s.method, o: { ok: 0, 'tool-error': 0, error: 0 } }));
          for (const o of OUTCOMES) sum.o[o] += s.outcomes[o];
        }
        for (const { server, method, o } of sums.values()) for (const outcome of OUTCOMES) this.labels(server, method, outcome).inc(o[outcome]);
      },
    });
    new Counter({
      name: 'guild_mcp_cache_hits_total',
      help: 'Tool calls the MCP gateway answered from its tool-result cache, by server.',
      labelNames: ['server'],
      registers,
      collect() {
        this.reset();
        const hits = new Map<string, number>();
        for (const name of t.#serverNames()) hits.set(name, 0);
        for (const s of t.#allSeries()) hits.set(s.server, (hits.get(s.server) ?? 0) + s.cacheHits);
        for (const [server, n] of hits) this.labels(server).inc(n);
      },
    });
    const misses = new Map<string, number>();
    new Counter({
      name: 'guild_mcp_cache_misses_total',
      help: 'Calls of cacheable tools the MCP gateway forwarded to a backend (not in the cache, or an error), by server.',
      labelNames: ['server'],
      registers,
      collect() {
        // A call is a miss when its tool is cacheable, which the snapshot says (McpServerStatus.cacheableTools).
        // Forwarded calls counted since the previous scrape are misses if the tool is cacheable now.
        const status = t.#snap();
        const cacheable = new Map((status?.servers ?? []).map((s) => [s.name, new Set(s.cacheableTools)]));
        for (const name of t.#serverNames()) if (!misses.has(name)) misses.set(name, 0);
        for (const s of t.#allSeries()) {
          if (s.method === 'tools/call' && s.name !== null && cacheable.get(s.server)?.has(s.name)) misses.set(s.server, (misses.get(s.server) ?? 0) + s.forwarded - s.missesCounted);
          s.missesCounted = s.forwarded;
        }
        this.reset();
        for (const [server, n] of misses) this.labels(server).inc(n);
      },
    });
  }

  /** Servers the snapshot configures, and those calls named. */
  #serverNames(): Set<string> {
    const names = new Set(this.#servers.keys());
    for (const s of this.#snap()?.servers ?? []) names.add(s.name);
    return names;
  }

  /** The backend gauges and counters, from the gateway's snapshot at scrape time; empty without one. */
  #gauges(registers: Registry[]): void {
    const snap = (): Omit<GatewayStatus, 'latency'> | null => this.#snap();
    new Gauge({
      name: 'guild_mcp_backend_rss_bytes',
      help: "Measured RSS of the MCP gateway's live backend instances (whole process trees), by server and project.",
      labelNames: ['server', 'project'],
      registers,
      collect() {
        // Reset first: a slot that went away must not keep reporting its last figure.
        this.reset();
        const sums = new Map<string, { server: string; project: string; bytes: number }>();
        for (const b of snap()?.backends ?? []) {
          const k = `${b.server}\0${b.project}`;
          const sum = sums.get(k);
          if (sum === undefined) sums.set(k, { server: b.server, project: b.project, bytes: b.rssBytes });
          else sum.bytes += b.rssBytes;
        }
        for (const { server, project, bytes } of sums.values()) this.labels(server, project).set(bytes);
      },
    });
    new Gauge({
      name: 'guild_mcp_instances',
      help: 'Live backend instances of each MCP server (taking calls, starting, or draining).',
      labelNames: ['server'],
      registers,
      collect() {
        this.reset();
        const s = snap();
        if (s === null) return;
        const n = new Map(s.servers.map((v) => [v.name, 0]));
        for (const b of s.backends) n.set(b.server, (n.get(b.server) ?? 0) + b.instances);
        for (const [server, count] of n) this.labels(server).set(count);
      },
    });
    // Cumulative per slot in the snapshot; a slot can leave it, so each one's last figure is kept and
    // only its growth is added: the totals never go down.
    const restarts = new Tally();
    new Counter({
      name: 'guild_mcp_backend_restarts_total',
      help: 'MCP backend instances started again after one crashed, by server.',
      labelNames: ['server'],
      registers,
      collect() {
        const s = snap();
        if (s === null) return;
        for (const v of s.servers) restarts.touch(v.name);
        for (const b of s.backends) restarts.add(b.server, slotKey(b), b.restarts);
        this.reset();
        for (const [server, n] of restarts.totals) this.labels(server).inc(n);
      },
    });
    const recycles = new Tally();
    new Counter({
      name: 'guild_mcp_backend_recycles_total',
      help: 'MCP backend instances recycled gracefully, by server and reason (limit, pressure, manual).',
      labelNames: ['server', 'reason'],
      registers,
      collect() {
        const s = snap();
        if (s === null) return;
        for (const b of s.backends) for (const [reason, n] of Object.entries(b.recyclesBy)) recycles.add(`${b.server}\0${reason}`, slotKey(b), n);
        this.reset();
        for (const [k, n] of recycles.totals) {
          const [server, reason] = k.split('\0') as [string, string];
          this.labels(server, reason).inc(n);
        }
      },
    });
    new Gauge({
      name: 'guild_mcp_sessions',
      help: 'Client sessions open on the MCP gateway.',
      registers,
      collect() {
        // Without a snapshot the gateway is not up: no sessions (a label-less gauge always shows a value).
        this.set(snap()?.sessions ?? 0);
      },
    });
    new Gauge({
      name: 'guild_mcp_reserved_bytes',
      help: "What the MCP gateway's live backends hold against the budget: Σ max(reservation, measured RSS).",
      registers,
      collect() {
        this.set(snap()?.reservedBytes ?? 0);
      },
    });
  }
}

const OUTCOMES: readonly McpCallOutcome[] = ['ok', 'tool-error', 'error'];

/** Totals of cumulative per-slot figures that may leave the snapshot: only growth is added. */
class Tally {
  readonly totals = new Map<string, number>();
  readonly #last = new Map<string, number>();

  touch(key: string): void {
    if (!this.totals.has(key)) this.totals.set(key, 0);
  }

  add(key: string, slot: string, now: number): void {
    const k = `${key}\0${slot}`;
    // A figure below the last one is a slot started afresh under the same key: its count restarts from 0.
    const last = this.#last.get(k) ?? 0;
    const grown = now >= last ? now - last : now;
    this.#last.set(k, now);
    this.totals.set(key, (this.totals.get(key) ?? 0) + grown);
  }
}

const slotKey = (b: { server: string; project: string; session: string | null }): string => `${b.server}\0${b.project}\0${b.session ?? ''}`;

/**
 * Response-time targets per server from their kinds: the seed's code analysis 200 ms, knowledge
 * 300 ms, coordination 500 ms, file ops 100 ms (DEFAULTS.kindTargetsMs). A server of no kind, or
 * of a kind without a target, has none.
 */
export function latencyTargets(servers: readonly { name: string; kind: string | null }[]): Record<string, number | null> {
  const kinds: Readonly<Record<string, number>> = DEFAULTS.kindTargetsMs;
  return Object.fromEntries(servers.map((s) => [s.name, s.kind !== null && Object.hasOwn(kinds, s.kind) ? kinds[s.kind]! : null]));
}

/** To the microsecond: what a reader can use, without float noise in the JSON. */
const roundMs = (ms: number): number => Math.round(ms * 1000) / 1000;

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new GuildError('INVALID_OPTION', `Expected ${name} to be a positive integer, got ${describeValue(value)}`);
  return value;
}
