import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatBytes, MAX_DURATION_MS, parseDuration, parseSize } from '../src/util/units.js';
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
  it('a unit named after an Object.prototype member is no unit (it parsed as NaN bytes)', () => {
    for (const bad of ['5constructor', '1toString', '2valueOf', '3__proto__']) assert.equal(parseSize(bad), undefined, bad);
  });
  it('sizes no number holds exactly are malformed, not Infinity', () => {
    assert.equal(parseSize('99999999999999999999TB'), undefined);
    assert.equal(parseSize('9'.repeat(400)), undefined);
    assert.equal(parseSize(Infinity), undefined);
    assert.equal(parseSize(NaN), undefined);
    assert.equal(parseSize(2 ** 53), undefined);
    assert.equal(parseSize(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER);
  });
  it('long text is refused at once (the patterns would backtrack quadratically on spaces)', () => {
    const text = `1${' '.repeat(200_000)}!`;
    const began = performance.now();
    assert.equal(parseSize(text), undefined);
    assert.equal(parseDuration(text), undefined);
    assert.ok(performance.now() - began < 1000, `${performance.now() - began} ms`);
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
    for (const bad of ['soon', '5 days', '-1s', '', '1m30', 'ms']) assert.equal(parseDuration(bad), undefined, bad);
  });
  it('never returns Infinity or NaN', () => {
    assert.equal(parseDuration('9'.repeat(400)), undefined);
    assert.equal(parseDuration(`${'9'.repeat(400)}h`), undefined);
    assert.equal(parseDuration(`${'9'.repeat(30)}h1s`), undefined);
    assert.equal(parseDuration(Infinity), undefined);
    assert.equal(parseDuration(NaN), undefined);
  });
  it('MAX_DURATION_MS is the longest timer Node sets: 2^31 − 1 ms, about 596.5 h', () => {
    assert.equal(MAX_DURATION_MS, 2_147_483_647);
    assert.equal(parseDuration('600h'), 600 * 3_600_000); // parsed; the schema refuses it (config.test.ts)
  });
});

describe('did you mean', () => {
  it('suggests close keys and nothing for far ones', () => {
    assert.equal(didYouMean('memroy', ['memory', 'limit', 'cpu']), 'memory');
    assert.equal(didYouMean('concurency', ['concurrency', 'timeout']), 'concurrency');
    assert.equal(didYouMean('zzzzzz', ['memory', 'limit']), undefined);
  });
});
