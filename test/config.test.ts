import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { DEFAULT_NAMESPACES, FALLBACK_POLICY, namespacePolicies } from '../src/config/cache-policy.js';
import { formatKeyPath } from '../src/config/source.js';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadWorkflowFile } from '../src/config/load.js';
import { resolveConfig } from '../src/config/resolve.js';
import { ConfigErrors, GuildError } from '../src/errors.js';
import { createSystemProbe } from '../src/system/probe.js';
import { guild, tempDir, writeWorkflow } from './helpers.js';

/** Loads a workflow and returns the error messages it produces (empty when valid). */
function errorsOf(yaml: string, flags: { budgetBytes?: number } = {}): string[] {
  const file = writeWorkflow(yaml);
  try {
    resolveConfig(loadWorkflowFile(file), createSystemProbe(), flags);
    return [];
  } catch (e) {
    assert.ok(e instanceof GuildError, `expected a GuildError, got ${String(e)}`);
    assert.equal(e.code, 'CONFIG_INVALID');
    const msgs = e instanceof ConfigErrors ? e.errors.map((x) => x.message) : [e.message];
    for (const m of msgs) assert.match(m, /guild\.yaml:\d+:\d+: /, `message names file and line: ${m}`);
    return msgs;
  }
}

const base = `agents:
  analyzer:
    memory: 256MB
tasks:
  - id: one
    agent: analyzer
    run: "true"
`;

describe('workflow file errors name the file, the line and the key', () => {
  it('unknown key with did-you-mean', () => {
    const [msg, ...rest] = errorsOf(base.replace('memory: 256MB', 'memory: 256MB\n    memroy: 1GB'));
    assert.equal(rest.length, 0);
    assert.match(msg!, /guild\.yaml:4:5: agents\.analyzer\.memroy: unknown key; did you mean 'memory'\?/);
  });

  it('unknown top-level key and unknown task key', () => {
    const msgs = errorsOf(`${base}    prority: high\nbudgett: 1GB\n`);
    assert.ok(msgs.some((m) => /:8:\d+: tasks\[0\]\.prority: unknown key; did you mean 'priority'\?/.test(m)), msgs.join('\n'));
    assert.ok(msgs.some((m) => /:9:1: budgett: unknown key; did you mean 'budget'\?/.test(m)), msgs.join('\n'));
  });

  it('bad size and bad duration say what was expected and what was found', () => {
    const msgs = errorsOf(base.replace('memory: 256MB', 'memory: 256XB\n    timeout: soon'));
    assert.ok(msgs.some((m) => /:3:\d+: agents\.analyzer\.memory: Expected a size .* got "256XB"/.test(m)), msgs.join('\n'));
    assert.ok(msgs.some((m) => /:4:\d+: agents\.analyzer\.timeout: Expected a duration .* got "soon"/.test(m)), msgs.join('\n'));
  });

  it('bad priority lists the choices', () => {
    const [msg] = errorsOf(`${base}    priority: urgent\n`);
    assert.match(msg!, /:8:\d+: tasks\[0\]\.priority: Expected one of critical, high, medium, low, got string "urgent"/);
  });

  it('missing required key points at the task', () => {
    const [msg] = errorsOf(base.replace('    run: "true"\n', ''));
    assert.match(msg!, /:5:\d+: tasks\[0\]\.run: required key is missing/);
  });

  it('unknown agent, with a suggestion', () => {
    const [msg] = errorsOf(base.replace('agent: analyzer', 'agent: analyser'));
    assert.match(msg!, /:6:\d+: tasks\[0\]\.agent: unknown agent 'analyser'; did you mean 'analyzer'\?/);
  });

  it('duplicate ids', () => {
    const [msg] = errorsOf(`${base}  - id: one\n    agent: analyzer\n    run: "true"\n`);
    assert.match(msg!, /:8:\d+: tasks\[1\]\.id: duplicate task id 'one' \(first declared at tasks\[0\]\)/);
  });

  it('unknown dependency', () => {
    const [msg] = errorsOf(`${base}    needs: [tow]\n  - id: two\n    agent: analyzer\n    run: "true"\n`);
    assert.match(msg!, /tasks\[0\]\.needs\[0\]: unknown task 'tow'; did you mean 'two'\?/);
  });

  it('cycles in needs', () => {
    const yaml = `agents: { a: {} }
tasks:
  - { id: x, agent: a, run: "true", needs: [z] }
  - { id: y, agent: a, run: "true", needs: [x] }
  - { id: z, agent: a, run: "true", needs: [y] }
`;
    const [msg] = errorsOf(yaml);
    assert.match(msg!, /:3:\d+: tasks\[0\]\.needs: dependency cycle: x → z → y → x/);
  });

  it('a task that can never fit the budget', () => {
    const [msg] = errorsOf(`budget: 600MB\n${base.replace('256MB', '550MB')}    priority: critical\n`);
    assert.match(msg!, /:4:\d+: agents\.analyzer\.memory: agent 'analyzer' expects 550 MB; with 1\.2× headroom a task needs 660 MB free, but the budget is 600 MB/);
  });

  it('pools must add up to 100%', () => {
    const [msg] = errorsOf(`pools: { critical: 30%, execution: 40% }\n${base}`);
    assert.match(msg!, /:1:1: pools: Expected the pools to add up to 100%, got 110%/);
  });

  it('a task that fits the budget but not the pools of a busy machine is a warning', () => {
    const c = resolveConfig(loadWorkflowFile(writeWorkflow(`budget: 1GB\n${base.replace('256MB', '800MB')}`)), createSystemProbe());
    assert.match(c.warnings.join('\n'), /agent 'analyzer' needs 960 MB with headroom, more than the 85% of the budget/);
  });

  it('YAML syntax errors give line and column', () => {
    const [msg] = errorsOf('agents:\n  a: {\ntasks: [\n');
    assert.match(msg!, /guild\.yaml:\d+:\d+: invalid YAML/);
  });

  it('a valid file resolves with defaults applied', () => {
    const file = writeWorkflow(base);
    const c = resolveConfig(loadWorkflowFile(file), createSystemProbe(), { budgetBytes: 1024 ** 3 });
    assert.equal(c.budgetBytes, 1024 ** 3);
    assert.equal(c.budgetSource, 'flag');
    assert.equal(c.agents.analyzer!.memoryBytes, 256 * 1024 ** 2);
    assert.equal(c.agents.analyzer!.timeoutMs, 30_000);
    assert.equal(c.tasks[0]!.priority, 'medium');
    assert.ok(Object.isFrozen(c));
  });
});

/** `record[key]` as a consumer reads it (TypeScript would type `.constructor` as Object's). */
const at = <V>(record: Readonly<Record<string, V>>, key: string): V | undefined => record[key];

describe('every value checked at the boundary', () => {
  const MAX = 2 ** 31 - 1;

  it('a duration over 2^31 − 1 ms is an error wherever a duration is taken, saying the limit', () => {
    const at = (path: string): string => {
      const keys = path.split('.');
      const leaf = keys.pop()!;
      let yaml = `${leaf}: ${MAX + 1}`;
      for (const k of keys.reverse()) yaml = `${k}:\n${yaml.replace(/^/gm, '  ')}`;
      return yaml;
    };
    const top = ['sample_interval', 'kill_grace', 'aging', 'starvation_limit', 'governor.hold', 'governor.cooldown', 'telemetry.snapshot_interval', 'telemetry.alerts.cooldown', 'cache.namespaces.research.ttl', 'cache.namespaces.research.stale_while_revalidate'];
    for (const path of top) {
      const msgs = errorsOf(`${at(path)}\n${base}`);
      assert.equal(msgs.length, 1, `${path}: ${msgs.join('\n')}`);
      assert.match(msgs[0]!, new RegExp(`: ${path.replace(/\./g, '\\.')}: Expected a duration of at most 2147483647 ms \\(about 596\\.5h, the longest timer Node\\.js can set\\), got ${MAX + 1}$`), path);
    }
    for (const key of ['timeout', 'duration', 'response_target']) {
      const [msg] = errorsOf(base.replace('memory: 256MB', `memory: 256MB\n    ${key}: 597h`));
      assert.match(msg!, new RegExp(`agents\\.analyzer\\.${key}: Expected a duration of at most 2147483647 ms .*got "597h"`), key);
    }
    const [task] = errorsOf(`${base}    timeout: 600h\n`);
    assert.match(task!, /:8:\d+: tasks\[0\]\.timeout: Expected a duration of at most 2147483647 ms/);
  });

  it('2^31 − 1 ms itself is a duration; the seed durations still parse', () => {
    assert.deepEqual(errorsOf(`kill_grace: ${MAX}\n${base}    timeout: 596h\n`), []);
  });

  it('sample_interval is at least 50 ms', () => {
    for (const v of ['0ms', '10ms', '49', 0]) {
      const [msg] = errorsOf(`sample_interval: ${v}\n${base}`);
      assert.match(msg!, /:1:\d+: sample_interval: Expected a duration of at least 50ms, got /, String(v));
    }
    assert.deepEqual(errorsOf(`sample_interval: 50ms\n${base}`), []);
  });

  it('env names are names a process can receive, values have no NUL', () => {
    const msgs = errorsOf(`${base}    env:\n      "A=B": 1\n      "": 2\n      "N\\0UL": 3\n      OK: "x\\0y"\n      FINE: yes\n`);
    assert.equal(msgs.length, 4, msgs.join('\n'));
    assert.match(msgs[0]!, /:9:\d+: tasks\[0\]\.env\["A=B"\]: Expected an environment variable name \(not empty, no "=" and no NUL character\), got "A=B"/);
    assert.match(msgs[1]!, /:10:\d+: tasks\[0\]\.env\[""\]: Expected an environment variable name/);
    assert.match(msgs[2]!, /:11:\d+: tasks\[0\]\.env\["N\\u0000UL"\]: Expected an environment variable name/);
    assert.match(msgs[3]!, /:12:\d+: tasks\[0\]\.env\.OK: Expected an environment value without a NUL character/);
  });

  it('agent names are readable: not empty, no control characters', () => {
    const msgs = errorsOf(`agents:\n  "": {}\n  "tab\\there": {}\n  analyzer: {}\ntasks:\n  - { id: one, agent: analyzer, run: "true" }\n`);
    assert.equal(msgs.length, 2, msgs.join('\n'));
    assert.match(msgs[0]!, /:2:\d+: agents\[""\]: Expected an agent name \(not empty, no control characters\), got ""/);
    assert.match(msgs[1]!, /:3:\d+: agents\["tab\\there"\]: Expected an agent name/);
  });

  it('keys that would reach the prototype: __proto__ is refused, constructor and toString are names like any other', () => {
    const [proto] = errorsOf(base.replace('  analyzer:', '  __proto__: {}\n  analyzer:'));
    assert.match(proto!, /:2:3: agents\.__proto__: `__proto__` cannot be a name/);
    const [undeclared] = errorsOf(base.replace('agent: analyzer', 'agent: toString'));
    assert.match(undeclared!, /:6:\d+: tasks\[0\]\.agent: unknown agent 'toString' \(declared: analyzer\)/);
    const [fallback] = errorsOf(`routing: { fallback: valueOf }\n${base}`);
    assert.match(fallback!, /:1:\d+: routing\.fallback: unknown agent 'valueOf'/);

    const yaml = `agents:\n  constructor: { memory: 10MB }\n  toString: { memory: 20MB }\ntasks:\n  - { id: a, agent: constructor, run: "true", env: { constructor: x } }\n  - { id: b, agent: toString, run: "true" }\ncache:\n  namespaces:\n    constructor: { max_entries: 5 }\n`;
    const c = resolveConfig(loadWorkflowFile(writeWorkflow(yaml)), createSystemProbe(), { budgetBytes: 1024 ** 3 });
    assert.equal(Object.getPrototypeOf(c.agents), null, 'agents: no prototype');
    assert.deepEqual(Object.keys(c.agents), ['constructor', 'toString']);
    assert.equal(at(c.agents, 'constructor')!.memoryBytes, 10 * 1024 ** 2);
    assert.equal(at(c.agents, 'toString')!.memoryBytes, 20 * 1024 ** 2);
    assert.equal(at(c.agents, 'valueOf'), undefined);
    assert.equal(at(c.agents, 'hasOwnProperty'), undefined);
    assert.equal(at(c.tasks[0]!.env, 'constructor'), 'x');
    assert.equal(at(c.tasks[1]!.env, 'constructor'), undefined, 'an empty env has no inherited keys either');
    assert.equal(at(c.cache.namespaces, 'constructor')!.maxEntries, 5);
    assert.deepEqual(at(c.cache.namespaces, 'constructor')!.tiers, FALLBACK_POLICY.tiers);
    assert.equal(at(c.cache.namespaces, 'toString'), undefined);
  });

  it('namespace policies: a namespace named after Object.prototype starts from the fallback policy', () => {
    const out = namespacePolicies(null, { constructor: { ttlMs: 1000 }, toString: {} });
    assert.deepEqual({ ...at(out, 'constructor') }, { ...FALLBACK_POLICY, ttlMs: 1000 });
    assert.deepEqual({ ...at(out, 'toString') }, { ...FALLBACK_POLICY });
    assert.equal(at(namespacePolicies(null), 'valueOf'), undefined);
    assert.equal(at(DEFAULT_NAMESPACES, 'constructor'), undefined);
  });

  it('an anchor may serve many tasks; an alias bomb is an error at the first alias', () => {
    const tasks = Array.from({ length: 300 }, (_, i) => `  - { id: t${i}, agent: analyzer, run: "true", env: ${i === 0 ? '&common { A: "1", B: "2" }' : '*common'} }`).join('\n');
    const ok = `agents:\n  analyzer: { memory: 256MB }\ntasks:\n${tasks}\n`;
    assert.deepEqual(errorsOf(ok), [], '300 uses of one anchor are fine (the YAML library\'s own count stopped at 100)');
    const c = resolveConfig(loadWorkflowFile(writeWorkflow(ok)), createSystemProbe(), { budgetBytes: 1024 ** 3 });
    assert.deepEqual({ ...c.tasks[299]!.env }, { A: '1', B: '2' });
    const levels = ['l0: &l0 [a, a, a, a, a, a, a, a, a, a]'];
    for (let i = 1; i < 8; i++) levels.push(`l${i}: &l${i} [${Array(10).fill(`*l${i - 1}`).join(', ')}]`);
    const began = performance.now();
    const [bomb, ...rest] = errorsOf(`${levels.join('\n')}\n${base}`);
    assert.equal(rest.length, 0);
    assert.match(bomb!, /guild\.yaml:2:\d+: YAML aliases expand this document by more than 100000 values \(an alias bomb\?\)/);
    assert.ok(performance.now() - began < 5000, 'caught before it is expanded');
  });

  it('alias cycles, unknown aliases, non-plain tags, list keys and deep nesting are located errors', () => {
    assert.match(errorsOf(`x: &a { b: *a }\n${base}`)[0]!, /:1:\d+: alias \*a is inside its own anchor \(a cycle\)/);
    assert.match(errorsOf(`x: *nope\n${base}`)[0]!, /:1:\d+: unknown alias \*nope/);
    assert.match(errorsOf(`name: !!set { a, b }\n${base}`)[0]!, /:1:\d+: name: Expected a string, number, boolean, list or map, got a Set/);
    assert.match(errorsOf(`name: !!timestamp 2001-12-14\n${base}`)[0]!, /:1:\d+: name: Expected a string, number, boolean, list or map, got a Date/);
    assert.match(errorsOf(`? { a: 1 }\n: x\n${base}`)[0]!, /:1:\d+: Expected a name as a key, got a map/);
    assert.match(errorsOf(`name:\n${Array.from({ length: 70 }, (_, i) => `${'  '.repeat(i + 1)}k:`).join('\n')} 1\n${base}`)[0]!, /guild\.yaml:\d+:\d+: Expected maps and lists nested at most 64 deep/);
  });

  it('a workflow file over 16 MB is refused unparsed', () => {
    const file = writeWorkflow(`${base}# ${'x'.repeat(17 * 1024 ** 2)}\n`);
    assert.throws(() => loadWorkflowFile(file), (e: unknown) => e instanceof GuildError && e.code === 'CONFIG_INVALID' && /guild\.yaml:1: Expected a workflow file of at most 16 MB, got 17 MB/.test(e.message));
  });

  it('key paths quote keys that would blur them', () => {
    assert.equal(formatKeyPath(['agents', 'analyzer', 'memory']), 'agents.analyzer.memory');
    assert.equal(formatKeyPath(['tasks', 3, 'needs', 0]), 'tasks[3].needs[0]');
    assert.equal(formatKeyPath(['tasks', 0, 'env', 'A=B']), 'tasks[0].env["A=B"]');
    assert.equal(formatKeyPath(['tasks', 0, 'env', '']), 'tasks[0].env[""]');
    assert.equal(formatKeyPath(['agents', 'v1.2']), 'agents["v1.2"]');
    assert.equal(formatKeyPath(['telemetry', 'alerts', 'webhook_headers', 'Bad Header']), 'telemetry.alerts.webhook_headers.Bad Header');
  });
});

describe('.guild/instructions.md', () => {
  const instructions = (perf: string): string =>
    `# Instructions\n\nSome prose.\n\n\`\`\`yaml\n# .guild/instructions.md\nperformance:\n${perf}\n\`\`\`\n`;

  it('is read from the workflow folder or its parents; precedence is flags, file, instructions, defaults', () => {
    const root = tempDir();
    mkdirSync(join(root, '.guild'));
    writeFileSync(join(root, '.guild', 'instructions.md'), instructions('  parallelization:\n    enabled: true\n    max_parallel: 3\n  budget: 700MB\n  caching:\n    enabled: true'));
    const sub = join(root, 'project');
    mkdirSync(sub);
    const probe = createSystemProbe();
    const fromInstr = resolveConfig(loadWorkflowFile(writeWorkflow(base, sub)), probe);
    assert.equal(fromInstr.maxParallel, 3);
    assert.equal(fromInstr.budgetBytes, 700 * 1024 ** 2);
    assert.equal(fromInstr.budgetSource, 'instructions');
    assert.equal(fromInstr.instructionsFile, join(root, '.guild', 'instructions.md'));

    const fromFile = resolveConfig(loadWorkflowFile(writeWorkflow(`max_parallel: 5\nbudget: 900MB\n${base}`, sub)), probe);
    assert.equal(fromFile.maxParallel, 5);
    assert.equal(fromFile.budgetSource, 'workflow');

    const fromFlags = resolveConfig(loadWorkflowFile(writeWorkflow(`max_parallel: 5\n${base}`, sub)), probe, { maxParallel: 2, budgetBytes: 800 * 1024 ** 2 });
    assert.equal(fromFlags.maxParallel, 2);
    assert.equal(fromFlags.budgetSource, 'flag');
  });

  it('errors in it name the markdown file and its line', () => {
    const root = tempDir();
    mkdirSync(join(root, '.guild'));
    writeFileSync(join(root, '.guild', 'instructions.md'), instructions('  parallelization:\n    max_parallel: lots'));
    try {
      resolveConfig(loadWorkflowFile(writeWorkflow(base, root)), createSystemProbe());
      assert.fail('expected an error');
    } catch (e) {
      assert.ok(e instanceof ConfigErrors);
      assert.match(e.message, /instructions\.md:9:\d+: performance\.parallelization\.max_parallel: Expected number, got string "lots"/);
    }
  });
});

describe('guild run exits 2 on config errors before anything starts', () => {
  it('prints the located message and starts no task', async () => {
    const dir = tempDir();
    const marker = join(dir, 'ran');
    const file = writeWorkflow(`agents: { a: { memroy: 1GB } }\ntasks:\n  - { id: t, agent: a, run: "touch ${marker}" }\n`, dir);
    const r = await guild(['run', file]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /guild\.yaml:1:\d+: agents\.a\.memroy: unknown key; did you mean 'memory'\?/);
    const { existsSync } = await import('node:fs');
    assert.equal(existsSync(marker), false);
  });

  it('each kind of config error exits 2 with its message', async () => {
    const cases: [string, string, RegExp][] = [
      ['cycle', `agents: { a: {} }\ntasks:\n  - { id: x, agent: a, run: "true", needs: [y] }\n  - { id: y, agent: a, run: "true", needs: [x] }\n`, /:3:\d+: tasks\[0\]\.needs: dependency cycle: x → y → x/],
      ['unknown agent', `agents: { a: {} }\ntasks:\n  - { id: x, agent: b, run: "true" }\n`, /:3:\d+: tasks\[0\]\.agent: unknown agent 'b'/],
      ['duplicate id', `agents: { a: {} }\ntasks:\n  - { id: x, agent: a, run: "true" }\n  - { id: x, agent: a, run: "true" }\n`, /:4:\d+: tasks\[1\]\.id: duplicate task id 'x'/],
      ['never fits', `budget: 100MB\nagents: { a: { memory: 90MB } }\ntasks:\n  - { id: x, agent: a, run: "true" }\n`, /:2:\d+: agents\.a\.memory: .*can never start/],
      ['bad size', `agents: { a: { memory: lots } }\ntasks:\n  - { id: x, agent: a, run: "true" }\n`, /:1:\d+: agents\.a\.memory: Expected a size/],
      ['no tasks', `agents: { a: {} }\n`, /:1:1: tasks: no tasks to run: `guild run` needs `tasks:` \(and `agents:`\)$/m],
      ['no agents', `tasks:\n  - { id: x, agent: a, run: "true" }\n`, /:1:1: agents: required key is missing \(expected record\)$/m],
      ['bad mcp server', `agents: { a: {} }\ntasks:\n  - { id: x, agent: a, run: "true" }\nmcp:\n  servers:\n    fs: { command: npx, memory: lots }\n`, /:6:\d+: mcp\.servers\.fs\.memory: Expected a size/],
    ];
    for (const [name, yaml, re] of cases) {
      const r = await guild(['run', writeWorkflow(yaml), '--json']);
      assert.equal(r.code, 2, `${name}: ${r.stderr}`);
      assert.match(r.stderr, re, name);
      assert.equal(r.stdout, '', `${name}: nothing on stdout`);
    }
  });

  it('a missing file and a bad flag exit 2', async () => {
    const missing = await guild(['run', '/nonexistent/guild.yaml']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read the workflow file \(ENOENT\)/);
    const bad = await guild(['run', writeWorkflow(base), '--max-parallel', 'zero']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--max-parallel <n>' argument 'zero' is invalid\. Expected a whole number >= 1, got 'zero'/);
    const badBudget = await guild(['run', writeWorkflow(base), '--budget', 'huge']);
    assert.equal(badBudget.code, 2);
    assert.match(badBudget.stderr, /Expected a budget such as 600MB or 1\.5GB, got "huge"/);
  });
});
