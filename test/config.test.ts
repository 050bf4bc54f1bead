import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
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
