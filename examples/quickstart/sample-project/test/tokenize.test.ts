import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sentences, tokenize } from '../src/tokenize.js';

test('tokenize keeps inner apostrophes and offsets', () => {
  assert.deepEqual(tokenize("Don't panic, Arthur."), [
    { word: "don't", offset: 0 },
    { word: 'panic', offset: 6 },
    { word: 'arthur', offset: 13 },
  ]);
});

test('tokenize handles non-ASCII letters and digits', () => {
  assert.deepEqual(
    tokenize('Größe 42 café').map((t) => t.word),
    ['größe', '42', 'café'],
  );
});

test('sentences splits at terminal punctuation', () => {
  assert.deepEqual(sentences('One. Two!  Three? Four'), ['One.', 'Two!', 'Three?', 'Four']);
});

test('tokenize handles a 225 kB text', () => {
  const text = 'the quick brown fox jumps over the lazy dog. '.repeat(5_000);
  assert.equal(tokenize(text).length, 45_000);
});
