/**
 * The gateway's tool-result cache over a real layered cache (a memory tier and a SQLite file in a
 * temporary folder, on an injected clock), and with results and tool lists of the real published
 * servers (server-everything, server-filesystem) through a real SDK client. A crash during a
 * write is a real process killed with SIGKILL.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { LayeredCache } from '../src/cache/layered-cache.js';
import { MemoryTier } from '../src/cache/memory-tier.js';
import { SqliteTier } from '../src/cache/sqlite-tier.js';
import type { ResolvedMcpServer } from '../src/config/mcp.js';
import { GuildError } from '../src/errors.js';
import { cacheRuleOf, canonicalJson, ToolResultCache, writesTo, type CacheRule, type CacheServer, type KeyInput } from '../src/gateway/tool-cache.js';
import { MB, ROOT, tempDir } from './helpers.js';

const MINUTE = 60_000;
const SERVERS = join(ROOT, 'node_modules', '@modelcontextprotocol');
const root = tempDir('guild-tool-cache-');
const A = join(root, 'a');
const B = join(root, 'b');
const OUTSIDE = join(root, 'outside');
for (const d of [A, B, OUTSIDE]) mkdirSync(d);
after(() => rmSync(root, { recursive: true, force: true }));

let dbs = 0;
const dbFile = (): string => join(root, `cache-${++dbs}.db`);

/** A layered cache of a memory tier and a SQLite file, both on `clock`. */
function layered(file: string, clock: { t: number }, namespaces: ConstructorParameters<typeof LayeredCache>[0]['namespaces'] = {}): LayeredCache {
  const now = (): number => clock.t;
  return new LayeredCache({
    tiers: [new MemoryTier({ maxBytes: 64 * MB, now }), new SqliteTier({ db: file, maxBytes: 256 * MB, now })],
    namespaces,
    now,
  });
}

/** Files written by the tests look a minute old to the racy-file check (its own test uses the real clock). */
const later = (): number => Date.now() + MINUTE;

function setup(o: { file?: string; ttlMs?: number } = {}): { cache: LayeredCache; tc: ToolResultCache; clock: { t: number }; file: string } {
  const clock = { t: Date.now() };
  const file = o.file ?? dbFile();
  const cache = layered(file, clock);
  return { cache, tc: new ToolResultCache({ cache, now: later, ...(o.ttlMs !== undefined ? { ttlMs: o.ttlMs } : {}) }), clock, file };
}

const srv = (name: string, isolation: ResolvedMcpServer['isolation'] = 'per-project'): CacheServer => ({ name, isolation });
const NONE: CacheRule = { paths: [] };
const input = (more: Partial<KeyInput> = {}): KeyInput => ({ server: srv('mem'), tool: 'read', args: { q: 1 }, project: A, session: null, rule: NONE, ...more });
const result = (text: string): Record<string, unknown> => ({ content: [{ type: 'text', text }] });

/** The key's id (asserting there is one). */
async function idOf(tc: ToolResultCache, i: KeyInput): Promise<string> {
  const k = await tc.key(i);
  assert.ok(k, `expected a key for ${JSON.stringify(i.args)}`);
  return k.id;
}

/** Stores `r` under the key of `i`, and returns the key. */
async function store(tc: ToolResultCache, i: KeyInput, r: Record<string, unknown>): Promise<NonNullable<Awaited<ReturnType<ToolResultCache['key']>>>> {
  const k = await tc.key(i);
  assert.ok(k);
  assert.equal(await tc.set(k, r), true);
  return k;
}

describe('keys', () => {
  it('canonical JSON: key order does not matter, at any depth; array order does; undefined is dropped as JSON.stringify drops it', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: 'é"' } }), canonicalJson({ a: { c: 'é"', d: [1, { x: 1, y: 2 }] }, b: 1 }));
    assert.equal(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: 'é"' } }), '{"a":{"c":"é\\"","d":[1,{"x":1,"y":2}]},"b":1}');
    assert.notEqual(canonicalJson({ a: [1, 2] }), canonicalJson({ a: [2, 1] }));
    assert.equal(canonicalJson({ a: undefined, b: [undefined, NaN, -0] }), '{"b":[null,null,0]}');
    assert.equal(JSON.parse(canonicalJson({ z: { y: null, x: true } })).z.y, null);
  });

  it('equal for reordered arguments; different per tool, per server, per project, per argument value', async () => {
    const { tc } = setup();
    const k = await idOf(tc, input({ args: { q: 'x', opts: { deep: true, n: 2 } } }));
    assert.equal(await idOf(tc, input({ args: { opts: { n: 2, deep: true }, q: 'x' } })), k);
    assert.notEqual(await idOf(tc, input({ args: { q: 'y', opts: { deep: true, n: 2 } } })), k);
    assert.notEqual(await idOf(tc, input({ args: { q: 'x', opts: { deep: true, n: 2 } }, tool: 'other' })), k);
    assert.notEqual(await idOf(tc, input({ args: { q: 'x', opts: { deep: true, n: 2 } }, server: srv('mem2') })), k);
    assert.notEqual(await idOf(tc, input({ args: { q: 'x', opts: { deep: true, n: 2 } }, project: B })), k);
    // No arguments and empty arguments are kept apart: the backend may tell them apart.
    assert.notEqual(await idOf(tc, input({ args: undefined })), await idOf(tc, input({ args: {} })));
  });

  it('per session only for a per-session server, which needs a session', async () => {
    const { tc } = setup();
    assert.equal(await idOf(tc, input({ session: 's1' })), await idOf(tc, input({ session: 's2' })));
    assert.equal(await idOf(tc, input({ session: 's1' })), await idOf(tc, input({ session: null })));
    const ps = srv('mem', 'per-session');
    assert.notEqual(await idOf(tc, input({ server: ps, session: 's1' })), await idOf(tc, input({ server: ps, session: 's2' })));
    assert.equal(await idOf(tc, input({ server: ps, session: 's1' })), await idOf(tc, input({ server: ps, session: 's1' })));
    assert.equal(await tc.key(input({ server: ps, session: null })), null);
    assert.equal(tc.skips['no-session'], 1);
  });

  it('changes with the size, the mtime or the presence of the files that path arguments name (string or array, relative to the project)', async () => {
    const { tc } = setup();
    const rule: CacheRule = { paths: ['path', 'paths'] };
    const f = join(A, 'f.txt');
    const g = join(A, 'g.txt');
    writeFileSync(f, 'hello');
    writeFileSync(g, 'other');
    const one = (): KeyInput => input({ tool: 'read_text_file', args: { path: 'f.txt' }, rule });
    const many = (): KeyInput => input({ tool: 'read_multiple_files', args: { paths: [f, 'g.txt'] }, rule });
    const k1 = await idOf(tc, one());
    const m1 = await idOf(tc, many());
    assert.equal(await idOf(tc, one()), k1, 'the same file state gives the same key');

    writeFileSync(f, 'HELLO'); // same size, new mtime (set apart explicitly: a coarse clock may give the same tick)
    utimesSync(f, new Date(Date.now() - 10 * MINUTE), new Date(Date.now() - 10 * MINUTE));
    const k2 = await idOf(tc, one());
    assert.notEqual(k2, k1);
    assert.notEqual(await idOf(tc, many()), m1, 'an array of paths names f too');

    writeFileSync(g, 'other, longer'); // another size
    const m3 = await idOf(tc, many());
    assert.notEqual(m3, m1);
    assert.equal(await idOf(tc, one()), k2, 'g is not named by the single-path call');

    rmSync(f);
    const k3 = await idOf(tc, one());
    assert.notEqual(k3, k2, 'a missing file is part of the key');
    assert.equal(await idOf(tc, one()), k3, 'and stays the same while missing');
    writeFileSync(f, 'back');
    assert.notEqual(await idOf(tc, one()), k3);

    // A path argument that is absent is fine; one of another type is not keyed.
    assert.ok(await tc.key(input({ args: { other: 1 }, rule })));
    assert.equal(await tc.key(input({ args: { path: 42 }, rule })), null);
    assert.equal(await tc.key(input({ args: { paths: ['ok.txt', 7] }, rule })), null);
    assert.equal(tc.skips['path-type'], 2);
  });

  it('a path outside the project makes the call not cacheable: .., absolute, ~, a URI, a symlink out', async () => {
    const { tc } = setup();
    const rule: CacheRule = { paths: ['path'] };
    writeFileSync(join(OUTSIDE, 'secret.txt'), 'x');
    symlinkSync(OUTSIDE, join(A, 'link-out'));
    writeFileSync(join(A, 'in.txt'), 'x');
    symlinkSync(join(A, 'in.txt'), join(A, 'link-in'));
    for (const path of ['../outside/secret.txt', join(OUTSIDE, 'secret.txt'), '/etc/passwd', '~/.bashrc', 'https://example.com/x', `file://${OUTSIDE}/secret.txt`, 'link-out/secret.txt', 'a/../../outside']) {
      assert.equal(await tc.key(input({ args: { path }, rule })), null, path);
    }
    assert.equal(tc.skips['outside-project'], 8);
    // Inside: relative, absolute, a file: URI, a symlink that stays inside, the project itself.
    for (const path of ['in.txt', join(A, 'in.txt'), `file://${A}/in.txt`, 'link-in', '.', 'sub/../in.txt']) {
      assert.ok(await tc.key(input({ args: { path }, rule })), path);
    }
  });

  it('a file changed a moment ago is not keyed (timestamps cannot tell two changes within one tick apart)', async () => {
    const clock = { t: Date.now() };
    const tc = new ToolResultCache({ cache: layered(dbFile(), clock) }); // the real wall clock
    const rule: CacheRule = { paths: ['path'] };
    writeFileSync(join(A, 'fresh.txt'), 'new');
    assert.equal(await tc.key(input({ args: { path: 'fresh.txt' }, rule })), null);
    assert.equal(tc.skips['racy-file'], 1);
    const settled = new ToolResultCache({ cache: layered(dbFile(), clock), racyMs: 0 });
    assert.ok(await settled.key(input({ args: { path: 'fresh.txt' }, rule })));
  });
});

describe('results', () => {
  it('a hit is a fresh copy each time: callers may change what they get', async () => {
    const { tc } = setup();
    const r = { content: [{ type: 'text', text: 'v' }], structuredContent: { n: 1 } };
    const k = await store(tc, input(), r);
    r.content[0]!.text = 'changed after set';
    const h1 = await tc.get(k);
    const h2 = await tc.get(k);
    assert.deepEqual(h1, { content: [{ type: 'text', text: 'v' }], structuredContent: { n: 1 } });
    assert.notEqual(h1, h2);
    (h1!.content as { text: string }[])[0]!.text = 'mutated';
    (h1!.structuredContent as { n: number }).n = 2;
    assert.deepEqual(await tc.get(k), h2);
    assert.deepEqual(tc.counts, { hits: 3, misses: 0, stores: 1, invalidations: 0, skipped: 0 });
  });

  it('isError results and results over maxResultBytes are not stored', async () => {
    const clock = { t: Date.now() };
    const tc = new ToolResultCache({ cache: layered(dbFile(), clock), maxResultBytes: 1000 });
    const k = await tc.key(input());
    assert.ok(k);
    assert.equal(await tc.set(k, { ...result('boom'), isError: true }), false);
    assert.equal(await tc.get(k), null);
    assert.equal(await tc.set(k, result('x'.repeat(1000))), false);
    assert.equal(await tc.get(k), null);
    assert.equal(await tc.set(k, { ...result('fine'), isError: false }), true);
    assert.deepEqual(await tc.get(k), { ...result('fine'), isError: false });
    assert.deepEqual(tc.skips, { 'error-result': 1, 'too-large': 1 });
    assert.deepEqual(tc.counts, { hits: 1, misses: 2, stores: 1, invalidations: 0, skipped: 2 });
  });

  it('expires after the TTL (the cache clock), from memory and from SQLite', async () => {
    const { tc, cache, clock } = setup({ ttlMs: 5 * MINUTE });
    const k = await store(tc, input(), result('v'));
    clock.t += 5 * MINUTE - 1;
    assert.deepEqual(await tc.get(k), result('v'));
    await cache.flush();
    cache.onCacheMode('off'); // memory forgets: SQLite answers
    cache.onCacheMode('normal');
    assert.deepEqual(await tc.get(k), result('v'));
    clock.t += 1;
    assert.equal(await tc.get(k), null);
    assert.deepEqual(await cache.get('mcp', k.id), undefined);
  });

  it('the default TTL is 5 minutes', async () => {
    const { tc, clock } = setup();
    const k = await store(tc, input(), result('v'));
    clock.t += 5 * MINUTE - 1;
    assert.ok(await tc.get(k));
    clock.t += 1;
    assert.equal(await tc.get(k), null);
  });

  it('refuses a namespace that would serve stale values, and bad options', () => {
    const clock = { t: Date.now() };
    const swr = layered(dbFile(), clock, { mcp: { ttlMs: MINUTE, maxEntries: null, staleWhileRevalidateMs: MINUTE, tiers: ['memory'] } });
    assert.throws(() => new ToolResultCache({ cache: swr }), (e: unknown) => e instanceof GuildError && e.code === 'INVALID_OPTION' && /stale_while_revalidate/.test(e.message));
    const cache = layered(dbFile(), clock);
    assert.throws(() => new ToolResultCache({ cache, ttlMs: 0 }), /Expected ttlMs to be a positive number of ms, got 0/);
    assert.throws(() => new ToolResultCache({ cache, namespace: 'a b' }), /Expected namespace/);
  });
});

describe('invalidation', () => {
  it('a write drops the server’s results for its project only: other projects and servers keep theirs', async () => {
    const { tc } = setup();
    const mine = await store(tc, input(), result('mine'));
    const otherProject = await store(tc, input({ project: B }), result('b'));
    const otherServer = await store(tc, input({ server: srv('fs') }), result('fs'));
    const other = await store(tc, input({ args: { q: 2 } }), result('q2'));
    const out = await tc.write(srv('mem'), A, async () => 'written');
    assert.equal(out, 'written');
    assert.equal(await tc.get(mine), null);
    assert.equal(await tc.get(other), null);
    const fresh = await tc.key(input());
    assert.ok(fresh);
    assert.equal(await tc.get(fresh), null, 'a new key after the write finds nothing');
    assert.deepEqual(await tc.get(otherProject), result('b'));
    assert.deepEqual(await tc.get(otherServer), result('fs'));
    assert.equal(tc.counts.invalidations, 1);
    // Per-session results of the project go too (one generation per server and project).
    const ps = srv('mem', 'per-session');
    const s1 = await store(tc, input({ server: ps, session: 's1' }), result('s1'));
    const s2 = await store(tc, input({ server: ps, session: 's2' }), result('s2'));
    await tc.invalidate(ps, A);
    assert.equal(await tc.get(s1), null);
    assert.equal(await tc.get(s2), null);
  });

  it('a shared server’s write drops its results in every project (one instance serves them all)', async () => {
    const { tc } = setup();
    const shared = srv('kg', 'shared');
    const a = await store(tc, input({ server: shared }), result('a'));
    const b = await store(tc, input({ server: shared, project: B }), result('b'));
    assert.notEqual(a.id, b.id, 'results are still kept per project');
    await tc.write(shared, B, async () => undefined);
    assert.equal(await tc.get(a), null);
    assert.equal(await tc.get(b), null);
  });

  it('during a write nothing of its scope is served or stored; a read that overlapped it is not stored after it either', async () => {
    const { tc } = setup();
    const before = await store(tc, input(), result('before'));
    const early = await tc.key(input({ args: { q: 'early' } })); // made before the write, its result arrives after
    assert.ok(early);
    let release!: () => void;
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const writing = tc.write(srv('mem'), A, () => {
      started();
      return new Promise<string>((r) => (release = () => r('done')));
    });
    await running;
    const during = await tc.key(input({ args: { q: 'during' } }));
    assert.ok(during);
    assert.equal(await tc.get(before), null);
    assert.equal(await tc.set(during, result('maybe before the write')), false);
    assert.ok(await tc.key(input({ project: B })).then((k) => k && tc.set(k, result('other project'))), 'other scopes still store');
    release();
    assert.equal(await writing, 'done');
    assert.equal(await tc.set(early, result('early')), false);
    assert.equal(await tc.set(during, result('during')), false);
    assert.equal(tc.skips.stale, 3);
    const afterKey = await store(tc, input({ args: { q: 'early' } }), result('after'));
    assert.deepEqual(await tc.get(afterKey), result('after'));
  });

  it('a write that fails still drops the results, and its error reaches the caller', async () => {
    const { tc } = setup();
    const k = await store(tc, input(), result('v'));
    await assert.rejects(tc.write(srv('mem'), A, async () => Promise.reject(new Error('backend said no'))), /backend said no/);
    assert.equal(await tc.get(k), null);
  });
});

describe('across a restart (the SQLite tier persists results and generations)', () => {
  it('a new cache over the same file serves what was stored, but nothing invalidated before the restart', async () => {
    const file = dbFile();
    const first = setup({ file });
    const kept = await store(first.tc, input({ server: srv('fs') }), result('kept'));
    const dropped = await store(first.tc, input(), result('dropped'));
    await first.tc.write(srv('mem'), A, async () => undefined);
    await first.cache.close();

    const second = setup({ file });
    const keptAgain = await second.tc.key(input({ server: srv('fs') }));
    assert.equal(keptAgain?.id, kept.id, 'same generation after the restart');
    assert.deepEqual(await second.tc.get(keptAgain!), result('kept'));
    const droppedAgain = await second.tc.key(input());
    assert.notEqual(droppedAgain?.id, dropped.id);
    assert.equal(await second.tc.get(droppedAgain!), null);
    assert.equal(await second.cache.get('mcp', dropped.id).then((b) => b?.toString()), JSON.stringify(result('dropped')), 'the old entry is there, unreachable');
    await second.cache.close();
  });

  it('a gateway killed (SIGKILL) while a write is in flight: afterwards the results from before the write are not served', { timeout: 60_000 }, async () => {
    const file = dbFile();
    const url = (p: string): string => JSON.stringify(new URL(p, `file://${ROOT}dist/`).href);
    // The child stores two results, flushes, then starts a write of `mem` that never ends (stdout to a pipe is synchronous on Linux).
    const script = `
      import { LayeredCache } from ${url('src/cache/layered-cache.js')};
      import { MemoryTier } from ${url('src/cache/memory-tier.js')};
      import { SqliteTier } from ${url('src/cache/sqlite-tier.js')};
      import { ToolResultCache } from ${url('src/gateway/tool-cache.js')};
      const cache = new LayeredCache({ tiers: [new MemoryTier({ maxBytes: 1 << 26 }), new SqliteTier({ db: ${JSON.stringify(file)}, maxBytes: 1 << 28 })] });
      const tc = new ToolResultCache({ cache });
      const input = (name) => ({ server: { name, isolation: 'per-project' }, tool: 'read', args: { q: 1 }, project: ${JSON.stringify(A)}, session: null, rule: { paths: [] } });
      for (const name of ['mem', 'fs']) await tc.set(await tc.key(input(name)), { content: [{ type: 'text', text: name }] });
      await cache.flush();
      process.stdout.write('stored\\n');
      // Once the call goes out, the event loop is blocked: no buffered write can be committed after it.
      tc.write({ name: 'mem', isolation: 'per-project' }, ${JSON.stringify(A)}, () => { process.stdout.write('writing\\n'); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); });
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_code, signal) => r(signal)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('writing')) resolve();
      });
      child.on('exit', () => reject(new Error(`the child ended early: ${out} ${err}`)));
    });
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');

    const after = setup({ file });
    assert.deepEqual(await after.tc.get((await after.tc.key(input({ server: srv('fs') })))!), result('fs'), 'the untouched server’s result survived the crash');
    assert.equal(await after.tc.get((await after.tc.key(input()))!), null, 'the written server’s result from before the write is not served');
    await after.cache.close();
  });
});

describe('with the published servers', { timeout: 120_000 }, () => {
  let everything: Client;
  let filesystem: Client;
  let everythingTools: Tool[];
  let fsTools: Tool[];
  const tool = (list: Tool[], name: string): Tool => {
    const t = list.find((x) => x.name === name);
    assert.ok(t, `${name} is listed`);
    return t;
  };
  before(async () => {
    everything = new Client({ name: 'guild-test', version: '0' });
    await everything.connect(new StdioClientTransport({ command: process.execPath, args: [join(SERVERS, 'server-everything', 'dist', 'index.js'), 'stdio'], stderr: 'ignore' }));
    filesystem = new Client({ name: 'guild-test', version: '0' });
    await filesystem.connect(new StdioClientTransport({ command: process.execPath, args: [join(SERVERS, 'server-filesystem', 'dist', 'index.js'), A], stderr: 'ignore' }));
    everythingTools = (await everything.listTools()).tools;
    fsTools = (await filesystem.listTools()).tools;
  });
  after(async () => {
    await everything?.close();
    await filesystem?.close();
  });

  it('the annotation rule: read-only and idempotent is cacheable, read-only alone is not, a listed tool is', () => {
    const plain = { cacheable: [] };
    const echo = tool(everythingTools, 'echo');
    assert.deepEqual([echo.annotations?.readOnlyHint, echo.annotations?.idempotentHint], [true, true]);
    assert.deepEqual(cacheRuleOf(plain, 'echo', echo), { paths: [] });
    assert.equal(writesTo(plain, 'echo', echo), false);

    const read = tool(fsTools, 'read_text_file');
    assert.equal(read.annotations?.readOnlyHint, true);
    assert.notEqual(read.annotations?.idempotentHint, true);
    assert.equal(cacheRuleOf(plain, 'read_text_file', read), null, 'read-only alone is not enough');
    assert.equal(writesTo(plain, 'read_text_file', read), false, 'but it writes nothing');
    const listed = { cacheable: [{ tool: 'read_text_file', paths: ['path'] }, { tool: 'read_multiple_files', paths: ['paths'] }] };
    assert.deepEqual(cacheRuleOf(listed, 'read_text_file', read), { paths: ['path'] });

    for (const name of ['write_file', 'edit_file', 'create_directory']) {
      assert.equal(cacheRuleOf(plain, name, tool(fsTools, name)), null, name);
      assert.equal(writesTo(plain, name, tool(fsTools, name)), true, name);
    }
    // Idempotent but not read-only (gzip-file-as-resource), no annotations at all, or unknown: writes.
    for (const name of ['gzip-file-as-resource', 'toggle-simulated-logging']) {
      assert.equal(cacheRuleOf(plain, name, tool(everythingTools, name)), null, name);
      assert.equal(writesTo(plain, name, tool(everythingTools, name)), true, name);
    }
    assert.equal(cacheRuleOf(plain, 'nope', undefined), null);
    assert.equal(writesTo(plain, 'nope', undefined), true);
    // A listed tool the backend does not describe is cacheable and writes nothing: the user said so.
    assert.deepEqual(cacheRuleOf({ cacheable: [{ tool: 'lookup', paths: [] }] }, 'lookup', undefined), { paths: [] });
    assert.equal(writesTo({ cacheable: [{ tool: 'lookup', paths: [] }] }, 'lookup', undefined), false);
  });

  it('server-filesystem: cached and uncached results are identical; an edit of the file or a write through the server is seen; an isError result is not kept', async () => {
    const { tc } = setup();
    const server = { name: 'fs', isolation: 'per-project' as const, cacheable: [{ tool: 'read_text_file', paths: ['path'] }] };
    const f = join(A, 'doc.txt');
    writeFileSync(f, 'version 1');
    /** One call as the gateway would make it. */
    const call = async (name: string, args: Record<string, unknown>): Promise<{ result: Record<string, unknown>; cached: boolean }> => {
      const t = tool(fsTools, name);
      const rule = cacheRuleOf(server, name, t);
      const key = rule && (await tc.key({ server, tool: name, args, project: A, session: null, rule }));
      const hit = key && (await tc.get(key));
      if (hit) return { result: hit, cached: true };
      const go = (): Promise<Record<string, unknown>> => filesystem.callTool({ name, arguments: args }) as Promise<Record<string, unknown>>;
      const result = writesTo(server, name, t) ? await tc.write(server, A, go) : await go();
      if (key) await tc.set(key, result);
      return { result, cached: false };
    };
    const first = await call('read_text_file', { path: f });
    assert.equal(first.cached, false);
    const second = await call('read_text_file', { path: f });
    assert.equal(second.cached, true);
    assert.deepEqual(second.result, first.result);
    assert.match(JSON.stringify(second.result), /version 1/);

    writeFileSync(f, 'version 2'); // same size, edited behind the gateway's back
    utimesSync(f, new Date(Date.now() - MINUTE), new Date(Date.now() - MINUTE));
    const third = await call('read_text_file', { path: f });
    assert.equal(third.cached, false);
    assert.match(JSON.stringify(third.result), /version 2/);
    assert.equal((await call('read_text_file', { path: f })).cached, true);

    // A write through the server to another file still drops fs's results for the project.
    await call('write_file', { path: join(A, 'other.txt'), content: 'x' });
    const fourth = await call('read_text_file', { path: f });
    assert.equal(fourth.cached, false);
    assert.deepEqual(fourth.result, third.result);

    const missing = await call('read_text_file', { path: join(A, 'missing.txt') });
    assert.equal(missing.result.isError, true);
    assert.equal((await call('read_text_file', { path: join(A, 'missing.txt') })).cached, false);
    assert.equal(tc.skips['error-result'], 2);
    assert.deepEqual(tc.counts, { hits: 2, misses: 5, stores: 3, invalidations: 1, skipped: 2 });
  });

  it('server-everything: an ro+idem tool’s cached result equals the backend’s', async () => {
    const { tc } = setup();
    const server = { name: 'everything', isolation: 'per-project' as const, cacheable: [] };
    const args = { a: 2, b: 40 };
    const rule = cacheRuleOf(server, 'get-sum', tool(everythingTools, 'get-sum'));
    assert.ok(rule);
    const k = (await tc.key({ server, tool: 'get-sum', args, project: A, session: null, rule }))!;
    const direct = (await everything.callTool({ name: 'get-sum', arguments: args })) as Record<string, unknown>;
    await tc.set(k, direct);
    const again = (await tc.key({ server, tool: 'get-sum', args: { b: 40, a: 2 }, project: A, session: null, rule }))!;
    assert.deepEqual(await tc.get(again), direct);
    assert.deepEqual(await tc.get(again), (await everything.callTool({ name: 'get-sum', arguments: args })) as Record<string, unknown>);
  });
});

describe('cost of a hit (reported, not asserted)', () => {
  it('key + get, p50 and p95 over 2,000 hits: no path argument, and one file', async (t) => {
    const { tc } = setup();
    const f = join(A, 'bench.txt');
    writeFileSync(f, 'x'.repeat(2000));
    const shapes: [string, KeyInput, Record<string, unknown>][] = [
      ['no paths, 200 B result', input({ args: { query: 'alpha beta', limit: 10, opts: { deep: true } } }), result('y'.repeat(150))],
      ['one file, 2 KB result', input({ tool: 'read_text_file', args: { path: 'bench.txt' }, rule: { paths: ['path'] } }), { content: [{ type: 'text', text: 'x'.repeat(2000) }], structuredContent: { content: 'x'.repeat(2000) } }],
    ];
    for (const [label, i, r] of shapes) {
      await store(tc, i, r);
      const times: number[] = [];
      for (let n = 0; n < 2200; n++) {
        const t0 = performance.now();
        const k = await tc.key(i);
        const hit = await tc.get(k!);
        const dt = performance.now() - t0;
        assert.ok(hit);
        if (n >= 200) times.push(dt); // the first 200 warm the JIT
      }
      times.sort((x, y) => x - y);
      const p = (q: number): string => `${(times[Math.floor(q * (times.length - 1))]! * 1000).toFixed(1)} µs`;
      t.diagnostic(`hit (key + get), ${label}: p50 ${p(0.5)}, p95 ${p(0.95)}`);
    }
  });
});
