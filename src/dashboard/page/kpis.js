/*
 * KPIs: one card per score, the overall grade, the recommendations. The points per grade and how
 * often KPIs are scored are the server's (`settings`); the page knows neither by itself. A score
 * that is null (too little data, one task, a cold cache…) shows its note and no grade.
 */
import { byId, h } from "./dom.js";
import { fmtKpiValue, fmtPeriod } from "./format.js";

/** "not scored yet" until the first report: when KPIs are scored, if the server said how often. */
function emptyNote(settings) {
  const every = settings?.kpi_interval_ms == null ? "" : ` every ${fmtPeriod(settings.kpi_interval_ms)}`;
  return `KPIs are scored${every} while a run is live, and at its end.`;
}

/** "good · 75": the grade and its points, when the server sent the points. */
function gradeText(score, points) {
  const p = points?.[score];
  return p == null ? score : `${score} · ${p}`;
}

function kpiCard(k, points) {
  const score = k.score ?? "none";
  const th = k.thresholds;
  const dir = th.higher_is_better ? "≥" : "≤";
  const title = `good ${dir} ${th.good} · acceptable ${dir} ${th.acceptable} · poor ${dir} ${th.poor} (${k.unit})`;
  return h("div", { class: `kpi k-${score}`, title, "data-kpi": k.kpi, "data-score": score },
    h("div", { class: "label", text: k.label, title: k.label }),
    h("div", { class: "line" },
      h("span", { class: "value", text: fmtKpiValue(k) }),
      h("span", { class: `score score-${score}`, text: k.score ? gradeText(k.score, points) : "not scored" })),
    h("div", { class: "note", text: k.note ?? `${k.samples} sample${k.samples === 1 ? "" : "s"}` }));
}

/** "62 / 100": the overall points out of the best grade's. */
function overallPoints(o, points) {
  if (o.points == null) return "";
  const best = points ? Math.max(...Object.values(points)) : null;
  return best == null ? `${Math.round(o.points)} points` : `${Math.round(o.points)} / ${best}`;
}

export function createKpis() {
  const overall = byId("kpi-overall");
  const box = byId("kpis");
  const recs = byId("recs");
  /** What was drawn last: a report and the settings it was drawn with. */
  const drawn = { kpis: undefined, settings: undefined };

  return {
    render({ run, settings }) {
      if (drawn.kpis === run.kpis && drawn.settings === settings) return;
      drawn.kpis = run.kpis;
      drawn.settings = settings;
      const k = run.kpis;
      const points = settings?.kpi_points ?? null;
      if (!k) {
        overall.replaceChildren(h("span", { class: "muted", text: "not scored yet" }));
        box.replaceChildren(h("p", { class: "empty-note", "data-testid": "kpi-empty", text: emptyNote(settings) }));
        recs.replaceChildren(h("li", { class: "empty-note", text: "None yet." }));
        return;
      }
      const o = k.overall;
      overall.replaceChildren(
        h("span", { class: `score score-${o.score ?? "none"}`, text: o.score ?? "not scored" }),
        h("span", { class: "muted", text: overallPoints(o, points) }));
      box.replaceChildren(...k.scores.map((s) => kpiCard(s, points)));
      recs.replaceChildren(...(k.recommendations.length
        ? k.recommendations.map((r) => h("li", { text: r }))
        : [h("li", { class: "empty-note", text: "Nothing to recommend." })]));
    },
  };
}
