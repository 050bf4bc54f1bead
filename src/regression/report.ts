// What `guild bench` shows: the terminal table, the Markdown report for PR comments, `guild bench
// compare` and the history plot. Pure functions over the shapes of ./types.ts: nothing here reads
// the clock, the locale, the environment or the store, so the same input always renders the same
// text and the CLI decides where it goes.

import { formatBytes } from '../util/units.js';
import { metricKind } from './metrics.js';
import { summarize } from './stats.js';
import type { BenchResult, BenchRunRecord, Comparison, MetricKind, SampleSummary, ScenarioResult } from './types.js';

const DASH = '—';

// ─── values ─────────────────────────────────────────────────────────────────────────────────────

/**
 * One value of a metric in its kind's unit: time `0.352 ms`, `41.7 ms`, `12.34 s`; memory 1024-based
 * like the rest of Guild (`612 MB`, `1.50 GB`); throughput `182.4/s`; rate `3.0 %` (rate values
 * are percentages, 0–100, so that their differences are percentage points); ratio `1.35`; count as
 * is, to 3 significant digits below 100. `—` for a missing or non-finite value.
 */
export function formatMetricValue(kind: MetricKind, value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return DASH;
  const abs = Math.abs(value);
  switch (kind) {
    case 'time':
      if (abs >= 60_000) return `${(value / 1000).toFixed(1)} s`;
      if (abs >= 1000) return `${(value / 1000).toFixed(2)} s`;
      return `${value.toFixed(abs < 1 ? 3 : abs < 10 ? 2 : 1)} ms`;
    case 'memory':
      // formatBytes prints bytes below 1 KB as given; a median may be fractional.
      return formatBytes(Math.round(value));
    case 'throughput':
      return `${value.toFixed(abs >= 1000 ? 0 : abs >= 10 ? 1 : 2)}/s`;
    case 'rate':
      return `${value.toFixed(abs !== 0 && abs < 1 ? 2 : 1)} %`;
    case 'ratio':
      return value.toFixed(2);
    case 'count':
      if (Number.isInteger(value)) return String(value);
      return abs >= 100 ? value.toFixed(1) : String(Number(value.toPrecision(3)));
  }
}

/** `+12.3 %` relative, `+2.0 pt` for a rate; a change that rounds to zero has no sign. */
export function formatChange(c: Comparison): string {
  if (c.change === null || !Number.isFinite(c.change)) return DASH;
  const points = c.kind === 'rate';
  const shown = (points ? c.change : c.change * 100).toFixed(1);
  // Rounding can leave `-0.0`, which reads as a decrease that did not happen.
  const text = Number(shown) === 0 ? (0).toFixed(1) : Number(shown) > 0 ? `+${shown}` : shown;
  return `${text} ${points ? 'pt' : '%'}`;
}

/** `1.35 [1.28, 1.42]`: current / baseline with its 95 % confidence interval. */
function formatRatio(c: Comparison): string {
  const r = c.ratio;
  return r === null ? DASH : `${r.value.toFixed(2)} [${r.low.toFixed(2)}, ${r.high.toFixed(2)}]`;
}

/** `0.003`, `<0.001`, `—` when a side had too few samples for a test. */
export function formatP(p: number | null): string {
  if (p === null || !Number.isFinite(p)) return DASH;
  return p < 0.001 ? '<0.001' : p.toFixed(3);
}

export function formatVerdict(c: Comparison): string {
  if (c.verdict !== 'regression') return c.verdict;
  return c.severity === null ? 'REGRESSION' : `REGRESSION (${c.severity})`;
}

/** The median of one side, or `—` for a side without samples (no baseline yet). */
function sideValue(c: Comparison, s: SampleSummary): string {
  return s.n === 0 ? DASH : formatMetricValue(c.kind, s.median);
}

function shortCommit(commit: string | null): string {
  return commit === null ? DASH : commit.slice(0, 7);
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

// ─── rows ───────────────────────────────────────────────────────────────────────────────────────

/** Rank of a row: regressions by severity (worst first), then improved, noise, ok. */
function rank(c: Comparison): number {
  if (c.verdict === 'regression') return c.severity === 'critical' ? 0 : c.severity === 'major' ? 1 : c.severity === 'minor' ? 2 : 3;
  return c.verdict === 'improved' ? 4 : c.verdict === 'noise' ? 5 : 6;
}

/** Comparisons in reading order; `Array.prototype.sort` is stable, so ties keep the runner's order. */
function ordered(comparisons: readonly Comparison[]): Comparison[] {
  return [...comparisons].sort((a, b) => rank(a) - rank(b));
}

/** The ratio column only when some row has a ratio: `--against` and `compare` runs. */
function hasRatios(comparisons: readonly Comparison[]): boolean {
  return comparisons.some((c) => c.ratio !== null);
}

interface Row {
  cells: string[];
  comparison: Comparison;
}

function tableHead(withRatio: boolean): string[] {
  return ['metric', 'baseline', 'current', 'change', ...(withRatio ? ['ratio [95% CI]'] : []), 'p', 'verdict'];
}

function tableRows(comparisons: readonly Comparison[], withRatio: boolean): Row[] {
  return ordered(comparisons).map((c) => ({
    comparison: c,
    cells: [
      c.metric,
      sideValue(c, c.baseline),
      sideValue(c, c.current),
      formatChange(c),
      ...(withRatio ? [formatRatio(c)] : []),
      formatP(c.p),
      formatVerdict(c),
    ],
  }));
}

/** Which columns hold figures, right-aligned: all but the metric's name and the verdict. */
function numericColumns(head: string[]): boolean[] {
  return head.map((_, i) => i > 0 && i < head.length - 1);
}

// ─── terminal ───────────────────────────────────────────────────────────────────────────────────

/** Options of {@link formatBenchTable}. */
export interface BenchTableOptions {
  /** Colour verdicts and statuses with ANSI escapes (the CLI passes whether stdout is a TTY). @default false */
  color?: boolean;
}

type Paint = (text: string, style: 'bad' | 'good' | 'warn' | 'dim') => string;
const ANSI = { bad: '\x1b[1;31m', good: '\x1b[32m', warn: '\x1b[33m', dim: '\x1b[2m' } as const;
const colored: Paint = (text, style) => `${ANSI[style]}${text}\x1b[0m`;
const plain: Paint = (text) => text;

function verdictStyle(c: Comparison): 'bad' | 'good' | 'warn' | 'dim' | null {
  return c.verdict === 'regression' ? 'bad' : c.verdict === 'improved' ? 'good' : c.verdict === 'noise' ? 'warn' : null;
}

/**
 * Aligned columns, two spaces apart, indented by two. Cells are padded before they are painted, so
 * escapes never count towards a column's width.
 */
function terminalTable(comparisons: readonly Comparison[], paint: Paint): string[] {
  const withRatio = hasRatios(comparisons);
  const head = tableHead(withRatio);
  const rows = tableRows(comparisons, withRatio);
  const numeric = numericColumns(head);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r.cells[i]!.length)));
  // The last column (the verdict) is left unpadded, so no line ends in spaces, painted or not.
  const last = head.length - 1;
  const pad = (cells: string[]): string[] =>
    cells.map((c, i) => (i === last ? c : numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)));
  const line = (cells: string[]): string => `  ${cells.join('  ')}`;
  const out = [line(pad(head).map((h) => paint(h, 'dim')))];
  for (const r of rows) {
    const cells = pad(r.cells);
    const style = verdictStyle(r.comparison);
    if (style !== null) cells[last] = paint(cells[last]!, style);
    out.push(line(cells));
  }
  return out;
}

/** `baseline of 8 runs` or `against main (1a2b3c4)`. */
function modeText(s: ScenarioResult): string {
  if (s.mode === 'against' && s.against) return `against ${s.against.rev} (${shortCommit(s.against.commit)})`;
  return `baseline of ${plural(s.baselineRuns, 'run')}`;
}

function disturbedText(s: ScenarioResult): string {
  if (s.disturbed === 0) return 'no disturbed iteration';
  return `${plural(s.disturbed, 'disturbed iteration')} ${s.excludedDisturbed ? 'excluded' : 'kept'}`;
}

function statusText(s: ScenarioResult): { text: string; style: 'bad' | 'good' | 'warn' } {
  switch (s.status) {
    case 'pass':
      return { text: s.confirmed === false ? 'pass (the regression did not repeat on a re-run)' : 'pass', style: 'good' };
    case 'regression':
      return { text: s.confirmed === true ? 'REGRESSION (repeated on a re-run)' : 'REGRESSION', style: 'bad' };
    case 'not-enough-baseline':
      return {
        text: `not enough baseline: ${plural(s.baselineRuns, 'comparable run')}, ${s.baselineNeeded} needed`,
        style: 'warn',
      };
  }
}

/** The regressions a result counts: regressed metrics of scenarios whose status is a regression. */
function regressionCount(scenarios: readonly ScenarioResult[]): number {
  return scenarios
    .filter((s) => s.status === 'regression')
    .reduce((n, s) => n + s.comparisons.filter((c) => c.verdict === 'regression').length, 0);
}

/** `2 regressions, 1 scenario without enough baseline`, or `pass`. */
function outcomeText(scenarios: readonly ScenarioResult[]): string {
  const regressions = regressionCount(scenarios);
  const short = scenarios.filter((s) => s.status === 'not-enough-baseline').length;
  const parts = [
    ...(regressions > 0 ? [plural(regressions, 'regression')] : []),
    ...(short > 0 ? [`${plural(short, 'scenario')} without enough baseline`] : []),
  ];
  return parts.length === 0 ? 'pass' : parts.join(', ');
}

/**
 * `guild bench` for a terminal: per scenario a header line (mode, repeat, disturbed iterations,
 * status) and a table of metric, baseline, current, change, (ratio with its 95 % CI when there
 * are ratios), p and verdict, regressions first; then one line with the outcome and the exit code.
 */
export function formatBenchTable(result: BenchResult, o: BenchTableOptions = {}): string {
  const paint = o.color ? colored : plain;
  const out: string[] = [];
  for (const s of result.scenarios) {
    const status = statusText(s);
    const facts = [modeText(s), `repeat ${s.repeat}`, disturbedText(s)].join(' · ');
    out.push(`${s.scenario}: ${facts} · ${paint(status.text, status.style)}`);
    if (s.comparisons.length === 0) out.push('  nothing compared');
    else out.push(...terminalTable(s.comparisons, paint));
    out.push('');
  }
  const regressions = regressionCount(result.scenarios);
  const short = result.scenarios.filter((s) => s.status === 'not-enough-baseline').length;
  const outcome = regressions > 0 ? plural(regressions, 'regression') : 'no regression';
  const tail = short > 0 ? `, ${short} without enough baseline` : '';
  out.push(`guild bench: ${plural(result.scenarios.length, 'scenario')}, ${outcome}${tail} → exit ${result.exitCode}`);
  return out.join('\n');
}

/** `1a2b3c4 (dirty)` */
function commitText(r: BenchRunRecord): string {
  return r.commit === null ? 'no commit' : `${shortCommit(r.commit)}${r.dirty ? ' (dirty)' : ''}`;
}

/** `2025-03-04 05:06:07 UTC`: in UTC, so the text does not depend on the machine's zone. */
function utc(d: Date): string {
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/**
 * `guild bench compare A B`: the two stored runs (id, commit, date, Guild's version), a warning
 * when they are not comparable (another scenario or machine), then the same table as
 * {@link formatBenchTable}. `comparisons` measure B against A: A is the baseline side.
 */
export function formatBenchCompare(a: BenchRunRecord, b: BenchRunRecord, comparisons: Comparison[]): string {
  const out: string[] = [];
  const run = (r: BenchRunRecord): string =>
    `${r.id}  ${commitText(r)}  ${utc(r.startedAt)}  guild ${r.guildVersion}  ${plural(r.iterations.length, 'iteration')}`;
  out.push(`compare ${a.scenario === b.scenario ? a.scenario : `${a.scenario} with ${b.scenario}`}`);
  out.push(`  A  ${run(a)}`, `  B  ${run(b)}`);
  if (a.scenario !== b.scenario) out.push('  warning: the runs measured different scenarios');
  if (a.fingerprintHash !== b.fingerprintHash) out.push('  warning: the runs were measured on different machines (fingerprints differ)');
  out.push('');
  if (comparisons.length === 0) out.push('  nothing compared');
  else out.push(...terminalTable(comparisons, plain));
  const regressions = comparisons.filter((c) => c.verdict === 'regression').length;
  const improved = comparisons.filter((c) => c.verdict === 'improved').length;
  out.push('', `B against A: ${plural(regressions, 'regression')}, ${improved} improved, ${comparisons.length - regressions - improved} within noise`);
  return out.join('\n');
}

// ─── Markdown ───────────────────────────────────────────────────────────────────────────────────

/** One table cell: a `|` would end the cell and a newline the row. */
function cell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** A name in a heading or a list item: on one line, `|` escaped like in a cell (it renders as `|`). */
function inline(text: string): string {
  return cell(text).replace(/\s+/g, ' ').trim();
}

function markdownTable(head: string[], rows: string[][], numeric: boolean[]): string[] {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(head.map(cell)), `|${numeric.map((n) => (n ? '---:' : '---')).join('|')}|`, ...rows.map(line)];
}

function comparisonTable(comparisons: readonly Comparison[]): string[] {
  const withRatio = hasRatios(comparisons);
  const head = tableHead(withRatio);
  const rows = tableRows(comparisons, withRatio).map((r) => {
    const cells = r.cells.map(cell);
    if (r.comparison.verdict !== 'regression') return cells;
    // Bold the name and the verdict: the row a reviewer must not miss.
    const last = cells.length - 1;
    cells[0] = `**${cells[0]}**`;
    cells[last] = `**${cells[last]}**`;
    return cells;
  });
  return markdownTable(head, rows, numericColumns(head));
}

function samplesTable(comparisons: readonly Comparison[]): string[] {
  const head = ['metric', 'side', 'n', 'mean', 'median', 'stdev'];
  const rows: string[][] = [];
  for (const c of ordered(comparisons)) {
    for (const [side, s] of [['baseline', c.baseline], ['current', c.current]] as const) {
      const v = (x: number): string => (s.n === 0 ? DASH : formatMetricValue(c.kind, x));
      rows.push([c.metric, side, String(s.n), v(s.mean), v(s.median), v(s.stdev)].map(cell));
    }
  }
  return markdownTable(head, rows, head.map((_, i) => i >= 2));
}

/**
 * The report for a PR comment: a title with the outcome (`## guild bench: 1 regression`), the
 * machine (Guild's version, Node, CPU, cores, memory limit), and per scenario a `###` heading, a
 * line of facts, the comparison table (regressions in bold) and the sample summaries in a collapsed
 * `<details>`. Names are escaped so a `|` cannot break a table.
 */
export function formatBenchMarkdown(result: BenchResult): string {
  const f = result.fingerprint;
  const out: string[] = [`## guild bench: ${outcomeText(result.scenarios)}`, ''];
  out.push(
    `- **Workflow:** ${inline(result.workflow)}`,
    `- **Guild:** ${inline(result.guildVersion)} · **Node:** ${inline(f.node)} · **CPU:** ${inline(f.cpuModel)} · **Cores:** ${f.cores} · **Memory limit:** ${formatBytes(f.memoryLimitBytes)}`,
    '',
  );
  for (const s of result.scenarios) {
    out.push(`### ${inline(s.scenario)}: ${statusText(s).text}`, '');
    out.push(`${modeText(s)} · repeat ${s.repeat} · ${disturbedText(s)} · run ${inline(s.runId)} at ${shortCommit(s.commit)}`, '');
    if (s.comparisons.length === 0) {
      out.push('_Nothing compared._', '');
      continue;
    }
    out.push(...comparisonTable(s.comparisons), '');
    out.push('<details><summary>Samples</summary>', '', ...samplesTable(s.comparisons), '', '</details>', '');
  }
  return out.join('\n');
}

// ─── history plot ───────────────────────────────────────────────────────────────────────────────

/** Options of {@link plotHistory}. */
export interface PlotHistoryOptions {
  /** Width of each chart in columns, the y axis labels included. @default 72 */
  width?: number;
  /** Height of each chart's plot area in rows. @default 10 */
  height?: number;
}

/** A run's median of one metric over its iterations; null when no iteration measured it. */
function runMedian(run: BenchRunRecord, metric: string): number | null {
  const values = run.iterations.map((i) => i.metrics[metric]).filter((v): v is number => v !== undefined && Number.isFinite(v));
  return values.length === 0 ? null : summarize(values).median;
}

const POINT = '●';
const TRACE = '·';

/**
 * A terminal line chart per metric over `runs` (newest first, as the store returns them), drawn
 * oldest → newest: each run's median of the metric is a point at an evenly spaced column, joined
 * to the next run that has a value (runs without one are skipped). The y axis is labelled with the
 * minimum and maximum, formatted by the kind {@link metricKind} guesses from the name; the x axis
 * with the oldest and newest runs' short commits. Charts are separated by a blank line.
 */
export function plotHistory(runs: BenchRunRecord[], metrics: string[], o: PlotHistoryOptions = {}): string {
  const width = Math.floor(o.width ?? 72);
  const height = Math.max(2, Math.floor(o.height ?? 10));
  const chronological = [...runs].reverse();
  return metrics.map((m) => plotMetric(chronological, m, width, height)).join('\n\n');
}

function plotMetric(runs: BenchRunRecord[], metric: string, width: number, height: number): string {
  const kind = metricKind(metric);
  const values = runs.map((r) => runMedian(r, metric));
  const present = values.filter((v): v is number => v !== null);
  const title = `${metric} (median per run, ${plural(present.length, 'run')} of ${runs.length})`;
  if (present.length === 0) return `${title}\n  no values`;

  const min = Math.min(...present);
  const max = Math.max(...present);
  const flat = min === max;
  const top = formatMetricValue(kind, max);
  const bottom = formatMetricValue(kind, min);
  const labelWidth = Math.max(top.length, bottom.length);
  // Wide enough for both short commits under the axis, however narrow the caller asked for.
  const plotWidth = Math.max(16, width - labelWidth - 2);

  // Row 0 is the top. A flat series sits in the middle, where its one label goes.
  const rowOf = (v: number): number => (flat ? Math.floor((height - 1) / 2) : Math.round(((max - v) / (max - min)) * (height - 1)));
  const colOf = (i: number): number => (runs.length === 1 ? 0 : Math.round((i * (plotWidth - 1)) / (runs.length - 1)));
  const grid = Array.from({ length: height }, () => Array<string>(plotWidth).fill(' '));

  const points: { col: number; row: number }[] = [];
  values.forEach((v, i) => {
    if (v !== null) points.push({ col: colOf(i), row: rowOf(v) });
  });
  // Trace each segment column by column, filling the vertical span between neighbouring columns so
  // a steep segment stays connected; points are drawn after, so a trace never hides one.
  for (let k = 1; k < points.length; k++) {
    const a = points[k - 1]!;
    const b = points[k]!;
    let prev = a.row;
    for (let c = a.col; c <= b.col; c++) {
      const t = b.col === a.col ? 1 : (c - a.col) / (b.col - a.col);
      const row = Math.round(a.row + t * (b.row - a.row));
      for (let r = Math.min(prev, row); r <= Math.max(prev, row); r++) grid[r]![c] = TRACE;
      prev = row;
    }
  }
  for (const p of points) grid[p.row]![p.col] = POINT;

  const labels = Array<string>(height).fill('');
  if (flat) labels[rowOf(min)] = top;
  else {
    labels[0] = top;
    labels[height - 1] = bottom;
  }
  const out = [title];
  grid.forEach((row, r) => out.push(`${labels[r]!.padStart(labelWidth)} │${row.join('')}`.trimEnd()));
  out.push(`${' '.repeat(labelWidth)} └${'─'.repeat(plotWidth)}`);
  const first = shortCommit(runs[0]!.commit);
  const last = shortCommit(runs[runs.length - 1]!.commit);
  const axis = runs.length === 1 ? first : `${first}${last.padStart(plotWidth - first.length)}`;
  out.push(`${' '.repeat(labelWidth + 2)}${axis}`);
  return out.join('\n');
}
