import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatBytes, parseDuration, parseSize } from '../src/util/units.js';
import { didYouMean } from '../src/util/did-you-mean.js';

describe('sizes are 1024-based as in the seeds', () => {
  it('parses units', () => {
    assert.equal(parseSize('256MB'), 256 * 1024 ** 2);
    assert.equal(parseSize('1.5GB'), 1.5 * 1024 ** 3);
    assert.equal(parseSize('512MiB'), 512 * 1024 ** 2);
    assert.equal(parseSize('2 GiB'), 2 * 1024 ** 3);
    assert.equal(parseSize('10KB'), 10240);
    assert.equal(parseSize('100B'), 100);
    assert.equal(parseSize(4096), 4096);
    assert.equal(parseSize('1048576'), 1048576);
  });
  it('rejects malformed sizes', () => {
    for (const bad of ['abc', '12XB', '-5MB', '', 'MB', '1..5GB']) assert.equal(parseSize(bad), undefined, bad);
  });
  it('formats', () => {
    assert.equal(formatBytes(1536 * 1024 ** 2), '1.50 GB');
    assert.equal(formatBytes(null), '—');
  });
});

describe('durations', () => {
  it('parses ms, s, m, h and compounds', () => {
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('45s'), 45_000);
    assert.equal(parseDuration('2m'), 120_000);
    assert.equal(parseDuration('1.5h'), 5_400_000);
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration(100), 100);
  });
  it('rejects malformed durations', () => {
    for (const bad of ['soon', '5 days', '-1s', '']) assert.equal(parseDuration(bad), undefined, bad);
  });
});

describe('did you mean', () => {
  it('suggests close keys and nothing for far ones', () => {
    assert.equal(didYouMean('memroy', ['memory', 'limit', 'cpu']), 'memory');
    assert.equal(didYouMean('concurency', ['concurrency', 'timeout']), 'concurrency');
    assert.equal(didYouMean('zzzzzz', ['memory', 'limit']), undefined);
  });
});
