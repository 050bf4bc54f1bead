/*
 * The workers panel: a distributed run's live workers (WorkersSnapshot, src/telemetry/state.ts),
 * as their heartbeats say (budget, used = budget − free, running jobs, pressure, peak) and what
 * this run counted of each (tasks). It reads its own feed (`workers`) for the live run, and a past
 * run's `workers` (views.js) for one opened from history, and shows only while there is either (a
 * run that is not distributed has neither).
 */
import { byId, emptyRow, h, setText } from "./dom.js";
import { fmtBytes, fmtDuration, fmtPct } from "./format.js";

export function createWorkersPanel() {
  const panel = byId("workers-panel");
  /** The snapshot last drawn: one arrives per second at most, and the table is rebuilt only for a new one. */
  const drawn = { snapshot: undefined };

  return {
    render({ feeds, run }) {
      const w = feeds.workers ?? run.workers ?? null;
      if (drawn.snapshot === w) return;
      drawn.snapshot = w;
      panel.hidden = w == null;
      if (w == null) return;
      const budget = w.workers.reduce((n, x) => n + x.budget_bytes, 0);
      const running = w.workers.reduce((n, x) => n + (x.running ?? 0), 0);
      // A past run's workers are what its report kept: no heartbeat, nothing running.
      setText(byId("workers-meta"), w.queue == null
        ? `${w.workers.length} worker${w.workers.length === 1 ? "" : "s"} served the run · budget ${fmtBytes(budget)} in all`
        : `queue ${w.queue} · ${w.workers.length} live · ${running} job${running === 1 ? "" : "s"} running · budget ${fmtBytes(budget)} in all`);
      byId("workers-body").replaceChildren(...(w.workers.length === 0 ? [emptyRow(10, "No worker is live: start one with guild worker --redis URL")] : w.workers.map(workerRow)));
    },
  };
}

function workerRow(x) {
  const used = x.used_bytes != null && x.budget_bytes > 0 ? x.used_bytes / x.budget_bytes : null;
  return h("tr", { "data-testid": "worker-row", "data-worker": x.name },
    h("td", { class: "id", text: x.name }),
    h("td", { class: "muted", text: x.pid == null ? x.host ?? "–" : `${x.host} · pid ${x.pid}` }),
    h("td", { class: "r", text: fmtBytes(x.budget_bytes) }),
    h("td", { class: "r", text: `${fmtBytes(x.used_bytes)}${used === null ? "" : ` (${fmtPct(used)})`}`, title: x.free_bytes == null ? null : `${fmtBytes(x.free_bytes)} free` }),
    h("td", { class: "r", text: x.running == null ? "–" : String(x.running) }),
    h("td", { class: x.pressure ? `level level-${x.pressure}` : "muted", text: x.pressure ?? "–" }),
    h("td", { class: "r", text: fmtBytes(x.peak_bytes) }),
    h("td", { class: "r", text: x.last_heartbeat == null ? "–" : `${fmtDuration(x.heartbeat_age_ms)} ago`, title: x.last_heartbeat == null ? null : new Date(x.last_heartbeat).toISOString() }),
    h("td", { class: "r", text: x.tasks == null ? "–" : String(x.tasks) }),
    h("td", { class: x.rejected > 0 ? "r err" : "r", text: String(x.rejected), title: "jobs refused for a missing or bad signature" }));
}
