import { LEVELS } from '../governor/levels.js';
import { formatBytes } from '../util/units.js';
import { CACHE_DISABLED_TEXT } from '../config/resolved.js';
import type { RunReport, TaskReport } from '../workflow/report.js';
import type { KpiReport, KpiScore } from './state.js';

/** A run's report as the history stores it: the `--json` document and, from telemetry, its KPIs. */
export type ReportDocument = RunReport & { kpis?: KpiReport | null };

export interface RenderReportOptions {
  /** The workflow's name (the `name:` of its file, as `runs.name` holds it). @default the workflow file's path */
  name?: string;
  /** When the run started, epoch ms (`runs.started_at`); shown in UTC. @default taken from the run id when it has the usual form */
  startedAt?: number | null;
}

/**
 * Reports stored by earlier versions of Guild lack the sections added since (the cache, pools,
 * Guild's health, KPIs…), so the renderer reads every section as possibly absent.
 */
type Stored = Partial<Omit<ReportDocument, 'tasks'>> & { tasks?: Partial<TaskReport>[] };

/**
 * The run's report as Markdown: summary, tasks, KPIs and recommendations, alerts, the memory
 * governor's responses, the cache, Guild's own health. Deterministic: the same document always
 * renders the same text (nothing reads the clock or the locale). Sizes are 1024-based ("610 MB").
 */
export function renderReportMarkdown(report: ReportDocument, options: RenderReportOptions = {}): string {
  const r = report as Stored;
  const out: string[] = [];
  const runId = r.run_id ?? 'unknown';
  out.push(`# ${inline(options.name ?? r.workflow ?? 'Workflow')}: run ${code(runId)}`, '');
  summary(r, options, out);
  tasks(r, out);
  kpis(r.kpis ?? null, out);
  alerts(r, out);
  governor(r, out);
  cache(r, out);
  spend(r, out);
  health(r, out);
  return out.join('\n');
}

function summary(r: Stored, options: RenderReportOptions, out: string[]): void {
  const status = r.interrupted ? 'interrupted' : r.ok ? 'succeeded' : 'failed';
  const started = options.startedAt ?? startFromRunId(r.run_id);
  const lb = r.lower_bound;
  out.push(`- **Status:** ${status}`);
  if (r.workflow !== undefined) out.push(`- **Workflow:** ${code(r.workflow)}`);
  out.push(`- **Started:** ${started === null ? '—' : utc(started)}`);
  const vs = r.makespan_ms !== undefined && r.lower_bound_ms ? ` (${(r.makespan_ms / r.lower_bound_ms).toFixed(2)}× the lower bound)` : '';
  out.push(`- **Makespan:** ${duration(r.makespan_ms)}${vs}`);
  const terms = lb ? `: dependency chain ${duration(lb.chain_ms)}, memory × time / budget ${duration(lb.memory_ms)}, CPU × time / cores ${duration(lb.cpu_ms)}` : '';
  out.push(`- **Lower bound:** ${duration(r.lower_bound_ms)}${terms}`);
  const source = r.budget_source ? ` (from ${r.budget_source})` : '';
  const limit = r.effective_limit_bytes ? `; effective limit ${formatBytes(r.effective_limit_bytes)}${r.memory_source ? ` via ${r.memory_source}` : ''}` : '';
  out.push(`- **Budget:** ${formatBytes(r.budget_bytes)}${source}${limit}`);
  const share = r.peak_rss_bytes !== undefined && r.budget_bytes ? ` (${percent(r.peak_rss_bytes / r.budget_bytes)} of the budget)` : '';
  out.push(`- **Peak memory:** ${formatBytes(r.peak_rss_bytes)} of agents${share}; Guild itself ${formatBytes(r.guild_peak_rss_bytes ?? r.guild_health?.rss_peak_bytes)}`);
  out.push(`- **Tasks:** ${countsText(r)}`);
  if (r.guild_kills !== undefined) out.push(`- **Kills:** ${r.guild_kills} by Guild; kernel OOM kills ${r.oom_kills ?? 'not readable'}`);
  if (r.log_dir) out.push(`- **Logs:** ${code(r.log_dir)}`);
  out.push('');
}

function countsText(r: Stored): string {
  const total = r.tasks?.length ?? 0;
  const parts = Object.entries(r.counts ?? {})
    .filter(([, n]) => n > 0)
    .map(([status, n]) => `${n} ${status}`);
  return parts.length === 0 ? String(total) : `${total} (${parts.join(', ')})`;
}

function tasks(r: Stored, out: string[]): void {
  out.push('## Tasks', '');
  const list = r.tasks ?? [];
  if (list.length === 0) {
    out.push('_No tasks._', '');
    return;
  }
  out.push(
    ...table(
      ['Task', 'Agent', 'Status', 'Duration', 'Peak RSS', 'Attempts', 'Cache'],
      list.map((t) => [
        t.id ?? '',
        t.agent ?? '',
        t.status ?? '',
        t.attempts ? duration(t.duration_ms) : '—',
        formatBytes(t.peak_rss_bytes),
        String(t.attempts ?? 0),
        taskCache(t),
      ]),
      [false, false, false, true, true, true, false],
    ),
    '',
  );
  const problems = list.filter((t) => t.error || (t.kills?.length ?? 0) > 0);
  if (problems.length > 0) {
    out.push('### Failures and kills', '');
    for (const t of problems) {
      const kills = (t.kills ?? []).map((k) => `killed at ${duration(k.at_ms)} (${k.reason === 'limit' ? 'over its hard limit' : `pressure ${k.level ?? ''}`.trim()}${k.rss_bytes === null ? '' : `, ${formatBytes(k.rss_bytes)}`})`);
      const what = [t.error ? inline(t.error, 500) : '', ...kills].filter(Boolean).join('; ');
      out.push(`- ${code(t.id ?? '')} (${inline(t.agent ?? '')}, ${t.status ?? ''}): ${what}`);
    }
    out.push('');
  }
}

function taskCache(t: Partial<TaskReport>): string {
  const c = t.cache;
  if (!c) return '—';
  if (c.status === 'hit') return `hit, saved ${duration(c.saved_ms)}`;
  return c.reason ? `${c.status} (${c.reason})` : c.status;
}

function kpis(k: KpiReport | null, out: string[]): void {
  out.push('## KPIs', '');
  if (k === null) {
    out.push('_No KPIs for this run._', '');
    return;
  }
  const overall = k.overall.score === null ? 'not scored' : `**${k.overall.score}**${k.overall.points === null ? '' : ` (${round1(k.overall.points)} points)`}`;
  out.push(`Overall: ${overall}`, '');
  if (k.scores.length > 0) {
    out.push(
      ...table(
        ['KPI', 'Value', 'Score', 'Thresholds (good / acceptable / poor)', 'Samples', 'Note'],
        k.scores.map((s) => [s.label, kpiValue(s.value, s.unit), s.score ?? 'not scored', thresholds(s), String(s.samples), s.note ?? '']),
        [false, true, false, false, true, false],
      ),
      '',
    );
  }
  out.push('## Recommendations', '');
  if (k.recommendations.length === 0) out.push('_None._');
  for (const rec of k.recommendations) out.push(`- ${inline(rec)}`);
  out.push('');
}

function kpiValue(v: number | null, unit: KpiScore['unit']): string {
  if (v === null) return '—';
  if (unit === 'ms') return duration(v);
  if (unit === 'ratio') return percent(v);
  return `${v.toFixed(2)}×`;
}

function thresholds(s: KpiScore): string {
  const t = s.thresholds;
  const dir = t.higher_is_better ? 'higher is better' : 'lower is better';
  return `${kpiValue(t.good, s.unit)} / ${kpiValue(t.acceptable, s.unit)} / ${kpiValue(t.poor, s.unit)}, ${dir}`;
}

function alerts(r: Stored, out: string[]): void {
  out.push('## Alerts', '');
  const list = r.alerts ?? [];
  if (list.length === 0) out.push('_None._');
  for (const a of list) {
    // `rule` and `repeats` came with telemetry; older reports lack them.
    const rule = a.rule ? ` (${a.rule})` : '';
    const repeats = a.repeats ? `; repeated ${a.repeats} more time${a.repeats === 1 ? '' : 's'} within the cooldown` : '';
    out.push(`- ${duration(a.at_ms)} **${a.severity}**${rule}: ${inline(a.message)}${repeats}`);
  }
  out.push('');
  const warnings = r.warnings ?? [];
  if (warnings.length > 0) {
    out.push('### Warnings', '');
    for (const w of warnings) out.push(`- ${inline(w)}`);
    out.push('');
  }
}

function governor(r: Stored, out: string[]): void {
  out.push('## Memory governor', '');
  const p = r.pressure;
  if (!p) {
    out.push('_Not recorded for this run._', '');
    return;
  }
  out.push(`Highest pressure: **${p.highest}**`, '');
  const makespan = r.makespan_ms ?? 0;
  out.push(
    ...table(
      ['Level', 'Time', 'Share of the run'],
      LEVELS.map((l) => {
        const ms = p.time_ms[l] ?? 0;
        return [l, duration(ms), makespan > 0 ? percent(ms / makespan) : '—'];
      }),
      [false, true, true],
    ),
    '',
  );
  const responses = r.responses ?? [];
  const count = (type: string): number => responses.filter((x) => x.type === type).length;
  const names: [string, string][] = [
    ['level', 'level change'],
    ['cap', 'concurrency cap'],
    ['admission', 'admission change'],
    ['caching', 'caching change'],
    ['pause', 'pause'],
    ['resume', 'resume'],
    ['kill', 'kill'],
  ];
  const parts = names.filter(([type]) => count(type) > 0).map(([type, label]) => `${count(type)} ${label}${count(type) === 1 ? '' : 's'}`);
  out.push(`- **Responses:** ${parts.length === 0 ? 'none' : parts.join(', ')}`);
  for (const k of responses) {
    if (k.type === 'kill') out.push(`  - killed ${code(k.id)} at ${duration(k.at_ms)} (${k.level}, ${formatBytes(k.rssBytes)})`);
  }
  const a = r.admissions;
  if (a) out.push(`- **Admissions:** ${a.admitted} (${a.backfilled} backfilled); waits for memory ${a.denied.memory}, for CPU ${a.denied.cpu}`);
  const pl = r.pools;
  if (pl) {
    out.push(
      `- **Pools:** execution ${formatBytes(pl.execution.bytes)}, caching ${formatBytes(pl.caching.bytes)}, critical ${formatBytes(pl.critical.bytes)}, buffer ${formatBytes(pl.buffer.bytes)}; ` +
        `peak reserved ${formatBytes(pl.peak_reserved_bytes.other)} below critical, ${formatBytes(pl.peak_reserved_bytes.critical)} critical`,
    );
  }
  out.push('');
}

function cache(r: Stored, out: string[]): void {
  out.push('## Cache', '');
  const c = r.cache;
  if (!c) {
    out.push('_Not recorded for this run._', '');
    return;
  }
  if (!c.enabled) {
    out.push(`Task memoization was off${c.disabled_by ? ` (${CACHE_DISABLED_TEXT[c.disabled_by]})` : ''}.`, '');
    return;
  }
  out.push(`- **Hits:** ${c.hits}`);
  out.push(`- **Misses:** ${c.misses}`);
  out.push(`- **Hit rate:** ${c.hit_rate === null ? '— (no task was looked up)' : percent(c.hit_rate)}`);
  out.push(`- **Time saved:** ${duration(c.saved_ms)}`);
  out.push(`- **Not cacheable:** ${c.not_cacheable}`);
  out.push(`- **Tiers:** ${c.tiers.length === 0 ? '—' : c.tiers.join(', ')}${c.context ? `; context ${inline(c.context)}` : ''}`);
  out.push('');
}

/** What tasks reported spending, per agent type, the limits, and what the cache saved; absent when no task reported any. */
function spend(r: Stored, out: string[]): void {
  const s = r.spend;
  if (!s || (Object.keys(s.totals).length === 0 && s.malformed_lines === 0)) return;
  out.push('## Spend', '');
  const n = (v: number | undefined): string => (v === undefined ? '—' : thousands(v));
  const usd = (v: number | undefined): string => (v === undefined ? '—' : `$${v.toFixed(4)}`);
  const rows = Object.entries(s.by_agent).map(([agent, m]) => [inline(agent), n(m.tokens_in), n(m.tokens_out), n(m.tokens_cache_read), usd(m.cost_usd)]);
  rows.push(['**all**', n(s.totals.tokens_in), n(s.totals.tokens_out), n(s.totals.tokens_cache_read), usd(s.totals.cost_usd)]);
  out.push(...table(['Agent', 'Tokens in', 'Tokens out', 'Cache read', 'Cost'], rows, [false, true, true, true, true]), '');
  const l = s.limits;
  if (l.cost_usd !== null || l.tokens !== null) {
    const set = [l.cost_usd !== null ? `$${l.cost_usd}` : '', l.tokens !== null ? `${thousands(l.tokens)} tokens` : ''].filter(Boolean).join(', ');
    out.push(`- **Limits:** ${set}${l.exceeded ? ` — **reached** (${l.exceeded === 'cost_usd' ? 'cost' : 'tokens'}): no task was started after it` : ''}`);
  }
  if (r.saved) out.push(`- **Saved by the cache:** ${duration(r.saved.time_ms)}, ${thousands(r.saved.tokens)} tokens, $${r.saved.cost_usd.toFixed(4)}`);
  if (s.malformed_lines > 0) out.push(`- **Unreadable metric lines:** ${s.malformed_lines} (skipped)`);
  out.push('');
}

/** 12345.6 → "12,346": grouping without the locale, so the report reads the same everywhere. */
function thousands(v: number): string {
  return String(Math.round(v)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

function health(r: Stored, out: string[]): void {
  out.push("## Guild's health", '');
  const h = r.guild_health;
  if (!h) {
    out.push('_Not recorded for this run._', '');
    return;
  }
  out.push(`- **Peak RSS:** ${formatBytes(h.rss_peak_bytes)} (target below 200 MB while active)`);
  out.push(`- **Event-loop delay:** p50 ${ms(h.event_loop_delay_p50_ms)}, p99 ${ms(h.event_loop_delay_p99_ms)}, max ${ms(h.event_loop_delay_max_ms)}`);
  out.push(`- **Garbage collection:** ${h.gc_count} pause${h.gc_count === 1 ? '' : 's'}, ${ms(h.gc_pause_total_ms)} in all, longest ${ms(h.gc_pause_max_ms)}`);
  if (r.samples !== undefined) out.push(`- **Memory samples:** ${r.samples}${r.sample_interval_ms ? ` (every ${r.sample_interval_ms} ms at most)` : ''}`);
  out.push('');
}

/** A GitHub-flavoured table; `right` aligns numeric columns. */
function table(head: string[], rows: string[][], right: boolean[]): string[] {
  const line = (cells: string[]): string => `| ${cells.map((c) => cell(c)).join(' | ')} |`;
  return [line(head), `|${right.map((r) => (r ? '---:' : '---')).join('|')}|`, ...rows.map(line)];
}

/** One table cell: a `|` would end the cell and a newline the row. */
function cell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, '<br>');
}

/** Text for a list item or a title: on one line, optionally cut to `max` characters. */
function inline(text: string, max = Infinity): string {
  const one = text.replace(/\s*\r?\n\s*/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** An inline code span that survives backticks in the text (CommonMark: a longer fence). */
function code(text: string): string {
  const t = inline(text);
  const runs = t.match(/`+/g) ?? [];
  const fence = '`'.repeat(Math.max(0, ...runs.map((s) => s.length)) + 1);
  return fence.length > 1 || t.startsWith('`') || t.endsWith('`') ? `${fence} ${t} ${fence}` : `${fence}${t}${fence}`;
}

/** "850 ms", "1.4 s", "2 min 05 s", "1 h 02 min". */
function duration(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  if (value < 1000) return `${Math.round(value)} ms`;
  if (value < 59_950) return `${(value / 1000).toFixed(1)} s`;
  const s = Math.round(value / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

function ms(v: number): string {
  return `${round1(v)} ms`;
}

function percent(f: number): string {
  return `${round1(f * 100)}%`;
}

function round1(v: number): string {
  return String(Math.round(v * 10) / 10);
}

/** `2025-03-04 05:06:07 UTC`. */
function utc(epochMs: number): string {
  return `${new Date(epochMs).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** Run ids begin with the start in UTC, `YYYYMMDD-HHMMSS` (workflow/run.ts newRunId). */
function startFromRunId(id: string | undefined): number | null {
  const m = /^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})/.exec(id ?? '');
  if (!m) return null;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  return Date.UTC(y, mo - 1, d, h, mi, s);
}
