/**
 * What the dashboard shows, as the server asks for it. The server owns no state of its own: a
 * source (a run's telemetry, the history store, a test's fixture) resolves everything.
 */
import type { DashboardState, KpiMinimum, RunSummary, Score, SeriesPoint } from '../telemetry/state.js';

/** The pressure bands, as fractions of the effective memory limit (the governor's `ceiling` is `kill`). */
export type PressureThresholds = NonNullable<DashboardState['memory']>['thresholds'];

/**
 * The lines and grades the page draws with. The server sends them in `/api/state` (`settings`) and
 * in each client's first `state` event, so the page copies none of the server's constants.
 */
export interface DashboardSettings {
  /** Where each pressure band begins; the page shades the memory chart and labels its legend with them. */
  thresholds: PressureThresholds;
  /** Points per KPI grade (the overall score is their mean). */
  kpi_points: Readonly<Record<Score, number>>;
  /** How often KPIs are re-scored while a run is live; null when the source does not say. */
  kpi_interval_ms: number | null;
  /** The evidence each KPI needs before it is graded (below it: "not scored: too little data"). */
  kpi_minimums: Readonly<Record<string, Readonly<KpiMinimum>>>;
}

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
  /**
   * The source's own lines and grades, where they differ from Guild's defaults or the defaults do
   * not know them (the KPI period belongs to whoever scores the KPIs). Read with every state.
   * @default none: the state's memory thresholds, else the governor's defaults; the KPI points of
   * telemetry/kpi.ts; no KPI period
   */
  settings?(): Partial<DashboardSettings>;
}
