import { isAbsolute, resolve } from 'node:path';
import type { ResolvedMcp } from '../config/mcp.js';
import type { RunningGateway } from '../gateway/serve.js';
import type { Supervisor } from '../supervisor/supervisor.js';

/** A run's gateway on this worker is closed after this long without a job of that run. */
const IDLE_CLOSE_MS = 60_000;

interface RunGateway {
  running: Promise<RunningGateway>;
  /** Once it serves. */
  ready: RunningGateway | null;
  jobs: number;
  idle: NodeJS.Timeout | null;
  /** The run is over: close as its last job here ends. */
  closing: boolean;
}

/**
 * The MCP gateways of a worker: one per run whose workflow declares `mcp:`, started with the
 * run's first job here, under the worker's supervisor and budget (its backends count beside the
 * jobs), on a loopback port; its jobs get GUILD_MCP_URL. Closed when the run ends (its submitter
 * says so), is cancelled, or has had no job here for a minute.
 */
export class WorkerGateways {
  readonly #supervisor: Supervisor;
  readonly #budget: { budgetBytes: number; headroom: number; otherBytes: () => number };
  readonly #log: (line: string) => void;
  readonly #runs = new Map<string, RunGateway>();

  constructor(supervisor: Supervisor, budget: { budgetBytes: number; headroom: number; otherBytes: () => number }, log: (line: string) => void) {
    this.#supervisor = supervisor;
    this.#budget = budget;
    this.#log = log;
  }

  /** Memory the gateways' backends hold (reserved), bytes. */
  bytes(): number {
    let n = 0;
    for (const g of this.#runs.values()) n += g.ready?.gateway.reservedBytes() ?? 0;
    return n;
  }

  /**
   * The URL of the run's gateway, started for the first job of the run here. `mcp` comes with
   * the job: a server's relative `cwd` is inside the job's folder. Rejects when it cannot start
   * (nothing of it is left running).
   */
  async acquire(runId: string, mcp: ResolvedMcp, folder: string): Promise<string> {
    let g = this.#runs.get(runId);
    if (g === undefined) {
      const servers = mcp.servers.map((s) => ({ ...s, cwd: s.cwd === null ? null : isAbsolute(s.cwd) ? s.cwd : resolve(folder, s.cwd) }));
      const running = import('../gateway/serve.js').then(({ serveGateway }) =>
        serveGateway({ mcp: { ...mcp, servers }, dir: folder, supervisor: this.#supervisor, budget: this.#budget, cache: null, port: 0, runId, onError: (e) => this.#log(`mcp (run ${runId}): ${e.message}`) }),
      );
      const made: RunGateway = { running, ready: null, jobs: 0, idle: null, closing: false };
      this.#runs.set(runId, (g = made));
      running.then(
        (r) => {
          made.ready = r;
          this.#log(`mcp gateway for run ${runId} at ${r.url}`);
        },
        () => this.#runs.delete(runId),
      );
    }
    g.jobs++;
    if (g.idle) clearTimeout(g.idle);
    g.idle = null;
    try {
      return (await g.running).url;
    } catch (e) {
      g.jobs--;
      throw e;
    }
  }

  /** A job of the run ended here. */
  release(runId: string): void {
    const g = this.#runs.get(runId);
    if (g === undefined) return;
    g.jobs--;
    if (g.jobs === 0 && g.closing) void this.close(runId);
    else if (g.jobs === 0) {
      g.idle = setTimeout(() => void this.close(runId), IDLE_CLOSE_MS);
      g.idle.unref();
    }
  }

  /** Closes the run's gateway (its backends end) once its jobs here have ended. */
  async close(runId: string): Promise<void> {
    const g = this.#runs.get(runId);
    if (g === undefined) return;
    if (g.jobs > 0) {
      g.closing = true;
      return;
    }
    this.#runs.delete(runId);
    if (g.idle) clearTimeout(g.idle);
    await g.running.then((r) => r.close()).catch(() => undefined);
    this.#log(`mcp gateway for run ${runId} closed`);
  }

  /** Closes every gateway, whatever runs (the worker is closing). */
  async closeAll(): Promise<void> {
    const all = [...this.#runs.values()];
    this.#runs.clear();
    await Promise.all(all.map((g) => (g.idle && clearTimeout(g.idle), g.running.then((r) => r.close()).catch(() => undefined))));
  }
}
