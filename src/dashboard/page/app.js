/*
 * The Guild dashboard. Served as-is, with no build step: ES modules (`<script type="module">`)
 * under a CSP that allows 'self' only. This module boots the page:
 *   model.js   the one state, changed by the stream (sse.js), the API (api.js) and the user
 *   views.js   what a frame draws, derived from the model
 *   panels.js  the panels, each drawing its part of the page from that
 * Nothing the server decides (pressure bands, KPI points, how often KPIs are scored) is copied
 * here: it arrives in the state's `settings`.
 */
import { getJson } from "./api.js";
import { showNotice } from "./dom.js";
import { applyState, onChange, read } from "./model.js";
import { PANELS } from "./panels.js";
import { loadRuns, refreshEndedRun } from "./runs.js";
import { startStream } from "./sse.js";
import { screenOf } from "./views.js";

/** Redraws are coalesced to at most one per FRAME_MS, whatever the tick rate. */
const FRAME_MS = 250;
/** While a run is live, the clock in the header and the growing bars move between ticks too. */
const CLOCK_MS = 1000;

/**
 * Returns `request()`: a redraw at most once per FRAME_MS, on an animation frame (ticks arrive
 * every ~200 ms, and several SSE messages may land in one frame). A hidden tab gets no frames; a
 * timer keeps window.__guild current there.
 */
function frameScheduler(draw) {
  const f = { dirty: false, last: 0 };
  function frame() {
    f.dirty = false;
    f.last = performance.now();
    draw();
  }
  return function request() {
    if (f.dirty) return;
    f.dirty = true;
    const wait = Math.max(0, f.last + FRAME_MS - performance.now());
    setTimeout(() => (document.hidden ? frame() : requestAnimationFrame(frame)), wait);
  };
}

async function loadState() {
  try {
    applyState(await getJson("/api/state"));
  } catch (err) {
    showNotice(`Could not load the state: ${err.message}`);
  }
}

function boot() {
  const panels = [];
  const redraw = frameScheduler(() => {
    const screen = screenOf(read());
    for (const p of panels) p.render(screen);
  });
  for (const create of PANELS) panels.push(create({ redraw }));
  onChange(redraw);
  new ResizeObserver(() => {
    for (const p of panels) p.resize?.();
    redraw();
  }).observe(document.querySelector("main"));
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
    for (const p of panels) p.restyle?.();
    redraw();
  });
  setInterval(() => {
    const m = read();
    if (m.connection === "live" && m.live.state?.run?.status === "running") redraw();
  }, CLOCK_MS);
  loadState().then(() => {
    startStream({ onEnded: (id) => refreshEndedRun(id) });
    loadRuns();
  });
  redraw();
}

boot();
