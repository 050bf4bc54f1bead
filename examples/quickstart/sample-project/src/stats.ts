import { tokenize } from './tokenize.js';

/** Word frequencies of a text, most frequent first (ties in alphabetical order). */
export function wordFrequencies(text: string, stopWords: ReadonlySet<string> = new Set()): [string, number][] {
  const counts = new Map<string, number>();
  for (const { word } of tokenize(text)) {
    if (!stopWords.has(word)) counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/** Flesch reading ease, with a rough syllable count (vowel groups). Higher is easier. */
export function readingEase(text: string): number {
  const words = tokenize(text).map((t) => t.word);
  const sentenceCount = Math.max(1, text.split(/[.!?]+/).filter((s) => s.trim()).length);
  if (words.length === 0) return 0;
  let syllables = 0;
  for (const w of words) syllables += Math.max(1, w.match(/[aeiouy]+/g)?.length ?? 0);
  // TODO: silent trailing "e" counts as a syllable; good enough for a demo.
  return 206.835 - 1.015 * (words.length / sentenceCount) - 84.6 * (syllables / words.length);
}
