/**
 * The gateway from the command line: `guild mcp serve` (bad config, state file, status, an
 * orderly end), `guild mcp stdio` for a stdio-only client, and `guild run` with `mcp:` (every task
 * gets GUILD_MCP_URL, the report lists the backends, nothing outlives the run).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { GatewayStatus } from '../src/telemetry/mcp-status.js';
import { alive, GUILD, guild, ROOT, tempDir } from './helpers.js';
import { EVERYTHING, serverYaml, text, until } from './gateway-helpers.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function folder(yaml: string): { dir: string; file: string } {
  const dir = tempDir('guild-gw-cli-');
  dirs.push(dir);
  const file = join(dir, 'guild.yaml');
  writeFileSync(file, yaml);
  return { dir, file };
}
const SERVERS = `mcp:\n  servers:\n${serverYaml('everything', EVERYTHING, ['stdio'])}`;

describe('guild mcp', { timeout: 120_000 }, () => {
  it('serve: a bad server entry is a config error naming file, line and key, exit 2, nothing started', async () => {
    const { dir, file } = folder(`mcp:\n  servers:\n    everything:\n      command: node\n      isolation: per-galaxy\n`);
    const r = await guild(['mcp', 'serve', file, '--port', '0']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /guild\.yaml:5:\d+: mcp\.servers\.everything\.isolation/);
    assert.equal(r.stdout, '');
    assert.equal(existsSync(join(dir, '.guild', 'mcp-gateway.json')), false);
  });

  it('status with no gateway running says so, exit 1', async () => {
    const { file } = folder(SERVERS);
    const r = await guild(['mcp', 'status', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no gateway is serving/);
    assert.doesNotMatch(r.stderr, /last learned/, 'nothing was learned in this folder');
  });

  it('serve: says where it serves, records it, answers status, and ends every backend on SIGTERM', async () => {
    const { dir, file } = folder(SERVERS);
    const child = spawn(process.execPath, [GUILD, 'mcp', 'serve', file, '--port', '0'], { cwd: ROOT });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    try {
      await until('the gateway to serve', () => /serving http/.test(out));
      assert.match(out, /^guild mcp: serving http:\/\/127\.0\.0\.1:\d+\/mcp \(1 server: everything\)\n$/);
      const state = JSON.parse(readFileSync(join(dir, '.guild', 'mcp-gateway.json'), 'utf8')) as { pid: number; url: string };
      assert.equal(state.pid, child.pid);
      const s = await guild(['mcp', 'status', file, '--json']);
      assert.equal(s.code, 0, s.stderr);
      const status = JSON.parse(s.stdout) as GatewayStatus;
      assert.equal(status.url, state.url);
      const pids = status.backends.flatMap((b) => b.pids);
      assert.equal(pids.length, 1);
      const human = await guild(['mcp', 'status', file]);
      assert.equal(human.code, 0);
      assert.match(human.stdout, /everything/);
      const second = await guild(['mcp', 'serve', file, '--port', '0']);
      assert.equal(second.code, 1, 'a folder has one gateway');
      assert.match(second.stderr, /already serves/);
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.ok(!pids.some(alive), 'no backend outlives the gateway');
      assert.equal(existsSync(join(dir, '.guild', 'mcp-gateway.json')), false, 'the state file is removed');
      const after = await guild(['mcp', 'status', file]);
      assert.equal(after.code, 1, 'none serves now');
      assert.match(after.stderr, /no gateway is serving/);
      assert.match(after.stderr, /last learned here:\n {2}everything: ([1-9]\d*) tools, \d+ resources, \d+ prompts \(\S*node .*server-everything.* stdio; learned 20\d\d-/, 'what it learned is kept in the store');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('stdio: a stdio-only client gets the servers through a gateway started for it', async () => {
    const { dir, file } = folder(SERVERS);
    const transport = new StdioClientTransport({ command: process.execPath, args: [GUILD, 'mcp', 'stdio', file], cwd: ROOT, stderr: 'pipe' });
    const c = new Client({ name: 'stdio-test', version: '1' });
    await c.connect(transport);
    const tools = (await c.listTools()).tools.map((t) => t.name);
    assert.ok(tools.includes('echo'), tools.join(', '));
    assert.equal(text(await c.callTool({ name: 'echo', arguments: { message: 'through stdio' } })), 'Echo: through stdio');
    const state = JSON.parse(readFileSync(join(dir, '.guild', 'mcp-gateway.json'), 'utf8')) as { pid: number; url: string };
    const status = (await (await fetch(new URL('/status', state.url))).json()) as GatewayStatus;
    const pids = status.backends.flatMap((b) => b.pids);
    const guildPid = transport.pid!;
    await c.close();
    await until('guild mcp stdio to end with its client', () => !alive(guildPid));
    assert.ok(!pids.some(alive), 'its backends end with it');
  });
});

describe('guild run with mcp:', { timeout: 120_000 }, () => {
  it('every task reaches the run’s gateway through GUILD_MCP_URL; --json lists the backends; nothing outlives the run', async () => {
    const client = join(ROOT, 'test', 'fixtures', 'mcp-call.mjs');
    const { dir, file } = folder(
      `${SERVERS}agents:\n  client: { memory: 100MB }\ntasks:\n` +
        ['a', 'b', 'c'].map((id) => `  - { id: ${id}, agent: client, run: ${JSON.stringify(`${process.execPath} ${client} get-sum ${id}`)} }\n`).join(''),
    );
    const r = await guild(['run', file, '--json', '--progress', 'none'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { ok: boolean; tasks: { id: string; status: string }[]; mcp: GatewayStatus; log_dir: string };
    assert.ok(report.ok);
    for (const id of ['a', 'b', 'c']) assert.match(readFileSync(join(report.log_dir, `${id}.log`), 'utf8'), /The sum of \d+ and 1 is/);
    const b = report.mcp.backends;
    assert.equal(b.length, 1);
    assert.equal(b[0]!.calls, 3);
    assert.ok(b[0]!.peakRssBytes > 0);
    assert.equal(b[0]!.allPids.length, 1);
    assert.ok(!alive(b[0]!.allPids[0]!), 'the backend ended with the run');
  });
});
