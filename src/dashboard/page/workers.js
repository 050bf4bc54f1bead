/*
 * The workers panel: a distributed run's live workers (WorkersSnapshot, src/telemetry/state.ts),
 * as their heartbeats say (budget, used = budget − free, running jobs, pressure, peak) and what
 * this run counted of each (tasks). Self-contained: it reads only its own feed (`workers`), and
 * shows only while there is a snapshot (a run that is not distributed has none).
 */
import { byId, emptyRow, h, setText } from "./dom.js";
import { fmtBytes, fmtDuration, fmtPct } from "./format.js";

export function createWorkersPanel() {
  const panel = byId("workers-panel");
  /** The snapshot last drawn: one arrives per second at most, and the table is rebuilt only for a new one. */
  const drawn = { snapshot: undefined };

  return {
    render({ feeds }) {
      const w = feeds.workers ?? null;
      if (drawn.snapshot === w) return;
      drawn.snapshot = w;
      panel.hidden = w == null;
      if (w == null) return;
      const running = w.workers.reduce((n, x) => n + x.running, 0);
      const budget = w.workers.reduce((n, x) => n + x.budget_bytes, 0);
      setText(byId("workers-meta"), `queue ${w.queue} · ${w.workers.length} live · ${running} job${running === 1 ? "" : "s"} running · budget ${fmtBytes(budget)} in all`);
      byId("workers-body").replaceChildren(...(w.workers.length === 0 ? [emptyRow(10, "No worker is live: start one with guild worker --redis URL")] : w.workers.map(workerRow)));
    },
  };
}

function workerRow(x) {
  const used = x.budget_bytes > 0 ? x.used_bytes / x.budget_bytes : null;
  return h("tr", { "data-testid": "worker-row", "data-worker": x.name },
    h("td", { class: "id", text: x.name }),
    h("td", { class: "muted", text: `${x.host} · pid ${x.pid}` }),
    h("td", { class: "r", text: fmtBytes(x.budget_bytes) }),
    h("td", { class: "r", text: `${fmtBytes(x.used_bytes)}${used === null ? "" : ` (${fmtPct(used)})`}`, title: `${fmtBytes(x.free_bytes)} free` }),
    h("td", { class: "r", text: String(x.running) }),
    h("td", { class: `level level-${x.pressure}`, text: x.pressure }),
    h("td", { class: "r", text: fmtBytes(x.peak_bytes) }),
    h("td", { class: "r", text: `${fmtDuration(x.heartbeat_age_ms)} ago`, title: new Date(x.last_heartbeat).toISOString() }),
    h("td", { class: "r", text: x.tasks == null ? "–" : String(x.tasks) }),
    h("td", { class: x.rejected > 0 ? "r err" : "r", text: String(x.rejected), title: "jobs refused for a missing or bad signature" }));
}
