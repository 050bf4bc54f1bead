/*
 * The event stream (/api/events): every message goes into the model; the connection's state
 * (live, reconnecting, ended, stopped) too. Event names are the server's contract:
 *   state  a whole DashboardState (first on each connection, and when a run starts)
 *   tick   the newest point and what changed since the last tick
 *   alert  one AlertRecord
 *   kpis   a KpiReport (periodically while a run is live, and at its end)
 *   end    the final DashboardState
 *   mcp    … and one event per feed (model.js FEEDS): its latest snapshot, or null
 */
import { apiUrl } from "./api.js";
import { showNotice } from "./dom.js";
import { applyAlert, applyEnd, applyFeed, applyKpis, applyState, applyTick, FEEDS, read, setConnection } from "./model.js";

/** Reconnecting for longer than this reads as "server stopped". */
const STOPPED_AFTER_MS = 15000;
/** How long the page waits before retrying by hand, when the browser gave up on the stream. */
const RETRY_MS = 3000;
const RETRY_LONG_MS = 10000;
/** How often a lingering server is probed after the run's end, so "server stopped" shows when it goes. */
const PROBE_MS = 2000;

/**
 * Connects and stays connected. `onEnded(runId)` runs when the run's end arrives (the store then
 * writes it, and the runs table wants a fresh look).
 */
export function startStream({ onEnded }) {
  /** This connection's own bookkeeping: the EventSource's timers, nobody else's business. */
  const link = { lostAt: 0, retry: null, probe: null };

  function connect() {
    clearTimeout(link.retry);
    const es = new EventSource(apiUrl("/api/events"));
    es.addEventListener("open", () => {
      link.lostAt = 0;
      setConnection(read().live.ended ? "ended" : "live");
    });
    on(es, "state", (s) => {
      // A client that arrives after the end gets the final state without an `end` event.
      if (s.run && s.run.status !== "running") ended(s);
      else {
        applyState(s);
        if (!read().live.ended) setConnection("live");
      }
      showNotice(null);
    });
    on(es, "tick", applyTick);
    on(es, "alert", applyAlert);
    on(es, "kpis", applyKpis);
    on(es, "end", ended);
    for (const name of FEEDS) on(es, name, (snapshot) => applyFeed(name, snapshot));
    es.addEventListener("error", () => onStreamError(es));
  }

  function ended(s) {
    applyEnd(s);
    setConnection("ended");
    onEnded(s.run?.id ?? null);
  }

  /**
   * The stream dropped. Before the end: the browser retries by itself ("reconnecting"), and a long
   * silence reads as "server stopped". After the end: the server lingers a little and then goes
   * away; a probe of /api/state tells which of the two it is, and the page keeps everything it
   * received.
   */
  function onStreamError(es) {
    if (read().live.ended) {
      es.close();
      probeServer();
      return;
    }
    if (!link.lostAt) link.lostAt = Date.now();
    const long = Date.now() - link.lostAt > STOPPED_AFTER_MS;
    setConnection(long ? "stopped" : "reconnecting");
    if (es.readyState === EventSource.CLOSED) {
      // The browser gave up (an HTTP error instead of a stream): retry by hand, more slowly.
      link.retry = setTimeout(connect, long ? RETRY_LONG_MS : RETRY_MS);
    }
  }

  async function probeServer() {
    try {
      const res = await fetch(apiUrl("/api/state"), { cache: "no-store" });
      setConnection(res.ok ? "ended" : "stopped");
    } catch {
      setConnection("stopped");
      return;
    }
    // Still up (lingering): look again shortly.
    clearTimeout(link.probe);
    link.probe = setTimeout(probeServer, PROBE_MS);
  }

  connect();
}

/** Parses one SSE message type into `apply` (which changes the model, which schedules a redraw). */
function on(es, type, apply) {
  es.addEventListener(type, (e) => apply(JSON.parse(e.data)));
}
