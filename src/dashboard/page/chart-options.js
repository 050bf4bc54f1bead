/*
 * The three charts' uPlot options and the pressure bands drawn behind the memory chart. Pure
 * builders: what changes between draws (the palette, the axis top, the bands) is passed in.
 */
import uPlot from "/vendor/uPlot.esm.js";
import { cssVar } from "./dom.js";
import { byteSteps, fmtBytes, fmtClock, fmtPct } from "./format.js";
import { TASK_STATUSES } from "./views.js";

/** The pressure bands, lowest first; each runs from its threshold up to the next one's (the last to the top). */
export const BANDS = Object.freeze(["moderate", "high", "critical", "emergency", "kill"]);
/** Time-axis steps, in seconds. */
export const SECOND_STEPS = Object.freeze([1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400]);
const COUNT_STEPS = Object.freeze([1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]);
export const HEIGHTS = Object.freeze({ mem: 260, act: 170, rate: 170 });

/** The chart and canvas colours, read from style.css (read again when the colour scheme flips). */
export function readPalette() {
  const status = {};
  for (const s of TASK_STATUSES) status[s] = cssVar(`--st-${s}`);
  const bands = {};
  for (const name of BANDS) bands[name] = cssVar(`--band-${name}`);
  const v = (n) => cssVar(`--${n}`);
  return {
    fg: v("fg"), muted: v("muted"), grid: v("grid"), line: v("line"), card: v("card"),
    used: v("mem-used"), usedFill: v("mem-used-fill"), agents: v("mem-agents"), agentsFill: v("mem-agents-fill"),
    reserved: v("mem-reserved"), budget: v("mem-budget"), limit: v("mem-limit"),
    running: v("act-running"), paused: v("act-paused"), queued: v("act-queued"),
    hit: v("rate-hit"), cpu: v("rate-cpu"), bandText: v("band-text"),
    status, bands,
  };
}

function xAxis(palette) {
  return {
    stroke: palette.muted,
    grid: { stroke: palette.grid, width: 1 },
    ticks: { stroke: palette.grid, width: 1 },
    incrs: SECOND_STEPS.slice(),
    values: (u, splits) => splits.map(fmtClock),
  };
}

function yAxis(palette, extra) {
  return { stroke: palette.muted, grid: { stroke: palette.grid, width: 1 }, ticks: { stroke: palette.grid, width: 1 }, ...extra };
}

/** A plotted series: no point markers (they clutter a live series of thousands of points). */
function line(opts) {
  return { points: { show: false }, ...opts };
}

const bytesValue = (u, v) => (v == null ? "–" : fmtBytes(v));
const timeSeries = () => ({ label: "time", value: (u, v) => fmtClock(v) });
const cursor = () => ({ sync: { key: "guild" }, drag: { x: false, y: false } });

/** `top()`: the memory axis's top now; `bands()`: { limit, thresholds } for drawBands. */
export function memOptions(width, palette, top, bands) {
  return {
    width, height: HEIGHTS.mem,
    cursor: cursor(),
    legend: { live: true },
    scales: { x: { time: false }, y: { range: () => [0, top() || 1] } },
    axes: [xAxis(palette), yAxis(palette, { size: 64, incrs: byteSteps(), values: (u, splits) => splits.map(fmtBytes) })],
    series: [
      timeSeries(),
      line({ label: "machine used", stroke: palette.used, fill: palette.usedFill, width: 1.5, value: bytesValue }),
      line({ label: "agents RSS", stroke: palette.agents, fill: palette.agentsFill, width: 1.5, value: bytesValue }),
      line({ label: "reserved", stroke: palette.reserved, width: 1.25, dash: [4, 3], value: bytesValue }),
      line({ label: "budget", stroke: palette.budget, width: 1.5, dash: [9, 4], value: bytesValue }),
      line({ label: "limit", stroke: palette.limit, width: 1, value: bytesValue }),
    ],
    hooks: { drawClear: [(u) => drawBands(u, palette, bands())] },
  };
}

export function activityOptions(width, palette) {
  const step = uPlot.paths.stepped({ align: 1 });
  const count = (u, v) => (v == null ? "–" : String(v));
  return {
    width, height: HEIGHTS.act,
    cursor: cursor(),
    scales: { x: { time: false }, y: { range: (u, min, max) => [0, Math.max(4, Math.ceil(max * 1.15))] } },
    axes: [xAxis(palette), yAxis(palette, { size: 40, incrs: COUNT_STEPS.slice(), values: (u, splits) => splits.map((v) => String(v)) })],
    series: [
      timeSeries(),
      line({ label: "running", stroke: palette.running, width: 2, paths: step, value: count }),
      line({ label: "paused", stroke: palette.paused, width: 1.5, paths: step, value: count }),
      line({ label: "queued", stroke: palette.queued, width: 1.5, dash: [4, 3], paths: step, value: count }),
    ],
  };
}

export function rateOptions(width, palette) {
  const pct = (u, v) => (v == null ? "–" : fmtPct(v, 1));
  return {
    width, height: HEIGHTS.rate,
    cursor: cursor(),
    scales: { x: { time: false }, y: { range: () => [0, 1] } },
    axes: [xAxis(palette), yAxis(palette, { size: 48, values: (u, splits) => splits.map((v) => fmtPct(v)) })],
    series: [
      timeSeries(),
      line({ label: "cache hit rate", stroke: palette.hit, width: 2, value: pct }),
      line({ label: "CPU", stroke: palette.cpu, width: 1, value: pct }),
    ],
  };
}

/** The pressure bands behind the lines: fractions of the limit, shaded up to the next threshold. */
function drawBands(u, palette, { limit, thresholds }) {
  if (!limit || !thresholds) return;
  const { ctx, bbox } = u;
  const dpr = devicePixelRatio || 1;
  ctx.save();
  ctx.beginPath();
  ctx.rect(bbox.left, bbox.top, bbox.width, bbox.height);
  ctx.clip();
  ctx.font = `${10 * dpr}px system-ui, sans-serif`;
  ctx.textAlign = "right";
  let lastLabelY = Infinity;
  for (let i = 0; i < BANDS.length; i++) {
    const name = BANDS[i];
    const next = BANDS[i + 1];
    const from = thresholds[name];
    if (from == null) continue;
    const y0 = u.valToPos(from * limit, "y", true);
    const y1 = next == null || thresholds[next] == null ? bbox.top : u.valToPos(thresholds[next] * limit, "y", true);
    if (y0 < bbox.top) {
      // This band and the ones above are off the chart (budget axis): say where they begin.
      if (i === 0) {
        ctx.fillStyle = palette.muted;
        ctx.fillText(`pressure bands above: ${name} from ${fmtBytes(from * limit)} (${Math.round(from * 100)}% of ${fmtBytes(limit)})`, bbox.left + bbox.width - 4 * dpr, bbox.top + 12 * dpr);
      }
      break;
    }
    ctx.fillStyle = palette.bands[name];
    ctx.fillRect(bbox.left, Math.min(y0, y1), bbox.width, Math.abs(y0 - y1));
    // Labels sit just inside the band's lower edge; one is skipped when it would overlap the last.
    if (lastLabelY - y0 >= 11 * dpr) {
      ctx.fillStyle = palette.bandText;
      ctx.fillText(`${name} ${Math.round(from * 100)}%`, bbox.left + bbox.width - 4 * dpr, y0 - 2 * dpr);
      lastLabelY = y0;
    }
  }
  ctx.restore();
}
