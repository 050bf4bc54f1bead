/*
 * The server's API, as the page reads it (shapes in src/telemetry/state.ts):
 *   GET /api/state      → DashboardState + `settings` (bands, KPI points and period) + one field per feed (`mcp`)
 *   GET /api/events     → SSE: state, tick, alert, kpis, end, and each feed's event (`mcp`); see sse.js
 *   GET /api/runs       → RunSummary[]
 *   GET /api/runs/<id>  → { report, markdown, series }
 */

/** The page's ?token=, read where it is needed (the module holds nothing). */
function token() {
  return new URLSearchParams(location.search).get("token");
}

/** Every API and stream URL carries the page's ?token= (EventSource cannot send headers). */
export function apiUrl(path) {
  const t = token();
  if (!t) return path;
  return `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(t)}`;
}

export async function getJson(path) {
  const res = await fetch(apiUrl(path), { headers: { accept: "application/json" }, cache: "no-store" });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}
