import { existsSync } from 'node:fs';
import type { ResolvedConfig } from '../config/resolve.js';
import { openDatabase, storeFile } from '../store/db.js';
import { aloneCapBytes } from '../config/resolved.js';
import { estimateFor, learnedProfiles } from '../store/profiles.js';

/** One agent type: declared vs learned, and what admission will use. */
export interface ProfileReport {
  agent: string;
  declared_bytes: number;
  limit_bytes: number | null;
  declared_duration_ms: number | null;
  samples: number;
  learned_p90_bytes: number | null;
  learned_max_bytes: number | null;
  learned_p50_duration_ms: number | null;
  learned_p90_duration_ms: number | null;
  /** `learned` once MIN_SAMPLES succeeded runs are recorded. */
  source: 'declared' | 'learned';
  estimate_bytes: number;
}

/** Declared and learned profiles of a workflow's agent types, from its `.guild/guild.db`. */
export function agentProfiles(config: ResolvedConfig): ProfileReport[] {
  const file = storeFile(config.dir);
  const learned = existsSync(file) ? withDb(file) : new Map();
  return Object.values(config.agents).map((a) => {
    const l = learned.get(a.name) ?? null;
    const e = estimateFor(a, l, aloneCapBytes(config));
    return {
      agent: a.name,
      declared_bytes: a.memoryBytes,
      limit_bytes: a.limitBytes,
      declared_duration_ms: a.durationMs,
      samples: l?.samples ?? 0,
      learned_p90_bytes: l?.peakP90Bytes ?? null,
      learned_max_bytes: l?.peakMaxBytes ?? null,
      learned_p50_duration_ms: l?.durationP50Ms ?? null,
      learned_p90_duration_ms: l?.durationP90Ms ?? null,
      source: e.source,
      estimate_bytes: e.memoryBytes,
    };
  });
}

function withDb(file: string) {
  const db = openDatabase(file);
  try {
    return learnedProfiles(db);
  } finally {
    db.close();
  }
}
