export { slugify, uniqueSlug } from './slugify.js';
export { tokenize, sentences } from './tokenize.js';
export { wordFrequencies, readingEase } from './stats.js';
export { LruCache } from './cache.js';
