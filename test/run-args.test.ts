import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { defineRun } from '../src/cli/run-definition.js';
import { parseRunArgs } from '../src/cli/run-options.js';
import { guild, writeWorkflow } from './helpers.js';

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

  it('an ordinary `guild run` runs without loading commander; a mistake still gets commander\'s message and exit 2', async () => {
    const file = writeWorkflow('agents: { a: { memory: 10MB } }\ntasks:\n  - { id: t, agent: a, run: "true" }\n');
    // A loader hook reports each module the run loads (on stderr, which the CLI leaves alone).
    const hook = `data:text/javascript,${encodeURIComponent("import { register } from 'node:module'; register('data:text/javascript,' + encodeURIComponent('export async function load(u, c, n) { if (u.includes(\"commander\")) process._rawDebug(\"LOADED \" + u); return n(u, c); }'));")}`;
    const ok = await guild(['run', file, '--json', '--progress', 'none'], { env: { ...process.env, NODE_OPTIONS: `--import=${hook}` } });
    assert.equal(ok.code, 0, ok.stderr);
    assert.doesNotMatch(ok.stderr, /LOADED .*commander/);
    const bad = await guild(['run', file, '--max-parallel', 'x'], { env: { ...process.env, NODE_OPTIONS: `--import=${hook}` } });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /option '--max-parallel <n>' argument 'x' is invalid\. Expected a whole number >= 1/);
    assert.match(bad.stderr, /LOADED .*commander/, 'the hook sees commander when it is loaded');
  });
});
