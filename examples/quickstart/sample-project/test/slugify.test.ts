import assert from 'node:assert/strict';
import { test } from 'node:test';
import { slugify, uniqueSlug } from '../src/slugify.js';

test('slugify lower-cases, strips accents and punctuation', () => {
  assert.equal(slugify('  Héllo, Wörld! '), 'hello-world');
  assert.equal(slugify('Guild: 12 agents / 1 machine'), 'guild-12-agents-1-machine');
});

test('slugify cuts long titles at a dash', () => {
  const slug = slugify('one two three four five six seven eight nine ten', 20);
  assert.ok(slug.length <= 20);
  assert.ok(!slug.endsWith('-'));
  assert.equal(slug, 'one-two-three-four');
});

test('uniqueSlug appends the first free number', () => {
  const taken = new Set(['a', 'a-2', 'a-3']);
  assert.equal(uniqueSlug('a', taken), 'a-4');
  assert.equal(uniqueSlug('b', taken), 'b');
});

test('slugify output is always a valid slug (10k random titles)', () => {
  let seed = 42;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const alphabet = 'abcXYZ019 -_.,!éüß/\\';
  for (let i = 0; i < 10_000; i++) {
    let title = '';
    for (let j = 0; j < 40; j++) title += alphabet[Math.floor(rand() * alphabet.length)];
    assert.match(slugify(title), /^(?:[a-z0-9]+(?:-[a-z0-9]+)*)?$/);
  }
});
