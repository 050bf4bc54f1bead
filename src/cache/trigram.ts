/**
 * Trigram similarity of short texts (task descriptions), after PostgreSQL's pg_trgm: the text is
 * normalized, each word is padded with two spaces in front and one behind, and the score of two
 * texts is the Jaccard index of their sets of three-character grams.
 *
 * Why Jaccard over the gram sets: it is symmetric, bounded to [0, 1], and insensitive to word
 * order and repetition; a one-word edit in a sentence changes only that word's grams, so
 * near-duplicates score high while texts that share only a few common words ("the", "fix") score
 * low. 1.0 means the two gram sets are identical (which normalized texts that differ only in word
 * order or repetition can also reach); 0 means no gram in common.
 */

/** Anything that is not a Unicode letter or digit separates words. */
const SEPARATORS = /[^\p{L}\p{N}]+/gu;

/**
 * Lower case, Unicode letters and digits kept, every run of anything else turned into one space,
 * trimmed. NFKC first, so compatibility forms (full-width letters, ligatures) compare equal to
 * their plain spellings.
 */
export function normalize(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(SEPARATORS, ' ').trim();
}

/**
 * The trigrams of `text` once normalized, each word padded as pg_trgm does (`"  w"`, `" wo"`, …,
 * `"rd "`), so a one-letter word still yields two grams and word starts weigh more than middles.
 * Words are iterated by code point, so a letter outside the BMP counts as one character.
 */
export function trigrams(text: string): Set<string> {
  const out = new Set<string>();
  const normalized = normalize(text);
  if (normalized === '') return out;
  for (const word of normalized.split(' ')) {
    const chars = [' ', ' ', ...word, ' '];
    for (let i = 0; i + 3 <= chars.length; i++) out.add(chars[i]! + chars[i + 1]! + chars[i + 2]!);
  }
  return out;
}

/**
 * Jaccard index |a ∩ b| / |a ∪ b| of two gram sets: 1.0 for identical sets, 0 for disjoint ones
 * (and for two empty sets, which share nothing to judge by). Iterates the smaller set, so the cost
 * is O(min(|a|, |b|)) set lookups.
 */
export function similarity(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  if (small.size === 0) return 0;
  let common = 0;
  for (const g of small) if (large.has(g)) common++;
  return common / (a.size + b.size - common);
}
