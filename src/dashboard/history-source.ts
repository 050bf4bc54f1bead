import { existsSync } from 'node:fs';
import { openDatabase, storeFile } from '../store/db.js';
import { TelemetryHistory } from '../store/telemetry.js';
import type { GuildMetrics } from '../telemetry/metrics.js';
import { runFromHistory } from '../telemetry/run-telemetry.js';
import type { DashboardState, RunSummary, SeriesPoint } from '../telemetry/state.js';
import { GuildError } from '../errors.js';
import type { DashboardSource } from './source.js';

/**
 * `guild dashboard`: past runs from a workflow's store, no live run. `/metrics` carries Guild's own
 * process metrics only.
 */
export class HistorySource implements DashboardSource {
  readonly #history: TelemetryHistory;
  readonly #close: () => void;
  readonly #metrics: GuildMetrics;

  /**
   * @param dir the workflow's folder (its `.guild/guild.db` is read)
   * @param metrics what `/metrics` serves (Guild's own process metrics; no run feeds it)
   */
  constructor(dir: string, metrics: GuildMetrics) {
    const file = storeFile(dir);
    if (!existsSync(file)) throw new GuildError('NOT_FOUND', `no run history in ${dir}: ${file} does not exist (run the workflow first)`);
    const db = openDatabase(file);
    this.#history = new TelemetryHistory(db);
    this.#close = () => db.close();
    this.#metrics = metrics;
  }

  state(): DashboardState {
    return {
      version: 1,
      mode: 'history',
      run: null,
      memory: null,
      pressure: null,
      queue: { queued: 0, running: 0, paused: 0, done: 0, total: 0, blocked: null },
      tasks: [],
      agents: [],
      series: [],
      cache: { hits: 0, misses: 0, hit_rate: null, saved_ms: 0 },
      kpis: null,
      alerts: [],
      guild: { rss_bytes: process.memoryUsage.rss(), event_loop_delay_p99_ms: null, gc_pause_total_ms: 0 },
    };
  }

  metrics(): Promise<{ contentType: string; body: string }> {
    return this.#metrics.text();
  }

  /** Nothing happens live in history mode. */
  subscribe(): () => void {
    return () => undefined;
  }

  runs(limit: number): RunSummary[] {
    return this.#history.runs(limit);
  }

  run(ref: string): { report: unknown; markdown: string; series: SeriesPoint[] } | null {
    return runFromHistory(this.#history, ref);
  }

  close(): void {
    this.#close();
  }
}
