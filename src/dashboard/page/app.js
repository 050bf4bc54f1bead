"use strict";
/*
 * The Guild dashboard. Served as-is (no build step) under a CSP that allows 'self' only: the DOM is
 * built with createElement and textContent, never from HTML strings, and styles come from
 * style.css (element.style is only set from script, which the CSP allows).
 *
 * What it reads (shapes in src/telemetry/state.ts):
 *   GET /api/state      → DashboardState (+ `mcp`: GatewayStatus | null when the server has a gateway source)
 *   GET /api/events     → SSE: state, tick, alert, kpis, end, mcp (GatewayStatus | null, src/telemetry/mcp-status.ts)
 *   GET /api/runs       → RunSummary[]
 *   GET /api/runs/<id>  → { report, markdown, series }
 *
 * Two kinds of model feed the panels: the live run (kept current by ticks) and a past run loaded
 * from history. Rendering reads only the model, so both look the same.
 */

// ───────────────────────────── constants ─────────────────────────────

/** Points kept client-side; older ones are dropped. */
const MAX_POINTS = 5000;
/** Redraws are coalesced to at most one per FRAME_MS, whatever the tick rate. */
const FRAME_MS = 250;
/** Reconnecting for longer than this reads as "server stopped". */
const STOPPED_AFTER_MS = 15000;
/** The seed's 70 / 80 / 90 / 95 / 98 %, used when the server sent none (a past run seen in history mode). */
const DEFAULT_THRESHOLDS = Object.freeze({ moderate: 0.7, high: 0.8, critical: 0.9, emergency: 0.95, kill: 0.98 });
/** Each band: its name, where it begins, where the next begins (null: the top of the chart). */
const BANDS = [
  ["moderate", "high"],
  ["high", "critical"],
  ["critical", "emergency"],
  ["emergency", "kill"],
  ["kill", null],
];
const TASK_STATUSES = ["pending", "queued", "running", "paused", "retrying", "succeeded", "cached", "failed", "skipped", "cancelled"];
const ACTIVE = new Set(["running", "paused", "retrying"]);
const SCORE_POINTS = { excellent: 100, good: 75, poor: 40, critical: 0 };
const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;
/** Memory-axis steps: powers of two in MB, so ticks read 256 MB, 512 MB, 1 GB, 1.5 GB… */
const BYTE_INCRS = Array.from({ length: 22 }, (_, i) => 2 ** i * MIB);
const SECOND_INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400];
const COUNT_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];

// ───────────────────────────── formatting ─────────────────────────────

/** n with at most `digits` decimals, trailing zeros dropped. */
function round(n, digits) {
  return String(Number(n.toFixed(digits)));
}

function fmtBytes(b) {
  if (b == null || !Number.isFinite(b)) return "–";
  const a = Math.abs(b);
  if (a >= GIB) return `${round(b / GIB, a >= 100 * GIB ? 0 : a >= 10 * GIB ? 1 : 2)} GB`;
  if (a >= MIB) return `${round(b / MIB, a >= 100 * MIB ? 0 : 1)} MB`;
  if (a >= KIB) return `${Math.round(b / KIB)} KB`;
  return `${Math.round(b)} B`;
}

function fmtDuration(ms) {
  if (ms == null || !Number.isFinite(ms)) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 10000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h} h ${String(m).padStart(2, "0")} min`;
  return `${m} min ${String(s).padStart(2, "0")} s`;
}

/** A clock for axes and the header: 42 s, 3:05, 1:02:03. */
function fmtClock(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "–";
  const total = Math.round(seconds);
  if (total < 60) return `${total}s`;
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** Tokens as people read them: 950, 12.3k, 4.5M; "–" for none. */
function fmtTokens(n) {
  if (n == null || !Number.isFinite(n) || n === 0) return "–";
  if (n >= 1e6) return `${round(n / 1e6, 1)}M`;
  if (n >= 1e4) return `${round(n / 1e3, 1)}k`;
  return String(Math.round(n));
}

/** US dollars with the precision a small spend needs; "–" for none. */
function fmtUsd(v) {
  if (v == null || !Number.isFinite(v) || v === 0) return "–";
  return `$${v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toFixed(4)}`;
}

function fmtPct(ratio, digits = 0) {
  if (ratio == null || !Number.isFinite(ratio)) return "–";
  return `${(ratio * 100).toFixed(digits)}%`;
}

function fmtDate(epochMs) {
  if (epochMs == null) return "–";
  const d = new Date(epochMs);
  const today = new Date().toDateString() === d.toDateString();
  return today
    ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })
    : d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

function fmtKpiValue(k) {
  if (k.value == null) return "–";
  if (k.unit === "ms") return fmtDuration(k.value);
  if (k.unit === "ratio") return fmtPct(k.value, 1);
  return `${round(k.value, 2)}×`;
}

function fmtCount(n) {
  return n == null ? "–" : String(n);
}

// ───────────────────────────── DOM helpers ─────────────────────────────

const byId = (id) => document.getElementById(id);

/** createElement with props: class, text, data-* / other attributes, on<event> handlers. */
function h(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c != null) node.append(c instanceof Node ? c : String(c));
  return node;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** The chart and canvas colours, read from style.css (re-read when the colour scheme flips). */
function readPalette() {
  const status = {};
  for (const s of TASK_STATUSES) status[s] = cssVar(`--st-${s}`);
  const bands = {};
  for (const [name] of BANDS) bands[name] = cssVar(`--band-${name}`);
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

// ───────────────────────────── API ─────────────────────────────

const TOKEN = new URLSearchParams(location.search).get("token");

/** Every API and stream URL carries the page's ?token= (EventSource cannot send headers). */
function apiUrl(path) {
  if (!TOKEN) return path;
  return `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(TOKEN)}`;
}

async function getJson(path) {
  const res = await fetch(apiUrl(path), { headers: { accept: "application/json" }, cache: "no-store" });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

/** Problems the page can live with (a fetch that failed) are shown, not thrown. */
function notice(message) {
  const el = byId("notice");
  el.hidden = !message;
  setText(el, message ?? "");
}

// ───────────────────────────── live store ─────────────────────────────

const live = {
  /** The latest DashboardState, kept current by ticks (its `series` is `live.series`). */
  state: null,
  /** Every point received for this run, oldest first, at most MAX_POINTS. */
  series: [],
  /** id → TaskRow, in the order the state listed them. */
  tasks: new Map(),
  /** Alerts, oldest first. */
  alerts: [],
  /** Bumped on every change to `series`, so charts rebuild their columns only when needed. */
  version: 0,
  /** The `end` event arrived: the run is over and the state is final. */
  ended: false,
  /** performance.now() when elapsed_ms was last received: the clock advances between ticks. */
  tickAt: 0,
  /** The MCP gateway's latest snapshot (GatewayStatus); null when the server has none (no panel then). */
  mcp: null,
};

window.__guild = { points: 0, state: null };

/** Keeps what was received before a reconnect: the server's series is bounded, the page's is not (up to MAX_POINTS). */
function mergeSeries(have, incoming) {
  if (!incoming || incoming.length === 0) return have;
  const first = incoming[0].t;
  const kept = have.filter((p) => p.t < first);
  return capSeries(kept.concat(incoming));
}

function capSeries(series) {
  if (series.length > MAX_POINTS) series.splice(0, series.length - MAX_POINTS);
  return series;
}

function alertKey(a) {
  return `${a.key ?? a.message}@${a.at}`;
}

function upsertAlert(list, a) {
  const key = alertKey(a);
  const i = list.findIndex((x) => alertKey(x) === key);
  if (i >= 0) list[i] = a;
  else list.push(a);
}

function applyState(s) {
  const sameRun = live.state && (live.state.run?.id ?? null) === (s.run?.id ?? null);
  if (!sameRun) {
    live.series = [];
    live.alerts = [];
    live.ended = false;
  }
  live.series = mergeSeries(live.series, s.series);
  live.tasks = new Map(s.tasks.map((t) => [t.id, t]));
  for (const a of s.alerts ?? []) upsertAlert(live.alerts, a);
  live.alerts.sort((a, b) => a.at - b.at);
  // Only the server's first `state` carries `mcp`; the run's own (start, end) do not, and keep the last one.
  if ("mcp" in s) live.mcp = s.mcp ?? null;
  live.state = { ...s, series: live.series, tasks: s.tasks.slice(), alerts: live.alerts };
  live.tickAt = performance.now();
  live.version++;
  window.__guild.state = live.state;
}

function applyTick(tick) {
  const s = live.state;
  if (!s) return; // the stream always sends `state` first; a stray tick has nothing to apply to
  const last = live.series.at(-1);
  if (!last || tick.point.t > last.t) live.series.push(tick.point);
  else if (tick.point.t === last.t) live.series[live.series.length - 1] = tick.point;
  capSeries(live.series);
  live.version++;
  s.memory = tick.memory;
  s.pressure = tick.pressure;
  s.queue = tick.queue;
  s.agents = tick.agents;
  s.cache = tick.cache;
  s.guild = tick.guild;
  if (s.run) s.run = { ...s.run, elapsed_ms: tick.elapsed_ms };
  if (tick.tasks.length > 0) {
    for (const t of tick.tasks) live.tasks.set(t.id, t);
    s.tasks = [...live.tasks.values()];
  }
  live.tickAt = performance.now();
  window.__guild.state = s;
}

function applyAlert(a) {
  if (!live.state) return;
  upsertAlert(live.alerts, a);
  live.state.alerts = live.alerts;
}

function applyKpis(k) {
  if (live.state) live.state.kpis = k;
}

function applyEnd(s) {
  applyState(s);
  live.ended = true;
  refreshEndedRun(s.run?.id ?? null, 5);
}

/** Re-reads history until the store lists the run that just ended as ended (it writes it as the run closes). */
async function refreshEndedRun(id, triesLeft) {
  await new Promise((r) => setTimeout(r, 600));
  await loadRuns();
  const row = history.runs.find((r) => r.id === id);
  if (id && triesLeft > 1 && (!row || row.status === "running")) refreshEndedRun(id, triesLeft - 1);
}

/** The run's clock: the last elapsed_ms, advanced locally while the run is live. */
function liveElapsed() {
  const run = live.state?.run;
  if (!run) return 0;
  const advancing = run.status === "running" && conn.state === "live";
  return run.elapsed_ms + (advancing ? performance.now() - live.tickAt : 0);
}

// ───────────────────────────── models ─────────────────────────────

/** What the panels render, from the live store. */
function liveModel() {
  const s = live.state;
  const run = s?.run ?? null;
  return {
    kind: "live",
    key: `live:${run?.id ?? ""}`,
    version: live.version,
    title: run ? run.name || run.workflow : s?.mode === "history" ? "history" : "—",
    runId: run?.id ?? "",
    status: run?.status ?? (s ? (s.mode === "history" ? "history" : "idle") : "connecting"),
    elapsedMs: run ? liveElapsed() : null,
    limitBytes: s?.memory?.limit_bytes ?? live.series.at(-1)?.limit_bytes ?? 0,
    thresholds: s?.memory?.thresholds ?? DEFAULT_THRESHOLDS,
    series: live.series,
    tasks: s?.tasks ?? [],
    agents: s?.agents ?? [],
    kpis: s?.kpis ?? null,
    alerts: live.alerts,
    cacheHitRate: s?.cache?.hit_rate ?? null,
    figures: s ? liveFigures(s) : [],
    blocked: s?.queue?.blocked ?? null,
  };
}

function liveFigures(s) {
  const m = s.memory;
  const q = s.queue;
  const c = s.cache;
  const g = s.guild;
  const figs = [];
  if (m) {
    figs.push({ label: "Machine memory", value: `${fmtBytes(m.used_bytes)} / ${fmtBytes(m.limit_bytes)}`, sub: `${fmtPct(m.used_bytes / m.limit_bytes)} · ${m.level} · ${fmtBytes(m.available_bytes)} available`, tone: m.level });
    figs.push({ label: "Agents RSS", value: fmtBytes(m.agents_rss_bytes), sub: `reserved ${fmtBytes(m.reserved_bytes)} · budget ${fmtBytes(m.budget_bytes)}`, tone: m.agents_rss_bytes > m.budget_bytes ? "bad" : "accent" });
  }
  figs.push(tasksFigure(s));
  figs.push({ label: "Cache hit rate", value: fmtPct(c.hit_rate), sub: `${c.hits} hits · ${c.misses} misses · saved ${fmtDuration(c.saved_ms)}`, tone: null });
  figs.push(kpiFigure(s.kpis));
  figs.push({ label: "Guild itself", value: fmtBytes(g.rss_bytes), sub: `loop p99 ${g.event_loop_delay_p99_ms == null ? "–" : `${round(g.event_loop_delay_p99_ms, 1)} ms`} · GC ${fmtDuration(g.gc_pause_total_ms)}`, tone: null });
  return figs;
}

/** Live counts from the scheduler; once the run is over, counted from the final task rows (the table's truth). */
function tasksFigure(s) {
  let { queued, running, paused, done, total } = s.queue;
  if (s.run && s.run.status !== "running") {
    const count = (pred) => s.tasks.filter(pred).length;
    queued = count((t) => t.status === "queued" || t.status === "pending");
    running = count((t) => t.status === "running" || t.status === "retrying");
    paused = count((t) => t.status === "paused");
    done = count((t) => !ACTIVE.has(t.status) && t.status !== "queued" && t.status !== "pending");
    total = s.tasks.length;
  }
  return { label: "Tasks", value: `${running} running`, sub: `${queued} queued · ${paused} paused · ${done}/${total} done`, tone: "accent" };
}

function kpiFigure(kpis) {
  const o = kpis?.overall;
  return { label: "KPI overall", value: o?.score ?? "not scored", sub: o?.points == null ? "no KPI scored yet" : `${Math.round(o.points)} points`, tone: o?.score ?? null };
}

/** A TaskReport (history) as the live TaskRow. */
function taskRowOf(t) {
  return {
    id: t.id, agent: t.agent, status: t.status, started_ms: t.started_ms, ended_ms: t.ended_ms,
    duration_ms: t.duration_ms, rss_bytes: null, peak_rss_bytes: t.peak_rss_bytes, attempts: t.attempts, error: t.error,
  };
}

/** Agent rows derived from a report's tasks and profiles (history has no live agent rows). */
function agentRowsOf(report) {
  const rows = new Map();
  for (const t of report.tasks) {
    const r = rows.get(t.agent) ?? { name: t.agent, kind: null, running: 0, done: 0, failed: 0, rss_bytes: 0, peak_rss_bytes: null, declared_bytes: report.profiles?.[t.agent]?.declared_bytes ?? null, mean_duration_ms: null, tokens: 0, cost_usd: 0, total: 0, n: 0 };
    r.tokens += (t.metrics?.tokens_in ?? 0) + (t.metrics?.tokens_out ?? 0);
    r.cost_usd += t.metrics?.cost_usd ?? 0;
    if (t.status === "failed") r.failed++;
    else if (t.status === "succeeded" || t.status === "cached") r.done++;
    if (t.peak_rss_bytes != null) r.peak_rss_bytes = Math.max(r.peak_rss_bytes ?? 0, t.peak_rss_bytes);
    if (t.started_ms != null) {
      r.total += t.duration_ms;
      r.n++;
      r.mean_duration_ms = r.total / r.n;
    }
    rows.set(t.agent, r);
  }
  return [...rows.values()];
}

function pastStatus(report, summary) {
  if (summary?.status) return summary.status;
  return report.interrupted ? "interrupted" : report.ok ? "succeeded" : "failed";
}

/** What the panels render, from a past run's detail. */
function pastModel(id, detail, summary) {
  const r = detail.report;
  const series = detail.series ?? [];
  const counts = r.counts ?? {};
  const total = r.tasks.length;
  const ok = (counts.succeeded ?? 0) + (counts.cached ?? 0);
  const hot = ["high", "critical", "emergency"].reduce((n, l) => n + (r.pressure?.time_ms?.[l] ?? 0), 0);
  return {
    kind: "past",
    key: `past:${id}`,
    version: 0,
    title: summary?.name || r.workflow,
    runId: r.run_id,
    status: pastStatus(r, summary),
    elapsedMs: r.makespan_ms,
    limitBytes: r.effective_limit_bytes ?? series.at(-1)?.limit_bytes ?? 0,
    thresholds: live.state?.memory?.thresholds ?? DEFAULT_THRESHOLDS,
    series,
    tasks: r.tasks.map(taskRowOf),
    agents: agentRowsOf(r),
    kpis: r.kpis ?? null,
    alerts: (r.alerts ?? []).map((a, i) => ({ ...a, key: `${i}`, at: (summary?.started_at ?? 0) + a.at_ms, rule: a.rule ?? null, repeats: a.repeats ?? 0 })),
    cacheHitRate: r.cache?.hit_rate ?? null,
    blocked: null,
    figures: [
      { label: "Peak agents RSS", value: fmtBytes(r.peak_rss_bytes), sub: `budget ${fmtBytes(r.budget_bytes)} · limit ${fmtBytes(r.effective_limit_bytes)} · Guild ${fmtBytes(r.guild_peak_rss_bytes)}`, tone: r.peak_rss_bytes > r.budget_bytes ? "bad" : "accent" },
      { label: "Pressure", value: r.pressure?.highest ?? "–", sub: `${fmtDuration(hot)} at high or above · ${r.guild_kills ?? 0} kills`, tone: r.pressure?.highest ?? null },
      { label: "Tasks", value: `${ok}/${total} ok`, sub: `${counts.failed ?? 0} failed · ${counts.skipped ?? 0} skipped · ${counts.cancelled ?? 0} cancelled`, tone: (counts.failed ?? 0) > 0 ? "bad" : "optimal" },
      { label: "Makespan", value: fmtDuration(r.makespan_ms), sub: `lower bound ${fmtDuration(r.lower_bound_ms)} · ${r.cores} cores`, tone: "accent" },
      { label: "Cache hit rate", value: fmtPct(r.cache?.hit_rate), sub: `${r.cache?.hits ?? 0} hits · ${r.cache?.misses ?? 0} misses · saved ${fmtDuration(r.cache?.saved_ms)}`, tone: null },
      kpiFigure(r.kpis),
    ],
  };
}

// ───────────────────────────── view ─────────────────────────────

/** 'live', or a past run: { kind: 'past', id, model }. */
let view = { kind: "live" };

function currentModel() {
  return view.kind === "past" ? view.model : liveModel();
}

function showLive() {
  view = { kind: "live" };
  markDirty();
}

// ───────────────────────────── render scheduling ─────────────────────────────

let dirty = false;
let lastFrame = 0;

/**
 * Asks for a redraw: at most one per FRAME_MS, on an animation frame (ticks arrive every ~200 ms,
 * and several SSE messages may land in one frame). A hidden tab gets no frames; a timer keeps
 * window.__guild current there.
 */
function markDirty() {
  if (dirty) return;
  dirty = true;
  const wait = Math.max(0, lastFrame + FRAME_MS - performance.now());
  setTimeout(() => (document.hidden ? frame() : requestAnimationFrame(frame)), wait);
}

function frame() {
  dirty = false;
  lastFrame = performance.now();
  render();
}

function render() {
  const m = currentModel();
  renderHeader(m);
  renderFigures(m);
  renderCharts(m);
  renderTimeline(m);
  renderTaskTable(m);
  renderAgents(m);
  renderKpis(m);
  renderAlerts(m);
  renderMcp(view.kind === "live" ? live.mcp : null);
  renderRunsSelection();
  window.__guild.points = charts.plotted;
}

// ───────────────────────────── header ─────────────────────────────

function renderHeader(m) {
  setText(byId("wf-name"), m.title);
  setText(byId("run-id"), m.runId);
  const status = byId("status");
  setText(status, m.status);
  status.dataset.status = m.status;
  setText(byId("elapsed"), m.elapsedMs == null ? "—" : fmtDuration(m.elapsedMs));
  document.title = m.runId ? `${m.status} · ${m.title} · Guild` : "Guild";
  byId("banner").hidden = view.kind !== "past";
  if (view.kind === "past") setText(byId("banner-run"), `${m.title} · ${m.runId}`);
  // "Back to the live run" only makes sense when this process has (or had) one.
  byId("back-live").hidden = !live.state?.run;
  setText(byId("footer"), footerText());
}

function footerText() {
  const s = live.state;
  if (!s) return "";
  const parts = [s.mode === "history" ? "history mode (guild dashboard)" : "run mode"];
  parts.push(`${live.series.length} points received`);
  return parts.join(" · ");
}

function renderFigures(m) {
  const box = byId("figures");
  const nodes = m.figures.map((f) =>
    h("div", { class: `figure${f.tone ? ` tone-${f.tone}` : ""}` },
      h("div", { class: "label", text: f.label }),
      h("div", { class: "value", text: f.value, title: f.value }),
      h("div", { class: "sub", text: f.sub, title: f.sub })));
  box.replaceChildren(...nodes);
  const b = m.blocked;
  const blocked = byId("blocked");
  blocked.hidden = !b;
  if (b) setText(blocked, `Waiting: ${b.id} — ${b.reason} (for ${fmtDuration(b.waited_ms)})`);
}

// ───────────────────────────── connection (SSE) ─────────────────────────────

const CONN_TEXT = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  ended: "run ended · final state",
  stopped: "server stopped · showing the last data received",
};

const conn = { state: "connecting", es: null, lostAt: 0, retry: null, probe: null };

function setConn(state) {
  conn.state = state;
  const el = byId("connection");
  el.dataset.state = state;
  setText(byId("conn-text"), CONN_TEXT[state]);
  markDirty();
}

function connect() {
  clearTimeout(conn.retry);
  const es = new EventSource(apiUrl("/api/events"));
  conn.es = es;
  es.addEventListener("open", () => {
    conn.lostAt = 0;
    setConn(live.ended ? "ended" : "live");
  });
  on(es, "state", (s) => {
    // A client that arrives after the end gets the final state without an `end` event.
    if (s.run && s.run.status !== "running") {
      applyEnd(s);
      setConn("ended");
    } else {
      applyState(s);
      if (!live.ended) setConn("live");
    }
    notice(null);
  });
  on(es, "tick", applyTick);
  on(es, "alert", applyAlert);
  on(es, "kpis", applyKpis);
  on(es, "mcp", applyMcp);
  on(es, "end", (s) => {
    applyEnd(s);
    setConn("ended");
  });
  es.addEventListener("error", () => onStreamError(es));
}

/** Parses one SSE message type and schedules a redraw. */
function on(es, type, apply) {
  es.addEventListener(type, (e) => {
    apply(JSON.parse(e.data));
    markDirty();
  });
}

/**
 * The stream dropped. Before the end: the browser retries by itself ("reconnecting"), and a long
 * silence reads as "server stopped". After the end: the server lingers a little and then goes away;
 * a probe of /api/state tells which of the two it is, and the page keeps everything it received.
 */
function onStreamError(es) {
  if (live.ended) {
    es.close();
    probeServer();
    return;
  }
  if (!conn.lostAt) conn.lostAt = Date.now();
  const long = Date.now() - conn.lostAt > STOPPED_AFTER_MS;
  setConn(long ? "stopped" : "reconnecting");
  if (es.readyState === EventSource.CLOSED) {
    // The browser gave up (an HTTP error instead of a stream): retry by hand, more slowly.
    conn.retry = setTimeout(connect, long ? 10000 : 3000);
  }
}

async function probeServer() {
  try {
    const res = await fetch(apiUrl("/api/state"), { cache: "no-store" });
    setConn(res.ok ? "ended" : "stopped");
  } catch {
    setConn("stopped");
    return;
  }
  // Still up (lingering): look again shortly, so "server stopped" shows when it goes.
  clearTimeout(conn.probe);
  conn.probe = setTimeout(probeServer, 2000);
}

// ───────────────────────────── charts ─────────────────────────────

/** The three uPlot instances and what they last drew. */
const charts = { mem: null, act: null, rate: null, key: "", version: -1, plotted: 0, memTop: 0 };
/**
 * Memory axis: the machine's limit (bands visible) or the budget (agents' detail). Until the user
 * picks one, it follows the data: the limit once the machine is near the bands, else the budget
 * (on a large machine the agents are a flat line at the bottom of a full-limit axis).
 */
const memAxisChoice = { picked: null };
/** What the band hook draws: set before each redraw. */
const bandCtx = { limit: 0, thresholds: DEFAULT_THRESHOLDS };
let palette = null;

function chartWidth(id) {
  return Math.max(200, byId(id).clientWidth);
}

function xAxis() {
  return {
    stroke: palette.muted,
    grid: { stroke: palette.grid, width: 1 },
    ticks: { stroke: palette.grid, width: 1 },
    incrs: SECOND_INCRS,
    values: (u, splits) => splits.map(fmtClock),
  };
}

function yAxis(extra) {
  return { stroke: palette.muted, grid: { stroke: palette.grid, width: 1 }, ticks: { stroke: palette.grid, width: 1 }, ...extra };
}

/** A plotted series: no point markers (they clutter a live series of thousands of points). */
function line(opts) {
  return { points: { show: false }, ...opts };
}

function bytesValue(u, v) {
  return v == null ? "–" : fmtBytes(v);
}

function memOptions(width) {
  return {
    width, height: 260,
    cursor: { sync: { key: "guild" }, drag: { x: false, y: false } },
    legend: { live: true },
    scales: { x: { time: false }, y: { range: () => [0, charts.memTop || 1] } },
    axes: [xAxis(), yAxis({ size: 64, incrs: BYTE_INCRS, values: (u, splits) => splits.map(fmtBytes) })],
    series: [
      { label: "time", value: (u, v) => fmtClock(v) },
      line({ label: "machine used", stroke: palette.used, fill: palette.usedFill, width: 1.5, value: bytesValue }),
      line({ label: "agents RSS", stroke: palette.agents, fill: palette.agentsFill, width: 1.5, value: bytesValue }),
      line({ label: "reserved", stroke: palette.reserved, width: 1.25, dash: [4, 3], value: bytesValue }),
      line({ label: "budget", stroke: palette.budget, width: 1.5, dash: [9, 4], value: bytesValue }),
      line({ label: "limit", stroke: palette.limit, width: 1, value: bytesValue }),
    ],
    hooks: { drawClear: [drawBands] },
  };
}

function activityOptions(width) {
  const step = uPlot.paths.stepped({ align: 1 });
  const count = (u, v) => (v == null ? "–" : String(v));
  return {
    width, height: 170,
    cursor: { sync: { key: "guild" }, drag: { x: false, y: false } },
    scales: { x: { time: false }, y: { range: (u, min, max) => [0, Math.max(4, Math.ceil(max * 1.15))] } },
    axes: [xAxis(), yAxis({ size: 40, incrs: COUNT_INCRS, values: (u, splits) => splits.map((v) => String(v)) })],
    series: [
      { label: "time", value: (u, v) => fmtClock(v) },
      line({ label: "running", stroke: palette.running, width: 2, paths: step, value: count }),
      line({ label: "paused", stroke: palette.paused, width: 1.5, paths: step, value: count }),
      line({ label: "queued", stroke: palette.queued, width: 1.5, dash: [4, 3], paths: step, value: count }),
    ],
  };
}

function rateOptions(width) {
  const pct = (u, v) => (v == null ? "–" : fmtPct(v, 1));
  return {
    width, height: 170,
    cursor: { sync: { key: "guild" }, drag: { x: false, y: false } },
    scales: { x: { time: false }, y: { range: () => [0, 1] } },
    axes: [xAxis(), yAxis({ size: 48, values: (u, splits) => splits.map((v) => fmtPct(v)) })],
    series: [
      { label: "time", value: (u, v) => fmtClock(v) },
      line({ label: "cache hit rate", stroke: palette.hit, width: 2, value: pct }),
      line({ label: "CPU", stroke: palette.cpu, width: 1, value: pct }),
    ],
  };
}

/** The pressure bands behind the lines: fractions of the limit, shaded up to the next threshold. */
function drawBands(u) {
  const { limit, thresholds } = bandCtx;
  if (!limit) return;
  const { ctx, bbox } = u;
  const dpr = devicePixelRatio || 1;
  ctx.save();
  ctx.beginPath();
  ctx.rect(bbox.left, bbox.top, bbox.width, bbox.height);
  ctx.clip();
  ctx.font = `${10 * dpr}px system-ui, sans-serif`;
  ctx.textAlign = "right";
  let lastLabelY = Infinity;
  for (const [name, next] of BANDS) {
    const from = thresholds[name];
    if (from == null) continue;
    const y0 = u.valToPos(from * limit, "y", true);
    const y1 = next == null || thresholds[next] == null ? bbox.top : u.valToPos(thresholds[next] * limit, "y", true);
    if (y0 < bbox.top) {
      // This band and the ones above are off the chart (budget axis): say where they begin.
      if (name === "moderate") {
        ctx.fillStyle = palette.muted;
        ctx.fillText(`pressure bands above: moderate from ${fmtBytes(from * limit)} (${Math.round(from * 100)}% of ${fmtBytes(limit)})`, bbox.left + bbox.width - 4 * dpr, bbox.top + 12 * dpr);
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

function buildCharts() {
  for (const k of ["mem", "act", "rate"]) charts[k]?.destroy();
  palette = readPalette();
  const empty = (n) => Array.from({ length: n }, () => []);
  charts.mem = new uPlot(memOptions(chartWidth("memory-chart")), empty(6), byId("memory-chart"));
  charts.act = new uPlot(activityOptions(chartWidth("activity-chart")), empty(4), byId("activity-chart"));
  charts.rate = new uPlot(rateOptions(chartWidth("rate-chart")), empty(3), byId("rate-chart"));
  charts.key = "";
  charts.version = -1;
}

function resizeCharts() {
  if (!charts.mem) return;
  charts.mem.setSize({ width: chartWidth("memory-chart"), height: 260 });
  charts.act.setSize({ width: chartWidth("activity-chart"), height: 170 });
  charts.rate.setSize({ width: chartWidth("rate-chart"), height: 170 });
  markDirty();
}

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

/** The top of the memory axis: the limit (or what was used above it), or the budget and what agents used. */
function memTop(cols, limit, thresholds) {
  const max = (arr) => arr.reduce((m, v) => (v != null && v > m ? v : m), 0);
  const used = max(cols[1]);
  const axis = memAxisChoice.picked ?? (limit > 0 && used >= thresholds.moderate * limit * 0.75 ? "limit" : "budget");
  updateMemAxisButton(axis);
  if (axis === "budget") {
    const agents = Math.max(max(cols[2]), max(cols[3]), max(cols[4]));
    // The machine's line too, unless it would squash the agents' detail flat.
    return (used <= agents * 2.5 ? Math.max(agents, used) : agents) * 1.12 || limit;
  }
  return Math.max(limit, used) * 1.04;
}

function updateMemAxisButton(axis) {
  const auto = memAxisChoice.picked === null ? "auto · " : "";
  setText(byId("mem-scale"), `axis: ${auto}${axis === "limit" ? "machine limit" : "budget"}`);
  byId("mem-scale").dataset.axis = axis;
}

function renderCharts(m) {
  if (!charts.mem) return;
  bandCtx.limit = m.limitBytes;
  bandCtx.thresholds = m.thresholds;
  if (charts.key === m.key && charts.version === m.version) return;
  charts.key = m.key;
  charts.version = m.version;
  const c = columns(m.series);
  charts.memTop = memTop(c, m.limitBytes, m.thresholds);
  setChartData(charts.mem, [c[0], c[1], c[2], c[3], c[4], c[5]]);
  setChartData(charts.act, [c[0], c[6], c[7], c[8]]);
  setChartData(charts.rate, [c[0], c[9], c[10]]);
  charts.plotted = m.series.length;
}

/** New data; while the cursor is off the chart, its legend shows the newest values instead of dashes. */
function setChartData(u, data) {
  u.setData(data);
  const n = data[0].length;
  if (n > 0 && (u.cursor.left == null || u.cursor.left < 0)) u.setLegend({ idx: n - 1 });
}

function toggleMemAxis() {
  memAxisChoice.picked = byId("mem-scale").dataset.axis === "limit" ? "budget" : "limit";
  charts.version = -1;
  markDirty();
}

// ───────────────────────────── task timeline ─────────────────────────────

const TL = { labelW: 150, rowH: 18, axisH: 20, pad: 10 };
/** What the last draw laid out, for the hover tooltip. */
let timelineLayout = null;

/** Started tasks by start time, then the ones still waiting, in workflow order. */
function timelineRows(tasks) {
  const started = tasks.filter((t) => t.started_ms != null).sort((a, b) => a.started_ms - b.started_ms);
  return started.concat(tasks.filter((t) => t.started_ms == null));
}

/** A step near `target` pixels apart, from SECOND_INCRS. */
function niceStep(spanS, widthPx) {
  const want = spanS / Math.max(1, widthPx / 90);
  return SECOND_INCRS.find((s) => s >= want) ?? SECOND_INCRS.at(-1);
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

function renderTimeline(m) {
  const canvas = byId("timeline");
  const rows = timelineRows(m.tasks);
  const width = Math.max(300, byId("timeline-wrap").clientWidth);
  const height = TL.axisH + Math.max(1, rows.length) * TL.rowH + 4;
  const ctx = sizeCanvas(canvas, width, height);
  ctx.clearRect(0, 0, width, height);
  const endMs = Math.max(1000, m.elapsedMs ?? 0, ...rows.map((t) => t.ended_ms ?? 0));
  const x0 = TL.labelW;
  const scale = (width - x0 - TL.pad) / endMs;
  drawTimelineAxis(ctx, x0, scale, endMs, height);
  ctx.font = "12px system-ui, sans-serif";
  ctx.textBaseline = "middle";
  rows.forEach((t, i) => drawTimelineRow(ctx, t, TL.axisH + i * TL.rowH, x0, scale, m));
  if (rows.length === 0) {
    ctx.fillStyle = palette.muted;
    ctx.fillText("No tasks yet", x0, TL.axisH + TL.rowH / 2);
  }
  timelineLayout = { rows, x0, scale };
}

function drawTimelineAxis(ctx, x0, scale, endMs, height) {
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

function drawTimelineRow(ctx, t, y, x0, scale, m) {
  ctx.fillStyle = palette.fg;
  ctx.fillText(clip(ctx, t.id, x0 - 12), 4, y + TL.rowH / 2);
  const color = palette.status[t.status] ?? palette.muted;
  if (t.started_ms == null) {
    // Not started: a hollow marker at the start of the axis, in its state's colour.
    ctx.strokeStyle = color;
    ctx.strokeRect(x0 + 0.5, y + 4.5, 10, TL.rowH - 9);
    return;
  }
  const end = t.ended_ms ?? (ACTIVE.has(t.status) && m.kind === "live" ? m.elapsedMs : t.started_ms + (t.duration_ms ?? 0));
  const x = x0 + t.started_ms * scale;
  const w = Math.max(2, (end - t.started_ms) * scale);
  ctx.fillStyle = color;
  ctx.fillRect(x, y + 3, w, TL.rowH - 6);
  if (ACTIVE.has(t.status)) {
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

function onTimelineHover(e) {
  const tip = byId("tip");
  const L = timelineLayout;
  const rect = e.currentTarget.getBoundingClientRect();
  const i = Math.floor((e.clientY - rect.top - TL.axisH) / TL.rowH);
  const t = L?.rows[i];
  if (!t) {
    tip.hidden = true;
    return;
  }
  const m = currentModel();
  setText(tip, `${t.id} · ${t.agent} · ${t.status} · ${fmtDuration(taskDuration(t, m))}${t.attempts > 1 ? ` · ${t.attempts} attempts` : ""}`);
  tip.hidden = false;
  const wrap = byId("timeline-wrap");
  tip.style.left = `${Math.min(e.clientX - rect.left + 12, wrap.clientWidth - tip.offsetWidth - 4)}px`;
  tip.style.top = `${TL.axisH + (i + 1) * TL.rowH + 2}px`;
}

// ───────────────────────────── tables ─────────────────────────────

/** A task's running time: measured when it ended, the clock's while it runs. */
function taskDuration(t, m) {
  if (t.duration_ms != null && !ACTIVE.has(t.status)) return t.duration_ms;
  if (t.started_ms != null && m.kind === "live" && ACTIVE.has(t.status)) return m.elapsedMs - t.started_ms;
  return t.duration_ms;
}

/** Rows by task id: a tick replaces only the rows of tasks that changed. */
const taskRows = { key: "", order: "", byId: new Map() };

function renderTaskTable(m) {
  const body = byId("task-body");
  if (taskRows.key !== m.key) {
    taskRows.key = m.key;
    taskRows.byId.clear();
    body.replaceChildren();
  }
  const seen = new Set();
  for (const t of m.tasks) {
    seen.add(t.id);
    let entry = taskRows.byId.get(t.id);
    if (!entry) {
      entry = { tr: taskRowElement(), row: null };
      taskRows.byId.set(t.id, entry);
    }
    if (entry.row !== t || ACTIVE.has(t.status)) fillTaskRow(entry.tr, t, m);
    entry.row = t;
  }
  for (const [id, entry] of taskRows.byId) if (!seen.has(id)) {
    entry.tr.remove();
    taskRows.byId.delete(id);
  }
  const order = m.tasks.map((t) => t.id).join("\n");
  if (order !== taskRows.order || body.childElementCount !== m.tasks.length) {
    taskRows.order = order;
    body.replaceChildren(...m.tasks.map((t) => taskRows.byId.get(t.id).tr));
  }
  if (m.tasks.length === 0) body.replaceChildren(emptyRow(8, "No tasks"));
  setText(byId("task-count"), taskCountText(m.tasks));
}

function taskCountText(tasks) {
  const by = {};
  for (const t of tasks) by[t.status] = (by[t.status] ?? 0) + 1;
  return TASK_STATUSES.filter((s) => by[s]).map((s) => `${by[s]} ${s}`).join(" · ");
}

function taskRowElement() {
  const tr = h("tr", { "data-testid": "task-row" });
  for (const cls of ["id", "", "", "r", "r", "r", "r", "err"]) tr.append(h("td", { class: cls || null }));
  return tr;
}

function fillTaskRow(tr, t, m) {
  tr.dataset.taskId = t.id;
  tr.dataset.status = t.status;
  const c = tr.children;
  setText(c[0], t.id);
  setText(c[1], t.agent);
  if (c[2].dataset.status !== t.status) {
    c[2].dataset.status = t.status;
    c[2].replaceChildren(h("span", { class: `chip st-${t.status}`, text: t.status }));
  }
  setText(c[3], t.started_ms == null ? "–" : fmtClock(t.started_ms / 1000));
  setText(c[4], fmtDuration(taskDuration(t, m)));
  const rss = ACTIVE.has(t.status) && t.rss_bytes != null ? `${fmtBytes(t.rss_bytes)} / ` : "";
  setText(c[5], `${rss}${fmtBytes(t.peak_rss_bytes)}`);
  setText(c[6], String(t.attempts));
  setText(c[7], t.error ?? "");
  c[7].title = t.error ?? "";
}

function emptyRow(span, text) {
  return h("tr", null, h("td", { class: "empty", colspan: span, text }));
}

function renderAgents(m) {
  const body = byId("agent-body");
  if (m.agents.length === 0) {
    body.replaceChildren(emptyRow(11, "No agents yet"));
    return;
  }
  body.replaceChildren(...m.agents.map((a) =>
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
}

// ───────────────────────────── KPIs and alerts ─────────────────────────────

const rendered = { kpis: undefined, alertsKey: "" };

function renderKpis(m) {
  if (rendered.kpis === m.kpis) return;
  rendered.kpis = m.kpis;
  const k = m.kpis;
  const overall = byId("kpi-overall");
  const box = byId("kpis");
  const recs = byId("recs");
  if (!k) {
    overall.replaceChildren(h("span", { class: "muted", text: "not scored yet" }));
    box.replaceChildren(h("p", { class: "empty-note", text: "KPIs are scored every 2 s while a run is live, and at its end." }));
    recs.replaceChildren(h("li", { class: "empty-note", text: "None yet." }));
    return;
  }
  const o = k.overall;
  overall.replaceChildren(
    h("span", { class: `score score-${o.score ?? "none"}`, text: o.score ?? "not scored" }),
    h("span", { class: "muted", text: o.points == null ? "" : `${Math.round(o.points)} / 100` }));
  box.replaceChildren(...k.scores.map(kpiCard));
  recs.replaceChildren(...(k.recommendations.length
    ? k.recommendations.map((r) => h("li", { text: r }))
    : [h("li", { class: "empty-note", text: "Nothing to recommend." })]));
}

function kpiCard(k) {
  const score = k.score ?? "none";
  const th = k.thresholds;
  const dir = th.higher_is_better ? "≥" : "≤";
  const title = `good ${dir} ${th.good} · acceptable ${dir} ${th.acceptable} · poor ${dir} ${th.poor} (${k.unit})`;
  return h("div", { class: `kpi k-${score}`, title, "data-kpi": k.kpi },
    h("div", { class: "label", text: k.label, title: k.label }),
    h("div", { class: "line" },
      h("span", { class: "value", text: fmtKpiValue(k) }),
      h("span", { class: `score score-${score}`, text: k.score ? `${k.score} · ${SCORE_POINTS[k.score]}` : "not scored" })),
    h("div", { class: "note", text: k.note ?? `${k.samples} sample${k.samples === 1 ? "" : "s"}` }));
}

function renderAlerts(m) {
  const key = `${m.key}:${m.alerts.length}:${m.alerts.map((a) => a.repeats).join(",")}`;
  if (key === rendered.alertsKey) return;
  rendered.alertsKey = key;
  const list = byId("alerts");
  setText(byId("alert-count"), m.alerts.length ? `${m.alerts.length}` : "");
  if (m.alerts.length === 0) {
    list.replaceChildren(h("li", { class: "empty-note", text: "No alerts." }));
    return;
  }
  const newest = m.alerts.slice().reverse();
  list.replaceChildren(...newest.map((a) =>
    h("li", { class: `sev-${a.severity}` },
      h("span", { class: "when", text: fmtClock(a.at_ms / 1000), title: fmtDate(a.at) }),
      h("span", { class: `sev sev-${a.severity}`, text: a.severity }),
      h("span", { class: "msg" }, a.rule ? h("span", { class: "rule", text: a.rule }) : null, a.message),
      h("span", { class: "repeats", text: a.repeats > 0 ? `×${a.repeats + 1}` : "", title: a.repeats > 0 ? `${a.repeats} repeats suppressed` : null }))));
}

// ───────────────────────────── MCP gateway ─────────────────────────────
// The gateway's pool (GatewayStatus): servers, backend instances, latency per tool against the
// response targets. Self-contained: it reads only its own snapshot, never the run's model.

function applyMcp(snapshot) {
  live.mcp = snapshot;
}

/** The snapshot last drawn: one arrives per second at most, and the tables are rebuilt only for a new one. */
const mcpRendered = { snapshot: undefined };

function renderMcp(g) {
  if (mcpRendered.snapshot === g) return;
  mcpRendered.snapshot = g;
  const panel = byId("mcp-panel");
  panel.hidden = g == null;
  if (g == null) return;
  const level = byId("mcp-level");
  setText(level, g.level);
  level.className = `level level-${g.level}`;
  const c = g.cache;
  const lookups = c.hits + c.misses;
  setText(byId("mcp-meta"), [
    `${g.sessions} session${g.sessions === 1 ? "" : "s"}`,
    `reserved ${fmtBytes(g.reservedBytes)} of budget ${fmtBytes(g.budgetBytes)}`,
    `cache ${c.hits} hits · ${c.misses} misses${lookups > 0 ? ` (${fmtPct(c.hits / lookups)})` : ""}`,
    `up ${fmtDuration(g.uptimeMs)}`,
    g.url,
  ].join(" · "));
  byId("mcp-servers-body").replaceChildren(...(g.servers.length === 0 ? [emptyRow(10, "No servers")] : g.servers.map((v) => mcpServerRow(v, g))));
  byId("mcp-backends-body").replaceChildren(...(g.backends.length === 0 ? [emptyRow(10, "No backend started yet")] : g.backends.map(mcpBackendRow)));
  byId("mcp-latency-body").replaceChildren(...(g.latency.length === 0 ? [emptyRow(9, "No call yet")] : g.latency.map(mcpLatencyRow)));
}

function mcpServerRow(v, g) {
  const backends = g.backends.filter((b) => b.server === v.name);
  const sum = (k) => backends.reduce((n, b) => n + b[k], 0);
  const calls = sum("calls");
  const hits = sum("cacheHits");
  // Latency is kept per tool; a server's figure is its slowest tool's (by p95), named beside it.
  let worst = null;
  for (const l of g.latency) if (l.server === v.name && (worst === null || l.p95Ms > worst.p95Ms)) worst = l;
  const target = worst?.targetMs ?? null;
  return h("tr", { "data-server": v.name },
    h("td", { class: "id", text: v.name }),
    h("td", { class: "muted", text: v.kind ?? "" }),
    h("td", { text: v.isolation }),
    h("td", { class: "r", text: `${sum("instances")} (${v.instances.min}–${v.instances.max})` }),
    h("td", { class: "r", text: String(calls) }),
    h("td", { class: "r", text: calls + hits > 0 ? fmtPct(hits / (calls + hits)) : "–", title: `${hits} of ${calls + hits} from the cache` }),
    h("td", { class: "id", text: worst ? worst.name ?? worst.method : "–" }),
    mcpLatencyCell(worst?.p50Ms, target),
    mcpLatencyCell(worst?.p95Ms, target),
    h("td", { class: "r", text: target == null ? "–" : fmtLatency(target) }));
}

function mcpBackendRow(b) {
  const base = b.project.split("/").filter(Boolean).pop() ?? b.project;
  const now = [`${b.instances} live`];
  if (b.starting) now.push(`${b.starting} starting`);
  if (b.draining) now.push(`${b.draining} draining`);
  if (b.inFlight) now.push(`${b.inFlight} in flight`);
  if (b.waiting) now.push(`${b.waiting} waiting`);
  if (b.admissionDenied) now.push(`held back: ${b.admissionDenied}`);
  const recycles = Object.entries(b.recyclesBy).map(([why, n]) => `${why} ${n}`).join(", ");
  return h("tr", { "data-testid": "mcp-backend", "data-server": b.server },
    h("td", { class: "id", text: b.server }),
    h("td", { text: b.session ? `${base} · session ${b.session.slice(0, 8)}` : base, title: b.project }),
    h("td", { class: "r mono", text: b.pids.length ? b.pids.join(", ") : "–", title: `every pid so far: ${b.allPids.join(", ")}` }),
    h("td", { class: "r", text: b.pids.length ? fmtBytes(b.rssBytes) : "–" }),
    h("td", { class: "r", text: fmtBytes(b.peakRssBytes) }),
    h("td", { class: "r", text: String(b.calls) }),
    h("td", { class: "r", text: String(b.cacheHits) }),
    h("td", { class: "r", text: String(b.restarts) }),
    h("td", { class: "r", text: String(b.recycles), title: recycles }),
    h("td", { class: b.admissionDenied ? "err" : "muted", text: now.join(" · ") }));
}

function mcpLatencyRow(l) {
  return h("tr", null,
    h("td", { class: "id", text: l.server }),
    h("td", { class: "muted", text: l.method }),
    h("td", { class: "id", text: l.name ?? "–" }),
    h("td", { class: "r", text: String(l.calls) }),
    h("td", { class: "r", text: String(l.cacheHits) }),
    h("td", { class: "r", text: String(l.errors) }),
    mcpLatencyCell(l.p50Ms, l.targetMs),
    mcpLatencyCell(l.p95Ms, l.targetMs),
    h("td", { class: "r", text: l.targetMs == null ? "–" : fmtLatency(l.targetMs) }));
}

/** A latency, marked (colour and "!") when over the target. */
function mcpLatencyCell(ms, target) {
  const over = ms != null && target != null && ms > target;
  return h("td", { class: over ? "r over" : "r", text: `${fmtLatency(ms)}${over ? " !" : ""}`, title: over ? `over the ${fmtLatency(target)} target` : null });
}

/** Sub-millisecond figures matter here (a cached call takes ~0.3 ms): 0.42 ms, 12.5 ms, 212 ms, 1.50 s. */
function fmtLatency(ms) {
  if (ms == null || !Number.isFinite(ms)) return "–";
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${round(ms, 1)} ms`;
  return fmtDuration(ms);
}

// ───────────────────────────── history ─────────────────────────────

const history = { runs: [], loading: null };

async function loadRuns() {
  try {
    history.runs = await getJson("/api/runs?limit=50");
    renderRuns();
    notice(null);
    if (live.state?.mode === "history" && view.kind === "live" && history.runs.length > 0) openRun(history.runs[0].id);
  } catch (err) {
    notice(`Could not load past runs: ${err.message}`);
  }
}

function renderRuns() {
  const body = byId("runs-body");
  if (history.runs.length === 0) {
    body.replaceChildren(emptyRow(12, "No past runs in the store yet"));
    return;
  }
  body.replaceChildren(...history.runs.map(runRow));
  renderRunsSelection();
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

function runStatusClass(status) {
  if (status === "interrupted") return "paused";
  if (status === "crashed") return "failed";
  return TASK_STATUSES.includes(status) ? status : "skipped";
}

function renderRunsSelection() {
  const selected = view.kind === "past" ? view.id : null;
  for (const tr of byId("runs-body").children) tr.classList.toggle("selected", tr.dataset.runId === selected);
}

async function openRun(id) {
  history.loading = id;
  try {
    const detail = await getJson(`/api/runs/${encodeURIComponent(id)}`);
    if (history.loading !== id) return; // another run was clicked meanwhile
    const summary = history.runs.find((r) => r.id === id) ?? null;
    view = { kind: "past", id, model: pastModel(id, detail, summary) };
    byId("run-detail").hidden = false;
    setText(byId("detail-id"), id);
    setText(byId("run-markdown"), detail.markdown ?? "");
    notice(null);
    markDirty();
  } catch (err) {
    notice(`Could not load run ${id}: ${err.message}`);
  }
}

// ───────────────────────────── boot ─────────────────────────────

async function loadState() {
  try {
    applyState(await getJson("/api/state"));
    markDirty();
  } catch (err) {
    notice(`Could not load the state: ${err.message}`);
  }
}

function boot() {
  buildCharts();
  byId("mem-scale").addEventListener("click", toggleMemAxis);
  byId("back-live").addEventListener("click", showLive);
  const canvas = byId("timeline");
  canvas.addEventListener("mousemove", onTimelineHover);
  canvas.addEventListener("mouseleave", () => (byId("tip").hidden = true));
  new ResizeObserver(resizeCharts).observe(document.querySelector("main"));
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
    buildCharts();
    rendered.kpis = undefined;
    markDirty();
  });
  // The clock in the header and the growing bars move between ticks too.
  setInterval(() => conn.state === "live" && live.state?.run?.status === "running" && markDirty(), 1000);
  loadState().then(() => {
    connect();
    loadRuns();
  });
  markDirty();
}

boot();
