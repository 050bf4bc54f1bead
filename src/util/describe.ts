/** A value as an "Expected X, got Y" message of the library's option checks shows it. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === undefined) return String(v);
  return typeof v === 'object' ? 'an object' : typeof v;
}
