/**
 * The corpus of bad workflow files (test/fixtures/bad/), run through the CLI as a user would:
 * each file says what it expects in its first line,
 *
 *   # expect: line 4 key agents.__proto__ /`__proto__` cannot be a name/
 *
 * (the key is optional) and `guild run` must exit 2 with `file:line`, the key and that message on
 * stderr, print no stack trace, and start nothing: no `.guild/` folder (no store) appears. Then
 * the library: a definition object is validated as it is, and its errors name key paths.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigErrors, GuildError } from '../src/errors.js';
import { runWorkflow, type WorkflowDefinition } from '../src/workflow/run-workflow.js';
import { guild, ROOT, tempDir, writeWorkflow } from './helpers.js';

const BAD = join(ROOT, 'test', 'fixtures', 'bad');
const STACK_RE = /^\s+at /m;

interface Expectation {
  line: number;
  key: string | null;
  message: RegExp;
}

/** The `# expect:` line a fixture starts with. */
function expectationOf(name: string): Expectation {
  const first = readFileSync(join(BAD, name), 'utf8').split('\n')[0]!;
  const m = /^# expect: line (\d+)(?: key (\S+))? \/(.*)\/$/.exec(first);
  assert.ok(m, `${name}: the first line must be '# expect: line N [key K] /regex/', got ${JSON.stringify(first)}`);
  return { line: Number(m[1]), key: m[2] ?? null, message: new RegExp(m[3]!) };
}

const fixtures = readdirSync(BAD)
  .filter((n) => n.endsWith('.yaml'))
  .sort();

describe('bad workflow files: guild run exits 2 with file:line:key, no stack trace, no store', { concurrency: 4 }, () => {
  it('the corpus holds the cases of issue 11 and more', () => {
    assert.ok(fixtures.length >= 40, `${fixtures.length} fixtures`);
    for (const must of ['alias-bomb', 'proto-agent', 'constructor-agent', 'agent-tostring', 'timeout-600h', 'sample-interval-0ms', 'sample-interval-10ms', 'env-key-equals', 'env-key-empty']) {
      assert.ok(fixtures.includes(`${must}.yaml`), must);
    }
  });

  for (const name of fixtures) {
    it(name, async () => {
      const expected = expectationOf(name);
      // A folder of its own, so that a `.guild/` left behind is this file's doing.
      const dir = tempDir('guild-bad-');
      const file = join(dir, name);
      copyFileSync(join(BAD, name), file);
      const r = await guild(['run', file], { cwd: dir, timeoutMs: 30_000 });
      assert.equal(r.code, 2, `exit code; stderr:\n${r.stderr}`);
      assert.doesNotMatch(r.stderr, STACK_RE, 'no stack trace');
      assert.doesNotMatch(r.stderr, /internal error/);
      assert.ok(r.stderr.includes(`${name}:${expected.line}:`), `names ${name}:${expected.line}; stderr:\n${r.stderr}`);
      if (expected.key !== null) assert.ok(r.stderr.includes(`: ${expected.key}: `), `names the key ${expected.key}; stderr:\n${r.stderr}`);
      assert.match(r.stderr, expected.message);
      assert.equal(r.stdout, '');
      assert.deepEqual(readdirSync(dir), [name], 'nothing written next to the workflow (no .guild/)');
    });
  }

  it('a 600 h timeout exits 2 at once, and its task never starts', async () => {
    const dir = tempDir();
    const marker = join(dir, 'started');
    const file = writeWorkflow(`agents: { a: {} }\ntasks:\n  - { id: t, agent: a, timeout: 600h, run: "touch ${marker}; sleep 30" }\n`, dir);
    const began = Date.now();
    const r = await guild(['run', file], { cwd: dir, timeoutMs: 30_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.ok(Date.now() - began < 15_000, 'refused before anything ran');
    assert.match(r.stderr, /guild\.yaml:3:\d+: tasks\[0\]\.timeout: Expected a duration of at most 2147483647 ms \(about 596\.5h, the longest timer Node\.js can set\), got "600h"/);
    assert.equal(existsSync(marker), false);
    assert.equal(existsSync(join(dir, '.guild')), false);
  });

  it('agents named constructor and toString are agents like any other', async () => {
    const dir = tempDir();
    const file = writeWorkflow(
      `agents:\n  constructor: { memory: 10MB }\n  toString: { memory: 10MB }\ntasks:\n  - { id: one, agent: constructor, run: "true" }\n  - { id: two, agent: toString, needs: [one], run: "true" }\n`,
      dir,
    );
    const r = await guild(['run', file, '--json', '--budget', '200MB', '--no-telemetry'], { cwd: dir, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { ok: boolean; tasks: { id: string; agent: string; status: string }[] };
    assert.deepEqual(
      doc.tasks.map((t) => `${t.id}:${t.agent}:${t.status}`),
      ['one:constructor:succeeded', 'two:toString:succeeded'],
    );
  });
});

/** The ConfigErrors a definition object is rejected with. */
async function rejectionOf(definition: unknown): Promise<{ error: ConfigErrors; dir: string }> {
  const dir = tempDir();
  try {
    await runWorkflow(definition as WorkflowDefinition, { dir, store: false, telemetry: false });
  } catch (e) {
    assert.ok(e instanceof ConfigErrors, `expected ConfigErrors, got ${e instanceof Error ? e.stack : String(e)}`);
    assert.equal(e.code, 'CONFIG_INVALID');
    assert.doesNotMatch(e.message, STACK_RE, 'no stack trace in the message');
    for (const x of e.errors) assert.match(x.message, /^<definition>: /, 'names the definition, and no line');
    assert.deepEqual(readdirSync(dir), [], 'nothing written');
    return { error: e, dir };
  }
  assert.fail('expected the definition to be rejected');
}

describe('the library validates a definition object as it is', () => {
  it('a misspelt key holding a function is an unknown key at its path, not a YAML stack trace', async () => {
    const { error } = await rejectionOf({ agents: { a: {} }, tasks: [{ id: 'x', agent: 'a', run: 'true', fn: async () => 1 }] });
    assert.equal(error.errors.length, 1);
    assert.match(error.message, /^<definition>: tasks\[0\]\.fn: unknown key \(it holds a function; only a task's `run` may be one\)/);
  });

  it('a misspelt agent names tasks[0].agent', async () => {
    const { error } = await rejectionOf({ agents: { analyzer: {} }, tasks: [{ id: 'x', agent: 'analyser', run: 'true' }] });
    assert.equal(error.message, "<definition>: tasks[0].agent: unknown agent 'analyser'; did you mean 'analyzer'?");
  });

  it('errors further in name their index and key, all at once', async () => {
    const { error } = await rejectionOf({
      agents: { a: { memory: '1XB' } },
      tasks: [
        { id: 'ok', agent: 'a', run: 'true' },
        { id: 'bad', agent: 'a', run: 'true', timeout: () => 5, env: { 'A=B': 'x' } },
        { id: 'worse', agent: 'toString', run: 'true' },
      ],
    });
    const lines = error.message.split('\n');
    assert.ok(lines.includes('<definition>: agents.a.memory: Expected a size such as 256MB, 1.5GB or 512MiB, got "1XB"'), error.message);
    assert.ok(lines.includes('<definition>: tasks[1].timeout: Expected a duration such as 45s, got a function'), error.message);
    assert.ok(lines.some((l) => l.startsWith('<definition>: tasks[1].env["A=B"]: Expected an environment variable name')), error.message);
  });

  it('an unknown agent named after Object.prototype is unknown', async () => {
    const { error } = await rejectionOf({ agents: { a: {} }, tasks: [{ id: 'x', agent: 'toString', run: 'true' }] });
    assert.equal(error.message, "<definition>: tasks[0].agent: unknown agent 'toString' (declared: a)");
  });

  it('a __proto__ key is refused, not turned into a prototype', async () => {
    const agents = JSON.parse('{"__proto__": {"memory": "1GB"}}') as Record<string, Record<string, unknown>>;
    const { error } = await rejectionOf({ agents, tasks: [{ id: 'x', agent: '__proto__', run: 'true' }] });
    assert.match(error.message, /^<definition>: agents\.__proto__: `__proto__` cannot be a name$/m);
  });

  it('class instances, symbol keys, getters, cycles and proxies that throw are config errors', async () => {
    class Settings {
      memory = '10MB';
    }
    const cyclic: Record<string, unknown> = { id: 'x', agent: 'a', run: 'true' };
    cyclic.env = cyclic;
    const cases: [unknown, RegExp][] = [
      [{ agents: { a: new Settings() }, tasks: [{ id: 'x', agent: 'a', run: 'true' }] }, /agents\.a: Expected a string, number, boolean, list or map, got a Settings/],
      [{ agents: { a: {} }, tasks: [{ id: 'x', agent: 'a', run: 'true', [Symbol('secret')]: 1 }] }, /tasks\[0\]: Expected names as keys, got the symbol secret/],
      [{ agents: { a: {} }, tasks: [{ id: 'x', agent: 'a', run: 'true', get timeout() { throw new Error('boom'); } }] }, /tasks\[0\]\.timeout: Expected a value, got a getter/],
      [{ agents: { a: {} }, tasks: [cyclic] }, /tasks\[0\]\.env: Expected plain data, got a reference to a map or list that contains it \(a cycle\)/],
      [{ agents: new Proxy({}, { ownKeys: () => { throw new Error('trap'); } }), tasks: [] }, /agents: cannot read this value \(trap\)/],
      [{ agents: { a: {} }, tasks: [{ id: 'x', agent: 'a', run: 'true', env: { N: 10n } }] }, /tasks\[0\]\.env\.N: Expected a string, number or boolean, got bigint 10n/],
      [{ agents: { a: {} }, tasks: [{ id: 'x', agent: 'a', run: 'true', needs: new Set(['y']) }] }, /tasks\[0\]\.needs: Expected a string, number, boolean, list or map, got a Set/],
      [null, /^<definition>: Expected a map with `agents:` and `tasks:`, got null$/],
    ];
    for (const [definition, re] of cases) {
      const { error } = await rejectionOf(definition);
      assert.match(error.message, re);
    }
  });

  it('a task function is kept (by id) and runs, with agents named constructor', async () => {
    const dir = tempDir();
    const report = await runWorkflow(
      { agents: { constructor: { memory: '1MB' } }, tasks: [{ id: 'fn', agent: 'constructor', run: async () => 42 }] },
      { dir, store: false, telemetry: false },
    );
    assert.equal(report.ok, true);
    assert.deepEqual(
      report.tasks.map((t) => `${t.id}:${t.status}`),
      ['fn:succeeded'],
    );
  });

  it('a rejection is a GuildError the caller can branch on by code', async () => {
    const { error } = await rejectionOf({ agents: {}, tasks: [] });
    assert.ok(error instanceof GuildError);
    assert.match(error.message, /tasks: Expected at least 1 item\(s\), got 0/);
  });
});
