/**
 * `/api/state` as served: the source's state, the settings the page draws with, and one field per
 * feed (the MCP gateway's `mcp`; the panels the next issues add bring their own feed). Every field
 * of the source's state goes out unchanged: users' scripts read them.
 */
import { DEFAULTS } from '../config/defaults.js';
import { KPI_MINIMUMS, KPI_POINTS } from '../telemetry/kpi.js';
import type { DashboardState } from '../telemetry/state.js';
import type { DashboardSettings, DashboardSource, PressureThresholds } from './source.js';

/**
 * A snapshot the server pulls for a panel whose figures are not part of a run: `/api/state`
 * carries it under `name`, and an SSE event of that name brings a fresh one every `intervalMs`
 * while clients are attached (read once per period for all of them).
 */
export interface Feed {
  /** The state field and the event name; never one of DashboardState's own fields. */
  readonly name: string;
  /** null while what it watches is not up. May throw: the clients then keep the last snapshot. */
  readonly read: () => unknown;
  readonly intervalMs: number;
}

/** What `/api/state` answers. */
export type ServedState = DashboardState & { settings: DashboardSettings } & Record<string, unknown>;

/** The governor's default bands, under the names the state uses. */
const DEFAULT_THRESHOLDS: PressureThresholds = Object.freeze({
  moderate: DEFAULTS.thresholds.moderate,
  high: DEFAULTS.thresholds.high,
  critical: DEFAULTS.thresholds.critical,
  emergency: DEFAULTS.thresholds.emergency,
  kill: DEFAULTS.thresholds.ceiling,
});

/** The source's settings over the defaults. The state's own thresholds (the run's resolved config) beat the governor's defaults. */
export function settingsOf(source: DashboardSource, state: DashboardState): DashboardSettings {
  const own = source.settings?.() ?? {};
  return {
    thresholds: own.thresholds ?? state.memory?.thresholds ?? DEFAULT_THRESHOLDS,
    kpi_points: own.kpi_points ?? KPI_POINTS,
    kpi_interval_ms: own.kpi_interval_ms ?? null,
    kpi_minimums: own.kpi_minimums ?? KPI_MINIMUMS,
  };
}

/** Builds the served state on demand: once per `/api/state` request and per SSE client's first message. */
export function servedState(source: DashboardSource, feeds: readonly Feed[]): () => ServedState {
  return () => {
    const state = source.state();
    const served: ServedState = { ...state, settings: settingsOf(source, state) };
    // A feed that fails here fails the request (a clean 500), as a failing source does.
    for (const feed of feeds) served[feed.name] = feed.read();
    return served;
  };
}
