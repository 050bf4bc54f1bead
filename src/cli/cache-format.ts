import type { CacheStatsDocument } from '../cache/admin.js';
import { formatBytes, formatDuration } from '../util/units.js';

const pct = (v: number | null): string => (v === null ? '—' : `${Math.round(v * 100)}%`);
const num = (v: number | null): string => (v === null ? '—' : String(v));
/** `, 5.0 MB before compression (24%)` when compression saved something. */
const compressed = (stored: number | null, original: number | null): string =>
  stored === null || original === null || original <= stored ? '' : ` (${formatBytes(original)} before compression, ${Math.round((stored / original) * 100)}%)`;

/** `guild cache stats` for a terminal. */
export function formatCacheStats(d: CacheStatsDocument): string {
  const out: string[] = [];
  out.push(`store ${d.store}${d.redis ? `, Redis ${d.redis}` : ''}${d.context.preset ? `, context ${d.context.preset} (${d.context.source}${d.context.branch ? ` ${d.context.branch}` : ''})` : ''}`);
  for (const t of d.tiers) {
    out.push(`  ${t.tier}: ${num(t.entries)} entries, ${formatBytes(t.bytes)}${t.cap_bytes !== null ? ` of ${formatBytes(t.cap_bytes)}` : ''}${compressed(t.bytes, t.original_bytes)}`);
  }
  out.push(d.compression ? `  compression: ${d.compression.codec} level ${d.compression.level} from ${formatBytes(d.compression.threshold_bytes)}` : '  compression: off');
  out.push('');
  const header = ['NAMESPACE', 'TTL', 'MAX', 'ENTRIES', 'BYTES', 'ORIGINAL', 'HITS', 'MISSES', 'HIT RATE', 'MISS PENALTY', 'EVICTED', 'EXPIRED', 'CORRUPT'];
  const rows = Object.entries(d.namespaces).map(([ns, n]) => {
    const tiers = Object.values(n.tiers);
    const total = (k: 'entries' | 'bytes' | 'original_bytes' | 'evictions' | 'expired' | 'corrupt'): number => tiers.reduce((a, t) => a + (t[k] ?? 0), 0);
    return [
      ns,
      n.policy.ttl_ms === null ? 'none' : formatDuration(n.policy.ttl_ms),
      n.policy.max_entries === null ? '—' : String(n.policy.max_entries),
      String(total('entries')),
      formatBytes(total('bytes')),
      formatBytes(total('original_bytes')),
      String(n.hits),
      String(n.misses),
      pct(n.hit_rate),
      n.mean_miss_penalty_ms === null ? '—' : formatDuration(n.mean_miss_penalty_ms),
      String(total('evictions')),
      String(total('expired')),
      String(total('corrupt') + n.corrupt_frames),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (cells: string[]): string => `  ${cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd();
  out.push(fmt(header));
  for (const r of rows) out.push(fmt(r));
  return out.join('\n');
}
