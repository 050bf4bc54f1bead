/*
 * The three charts (memory with its pressure bands, agents and queue, cache hit rate and CPU) and
 * the memory legend's band labels, from the run on screen.
 */
import uPlot from "/vendor/uPlot.esm.js";
import { activityOptions, BANDS, HEIGHTS, memOptions, rateOptions, readPalette } from "./chart-options.js";
import { byId, setText } from "./dom.js";
import { recordPlotted } from "./model.js";

/** Column arrays for uPlot, one pass over the points. */
function columns(series) {
  const n = series.length;
  const cols = Array.from({ length: 11 }, () => new Array(n));
  for (let i = 0; i < n; i++) {
    const p = series[i];
    cols[0][i] = p.t / 1000;
    cols[1][i] = p.used_bytes;
    cols[2][i] = p.agents_rss_bytes;
    cols[3][i] = p.reserved_bytes;
    cols[4][i] = p.budget_bytes;
    cols[5][i] = p.limit_bytes;
    cols[6][i] = p.running;
    cols[7][i] = p.paused;
    cols[8][i] = p.queued;
    cols[9][i] = p.cache_hit_rate;
    cols[10][i] = p.cpu;
  }
  return cols;
}

/**
 * The memory axis: the machine's limit (bands visible) or the budget (agents' detail). Until the
 * user picks one, it follows the data: the limit once the machine nears the lowest band, else the
 * budget (on a large machine the agents are a flat line at the bottom of a full-limit axis).
 */
function memAxis(picked, cols, limit, thresholds) {
  if (picked !== null) return picked;
  const lowest = thresholds?.[BANDS[0]];
  return limit > 0 && lowest != null && max(cols[1]) >= lowest * limit * 0.75 ? "limit" : "budget";
}

/** The top of the memory axis: the limit (or what was used above it), or the budget and what agents used. */
function memTop(axis, cols, limit) {
  const used = max(cols[1]);
  if (axis === "budget") {
    const agents = Math.max(max(cols[2]), max(cols[3]), max(cols[4]));
    // The machine's line too, unless it would squash the agents' detail flat.
    return (used <= agents * 2.5 ? Math.max(agents, used) : agents) * 1.12 || limit;
  }
  return Math.max(limit, used) * 1.04;
}

function max(arr) {
  return arr.reduce((m, v) => (v != null && v > m ? v : m), 0);
}

/** New data; while the cursor is off the chart, its legend shows the newest values instead of dashes. */
function setChartData(u, data) {
  u.setData(data);
  const n = data[0].length;
  if (n > 0 && (u.cursor.left == null || u.cursor.left < 0)) u.setLegend({ idx: n - 1 });
}

/** The legend's band names with where each begins ("moderate 70%"), from the thresholds on screen. */
function renderBandLegend(thresholds) {
  for (const item of document.querySelectorAll(".band-legend [data-band]")) {
    const from = thresholds?.[item.dataset.band];
    setText(item.querySelector(".band-name"), from == null ? item.dataset.band : `${item.dataset.band} ${Math.round(from * 100)}%`);
  }
}

export function createCharts({ redraw }) {
  const c = {
    mem: null, act: null, rate: null, palette: null,
    /** What was last drawn: charts rebuild their columns only for a new run or new points. */
    key: "", version: -1, thresholds: undefined,
    /** The memory axis's top, and the user's choice of axis (null: automatic). */
    top: 0, picked: null,
    /** What the band hook draws: set before each redraw. */
    bands: { limit: 0, thresholds: null },
  };
  const width = (id) => Math.max(200, byId(id).clientWidth);
  const button = byId("mem-scale");

  function build() {
    for (const k of ["mem", "act", "rate"]) c[k]?.destroy();
    c.palette = readPalette();
    const empty = (n) => Array.from({ length: n }, () => []);
    c.mem = new uPlot(memOptions(width("memory-chart"), c.palette, () => c.top, () => c.bands), empty(6), byId("memory-chart"));
    c.act = new uPlot(activityOptions(width("activity-chart"), c.palette), empty(4), byId("activity-chart"));
    c.rate = new uPlot(rateOptions(width("rate-chart"), c.palette), empty(3), byId("rate-chart"));
    c.key = "";
    c.version = -1;
  }

  button.addEventListener("click", () => {
    c.picked = button.dataset.axis === "limit" ? "budget" : "limit";
    c.version = -1;
    redraw();
  });
  build();

  return {
    render({ run }) {
      c.bands.limit = run.limitBytes;
      c.bands.thresholds = run.thresholds;
      if (c.thresholds !== run.thresholds) {
        c.thresholds = run.thresholds;
        renderBandLegend(run.thresholds);
      }
      if (c.key === run.key && c.version === run.version) return;
      c.key = run.key;
      c.version = run.version;
      const cols = columns(run.series);
      const axis = memAxis(c.picked, cols, run.limitBytes, run.thresholds);
      setText(button, `axis: ${c.picked === null ? "auto · " : ""}${axis === "limit" ? "machine limit" : "budget"}`);
      button.dataset.axis = axis;
      c.top = memTop(axis, cols, run.limitBytes);
      setChartData(c.mem, [cols[0], cols[1], cols[2], cols[3], cols[4], cols[5]]);
      setChartData(c.act, [cols[0], cols[6], cols[7], cols[8]]);
      setChartData(c.rate, [cols[0], cols[9], cols[10]]);
      recordPlotted(run.series.length);
    },
    resize() {
      c.mem.setSize({ width: width("memory-chart"), height: HEIGHTS.mem });
      c.act.setSize({ width: width("activity-chart"), height: HEIGHTS.act });
      c.rate.setSize({ width: width("rate-chart"), height: HEIGHTS.rate });
    },
    restyle: build,
  };
}
