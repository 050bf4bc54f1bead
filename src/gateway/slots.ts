import type { ResolvedMcpServer } from '../config/mcp.js';
import type { PoolGroupStats, PoolMember } from '../scheduler/service-pool.js';
import type { McpBackendStatus } from '../telemetry/mcp-status.js';
import type { McpBackend } from './backend.js';

// A slot is one pool key: a server for one project (or for all, `shared`; or for one session,
// `per-session`), and what it did over the gateway's life, whichever instances served it.

export interface Slot {
  readonly key: string;
  readonly server: ResolvedMcpServer;
  /** Absolute folder, or `*` for a shared server. */
  readonly project: string;
  readonly session: string | null;
  /** Pids that served it, oldest first (the last 20). */
  readonly pids: number[];
  calls: number;
  cacheHits: number;
  /** Instances started again after a crash. */
  restarts: number;
  /** Recycles the gateway saw end an instance (limit, pressure), beyond those the pool counts. */
  readonly recyclesBy: Record<string, number>;
  peakRssBytes: number;
  /** The last instance crashed: the next start is a restart (its lists are learned again). */
  crashed: boolean;
}

/** Instances started in this process: ids stay unique across gateways (they name cgroups). */
let started = 0;

export class Slots {
  readonly #slots = new Map<string, Slot>();

  /** The key of (server, project, session), its slot made on first use. */
  key(server: ResolvedMcpServer, project: string, session: string | null): string {
    const key = session === null ? `${server.name}\0${project}` : `${server.name}\0${project}\0${session}`;
    if (!this.#slots.has(key)) {
      this.#slots.set(key, { key, server, project, session, pids: [], calls: 0, cacheHits: 0, restarts: 0, recyclesBy: {}, peakRssBytes: 0, crashed: false });
    }
    return key;
  }

  get(key: string): Slot {
    const s = this.#slots.get(key);
    if (s === undefined) throw new Error(`gateway: no slot ${JSON.stringify(key)}`);
    return s;
  }

  all(): Slot[] {
    return [...this.#slots.values()];
  }

  /** Keys of a session's per-session slots (dropped with it). */
  ofSession(id: string): string[] {
    const out: string[] = [];
    for (const s of this.#slots.values()) if (s.session === id) out.push(s.key);
    for (const k of out) this.#slots.delete(k);
    return out;
  }

  /** A supervisor id for the next instance of `server`: `mcp-<server>-<n>`, n unique in the process (ids name cgroups). */
  nextId(server: string): string {
    return `mcp-${server}-${++started}`;
  }

  report(slot: Slot, stats: PoolGroupStats | undefined, members: readonly PoolMember<McpBackend>[]): McpBackendStatus {
    const recyclesBy: Record<string, number> = { ...slot.recyclesBy };
    for (const [why, n] of Object.entries(stats?.recycles ?? {})) recyclesBy[why] = (recyclesBy[why] ?? 0) + n;
    return {
      server: slot.server.name,
      project: slot.project,
      session: slot.session,
      pids: members.map((m) => m.instance.pid).filter((p): p is number => p !== null),
      allPids: [...slot.pids],
      instances: stats?.instances ?? 0,
      starting: stats?.starting ?? 0,
      draining: stats?.draining ?? 0,
      inFlight: stats?.inFlight ?? 0,
      waiting: stats?.waiting ?? 0,
      rssBytes: members.reduce((n, m) => n + m.memoryBytes, 0),
      peakRssBytes: slot.peakRssBytes,
      calls: slot.calls,
      cacheHits: slot.cacheHits,
      restarts: slot.restarts,
      recycles: Object.values(recyclesBy).reduce((a, b) => a + b, 0),
      recyclesBy,
      admissionTimeouts: stats?.admissionTimeouts ?? 0,
      admissionDenied: stats?.admissionDenied ?? null,
    };
  }
}
