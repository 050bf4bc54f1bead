import { readFileSync } from 'node:fs';
import { addMetrics, roundSpend as round } from '../util/spend.js';

// What a task spent, as it says: every task gets GUILD_METRICS, a file where it may append JSON
// lines of numeric metrics (`{"tokens_in": 1200, "tokens_out": 340, "cost_usd": 0.0121}`); each
// line adds to the task's totals. A task that runs Claude Code with `--output-format json` can
// instead opt in with `usage: claude-json`, and the usage Claude prints is read from its log.
// A line that is not a JSON object is counted as malformed and skipped, never fatal.

/** A metric name: letters, digits, `_`, `.`, `-`, up to 64 characters (it becomes a label and a bench metric). */
const NAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/** At most this many bytes of a metrics file or a log are read: a runaway writer costs Guild no more. */
const MAX_READ_BYTES = 16 * 1024 * 1024;

export interface TaskMetrics {
  /** Totals by metric name. */
  values: Record<string, number>;
  /** Lines that could not be read as metrics. */
  malformed: number;
}

export const emptyMetrics = (): TaskMetrics => ({ values: {}, malformed: 0 });

function readText(file: string): string | null {
  try {
    const buf = readFileSync(file);
    return (buf.length > MAX_READ_BYTES ? buf.subarray(buf.length - MAX_READ_BYTES) : buf).toString('utf8');
  } catch {
    return null;
  }
}

/** Parses GUILD_METRICS lines: each a JSON object; its finite numeric fields with valid names add up. */
export function parseMetricLines(text: string): TaskMetrics {
  const m = emptyMetrics();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch {
      m.malformed++;
      continue;
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      m.malformed++;
      continue;
    }
    let any = false;
    for (const [k, v] of Object.entries(obj)) {
      if (typeof v !== 'number' || !Number.isFinite(v) || !NAME_RE.test(k)) continue;
      m.values[k] = round((m.values[k] ?? 0) + v);
      any = true;
    }
    // An object with no numeric metric at all says nothing Guild can count: malformed.
    if (!any) m.malformed++;
  }
  return m;
}

interface ClaudeResult {
  type?: unknown;
  total_cost_usd?: unknown;
  usage?: { input_tokens?: unknown; output_tokens?: unknown; cache_read_input_tokens?: unknown; cache_creation_input_tokens?: unknown };
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/**
 * The usage in a log where `claude -p --output-format json` printed its final JSON: every line
 * that is a `{"type": "result", …}` object counts (a task that runs Claude twice spent twice).
 * Input tokens include those written to the prompt cache (billed as input); reads from it are
 * `tokens_cache_read`. A result line that does not parse is malformed; other log lines are the
 * task's own output and are ignored.
 */
export function parseClaudeUsage(text: string): TaskMetrics {
  const m = emptyMetrics();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line.startsWith('{') || !line.includes('"result"')) continue;
    let r: ClaudeResult;
    try {
      r = JSON.parse(line) as ClaudeResult;
    } catch {
      m.malformed++;
      continue;
    }
    if (r.type !== 'result') continue;
    const u = r.usage ?? {};
    m.values = addMetrics(m.values, {
      tokens_in: num(u.input_tokens) + num(u.cache_creation_input_tokens),
      tokens_out: num(u.output_tokens),
      tokens_cache_read: num(u.cache_read_input_tokens),
      cost_usd: num(r.total_cost_usd),
    });
  }
  return m;
}

/** The GUILD_METRICS file of a task whose log is `logFile` (`<id>.log` → `<id>.metrics.jsonl`, in the run's folder). */
export const metricsFileFor = (logFile: string): string => logFile.replace(/\.log$/, '') + '.metrics.jsonl';

/** `a` − `b`, metric by metric, leaving out what did not change: what one attempt added. */
export function metricsDelta(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(a)) {
    const d = round(v - (b[k] ?? 0));
    if (d !== 0) out[k] = d;
  }
  return out;
}

/** A task's totals: its GUILD_METRICS file, plus (for `usage: claude-json`) what its log says. */
export function readTaskMetrics(metricsFile: string | null, logFile: string | null, usage: 'claude-json' | null): TaskMetrics {
  const fromFile = metricsFile === null ? null : readText(metricsFile);
  const m = fromFile === null ? emptyMetrics() : parseMetricLines(fromFile);
  if (usage === 'claude-json' && logFile !== null) {
    const log = readText(logFile);
    if (log !== null) {
      const c = parseClaudeUsage(log);
      m.values = addMetrics(m.values, c.values);
      m.malformed += c.malformed;
    }
  }
  return m;
}
