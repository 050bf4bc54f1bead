import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { defineRun } from '../src/cli/run-definition.js';
import { parseRunArgs } from '../src/cli/run-options.js';
import { guild, tempDir, writeWorkflow } from './helpers.js';

/** What commander makes of `guild run <args>`: the file and options, or null where it errors. */
function viaCommander(args: readonly string[]): { file: string; opts: unknown } | null {
  const program = new Command('guild').enablePositionalOptions().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  let got: { file: string; opts: unknown } | null = null;
  defineRun(program)
    .exitOverride()
    .action((file: string, opts: unknown) => void (got = { file, opts: { ...(opts as object) } }));
  try {
    program.parse(['node', 'guild', 'run', ...args]);
  } catch {
    return null;
  }
  return got;
}

describe("guild run's plain parser (cli/run-options.ts) against commander's", () => {
  it('gives what commander gives for every command line it takes, and hands the rest to commander', () => {
    const lines: string[][] = [
      ['guild.yaml'],
      ['guild.yaml', '--json'],
      ['--json', 'guild.yaml', '--progress', 'none', '--no-telemetry'],
      ['guild.yaml', '--budget', '1.5GB', '--max-parallel', '3', '--keep-going'],
      ['guild.yaml', '--budget=2GB', '--max-parallel=4', '--no-cache', '--no-wait'],
      ['guild.yaml', '--dashboard'],
      ['guild.yaml', '--dashboard', '0', '--host', '127.0.0.1', '--token', 'tk', '--dashboard-linger', '2.5'],
      ['guild.yaml', '--dashboard=8080', '--progress=plain'],
      ['guild.yaml', '--redis', 'redis://127.0.0.1:6379', '--json', '--json'],
      ['--dashboard', 'guild.yaml'], // commander takes guild.yaml as the port: an error either way
      ['guild.yaml', '--max-parallel', '0'],
      ['guild.yaml', '--progress', 'fancy'],
      ['guild.yaml', '--budget'],
      ['guild.yaml', '--unknown'],
      ['guild.yaml', '--cache'],
      ['guild.yaml', '-h'],
      ['guild.yaml', '--help'],
      ['guild.yaml', 'other.yaml'],
      [],
      ['--', 'guild.yaml'],
      ['guild.yaml', '--json=yes'],
      ['guild.yaml', '--dashboard-linger', '-1'],
    ];
    let plain = 0;
    for (const args of lines) {
      const fast = parseRunArgs(args);
      if (fast === null) continue; // commander's to answer, with its own messages
      plain++;
      assert.deepEqual(fast, viaCommander(args), `guild run ${args.join(' ')}`);
    }
    assert.equal(plain, 9, 'the ordinary command lines are parsed without commander');
  });

  it('an ordinary run of uncached tasks loads neither commander, child_process, zlib nor lru-cache; a mistake still gets commander\'s message and exit 2', async () => {
    const dir = tempDir();
    const file = writeWorkflow('agents: { a: { memory: 10MB } }\ntasks:\n  - { id: t, agent: a, run: "true" }\n', dir);
    const out = join(dir, 'loaded.json');
    // A preload writes, at exit, the built-in modules the process loaded and its CommonJS modules.
    const preload = join(dir, 'preload.mjs');
    // And a loader hook appends each ES module it loads to esm.txt.
    const esm = join(dir, 'esm.txt');
    const hook = `import { appendFileSync } from 'node:fs'; export async function load(u, c, n) { appendFileSync(${JSON.stringify(esm)}, u + '\\n'); return n(u, c); }`;
    writeFileSync(preload, `import { writeFileSync } from 'node:fs'; import { createRequire, register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));
const Module = createRequire(import.meta.url)('node:module');
process.on('exit', () => writeFileSync(${JSON.stringify(out)}, JSON.stringify({ builtins: process.moduleLoadList, cjs: Object.keys(Module._cache) })));`);
    const env = { ...process.env, NODE_OPTIONS: `--import=${preload}` };
    const loaded = (): { builtins: string[]; cjs: string[]; esm: string[] } => {
      const r = { ...(JSON.parse(readFileSync(out, 'utf8')) as { builtins: string[]; cjs: string[] }), esm: readFileSync(esm, 'utf8').split('\n') };
      writeFileSync(esm, '');
      return r;
    };
    const ok = await guild(['run', file, '--json', '--progress', 'none'], { env, cwd: dir });
    assert.equal(ok.code, 0, ok.stderr);
    const plain = loaded();
    assert.deepEqual(plain.builtins.filter((m) => /^NativeModule (child_process|zlib)$/.test(m)), []);
    assert.deepEqual(plain.cjs.filter((f) => /node_modules\/(commander|lru-cache)\//.test(f)), []);
    assert.ok(plain.cjs.some((f) => f.includes('better-sqlite3')), 'the preload sees the CommonJS modules a run loads');
    // No task can be cached: the cache's tiers are not opened, and the report names them all the same.
    assert.deepEqual(plain.esm.filter((u) => /\/cache\/(open|layered-cache|sqlite-tier)\.js$/.test(u)), []);
    assert.ok(plain.esm.some((u) => u.endsWith('/workflow/run.js')), 'the hook sees the ES modules a run loads');
    const report = JSON.parse(ok.stdout) as { cache: { enabled: boolean; tiers: string[] }; tasks: { cache: { reason: string } }[] };
    assert.equal(report.cache.enabled, true);
    assert.deepEqual(report.cache.tiers, ['memory', 'sqlite']);
    assert.equal(report.tasks[0]!.cache.reason, 'no inputs declared');
    // A task with inputs: the tiers open as before.
    writeFileSync(join(dir, 'in.txt'), 'x');
    const cached = writeWorkflow('agents: { a: { memory: 10MB } }\ntasks:\n  - { id: t, agent: a, run: "true", inputs: [in.txt] }\n', dir);
    const withInputs = await guild(['run', cached, '--json', '--progress', 'none'], { env, cwd: dir });
    assert.equal(withInputs.code, 0, withInputs.stderr);
    assert.ok(loaded().esm.some((u) => u.endsWith('/cache/open.js')), 'a cacheable task opens the cache');
    const bad = await guild(['run', file, '--max-parallel', 'x'], { env, cwd: dir });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /option '--max-parallel <n>' argument 'x' is invalid\. Expected a whole number >= 1/);
    assert.ok(loaded().cjs.some((f) => f.includes('node_modules/commander/')), 'commander loads for the mistake');
  });
});
