export { slugify, uniqueSlug } from './slugify.js';
export { tokenize, sentences, type Token } from './tokenize.js';
export { wordFrequencies, readingEase } from './stats.js';
export { LruCache } from './cache.js';
