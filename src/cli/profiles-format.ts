import { MIN_SAMPLES } from '../store/profiles.js';
import { formatBytes, formatDuration } from '../util/units.js';
import type { ProfileReport } from '../workflow/profiles.js';

export function formatProfiles(profiles: readonly ProfileReport[]): string {
  const header = ['AGENT', 'DECLARED', 'LIMIT', 'SAMPLES', 'LEARNED P90', 'MAX SEEN', 'P90 TIME', 'ADMISSION USES'];
  const rows = profiles.map((p) => [
    p.agent,
    formatBytes(p.declared_bytes),
    formatBytes(p.limit_bytes),
    String(p.samples),
    formatBytes(p.learned_p90_bytes),
    formatBytes(p.learned_max_bytes),
    formatDuration(p.learned_p90_duration_ms),
    `${formatBytes(p.estimate_bytes)} (${p.source})`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [fmt(header), ...rows.map(fmt), '', `Learned figures replace declared ones after ${MIN_SAMPLES} succeeded runs of a type.`].join('\n');
}
