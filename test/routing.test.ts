/**
 * The routing cache: rules, exact and similar reuse, the three invalidations (TTL, agent
 * configuration, clear) and single flight. The persistence case runs on the real SQLite tier.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { LayeredCache } from '../src/cache/layered-cache.js';
import { MemoryTier } from '../src/cache/memory-tier.js';
import { namespacePolicies } from '../src/config/cache-policy.js';
import { RoutingCache, type RoutingRules } from '../src/cache/routing.js';
import { SqliteTier } from '../src/cache/sqlite-tier.js';
import { normalize, similarity, trigrams } from '../src/cache/trigram.js';
import { GuildError } from '../src/errors.js';

const MINUTE = 60_000;

const RULES: RoutingRules = {
  debugger: { keywords: ['bug', 'fix', 'crash'], patterns: [/\bstack ?trace\b/i] },
  writer: { keywords: ['docs', 'readme'] },
  tester: { keywords: ['tests', 'coverage'], patterns: ['\\bspec\\b'] },
};

const LOGIN_TS = 'fix the login bug in auth.ts';
const LOGIN_JS = 'fix the login bug in auth.js';
const DOCS = 'write docs for the parser';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function memoryCache(clock = { t: 1_000_000 }): { cache: LayeredCache; clock: { t: number }; now: () => number } {
  const now = (): number => clock.t;
  const cache = new LayeredCache({ tiers: [new MemoryTier({ maxBytes: 1 << 20, now })], namespaces: namespacePolicies(null), now });
  return { cache, clock, now };
}

const sim = (a: string, b: string): number => similarity(trigrams(a), trigrams(b));

describe('trigrams', () => {
  test('normalize keeps Unicode letters and digits, lower-cased, single-spaced', () => {
    assert.equal(normalize('  Fix  the LOGIN-bug in auth.ts!! '), 'fix the login bug in auth ts');
    assert.equal(normalize('Überprüfe café №5'), 'überprüfe café no5');
    assert.equal(normalize(' ... '), '');
  });

  test('words are padded as pg_trgm does, so short words give grams', () => {
    assert.deepEqual([...trigrams('a')].sort(), ['  a', ' a '].sort());
    assert.deepEqual([...trigrams('Cat')].sort(), ['  c', ' ca', 'at ', 'cat'].sort());
    assert.equal(trigrams('!!').size, 0);
  });

  test('identical = 1, disjoint = 0, symmetric', () => {
    assert.equal(sim(LOGIN_TS, LOGIN_TS), 1);
    assert.equal(sim('Fix the login bug', 'fix   THE login bug.'), 1);
    assert.equal(sim('abc', 'xyz'), 0);
    assert.equal(similarity(new Set(), new Set()), 0);
    assert.equal(sim(LOGIN_TS, DOCS), sim(DOCS, LOGIN_TS));
    assert.equal(sim(LOGIN_TS, LOGIN_JS), sim(LOGIN_JS, LOGIN_TS));
  });

  test('the default threshold (0.7) separates the documented pairs', () => {
    assert.ok(sim(LOGIN_TS, LOGIN_JS) >= 0.7, `auth.ts/auth.js: ${sim(LOGIN_TS, LOGIN_JS)}`);
    assert.ok(sim(DOCS, 'fix the login bug') < 0.7, `docs/login: ${sim(DOCS, 'fix the login bug')}`);
    assert.ok(sim(DOCS, 'write tests for the parser') < 0.7);
  });
});

describe('rules', () => {
  test('keywords, regex and string patterns pick the agent; ties go to the first declared', async () => {
    const { cache } = memoryCache();
    const r = new RoutingCache({ cache, rules: RULES });
    const login = await r.route(LOGIN_TS);
    assert.equal(login.agent, 'debugger');
    assert.equal(login.source, 'rules');
    assert.equal(login.reason, 'debugger: matched keyword "bug", keyword "fix" (score 2)');
    assert.equal((await r.route(DOCS)).agent, 'writer');
    // A RegExp pattern (2 points) beats a keyword (1).
    const trace = await r.route('the docs page shows a stacktrace');
    assert.equal(trace.agent, 'debugger');
    assert.match(trace.reason, /pattern \/\\bstack \?trace\\b\/i/);
    // A string pattern is compiled case-insensitively.
    assert.equal((await r.route('Add a SPEC for the lexer')).agent, 'tester');
    // One point each: declaration order decides.
    assert.equal((await r.route('fix the tests')).agent, 'debugger');
    // Whole words only: "bugs" is not "bug", "prefix" is not "fix".
    assert.equal((await r.route('prefix bugs')).source, 'fallback');
  });

  test('nothing matches: the fallback, or null without one', async () => {
    const { cache } = memoryCache();
    const withFallback = await new RoutingCache({ cache, rules: RULES, fallback: 'generalist', namespace: 'routing-a' }).route('plan the next sprint');
    assert.deepEqual([withFallback.agent, withFallback.source], ['generalist', 'fallback']);
    const without = await new RoutingCache({ cache, rules: RULES, namespace: 'routing-b' }).route('plan the next sprint');
    assert.deepEqual([without.agent, without.source], [null, 'fallback']);
  });

  test('an empty or blank description is a usage error', async () => {
    const { cache } = memoryCache();
    const r = new RoutingCache({ cache, rules: RULES });
    for (const d of ['', '   \n\t']) {
      await assert.rejects(r.route(d), (e: unknown) => e instanceof GuildError && e.code === 'INVALID_OPTION' && e.message === 'Expected a task description, got an empty string');
    }
    await assert.rejects(r.route('?!'), (e: unknown) => e instanceof GuildError && e.code === 'INVALID_OPTION');
  });

  test('bad options are refused at construction', () => {
    const { cache } = memoryCache();
    assert.throws(() => new RoutingCache({ cache, rules: RULES, similarity: 0 }), (e: unknown) => e instanceof GuildError && e.code === 'INVALID_OPTION');
    assert.throws(() => new RoutingCache({ cache, rules: { x: { patterns: ['('] } } }), /routing rule "x"\.patterns\[0\]/);
    assert.throws(() => new RoutingCache({ cache, rules: { x: { keywords: ['--'] } } }), /routing rule "x"\.keywords\[0\]/);
  });
});

describe('reuse', () => {
  test('a repeat is an exact hit, a near-duplicate a similar hit, a dissimilar one a miss', async () => {
    const { cache } = memoryCache();
    const r = new RoutingCache({ cache, rules: RULES });
    assert.equal((await r.route(LOGIN_TS)).source, 'rules');

    const repeat = await r.route('Fix the LOGIN bug in auth.ts!');
    assert.equal(repeat.source, 'cache');
    assert.equal(repeat.agent, 'debugger');
    assert.equal(repeat.matchedDescription, LOGIN_TS);

    const near = await r.route(LOGIN_JS);
    assert.equal(near.source, 'similar');
    assert.equal(near.agent, 'debugger');
    assert.equal(near.matchedDescription, LOGIN_TS);
    assert.ok(near.similarity !== null && near.similarity >= 0.7 && near.similarity < 1, `similarity ${near.similarity}`);
    assert.match(near.reason, /similar to "fix the login bug in auth\.ts"/);

    // The near-duplicate was stored under its own key: now an exact hit.
    const again = await r.route(LOGIN_JS);
    assert.equal(again.source, 'cache');
    assert.equal(again.matchedDescription, LOGIN_JS);

    const other = await r.route(DOCS);
    assert.equal(other.source, 'rules');
    assert.equal(other.agent, 'writer');

    assert.deepEqual(r.stats(), { hits: 3, similar_hits: 1, misses: 2, hit_rate: 3 / 5 });
    const ns = (await cache.stats()).namespaces['routing']!;
    assert.equal(ns.hits, 3);
    assert.equal(ns.misses, 2);
  });

  test('concurrent routes of one description compute once', async () => {
    const { cache } = memoryCache();
    let sets = 0;
    const set = cache.set.bind(cache);
    cache.set = async (...args) => {
      sets++;
      return set(...args);
    };
    const r = new RoutingCache({ cache, rules: RULES });
    const [a, b, c] = await Promise.all([r.route(LOGIN_TS), r.route(LOGIN_TS), r.route('fix the login bug in AUTH.TS')]);
    assert.equal(sets, 1);
    assert.deepEqual([a!.source, b!.source, c!.source], ['rules', 'cache', 'cache']);
    assert.ok([a, b, c].every((d) => d!.agent === 'debugger'));
    assert.deepEqual(r.stats(), { hits: 2, similar_hits: 0, misses: 1, hit_rate: 2 / 3 });
    assert.deepEqual([(await cache.stats()).namespaces['routing']!.hits, (await cache.stats()).namespaces['routing']!.misses], [2, 1]);
  });
});

describe('invalidation', () => {
  test('TTL: past 30 minutes an entry is a miss and no longer lends its route', async () => {
    const { cache, clock, now } = memoryCache();
    const r = new RoutingCache({ cache, rules: RULES, now });
    await r.route(LOGIN_TS);
    clock.t += 29 * MINUTE;
    assert.equal((await r.route(LOGIN_TS)).source, 'cache');
    clock.t += 2 * MINUTE;
    assert.equal((await r.route(LOGIN_JS)).source, 'rules', 'an expired entry is not reused for a similar one');

    const other = memoryCache();
    const fresh = new RoutingCache({ cache: other.cache, rules: RULES, now: other.now });
    await fresh.route(LOGIN_TS);
    other.clock.t += 31 * MINUTE;
    assert.equal((await fresh.route(LOGIN_TS)).source, 'rules', 'an expired entry is a miss');
  });

  test('TTL: a reused route expires with the decision it came from', async () => {
    const { cache, clock, now } = memoryCache();
    const r = new RoutingCache({ cache, rules: RULES, now });
    await r.route(LOGIN_TS);
    clock.t += 20 * MINUTE;
    assert.equal((await r.route(LOGIN_JS)).source, 'similar');
    clock.t += 11 * MINUTE;
    assert.equal((await r.route(LOGIN_JS)).source, 'rules');
  });

  test('changed rules make the old decisions misses (and the same rules keep them)', async () => {
    const { cache } = memoryCache();
    const before = new RoutingCache({ cache, rules: RULES });
    await before.route(LOGIN_TS);

    const same = new RoutingCache({ cache, rules: { ...RULES } });
    assert.equal(same.configHash, before.configHash);
    assert.match(same.configHash, /^[0-9a-f]{16}$/);
    assert.equal((await same.route(LOGIN_TS)).source, 'cache');

    const changed: RoutingRules = { ...RULES, security: { keywords: ['login', 'auth'], patterns: [/auth\.\w+/] } };
    const after = new RoutingCache({ cache, rules: changed });
    assert.notEqual(after.configHash, before.configHash);
    const d = await after.route(LOGIN_JS);
    assert.equal(d.source, 'rules', 'no similar reuse across configurations');
    assert.equal(d.agent, 'security');
    // The old decision for LOGIN_TS is a miss (and deleted); the new LOGIN_JS one lends its route.
    const d2 = await after.route(LOGIN_TS);
    assert.deepEqual([d2.source, d2.agent, d2.matchedDescription], ['similar', 'security', LOGIN_JS]);
    const hashes = await Promise.all((await cache.keys('routing')).map(async (k) => JSON.parse((await cache.get('routing', k))!.toString()).hash));
    assert.deepEqual(hashes, [after.configHash, after.configHash]);

    // A fallback change is an agent-configuration change too.
    assert.notEqual(new RoutingCache({ cache, rules: RULES, fallback: 'generalist' }).configHash, before.configHash);
  });

  test('SQLite: decisions outlive the process and go with clear("routing")', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'guild-routing-'));
    dirs.push(dir);
    const db = join(dir, 'guild.db');
    const open = (): LayeredCache =>
      new LayeredCache({ tiers: [new MemoryTier({ maxBytes: 1 << 20 }), new SqliteTier({ db, maxBytes: 1 << 26 })], namespaces: namespacePolicies(null) });

    const first = open();
    assert.equal((await new RoutingCache({ cache: first, rules: RULES }).route(LOGIN_TS)).source, 'rules');
    await first.close();

    const second = open();
    const r2 = new RoutingCache({ cache: second, rules: RULES });
    assert.equal((await r2.route(LOGIN_TS)).source, 'cache');
    assert.equal((await r2.route(LOGIN_JS)).source, 'similar', 'the similarity index is loaded from the persistent tier');
    await second.clear('routing');
    assert.equal((await r2.route(LOGIN_TS)).source, 'rules', 'cleared under a live routing cache');
    await second.close();

    const third = open();
    await third.clear('routing'); // as `guild cache clear routing` does, from another process
    await third.close();

    const fourth = open();
    const r4 = new RoutingCache({ cache: fourth, rules: RULES });
    assert.equal((await r4.route(LOGIN_TS)).source, 'rules');
    assert.equal((await r4.route(DOCS)).source, 'rules');
    assert.deepEqual(await r4.clear(), { memory: 2, sqlite: 2 });
    assert.equal((await r4.route(LOGIN_JS)).source, 'rules', 'RoutingCache.clear() empties the index too');
    await fourth.close();
  });
});
