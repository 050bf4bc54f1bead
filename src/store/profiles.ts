import { quantile } from '../util/quantile.js';
import type { Db } from './db.js';

/** What the history says about one agent type. */
export interface LearnedProfile {
  agent: string;
  /** Succeeded tasks with a measured peak, newest first, at most `window`. */
  samples: number;
  peakP90Bytes: number;
  peakMaxBytes: number;
  durationP50Ms: number;
  durationP90Ms: number;
}

/** Runs of an agent type needed before its learned figures replace the declared ones. */
export const MIN_SAMPLES = 3;

/**
 * Observed peaks and durations per agent type from the run history: the newest `window`
 * succeeded tasks of each type that have a measured peak.
 */
export function learnedProfiles(db: Db, window = 50): Map<string, LearnedProfile> {
  const rows = db
    .prepare(
      // One source per agent type: the one its newest measured run used (a cgroup's counters and
      // a tree's RSS sum differ by the shared pages, so a p90 over both would mean neither).
      `SELECT agent, peak_rss_bytes AS peak, duration_ms AS duration FROM (
         SELECT t.agent, t.peak_rss_bytes, t.duration_ms, t.memory_source,
                ROW_NUMBER() OVER (PARTITION BY t.agent ORDER BY r.started_at DESC) AS n,
                FIRST_VALUE(t.memory_source) OVER (PARTITION BY t.agent ORDER BY r.started_at DESC) AS newest
         FROM tasks t JOIN runs r ON r.id = t.run_id
         WHERE t.status = 'succeeded' AND t.peak_rss_bytes IS NOT NULL
       ) WHERE n <= ? AND memory_source IS newest`,
    )
    .all(window) as { agent: string; peak: number; duration: number }[];
  const by = new Map<string, { peaks: number[]; durations: number[] }>();
  for (const r of rows) {
    const e = by.get(r.agent) ?? { peaks: [], durations: [] };
    e.peaks.push(r.peak);
    e.durations.push(r.duration);
    by.set(r.agent, e);
  }
  const out = new Map<string, LearnedProfile>();
  for (const [agent, e] of by) {
    const peaks = e.peaks.sort((a, b) => a - b);
    const durations = e.durations.sort((a, b) => a - b);
    out.set(agent, {
      agent,
      samples: peaks.length,
      peakP90Bytes: quantile(peaks, 0.9),
      peakMaxBytes: peaks[peaks.length - 1]!,
      durationP50Ms: quantile(durations, 0.5),
      durationP90Ms: quantile(durations, 0.9),
    });
  }
  return out;
}

/** What admission uses for an agent type, and why. */
export interface Estimate {
  memoryBytes: number;
  durationMs: number | null;
  source: 'declared' | 'learned';
  learned: LearnedProfile | null;
}

/**
 * Declared and learned combine like this: after MIN_SAMPLES succeeded runs of a type, the p90 of
 * its measured peaks (and durations) replaces what was declared, in either direction: a guess is
 * replaced by a measurement. It is capped at `aloneCapBytes` so that a task can still run alone.
 */
export function estimateFor(
  declared: { memoryBytes: number; durationMs: number | null },
  learned: LearnedProfile | null,
  aloneCapBytes: number,
): Estimate {
  if (!learned || learned.samples < MIN_SAMPLES) return { memoryBytes: declared.memoryBytes, durationMs: declared.durationMs, source: 'declared', learned };
  return { memoryBytes: Math.min(learned.peakP90Bytes, aloneCapBytes), durationMs: learned.durationP90Ms, source: 'learned', learned };
}
