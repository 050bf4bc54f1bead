/*
 * Past runs: the table (/api/runs), a run's summary and panels when one is picked (/api/runs/<id>),
 * and a fresh look at the store when the live run ends.
 */
import { getJson } from "./api.js";
import { byId, emptyRow, h, setText, showNotice } from "./dom.js";
import { fmtBytes, fmtCount, fmtDate, fmtDuration, fmtPct, fmtTokens, fmtUsd } from "./format.js";
import { beginLoading, isLoading, read, setRuns, showPast } from "./model.js";
import { pastRun, TASK_STATUSES } from "./views.js";

/** How many past runs the table lists. */
const RUNS_LIMIT = 50;
/** After the end, the store is read again this often until it lists the run as ended. */
const REFRESH_MS = 600;
const REFRESH_TRIES = 5;

export async function loadRuns() {
  try {
    setRuns(await getJson(`/api/runs?limit=${RUNS_LIMIT}`));
    showNotice(null);
    // `guild dashboard` (no live run): show the newest past run rather than an empty page.
    const m = read();
    if (m.live.state?.mode === "history" && m.view.kind === "live" && m.history.runs.length > 0) openRun(m.history.runs[0].id);
  } catch (err) {
    showNotice(`Could not load past runs: ${err.message}`);
  }
}

export async function openRun(id) {
  beginLoading(id);
  try {
    const detail = await getJson(`/api/runs/${encodeURIComponent(id)}`);
    if (!isLoading(id)) return; // another run was picked meanwhile
    const m = read();
    const summary = m.history.runs.find((r) => r.id === id) ?? null;
    showPast(id, pastRun(m, id, detail, summary), detail.markdown ?? "");
    showNotice(null);
  } catch (err) {
    showNotice(`Could not load run ${id}: ${err.message}`);
  }
}

/** Reads history again until the store lists the run that just ended as ended (it writes it as the run closes). */
export async function refreshEndedRun(id, triesLeft = REFRESH_TRIES) {
  await new Promise((r) => setTimeout(r, REFRESH_MS));
  await loadRuns();
  const row = read().history.runs.find((r) => r.id === id);
  if (id && triesLeft > 1 && (!row || row.status === "running")) refreshEndedRun(id, triesLeft - 1);
}

function runStatusClass(status) {
  if (status === "interrupted") return "paused";
  if (status === "crashed") return "failed";
  return TASK_STATUSES.includes(status) ? status : "skipped";
}

function runRow(r) {
  const select = () => openRun(r.id);
  return h("tr", { "data-run-id": r.id, "data-status": r.status, tabindex: 0, onclick: select, onkeydown: (e) => (e.key === "Enter" || e.key === " ") && select() },
    h("td", null, h("span", { class: `chip st-${runStatusClass(r.status)}`, text: r.status })),
    h("td", { text: r.name || r.workflow, title: r.workflow }),
    h("td", { class: "id", text: r.id }),
    h("td", { text: fmtDate(r.started_at) }),
    h("td", { class: "r", text: fmtDuration(r.makespan_ms) }),
    h("td", { class: "r", text: fmtBytes(r.peak_rss_bytes) }),
    h("td", { class: "r", text: fmtCount(r.tasks) }),
    h("td", { class: "r", text: fmtCount(r.failed) }),
    h("td", { class: "r", text: fmtPct(r.cache_hit_rate) }),
    h("td", { class: "r", text: fmtTokens(r.tokens) }),
    h("td", { class: "r", text: fmtUsd(r.cost_usd) }),
    h("td", null, h("span", { class: `score score-${r.kpi_overall ?? "none"}`, text: r.kpi_overall ?? "not scored" })));
}

/** The runs table, the selected row, and the opened run's Markdown summary. */
export function createRunsPanel() {
  const body = byId("runs-body");
  const detail = byId("run-detail");
  /** The list and the summary last drawn. */
  const drawn = { runs: undefined, opened: undefined };

  return {
    render({ runs, pastId, opened }) {
      if (drawn.runs !== runs) {
        drawn.runs = runs;
        body.replaceChildren(...(runs.length === 0 ? [emptyRow(12, "No past runs in the store yet")] : runs.map(runRow)));
      }
      for (const tr of body.children) tr.classList.toggle("selected", tr.dataset.runId === pastId);
      if (drawn.opened !== opened) {
        drawn.opened = opened;
        // Once a run was opened its summary stays, also back on the live run.
        detail.hidden = opened == null;
        setText(byId("detail-id"), opened?.id ?? "");
        setText(byId("run-markdown"), opened?.markdown ?? "");
      }
    },
  };
}
