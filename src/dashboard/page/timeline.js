/*
 * The task timeline: one bar per task on a canvas (hundreds of rows redraw in a few ms, where as
 * many DOM bars would not), and a tooltip on hover.
 */
import { SECOND_STEPS, readPalette } from "./chart-options.js";
import { byId, setText } from "./dom.js";
import { fmtClock, fmtDuration } from "./format.js";
import { isActive, taskDuration } from "./views.js";

const TL = Object.freeze({ labelW: 150, rowH: 18, axisH: 20, pad: 10 });

/** Started tasks by start time, then the ones still waiting, in workflow order. */
function timelineRows(tasks) {
  const started = tasks.filter((t) => t.started_ms != null).sort((a, b) => a.started_ms - b.started_ms);
  return started.concat(tasks.filter((t) => t.started_ms == null));
}

/** A step that puts ticks ~90 px apart. */
function niceStep(spanS, widthPx) {
  const want = spanS / Math.max(1, widthPx / 90);
  return SECOND_STEPS.find((s) => s >= want) ?? SECOND_STEPS.at(-1);
}

function sizeCanvas(canvas, width, height) {
  const dpr = devicePixelRatio || 1;
  if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

function drawAxis(ctx, palette, x0, scale, endMs, height) {
  const width = x0 + endMs * scale;
  const step = niceStep(endMs / 1000, width - x0);
  ctx.font = "11px system-ui, sans-serif";
  ctx.textBaseline = "middle";
  ctx.textAlign = "center";
  for (let s = 0; s * 1000 <= endMs; s += step) {
    const x = Math.round(x0 + s * 1000 * scale) + 0.5;
    ctx.strokeStyle = palette.grid;
    ctx.beginPath();
    ctx.moveTo(x, TL.axisH - 4);
    ctx.lineTo(x, height);
    ctx.stroke();
    ctx.fillStyle = palette.muted;
    ctx.fillText(fmtClock(s), x, TL.axisH / 2 - 1);
  }
  ctx.textAlign = "left";
}

function drawRow(ctx, palette, t, y, x0, scale, run) {
  ctx.fillStyle = palette.fg;
  ctx.fillText(clip(ctx, t.id, x0 - 12), 4, y + TL.rowH / 2);
  const color = palette.status[t.status] ?? palette.muted;
  if (t.started_ms == null) {
    // Not started: a hollow marker at the start of the axis, in its state's colour.
    ctx.strokeStyle = color;
    ctx.strokeRect(x0 + 0.5, y + 4.5, 10, TL.rowH - 9);
    return;
  }
  const end = t.ended_ms ?? (isActive(t.status) && run.kind === "live" ? run.elapsedMs : t.started_ms + (t.duration_ms ?? 0));
  const x = x0 + t.started_ms * scale;
  const w = Math.max(2, (end - t.started_ms) * scale);
  ctx.fillStyle = color;
  ctx.fillRect(x, y + 3, w, TL.rowH - 6);
  if (isActive(t.status)) {
    // The open end of a bar still growing.
    ctx.fillStyle = palette.card;
    ctx.fillRect(x + w - 2, y + 5, 1, TL.rowH - 10);
  }
}

/** Text cut to fit `max` pixels, with an ellipsis. */
function clip(ctx, text, max) {
  if (ctx.measureText(text).width <= max) return text;
  let s = text;
  while (s.length > 1 && ctx.measureText(`${s}…`).width > max) s = s.slice(0, -1);
  return `${s}…`;
}

export function createTimeline() {
  const canvas = byId("timeline");
  const wrap = byId("timeline-wrap");
  const tip = byId("tip");
  /** The palette, and what the last draw laid out (for the tooltip). */
  const tl = { palette: readPalette(), rows: [], run: null };

  canvas.addEventListener("mousemove", (e) => {
    const rect = canvas.getBoundingClientRect();
    const i = Math.floor((e.clientY - rect.top - TL.axisH) / TL.rowH);
    const t = tl.rows[i];
    if (!t) {
      tip.hidden = true;
      return;
    }
    setText(tip, `${t.id} · ${t.agent} · ${t.status} · ${fmtDuration(taskDuration(t, tl.run))}${t.attempts > 1 ? ` · ${t.attempts} attempts` : ""}`);
    tip.hidden = false;
    tip.style.left = `${Math.min(e.clientX - rect.left + 12, wrap.clientWidth - tip.offsetWidth - 4)}px`;
    tip.style.top = `${TL.axisH + (i + 1) * TL.rowH + 2}px`;
  });
  canvas.addEventListener("mouseleave", () => (tip.hidden = true));

  return {
    render({ run }) {
      const { palette } = tl;
      const rows = timelineRows(run.tasks);
      const width = Math.max(300, wrap.clientWidth);
      const height = TL.axisH + Math.max(1, rows.length) * TL.rowH + 4;
      const ctx = sizeCanvas(canvas, width, height);
      ctx.clearRect(0, 0, width, height);
      const endMs = Math.max(1000, run.elapsedMs ?? 0, ...rows.map((t) => t.ended_ms ?? 0));
      const x0 = TL.labelW;
      const scale = (width - x0 - TL.pad) / endMs;
      drawAxis(ctx, palette, x0, scale, endMs, height);
      ctx.font = "12px system-ui, sans-serif";
      ctx.textBaseline = "middle";
      rows.forEach((t, i) => drawRow(ctx, palette, t, TL.axisH + i * TL.rowH, x0, scale, run));
      if (rows.length === 0) {
        ctx.fillStyle = palette.muted;
        ctx.fillText("No tasks yet", x0, TL.axisH + TL.rowH / 2);
      }
      tl.rows = rows;
      tl.run = run;
    },
    restyle() {
      tl.palette = readPalette();
    },
  };
}
