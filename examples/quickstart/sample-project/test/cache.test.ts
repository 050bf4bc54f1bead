import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LruCache } from '../src/cache.js';

test('LruCache evicts the least recently used key', () => {
  const c = new LruCache<string, number>(2);
  c.set('a', 1).set('b', 2);
  assert.equal(c.get('a'), 1); // a is now the most recent
  c.set('c', 3);
  assert.equal(c.get('b'), undefined);
  assert.equal(c.get('a'), 1);
  assert.equal(c.size, 2);
});

test('LruCache.memo computes once per key while cached', () => {
  const c = new LruCache<number, number>(10);
  let calls = 0;
  for (let i = 0; i < 100; i++) c.memo(i % 5, (k) => (calls++, k * k));
  assert.equal(calls, 5);
  assert.equal(c.hits, 95);
});

test('LruCache never exceeds its cap (200k random operations)', () => {
  const c = new LruCache<number, number>(1000);
  let seed = 7;
  for (let i = 0; i < 200_000; i++) {
    seed = (seed * 48271) % 2147483647;
    c.memo(seed % 5000, (k) => k);
    assert.ok(c.size <= 1000);
  }
  assert.ok(c.hits > 0 && c.misses > 0);
});

test('LruCache rejects a non-positive cap', () => {
  assert.throws(() => new LruCache(0), RangeError);
});
