/*
 * What the panels render, derived from the model: pure functions, no DOM, no state. Two kinds of
 * run feed the panels, the live one (kept current by the stream) and a past one loaded from
 * history; both become the same shape (a "run view"), so every panel draws them alike.
 */
import { fmtBytes, fmtDuration, fmtPct, round } from "./format.js";

export const TASK_STATUSES = Object.freeze(["pending", "queued", "running", "paused", "retrying", "succeeded", "cached", "failed", "skipped", "cancelled"]);
const ACTIVE_STATUSES = Object.freeze({ running: true, paused: true, retrying: true });
/** Feeds are the live process's: a past run has none. */
const NO_FEEDS = Object.freeze({});

/** A task that holds a process (or will again): running, paused or retrying. */
export function isActive(status) {
  return ACTIVE_STATUSES[status] === true;
}

/** A task's running time: measured when it ended, the clock's while it runs. */
export function taskDuration(t, run) {
  if (t.duration_ms != null && !isActive(t.status)) return t.duration_ms;
  if (t.started_ms != null && run.kind === "live" && isActive(t.status)) return run.elapsedMs - t.started_ms;
  return t.duration_ms;
}

/** Everything a frame draws: the run on screen and what surrounds it. */
export function screenOf(m) {
  const past = m.view.kind === "past";
  return {
    run: past ? m.view.run : liveRun(m),
    past,
    pastId: past ? m.view.id : null,
    feeds: past ? NO_FEEDS : m.feeds,
    settings: m.settings,
    connection: m.connection,
    hasLiveRun: Boolean(m.live.state?.run),
    runs: m.history.runs,
    opened: m.history.opened,
    footer: footerText(m),
  };
}

function footerText(m) {
  const s = m.live.state;
  if (!s) return "";
  return [s.mode === "history" ? "history mode (guild dashboard)" : "run mode", `${m.live.series.length} points received`].join(" · ");
}

/** The pressure bands: the run's own, else the ones the server sent; null when neither is known (no bands drawn). */
function thresholdsOf(m) {
  return m.live.state?.memory?.thresholds ?? m.settings?.thresholds ?? null;
}

// ── the live run ────────────────────────────────────────────────────────────────────────────

/** The run's clock: the last elapsed_ms, advanced locally while the run is live. */
function liveElapsed(m) {
  const run = m.live.state?.run;
  if (!run) return 0;
  const advancing = run.status === "running" && m.connection === "live";
  return run.elapsed_ms + (advancing ? performance.now() - m.live.tickAt : 0);
}

function liveRun(m) {
  const live = m.live;
  const s = live.state;
  const run = s?.run ?? null;
  return {
    kind: "live",
    key: `live:${run?.id ?? ""}`,
    version: live.version,
    title: run ? run.name || run.workflow : s?.mode === "history" ? "history" : "—",
    runId: run?.id ?? "",
    status: run?.status ?? (s ? (s.mode === "history" ? "history" : "idle") : "connecting"),
    elapsedMs: run ? liveElapsed(m) : null,
    limitBytes: s?.memory?.limit_bytes ?? live.series.at(-1)?.limit_bytes ?? 0,
    thresholds: thresholdsOf(m),
    series: live.series,
    tasks: s?.tasks ?? [],
    agents: s?.agents ?? [],
    kpis: s?.kpis ?? null,
    alerts: live.alerts,
    figures: s ? liveFigures(s) : [],
    blocked: s?.queue?.blocked ?? null,
  };
}

function liveFigures(s) {
  const m = s.memory;
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
    done = count((t) => !isActive(t.status) && t.status !== "queued" && t.status !== "pending");
    total = s.tasks.length;
  }
  return { label: "Tasks", value: `${running} running`, sub: `${queued} queued · ${paused} paused · ${done}/${total} done`, tone: "accent" };
}

function kpiFigure(kpis) {
  const o = kpis?.overall;
  return { label: "KPI overall", value: o?.score ?? "not scored", sub: o?.points == null ? "no KPI scored yet" : `${Math.round(o.points)} points`, tone: o?.score ?? null };
}

// ── a past run ──────────────────────────────────────────────────────────────────────────────

/**
 * A distributed run's `workers[]` (WorkerReport) as the workers panel draws them: what the run
 * kept of each; what only a live heartbeat says (used, running, its age) is not there. null for a
 * local run.
 */
function pastWorkers(workers) {
  if (!Array.isArray(workers)) return null;
  return {
    queue: null,
    workers: workers.map((w) => ({
      name: w.name, host: w.host, pid: null, budget_bytes: w.budget_bytes, used_bytes: null, free_bytes: null, running: null,
      pressure: w.pressure, peak_bytes: w.peak_bytes, rejected: w.rejected, last_heartbeat: null, heartbeat_age_ms: null, tasks: w.tasks,
    })),
  };
}

/** A TaskReport (history) as the live TaskRow. */
function taskRowOf(t) {
  return {
    id: t.id, agent: t.agent, status: t.status, started_ms: t.started_ms, ended_ms: t.ended_ms,
    duration_ms: t.duration_ms, rss_bytes: null, peak_rss_bytes: t.peak_rss_bytes, attempts: t.attempts, error: t.error,
    ...(t.worker != null && { worker: t.worker }),
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

/** A past run's detail (`/api/runs/<id>`) as a run view; built once, when it is opened. */
export function pastRun(m, id, detail, summary) {
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
    thresholds: thresholdsOf(m),
    series,
    tasks: r.tasks.map(taskRowOf),
    agents: agentRowsOf(r),
    kpis: r.kpis ?? null,
    alerts: (r.alerts ?? []).map((a, i) => ({ ...a, key: `${i}`, at: (summary?.started_at ?? 0) + a.at_ms, rule: a.rule ?? null, repeats: a.repeats ?? 0 })),
    blocked: null,
    workers: pastWorkers(r.workers),
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
