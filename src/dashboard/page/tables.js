/* The tasks table (rows kept per task, so a tick touches only the rows that changed) and the agents table. */
import { byId, emptyRow, h, setText } from "./dom.js";
import { fmtBytes, fmtClock, fmtDuration, fmtTokens, fmtUsd } from "./format.js";
import { isActive, TASK_STATUSES, taskDuration } from "./views.js";

function taskCountText(tasks) {
  const by = {};
  for (const t of tasks) by[t.status] = (by[t.status] ?? 0) + 1;
  return TASK_STATUSES.filter((s) => by[s]).map((s) => `${by[s]} ${s}`).join(" · ");
}

function taskRowElement() {
  const tr = h("tr", { "data-testid": "task-row" });
  for (const cls of ["id", "", "id worker-col", "", "r", "r", "r", "r", "err"]) tr.append(h("td", { class: cls || null }));
  return tr;
}

function fillTaskRow(tr, t, run) {
  tr.dataset.taskId = t.id;
  tr.dataset.status = t.status;
  const c = tr.children;
  setText(c[0], t.id);
  setText(c[1], t.agent);
  setText(c[2], t.worker ?? "–");
  if (c[3].dataset.status !== t.status) {
    c[3].dataset.status = t.status;
    c[3].replaceChildren(h("span", { class: `chip st-${t.status}`, text: t.status }));
  }
  setText(c[4], t.started_ms == null ? "–" : fmtClock(t.started_ms / 1000));
  setText(c[5], fmtDuration(taskDuration(t, run)));
  const rss = isActive(t.status) && t.rss_bytes != null ? `${fmtBytes(t.rss_bytes)} / ` : "";
  setText(c[6], `${rss}${fmtBytes(t.peak_rss_bytes)}`);
  setText(c[7], String(t.attempts));
  setText(c[8], t.error ?? "");
  c[8].title = t.error ?? "";
}

export function createTaskTable() {
  const body = byId("task-body");
  const table = byId("task-table");
  /** Rows by task id, for the run last drawn (`key`), and their order. */
  const rows = { key: "", order: "", byId: new Map() };

  return {
    render({ run, feeds }) {
      // The worker column is a distributed run's: while its workers feed is live, or once a row names a worker.
      table.classList.toggle("hide-worker", feeds.workers == null && !run.tasks.some((t) => t.worker != null));
      if (rows.key !== run.key) {
        rows.key = run.key;
        rows.byId.clear();
        body.replaceChildren();
      }
      const seen = new Set();
      for (const t of run.tasks) {
        seen.add(t.id);
        let entry = rows.byId.get(t.id);
        if (!entry) {
          entry = { tr: taskRowElement(), row: null };
          rows.byId.set(t.id, entry);
        }
        // A running task's duration and RSS move with the clock: redrawn every frame.
        if (entry.row !== t || isActive(t.status)) fillTaskRow(entry.tr, t, run);
        entry.row = t;
      }
      for (const [id, entry] of rows.byId) {
        if (seen.has(id)) continue;
        entry.tr.remove();
        rows.byId.delete(id);
      }
      const order = run.tasks.map((t) => t.id).join("\n");
      if (order !== rows.order || body.childElementCount !== run.tasks.length) {
        rows.order = order;
        body.replaceChildren(...run.tasks.map((t) => rows.byId.get(t.id).tr));
      }
      if (run.tasks.length === 0) body.replaceChildren(emptyRow(9, "No tasks"));
      setText(byId("task-count"), taskCountText(run.tasks));
    },
  };
}

export function createAgentTable() {
  const body = byId("agent-body");
  return {
    render({ run }) {
      if (run.agents.length === 0) {
        body.replaceChildren(emptyRow(11, "No agents yet"));
        return;
      }
      body.replaceChildren(...run.agents.map((a) =>
        h("tr", null,
          h("td", { class: "id", text: a.name }),
          h("td", { class: "muted", text: a.kind ?? "" }),
          h("td", { class: "r", text: String(a.running) }),
          h("td", { class: "r", text: String(a.done) }),
          h("td", { class: "r", text: String(a.failed) }),
          h("td", { class: "r", text: a.running > 0 ? fmtBytes(a.rss_bytes) : "–" }),
          h("td", { class: "r", text: fmtBytes(a.peak_rss_bytes) }),
          h("td", { class: "r", text: fmtBytes(a.declared_bytes) }),
          h("td", { class: "r", text: fmtDuration(a.mean_duration_ms) }),
          h("td", { class: "r", text: fmtTokens(a.tokens) }),
          h("td", { class: "r", text: fmtUsd(a.cost_usd) }))));
    },
  };
}
