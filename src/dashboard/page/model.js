/*
 * The page's one state. Everything the page knows lives here, and only here (a test checks that
 * no other module keeps mutable state at its top level): the live run as the stream brought it,
 * the server's settings, the feeds' snapshots, the connection, the past runs and which run is on
 * screen. It changes only through the functions below, and each change tells the listeners
 * (app.js schedules a redraw). Panels read it through views.js and keep nothing but their own
 * DOM.
 */

/** Points kept client-side; older ones are dropped. */
const MAX_POINTS = 5000;

/**
 * Snapshots the server sends beside the run (a field of the state and an SSE event of the same
 * name each). A panel that brings its own feed (the workers panel) adds its name here.
 */
export const FEEDS = Object.freeze(["mcp", "workers"]);

const model = {
  live: {
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
  },
  /** What the server draws its lines and grades with (`settings` of the state); null until it says. */
  settings: null,
  /** Each feed's latest snapshot; null when the server has none (its panel hides). */
  feeds: Object.fromEntries(FEEDS.map((name) => [name, null])),
  /** connecting, live, reconnecting, ended, stopped. */
  connection: "connecting",
  /** What is on screen: the live run, or a past one ({ kind: "past", id, run }: `run` as views.js builds it). */
  view: { kind: "live" },
  history: {
    /** RunSummary[], newest first. */
    runs: [],
    /** The run whose detail is being fetched: a slower answer for another run is dropped. */
    loading: null,
    /** The last run opened: { id, markdown }. */
    opened: null,
  },
};

const listeners = new Set();

/** The state, to read. Change it only through the functions below. */
export function read() {
  return model;
}

/** `fn` runs after every change. */
export function onChange(fn) {
  listeners.add(fn);
}

function changed() {
  for (const fn of listeners) fn();
}

/** For tests and the curious: the live state and how many points the charts drew. */
const exposed = { points: 0, state: null };
window.__guild = exposed;

export function recordPlotted(points) {
  exposed.points = points;
}

// ── the live run ────────────────────────────────────────────────────────────────────────────

/** Keeps what was received before a reconnect: the server's series is bounded, the page's is not (up to MAX_POINTS). */
function mergeSeries(have, incoming) {
  if (!incoming || incoming.length === 0) return have;
  const first = incoming[0].t;
  return capSeries(have.filter((p) => p.t < first).concat(incoming));
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

/** A whole DashboardState: `/api/state`, the stream's `state`, or the run's final state. */
export function applyState(s) {
  const live = model.live;
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
  // Only the server's own states carry the settings and the feeds (`/api/state`, a client's first
  // `state`); the run's (start, end) do not, and keep the last ones.
  if (s.settings) model.settings = s.settings;
  for (const name of FEEDS) if (name in s) model.feeds[name] = s[name] ?? null;
  live.state = { ...s, series: live.series, tasks: s.tasks.slice(), alerts: live.alerts };
  live.tickAt = performance.now();
  live.version++;
  exposed.state = live.state;
  changed();
}

/** A `tick`: the newest point and the rows that changed. */
export function applyTick(tick) {
  const live = model.live;
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
  exposed.state = s;
  changed();
}

export function applyAlert(a) {
  const live = model.live;
  if (!live.state) return;
  upsertAlert(live.alerts, a);
  live.state.alerts = live.alerts;
  changed();
}

export function applyKpis(k) {
  if (model.live.state) model.live.state.kpis = k;
  changed();
}

/** The run's final state (`end`, or a `state` that arrives after the end). */
export function applyEnd(s) {
  applyState(s);
  model.live.ended = true;
  changed();
}

/** A feed's snapshot (the `mcp` event…). */
export function applyFeed(name, snapshot) {
  model.feeds[name] = snapshot ?? null;
  changed();
}

export function setConnection(state) {
  model.connection = state;
  changed();
}

// ── past runs and the view ──────────────────────────────────────────────────────────────────

export function setRuns(runs) {
  model.history.runs = runs;
  changed();
}

/** Marks `id` as the run being fetched (see isLoading). */
export function beginLoading(id) {
  model.history.loading = id;
}

export function isLoading(id) {
  return model.history.loading === id;
}

/** Shows a past run: `run` is views.js's pastRun() of its detail. */
export function showPast(id, run, markdown) {
  model.view = { kind: "past", id, run };
  model.history.opened = { id, markdown };
  changed();
}

export function showLive() {
  model.view = { kind: "live" };
  changed();
}
