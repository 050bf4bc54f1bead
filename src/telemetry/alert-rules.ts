/**
 * The alert rules: pure functions of measured values. The run's telemetry calls them with what it
 * measured and hands a non-null result to `AlertManager.raise()`, which de-duplicates by `key`.
 */
import { levelRank, type PressureLevel } from '../governor/levels.js';
import { formatDuration, formatSize } from '../util/units.js';
import type { AlertInput } from './alerts.js';

/** A rule's verdict: an alert to raise, with its de-duplication key. */
export type RuleHit = Required<AlertInput>;

/**
 * A task is slow past its type's target × this: the seed's response-time "poor" line (2000 ms)
 * over its target (300 ms), so a target of 3 s alerts after 20 s.
 */
export const SLOW_FACTOR = 2000 / 300;
/** Below this many lookups the hit rate says nothing. */
export const MIN_CACHE_LOOKUPS = 10;
/** The seed's cache hit-rate target. */
export const CACHE_HIT_RATE_FLOOR = 0.7;
/** Longest error text quoted in a failure message (the first line only). */
const ERROR_CHARS = 200;

/** A task has run (or took) longer than {@link SLOW_FACTOR} × its type's response-time target. Key: per task. */
export function slowExecution(m: {
  taskId: string;
  agent: string;
  elapsedMs: number;
  /** The response-time target of the task's type (agent or component kind); null when it has none. */
  targetMs: number | null;
  /** Words the message for a task that ended. @default false */
  finished?: boolean;
}): RuleHit | null {
  if (m.targetMs === null || !(m.targetMs > 0) || !Number.isFinite(m.elapsedMs)) return null;
  const limit = m.targetMs * SLOW_FACTOR;
  if (m.elapsedMs <= limit) return null;
  const verb = m.finished ? 'took' : 'has been running for';
  return {
    rule: 'slow-execution',
    key: `slow-execution:${m.taskId}`,
    severity: 'warning',
    message: `task ${m.taskId} (${m.agent}) ${verb} ${formatDuration(m.elapsedMs)}, over ${formatDuration(limit)} (its target ${formatDuration(m.targetMs)} × ${SLOW_FACTOR.toFixed(1)})`,
  };
}

/**
 * Memory at the high level or above: a warning, critical at emergency (where the governor kills).
 * One key for the run. The governor's level comes from the machine's use of its limit or the
 * agents' use of the budget, whichever is higher, so the message gives both.
 */
export function highMemory(m: {
  /** Used ÷ effective limit. */
  usedFraction: number;
  level: PressureLevel;
  limitBytes: number;
  /** Σ measured RSS of the running agents, and the budget they share. */
  agentsBytes: number;
  budgetBytes: number;
}): RuleHit | null {
  if (levelRank(m.level) < levelRank('high')) return null;
  return {
    rule: 'high-memory',
    key: 'high-memory',
    severity: m.level === 'emergency' ? 'critical' : 'warning',
    message: `memory pressure ${m.level}: the machine at ${Math.round(m.usedFraction * 100)} % of its ${formatSize(m.limitBytes)} limit, agents at ${formatSize(m.agentsBytes)} of the ${formatSize(m.budgetBytes)} budget`,
  };
}

/** The task cache hits less than {@link CACHE_HIT_RATE_FLOOR} of its lookups, once it has seen enough of them and is warm. */
export function lowCacheHitRate(m: {
  hits: number;
  misses: number;
  /** The cache started empty this run (or was cleared): misses are expected, not a problem. */
  cold: boolean;
}): RuleHit | null {
  const lookups = m.hits + m.misses;
  if (m.cold || !(lookups >= MIN_CACHE_LOOKUPS)) return null;
  const rate = m.hits / lookups;
  if (rate >= CACHE_HIT_RATE_FLOOR) return null;
  return {
    rule: 'low-cache-hit-rate',
    key: 'low-cache-hit-rate',
    severity: 'warning',
    // Floored: a rate of 69.6 % must not read "70 % is under 70 %".
    message: `cache hit rate ${Math.floor(rate * 100)} % is under ${Math.round(CACHE_HIT_RATE_FLOOR * 100)} % (${m.hits} hits, ${m.misses} misses)`,
  };
}

/** An agent failed a task. Key: per agent type, so a storm of one type's failures is one alert and its repeats. */
export function agentFailure(m: {
  taskId: string;
  agent: string;
  error: string | null;
  exitCode?: number | null;
  signal?: string | null;
}): RuleHit {
  const how = m.signal ? `killed by ${m.signal}` : m.exitCode !== null && m.exitCode !== undefined ? `exit code ${m.exitCode}` : null;
  const error = m.error ? firstLine(m.error) : null;
  const detail = `${error ? `: ${error}` : ''}${how ? ` (${how})` : ''}`;
  return {
    rule: 'agent-failure',
    key: `agent-failure:${m.agent}`,
    severity: 'warning',
    message: `task ${m.taskId} (${m.agent}) failed${detail}`,
  };
}

function firstLine(text: string): string {
  const line = text.trim().split('\n', 1)[0]!.trim();
  return line.length > ERROR_CHARS ? `${line.slice(0, ERROR_CHARS - 1)}…` : line;
}
