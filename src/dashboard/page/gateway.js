/*
 * The MCP gateway panel: the gateway's pool (GatewayStatus, src/telemetry/mcp-status.ts): servers,
 * backend instances, latency per tool against the response targets. Self-contained: it reads only
 * its own feed (`mcp`), never the run, and shows only while there is a snapshot.
 */
import { byId, emptyRow, h, setText } from "./dom.js";
import { fmtBytes, fmtDuration, fmtLatency, fmtPct } from "./format.js";

export function createGatewayPanel() {
  const panel = byId("mcp-panel");
  const level = byId("mcp-level");
  /** The snapshot last drawn: one arrives per second at most, and the tables are rebuilt only for a new one. */
  const drawn = { snapshot: undefined };

  return {
    render({ feeds }) {
      const g = feeds.mcp ?? null;
      if (drawn.snapshot === g) return;
      drawn.snapshot = g;
      panel.hidden = g == null;
      if (g == null) return;
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
    },
  };
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
