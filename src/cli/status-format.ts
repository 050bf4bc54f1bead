import type { DashboardState, WorkersSnapshot } from '../telemetry/state.js';
import { formatBytes, formatDuration } from '../util/units.js';
import { alertText } from '../telemetry/alerts.js';
import { kpiValue } from './summary.js';

/** `guild status`: a running Guild's state in a few lines, running tasks first; a distributed run's workers after them. */
export function formatStatus(s: DashboardState & { workers?: WorkersSnapshot | null }): string {
  const out: string[] = [];
  if (!s.run) return s.mode === 'history' ? 'guild dashboard is serving run history; no run is live' : 'Guild is up; no run has started yet';
  const r = s.run;
  out.push(`run ${r.id} (${r.name}): ${r.status}, ${formatDuration(r.elapsed_ms)} elapsed`);
  const q = s.queue;
  out.push(`  tasks: ${q.running} running (${q.paused} paused), ${q.queued} queued, ${q.done}/${q.total} done${q.blocked ? `; waiting for ${q.blocked.reason}: ${q.blocked.id} (${formatDuration(q.blocked.waited_ms)})` : ''}`);
  const m = s.memory;
  if (m) {
    const used = m.limit_bytes > 0 ? Math.round((100 * m.used_bytes) / m.limit_bytes) : 0;
    out.push(`  memory: machine ${formatBytes(m.used_bytes)} of ${formatBytes(m.limit_bytes)} (${used}%, ${m.level}); agents ${formatBytes(m.agents_rss_bytes)} measured, ${formatBytes(m.reserved_bytes)} reserved of budget ${formatBytes(m.budget_bytes)}`);
  }
  const c = s.cache;
  if (c.hits + c.misses > 0) out.push(`  cache: ${c.hits} hits, ${c.misses} misses (hit rate ${Math.round((c.hit_rate ?? 0) * 100)}%)`);
  out.push(`  Guild: RSS ${formatBytes(s.guild.rss_bytes)}`);
  if (s.kpis?.overall.score) {
    const scored = s.kpis.scores.filter((k) => k.score !== null).map((k) => `${k.label} ${kpiValue(k)} ${k.score}`);
    out.push(`  KPIs: overall ${s.kpis.overall.score} (${s.kpis.overall.points}/100): ${scored.join('; ')}`);
  }
  const running = s.tasks.filter((t) => t.status === 'running' || t.status === 'paused');
  if (running.length > 0) {
    out.push('', '  RUNNING');
    const w = Math.max(4, ...running.map((t) => t.id.length));
    const wa = Math.max(5, ...running.map((t) => t.agent.length));
    // Distributed: where each runs (memory is measured on its worker, and comes back with the result).
    const remote = s.workers != null;
    const ww = Math.max(6, ...running.map((t) => (t.worker ?? '').length));
    for (const t of running) {
      const elapsed = t.started_ms !== null ? formatDuration(Math.max(0, r.elapsed_ms - t.started_ms)) : '—';
      const where = remote ? `  ${(t.worker ?? 'waiting').padEnd(ww)}` : '';
      out.push(`  ${t.id.padEnd(w)}  ${t.agent.padEnd(wa)}${where}  ${formatBytes(t.rss_bytes).padStart(9)}  ${elapsed.padStart(7)}${t.status === 'paused' ? '  paused' : ''}`);
    }
  }
  if (s.workers != null) out.push('', ...formatWorkers(s.workers).map((l) => `  ${l}`));
  for (const a of s.alerts.slice(-5)) out.push(`  alert at ${formatDuration(a.at_ms)} (${a.severity}): ${alertText(a)}`);
  return out.join('\n');
}

/**
 * A cluster's live workers as a table (`guild status` of a distributed run, and `guild status
 * --redis`): budget, used (budget − free), running jobs, pressure, peak, age of the last heartbeat
 * and, with a run, how many of its attempts ended there.
 */
export function formatWorkers(w: WorkersSnapshot): string[] {
  const head = `WORKERS (queue ${w.queue}): ${w.workers.length} live`;
  if (w.workers.length === 0) return [head, 'no worker heartbeats: start one with guild worker --redis URL'];
  const withTasks = w.workers.some((x) => x.tasks !== null);
  const rows = [
    ['NAME', 'HOST', 'BUDGET', 'USED', 'RUNNING', 'PRESSURE', 'PEAK', 'HEARTBEAT', ...(withTasks ? ['TASKS'] : [])],
    ...w.workers.map((x) => [
      x.name,
      `${x.host}:${x.pid}`,
      formatBytes(x.budget_bytes),
      `${formatBytes(x.used_bytes)} (${x.budget_bytes > 0 ? Math.round((100 * x.used_bytes) / x.budget_bytes) : 0}%)`,
      String(x.running),
      x.pressure,
      formatBytes(x.peak_bytes),
      `${formatDuration(x.heartbeat_age_ms)} ago`,
      ...(withTasks ? [String(x.tasks ?? 0)] : []),
    ]),
  ];
  // Names and hosts left-aligned, figures right-aligned.
  const left = new Set([0, 1, 5]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((c, i) => (left.has(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd());
  const rejected = w.workers.filter((x) => x.rejected > 0);
  if (rejected.length > 0) lines.push(`rejected unsigned or altered jobs: ${rejected.map((x) => `${x.name} ${x.rejected}`).join(', ')}`);
  return [head, ...lines];
}
