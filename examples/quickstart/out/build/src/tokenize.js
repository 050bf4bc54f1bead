const WORD_RE = /[\p{L}\p{N}]+(?:['’][\p{L}]+)*/gu;
/** Splits text into words (letters and digits, inner apostrophes kept), lower-cased. */
export function tokenize(text) {
    const tokens = [];
    for (const m of text.matchAll(WORD_RE))
        tokens.push({ word: m[0].toLowerCase(), offset: m.index ?? 0 });
    return tokens;
}
/** Splits text into sentences at ., ! or ? followed by white space. */
export function sentences(text) {
    // TODO: abbreviations such as "e.g. " end a sentence here; a real tokenizer needs a list.
    return text
        .split(/(?<=[.!?])\s+/)
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
}
