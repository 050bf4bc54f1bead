/* Alerts, newest first, with how many repeats the cooldown suppressed. */
import { byId, h, setText } from "./dom.js";
import { fmtClock, fmtDate } from "./format.js";

export function createAlerts() {
  const list = byId("alerts");
  const count = byId("alert-count");
  /** The run, count and repeats last drawn: alerts change rarely, frames often. */
  const drawn = { key: "" };

  return {
    render({ run }) {
      const key = `${run.key}:${run.alerts.length}:${run.alerts.map((a) => a.repeats).join(",")}`;
      if (key === drawn.key) return;
      drawn.key = key;
      setText(count, run.alerts.length ? `${run.alerts.length}` : "");
      if (run.alerts.length === 0) {
        list.replaceChildren(h("li", { class: "empty-note", text: "No alerts." }));
        return;
      }
      const newest = run.alerts.slice().reverse();
      list.replaceChildren(...newest.map((a) =>
        h("li", { class: `sev-${a.severity}` },
          h("span", { class: "when", text: fmtClock(a.at_ms / 1000), title: fmtDate(a.at) }),
          h("span", { class: `sev sev-${a.severity}`, text: a.severity }),
          h("span", { class: "msg" }, a.rule ? h("span", { class: "rule", text: a.rule }) : null, a.message),
          h("span", { class: "repeats", text: a.repeats > 0 ? `×${a.repeats + 1}` : "", title: a.repeats > 0 ? `${a.repeats} repeats suppressed` : null }))));
    },
  };
}
