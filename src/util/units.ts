/**
 * Sizes and durations as users write them. Sizes are 1024-based as in the seed documents:
 * `KB`, `MB`, `GB` (and `KiB`, `MiB`, `GiB`) all mean powers of 1024.
 */

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  k: 1024, kb: 1024, kib: 1024,
  m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3,
  t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4,
};

const SIZE_RE = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/;

/**
 * Longer size or duration text is malformed without a look: the patterns backtrack
 * quadratically on long runs of spaces, and no real value comes near this.
 */
const MAX_TEXT = 64;

/**
 * Parses `256MB`, `1.5GB`, `512MiB`, `1048576` (bytes). Returns undefined when malformed, and for
 * anything that is not a whole number of bytes a number can hold exactly (above 2^53 − 1, 8 PiB).
 */
export function parseSize(input: string | number): number | undefined {
  let n: number;
  if (typeof input === 'number') n = input;
  else if (typeof input !== 'string' || input.length > MAX_TEXT) return undefined;
  else {
    const m = SIZE_RE.exec(input);
    if (!m) return undefined;
    const unit = (m[2] ?? '').toLowerCase();
    const factor = unit === '' ? 1 : Object.hasOwn(SIZE_UNITS, unit) ? SIZE_UNITS[unit]! : undefined;
    if (factor === undefined) return undefined;
    n = Number(m[1]) * factor;
  }
  return safeWhole(n);
}

/** `n` rounded, when it is a finite number from 0 to 2^53 − 1; else undefined. */
function safeWhole(n: number): number | undefined {
  if (!Number.isFinite(n) || n < 0) return undefined;
  const r = Math.round(n);
  return r <= Number.MAX_SAFE_INTEGER ? r : undefined;
}

/**
 * The longest duration a timer can wait: Node's `setTimeout` takes at most 2^31 − 1 ms (about
 * 596.5 h) and fires at once for anything longer, so configuration refuses more.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION_RE = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/;

/**
 * Parses `45s`, `250ms`, `2m`, `1.5h`, `1m30s`; a bare number is milliseconds. Undefined when
 * malformed, negative, or beyond what a number holds exactly (callers that arm a timer also check
 * `MAX_DURATION_MS`).
 */
export function parseDuration(input: string | number): number | undefined {
  if (typeof input === 'number') return safeWhole(input);
  if (typeof input !== 'string' || input.length > MAX_TEXT) return undefined;
  // Compound forms such as `1m30s`.
  const parts = input.trim().match(/\d+(?:\.\d+)?\s*(?:ms|s|m|h)/g);
  if (parts && parts.join('').replace(/\s/g, '') === input.trim().replace(/\s/g, '') && parts.length > 1) {
    let total = 0;
    for (const p of parts) total += parseDuration(p) ?? NaN;
    return safeWhole(total);
  }
  const m = DURATION_RE.exec(input);
  if (!m) return undefined;
  return safeWhole(Number(m[1]) * DURATION_UNITS[m[2] ?? 'ms']!);
}

/** `1536 MB` style, 1024-based, short. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '—';
  const abs = Math.abs(bytes);
  if (abs >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GB`;
  if (abs >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(abs >= 100 * 1024 ** 2 ? 0 : 1)} MB`;
  if (abs >= 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${bytes} B`;
}

/** For sentences (alerts, recommendations): `610 MB`, `1.5 GB`, `8 GB`; 1024-based, no trailing zeros. */
export function formatSize(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${Number((bytes / 1024 ** 3).toFixed(1))} GB`;
  if (bytes >= 1024 ** 2) return `${Math.round(bytes / 1024 ** 2)} MB`;
  return `${Math.round(bytes / 1024)} KB`;
}

/** `850ms`, `12.3s`, `4m05s`. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return `${m}m${String(s).padStart(2, '0')}s`;
}
