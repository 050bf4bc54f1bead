/**
 * `guild run` loads its workflow file in a short-lived child process (config/load-isolated.ts),
 * so that the configuration's code stays out of the process that waits on agents. What arrives
 * must be what `loadConfig` returns in the calling process: the same values, prototypes
 * (null-prototype maps: an agent named `constructor` stays an own key only) and frozenness; and
 * a bad file must be rejected with the same error class, code, message and locations.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig, type LoadConfigOptions } from '../src/config/load-config.js';
import { loadConfigIsolated } from '../src/config/load-isolated.js';
import type { ResolvedConfig } from '../src/config/resolve.js';
import { ConfigError, ConfigErrors, GuildError } from '../src/errors.js';
import { tempDir, writeWorkflow } from './helpers.js';

const FULL = `name: full
budget: 2GB
agents:
  constructor: { memory: 10MB, route: { keywords: [parse], patterns: ["lex.*"] }, kind: knowledge }
  toString: { memory: 20MB, limit: 40MB, node_heap: auto, timeout: 45s }
tasks:
  - { id: one, agent: constructor, run: "true", env: { constructor: x, A: 1 }, inputs: "*.yaml", outputs: [out/*] }
  - { id: two, agent: toString, needs: one, run: "true", priority: high }
cache:
  namespaces: { research: { ttl: 2h } }
mcp:
  servers:
    tools:
      command: uvx
      env: { LOG: debug, toString: y }
      cacheable:
        - find_symbol
        - { tool: read_file, paths: [relative_path] }
`;

/** Everything but the effective limit, which the two loads measure at different moments. */
function comparable(c: ResolvedConfig): Omit<ResolvedConfig, 'effectiveLimitBytes'> {
  const { effectiveLimitBytes: _, ...rest } = c;
  return rest;
}

async function bothRejections(file: string, options: LoadConfigOptions = {}): Promise<[Error, Error]> {
  let here: Error | undefined;
  try {
    loadConfig(file, options);
  } catch (e) {
    here = e as Error;
  }
  assert.ok(here, 'loadConfig rejects the file');
  const there = await loadConfigIsolated(file, options).then(
    () => assert.fail('loadConfigIsolated resolved'),
    (e: unknown) => e as Error,
  );
  return [here, there];
}

describe('loadConfigIsolated: loadConfig in a child process', () => {
  it('resolves to what loadConfig returns: values, null prototypes, frozenness, instructions.md', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, '.guild'));
    writeFileSync(join(dir, '.guild', 'instructions.md'), '# Notes\n\n```yaml\nperformance:\n  parallelization:\n    max_parallel: 3\n```\n');
    const file = writeWorkflow(FULL, dir);
    const here = loadConfig(file, { keepGoing: true });
    const there = await loadConfigIsolated(file, { keepGoing: true });
    assert.deepStrictEqual(comparable(there), comparable(here)); // strict: prototypes compared too
    assert.equal(there.maxParallel, 3);
    assert.equal(Object.getPrototypeOf(there.agents), null);
    assert.equal(Object.getPrototypeOf(there.tasks[0]!.env), null);
    assert.equal(Object.isFrozen(there), Object.isFrozen(here));
    assert.equal(typeof there.effectiveLimitBytes, 'number');
  });

  it('rejects a file with several errors with the same ConfigErrors: message, code and each location', async () => {
    const file = writeWorkflow('agents:\n  a: { memory: 12XB, memroy: 1GB }\ntasks:\n  - { id: one, agent: b, run: "true", priority: urgent }\n');
    const [here, there] = await bothRejections(file);
    assert.ok(here instanceof ConfigErrors && there instanceof ConfigErrors, `${there.name}: ${there.message}`);
    assert.equal(there.message, here.message);
    assert.equal(there.code, here.code);
    assert.deepEqual(
      there.errors.map((e) => [e.message, e.location, e.code]),
      here.errors.map((e) => [e.message, e.location, e.code]),
    );
    assert.ok(there.errors.every((e) => e instanceof ConfigError));
  });

  it('rejects a missing file with the same ConfigError (CONFIG_NOT_FOUND)', async () => {
    const [here, there] = await bothRejections(join(tempDir(), 'absent.yaml'));
    assert.ok(there instanceof ConfigError && !(there instanceof ConfigErrors), `${there.name}: ${there.message}`);
    assert.equal(there.code, 'CONFIG_NOT_FOUND');
    assert.equal(there.message, here.message);
    assert.deepEqual(there.location, (here as ConfigError).location);
  });

  it('rejects a bad budget flag with the same GuildError (INVALID_OPTION)', async () => {
    const file = writeWorkflow('agents: { a: {} }\ntasks:\n  - { id: one, agent: a, run: "true" }\n');
    const [here, there] = await bothRejections(file, { budget: '12XB' });
    assert.ok(there instanceof GuildError, `${there.name}: ${there.message}`);
    assert.equal(there.code, 'INVALID_OPTION');
    assert.equal(there.message, here.message);
  });
});
