/* The top bar (run, status, clock, connection), the past-run banner, the summary figures, the footer. */
import { byId, h, setText } from "./dom.js";
import { fmtDuration } from "./format.js";
import { showLive } from "./model.js";

const CONNECTION_TEXT = Object.freeze({
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  ended: "run ended · final state",
  stopped: "server stopped · showing the last data received",
});

export function createHeader() {
  const status = byId("status");
  const connection = byId("connection");
  byId("back-live").addEventListener("click", showLive);

  return {
    render({ run, past, connection: state, hasLiveRun, footer }) {
      setText(byId("wf-name"), run.title);
      setText(byId("run-id"), run.runId);
      setText(status, run.status);
      status.dataset.status = run.status;
      setText(byId("elapsed"), run.elapsedMs == null ? "—" : fmtDuration(run.elapsedMs));
      document.title = run.runId ? `${run.status} · ${run.title} · Guild` : "Guild";
      connection.dataset.state = state;
      setText(byId("conn-text"), CONNECTION_TEXT[state]);
      byId("banner").hidden = !past;
      if (past) setText(byId("banner-run"), `${run.title} · ${run.runId}`);
      // "Back to the live run" only makes sense when this process has (or had) one.
      byId("back-live").hidden = !hasLiveRun;
      setText(byId("footer"), footer);
    },
  };
}

export function createFigures() {
  const box = byId("figures");
  const blocked = byId("blocked");
  return {
    render({ run }) {
      box.replaceChildren(...run.figures.map((f) =>
        h("div", { class: `figure${f.tone ? ` tone-${f.tone}` : ""}` },
          h("div", { class: "label", text: f.label }),
          h("div", { class: "value", text: f.value, title: f.value }),
          h("div", { class: "sub", text: f.sub, title: f.sub }))));
      const b = run.blocked;
      blocked.hidden = !b;
      if (b) setText(blocked, `Waiting: ${b.id} — ${b.reason} (for ${fmtDuration(b.waited_ms)})`);
    },
  };
}
