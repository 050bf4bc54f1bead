/*
 * Numbers as people read them. Pure functions: no DOM, no state. "–" stands for a figure that
 * was not measured (never a 0 that nobody measured).
 */

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;

/** n with at most `digits` decimals, trailing zeros dropped. */
export function round(n, digits) {
  return String(Number(n.toFixed(digits)));
}

export function fmtBytes(b) {
  if (b == null || !Number.isFinite(b)) return "–";
  const a = Math.abs(b);
  if (a >= GIB) return `${round(b / GIB, a >= 100 * GIB ? 0 : a >= 10 * GIB ? 1 : 2)} GB`;
  if (a >= MIB) return `${round(b / MIB, a >= 100 * MIB ? 0 : 1)} MB`;
  if (a >= KIB) return `${Math.round(b / KIB)} KB`;
  return `${Math.round(b)} B`;
}

/** Memory-axis steps: powers of two in MB, so ticks read 256 MB, 512 MB, 1 GB, 1.5 GB… */
export function byteSteps() {
  return Array.from({ length: 22 }, (_, i) => 2 ** i * MIB);
}

export function fmtDuration(ms) {
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

/** A period as a sentence says it: 2 s, 1.5 s, 250 ms. */
export function fmtPeriod(ms) {
  if (ms == null || !Number.isFinite(ms)) return "–";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${round(ms / 1000, 1)} s`;
}

/** A clock for axes and the header: 42 s, 3:05, 1:02:03. */
export function fmtClock(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "–";
  const total = Math.round(seconds);
  if (total < 60) return `${total}s`;
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** Tokens as people read them: 950, 12.3k, 4.5M; "–" for none. */
export function fmtTokens(n) {
  if (n == null || !Number.isFinite(n) || n === 0) return "–";
  if (n >= 1e6) return `${round(n / 1e6, 1)}M`;
  if (n >= 1e4) return `${round(n / 1e3, 1)}k`;
  return String(Math.round(n));
}

/** US dollars with the precision a small spend needs; "–" for none. */
export function fmtUsd(v) {
  if (v == null || !Number.isFinite(v) || v === 0) return "–";
  return `$${v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toFixed(4)}`;
}

export function fmtPct(ratio, digits = 0) {
  if (ratio == null || !Number.isFinite(ratio)) return "–";
  return `${(ratio * 100).toFixed(digits)}%`;
}

export function fmtDate(epochMs) {
  if (epochMs == null) return "–";
  const d = new Date(epochMs);
  const today = new Date().toDateString() === d.toDateString();
  return today
    ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })
    : d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

/** A KPI's measured value in its unit ('ms', 'ratio', 'x'). */
export function fmtKpiValue(k) {
  if (k.value == null) return "–";
  if (k.unit === "ms") return fmtDuration(k.value);
  if (k.unit === "ratio") return fmtPct(k.value, 1);
  return `${round(k.value, 2)}×`;
}

export function fmtCount(n) {
  return n == null ? "–" : String(n);
}

/** Sub-millisecond figures matter here (a cached MCP call takes ~0.3 ms): 0.42 ms, 12.5 ms, 212 ms, 1.50 s. */
export function fmtLatency(ms) {
  if (ms == null || !Number.isFinite(ms)) return "–";
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${round(ms, 1)} ms`;
  return fmtDuration(ms);
}
