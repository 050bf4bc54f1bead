/**
 * The official Keyv adapter suite (`@keyv/test-suite`: API, values, namespaces, iterator) against
 * GuildKeyvStore on a temporary SQLite file. Run by vitest (vitest.config.ts), not node:test;
 * test/keyv.test.ts runs it from `npm test`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as test from 'vitest';
import keyvTestSuite, { keyvIteratorTests } from '@keyv/test-suite';
import Keyv, { type KeyvStoreAdapter } from 'keyv';
import { GuildKeyvStore } from '../src/cache/keyv-store.js';

const dir = mkdtempSync(join(tmpdir(), 'guild-keyv-'));
const file = join(dir, 'cache.db');
const opened: GuildKeyvStore[] = [];

/** A new adapter per call, as the suite expects; all on one file, so they share one tier. */
const store = (): KeyvStoreAdapter => {
  const s = new GuildKeyvStore({ file });
  opened.push(s);
  return s; // also checks, at compile time, that GuildKeyvStore has Keyv's adapter shape
};

keyvTestSuite(test, Keyv, store);
keyvIteratorTests(test, Keyv, store);

test.describe('GuildKeyvStore', () => {
  test.it('keeps Keyv namespaces in separate Guild namespaces, and clear() stays in its own', async (t) => {
    const shared = new GuildKeyvStore({ file });
    opened.push(shared);
    const a = new Keyv({ store: shared, namespace: 'app a' });
    await a.set('k', 'va');
    const b = new Keyv({ store: shared, namespace: 'b' }); // takes over shared.namespace
    await b.set('k', 'vb');
    t.expect(await a.get('k')).toBe('va'); // found by its key, whatever store.namespace now says
    const ns = Object.keys(shared.tier.stats().namespaces);
    t.expect(ns).toContain('keyv.app_20_a');
    t.expect(ns).toContain('keyv.b');
    await b.clear();
    t.expect(await b.get('k')).toBeUndefined();
    t.expect(await a.get('k')).toBe('va');
  });

  test.it('stores raw values when Keyv serialization is off', async (t) => {
    const keyv = new Keyv({ store: new GuildKeyvStore({ file }), serialize: undefined, deserialize: undefined });
    opened.push(keyv.store as GuildKeyvStore);
    const value = { buf: Buffer.from('x'), when: new Date(0), big: 10n, nothing: undefined };
    await keyv.set('raw', value);
    t.expect(await keyv.get('raw')).toEqual(value);
  });
});

test.afterAll(async () => {
  for (const s of opened) await s.disconnect();
  rmSync(dir, { recursive: true, force: true });
});
