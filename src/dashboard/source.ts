/**
 * What the dashboard shows, as the server asks for it. The server owns no state of its own: a
 * source (a run's telemetry, the history store, a test's fixture) resolves everything.
 */
import type { DashboardState, RunSummary, SeriesPoint } from '../telemetry/state.js';

/** What the server shows. */
export interface DashboardSource {
  /** The whole current state (`/api/state`, and the first SSE message of each client). */
  state(): DashboardState;
  /** Prometheus text exposition. */
  metrics(): Promise<{ contentType: string; body: string }>;
  /**
   * Every SSE message, already serialized once by the source: (event name, JSON data). Returns
   * unsubscribe. The server subscribes while at least one client is attached, and only then.
   */
  subscribe(listener: (event: string, data: string) => void): () => void;
  /** Past runs, newest first. */
  runs(limit: number): RunSummary[];
  /** One run; `id` may be 'last' or a prefix: the source resolves it. null when none matches. */
  run(id: string): { report: unknown; markdown: string; series: SeriesPoint[] } | null;
}
