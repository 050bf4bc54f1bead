import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readingEase, wordFrequencies } from '../src/stats.js';
test('wordFrequencies sorts by count, then alphabetically', () => {
    assert.deepEqual(wordFrequencies('b a b c a b'), [
        ['b', 3],
        ['a', 2],
        ['c', 1],
    ]);
});
test('wordFrequencies skips stop words', () => {
    assert.deepEqual(wordFrequencies('the cat and the hat', new Set(['the', 'and'])), [
        ['cat', 1],
        ['hat', 1],
    ]);
});
test('readingEase: short words read easier than long ones', () => {
    const easy = readingEase('The cat sat on the mat. It was fat.');
    const hard = readingEase('Institutional interoperability necessitates comprehensive documentation.');
    assert.ok(easy > hard, `${easy} > ${hard}`);
    assert.equal(readingEase(''), 0);
});
