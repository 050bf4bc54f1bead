/**
 * The `mcp:` section of a workflow file and a client's `.mcp.json` read as it is (issue 12, item
 * 1): what the gateway is given (sizes in bytes, durations in ms, cwd absolute, env without a
 * prototype, every default applied), a file for the gateway only, `guild run` of such a file
 * (exit 2, no tasks), and every bad value located by file, line and key.
 */
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULTS } from '../src/config/defaults.js';
import { loadConfig, loadGatewayConfig } from '../src/config/load-config.js';
import { isMcpServerName, MCP_NAME_MAX, MCP_SERVER_NAME_MAX } from '../src/config/schema.js';
import { ConfigErrors } from '../src/errors.js';
import { guild, tempDir, writeWorkflow } from './helpers.js';

const MB = 1024 ** 2;
const tasks = 'agents: { a: {} }\ntasks:\n  - { id: t, agent: a, run: "true" }\n';

/** A file of `name` with `text` in a fresh folder. */
function fileOf(name: string, text: string, dir = tempDir('guild-mcp-')): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** The messages loading a gateway file fails with (it must fail with ConfigErrors). */
function gatewayErrors(file: string, budget = '4GB'): string[] {
  try {
    loadGatewayConfig(file, { budget });
  } catch (e) {
    assert.ok(e instanceof ConfigErrors, `expected ConfigErrors, got ${e instanceof Error ? e.stack : String(e)}`);
    assert.equal(e.code, 'CONFIG_INVALID');
    return e.errors.map((x) => x.message);
  }
  assert.fail(`expected ${file} to be refused`);
}

/** Asserts that `messages` has one matching each of `expected`, and nothing else. */
function assertErrors(messages: string[], expected: RegExp[]): void {
  for (const re of expected) assert.ok(messages.some((m) => re.test(m)), `no error matches ${re}; got:\n${messages.join('\n')}`);
  assert.equal(messages.length, expected.length, `errors:\n${messages.join('\n')}`);
}

const FULL = `name: tools
budget: 2GB
mcp:
  tool_ttl: 10m
  servers:
    serena:
      type: stdio
      command: uvx
      args: [--from, "git+https://github.com/oraios/serena", serena, start-mcp-server, --port, 9121, --verbose, true]
      env: { SERENA_LOG: debug, constructor: x, FROM_ENV: "\${GUILD_MCP_TEST_VAR}", DEFAULTED: "\${GUILD_MCP_TEST_UNSET:-fallback}", LITERAL: "$GUILD_MCP_TEST_VAR" }
      cwd: tools/serena
      memory: 300MB
      limit: 600MB
      instances: { min: 0, max: 2, concurrency: 4 }
      idle_timeout: 5m
      isolation: per-project
      cacheable:
        - find_symbol
        - { tool: read_file, paths: [relative_path, relative_path] }
        - { tool: get_symbols_overview }
    memory:
      command: npx
      args: [-y, "@modelcontextprotocol/server-memory"]
      env: { MEMORY_FILE_PATH: "\${GUILD_MCP_TEST_VAR}/memory.json" }
      isolation: shared
      prefix: false
    archive:
      command: /usr/bin/archive-server
      cwd: /srv/archive
      isolation: per-session
      instances: { min: 3 }
`;

describe('mcp: in a workflow file', () => {
  it('a full section resolves to bytes, ms, absolute folders and null-prototype env, in the order written', () => {
    process.env.GUILD_MCP_TEST_VAR = '/data/guild';
    try {
      const file = fileOf('guild.yaml', FULL);
      const dir = join(file, '..');
      const c = loadGatewayConfig(file);
      assert.equal(c.budgetBytes, 2 * 1024 ** 3);
      assert.equal(c.mcp.toolTtlMs, 600_000);
      assert.deepEqual(
        c.mcp.servers.map((s) => s.name),
        ['serena', 'memory', 'archive'],
      );
      const [serena, memory, archive] = c.mcp.servers;
      assert.deepEqual(serena, {
        name: 'serena',
        command: 'uvx',
        args: ['--from', 'git+https://github.com/oraios/serena', 'serena', 'start-mcp-server', '--port', '9121', '--verbose', 'true'],
        env: Object.assign(Object.create(null) as object, {
          SERENA_LOG: 'debug',
          constructor: 'x',
          FROM_ENV: '/data/guild',
          DEFAULTED: 'fallback',
          LITERAL: '$GUILD_MCP_TEST_VAR',
        }),
        cwd: join(dir, 'tools', 'serena'),
        memoryBytes: 300 * MB,
        limitBytes: 600 * MB,
        instances: { min: 0, max: 2, concurrency: 4 },
        idleTimeoutMs: 300_000,
        isolation: 'per-project',
        cacheable: [
          { tool: 'find_symbol', paths: [] },
          { tool: 'read_file', paths: ['relative_path'] },
          { tool: 'get_symbols_overview', paths: [] },
        ],
        prefix: true,
        kind: null,
      });
      assert.equal(Object.getPrototypeOf(serena!.env), null, 'env has no prototype');
      assert.equal(memory!.env.MEMORY_FILE_PATH, '/data/guild/memory.json');
      assert.equal(memory!.isolation, 'shared');
      assert.equal(memory!.prefix, false, 'an explicit prefix: false is kept');
      assert.equal(archive!.cwd, '/srv/archive', 'an absolute cwd stays as written');
      assert.equal(archive!.isolation, 'per-session');
      assert.deepEqual(archive!.instances, { min: 3, max: 5, concurrency: null });
      assert.equal(Object.getPrototypeOf(archive!.env), null);
      assert.deepEqual(c.tasks, [], 'a gateway-only file has no tasks');
      assert.deepEqual(Object.keys(c.agents), []);
      assert.deepEqual(c.warnings, []);
    } finally {
      delete process.env.GUILD_MCP_TEST_VAR;
    }
  });

  it('defaults: 100 MB, 1 to 5 instances, 60 s idle, per-project, 5 min TTL, no prefix for a single server', () => {
    const c = loadGatewayConfig(fileOf('guild.yaml', 'mcp:\n  servers:\n    fs: { command: npx, args: [-y, "@modelcontextprotocol/server-filesystem", .] }\n'), { budget: '1GB' });
    assert.deepEqual(c.mcp, {
      servers: [
        {
          name: 'fs',
          command: 'npx',
          args: ['-y', '@modelcontextprotocol/server-filesystem', '.'],
          env: Object.create(null) as object,
          cwd: null,
          memoryBytes: 100 * MB,
          limitBytes: null,
          instances: { min: 1, max: 5, concurrency: null },
          idleTimeoutMs: 60_000,
          isolation: 'per-project',
          cacheable: [],
          prefix: false,
          kind: null,
        },
      ],
      toolTtlMs: 300_000,
    });
    // The same numbers are DEFAULTS' (nothing else invents a default).
    assert.equal(DEFAULTS.mcp.memoryBytes, 100 * MB);
    assert.deepEqual(DEFAULTS.mcp.instances, { min: 1, max: 5 });
    assert.equal(DEFAULTS.mcp.scaleUpWaiting, 3);
    assert.equal(DEFAULTS.mcp.admissionWaitMs, 30_000);
    assert.equal(DEFAULTS.mcp.toolTtlMs, 300_000);
    assert.equal(DEFAULTS.mcp.idleTimeoutMs, 60_000);
  });

  it('a gateway-only file has everything a gateway needs besides: budget, governor, pools, cache, telemetry', () => {
    const file = fileOf('gateway.yaml', 'budget: 1500MB\ngovernor: { high: 85% }\ncache: { memory: 64MB }\ntelemetry: { snapshot_interval: 2s }\nmcp:\n  servers:\n    a: { command: x }\n    b: { command: y }\n');
    const c = loadGatewayConfig(file);
    assert.equal(c.budgetBytes, 1500 * MB);
    assert.equal(c.budgetSource, 'workflow');
    assert.equal(c.governor.thresholds.high, 0.85);
    assert.equal(c.cache.memoryBytes, 64 * MB);
    assert.equal(c.telemetry.snapshotIntervalMs, 2000);
    assert.equal(c.dir, join(file, '..'));
    assert.deepEqual(
      c.mcp.servers.map((s) => `${s.name}:${s.prefix}`),
      ['a:true', 'b:true'],
      'with several servers names are prefixed by default',
    );
    // The flag wins over the file, as for a run.
    assert.equal(loadGatewayConfig(file, { budget: '3GB' }).budgetBytes, 3 * 1024 ** 3);
  });

  it('a workflow with tasks and mcp: runs as before and carries its servers; without mcp: it has none', () => {
    const withMcp = loadConfig(writeWorkflow(`${tasks}mcp:\n  servers:\n    fs: { command: npx }\n`), { budget: '1GB' });
    assert.equal(withMcp.tasks.length, 1);
    assert.deepEqual(
      withMcp.mcp?.servers.map((s) => s.name),
      ['fs'],
    );
    assert.equal(loadConfig(writeWorkflow(tasks), { budget: '1GB' }).mcp, null);
    // The same file serves the gateway too, its tasks checked.
    assert.equal(loadGatewayConfig(writeWorkflow(`${tasks}mcp:\n  servers:\n    fs: { command: npx }\n`)).tasks.length, 1);
  });

  it('a definition object may declare mcp; its errors name key paths', () => {
    const ok = loadConfig({ agents: { a: {} }, tasks: [{ id: 't', agent: 'a', run: 'true' }], mcp: { servers: { fs: { command: 'npx', memory: '50MB' } } } }, { budget: '1GB', dir: tempDir() });
    assert.equal(ok.mcp?.servers[0]?.memoryBytes, 50 * MB);
    assert.throws(
      () => loadConfig({ agents: { a: {} }, tasks: [{ id: 't', agent: 'a', run: 'true' }], mcp: { servers: { fs: { args: ['x'] } } } }, { dir: tempDir() }),
      (e: unknown) => e instanceof ConfigErrors && /^<definition>: mcp\.servers\.fs\.command: required key is missing/.test(e.message),
    );
  });

  it('server names: usable in <server>__<tool> within 128 characters', () => {
    const good = ['a', 'A1', 'serena', 'code-analysis', 'my_server', 'x-', '9lives', 'constructor', 'toString', 'a'.repeat(MCP_SERVER_NAME_MAX)];
    const bad = ['', '_a', '-a', 'a__b', 'a_', 'a.b', 'a b', 'a/b', 'é', 'a'.repeat(MCP_SERVER_NAME_MAX + 1)];
    for (const n of good) assert.ok(isMcpServerName(n), n);
    for (const n of bad) assert.ok(!isMcpServerName(n), n);
    // The longest name and its separator leave room for any tool name MCP recommends (64).
    assert.ok(MCP_SERVER_NAME_MAX + 2 + 64 <= MCP_NAME_MAX);

    const c = loadGatewayConfig(fileOf('guild.yaml', `mcp:\n  servers:\n${good.map((n) => `    ${n}: { command: x }`).join('\n')}\n`), { budget: '8GB' });
    assert.deepEqual(
      c.mcp.servers.map((s) => s.name),
      good,
    );
    const msgs = gatewayErrors(fileOf('guild.yaml', `mcp:\n  servers:\n${bad.map((n) => `    ${JSON.stringify(n)}: { command: x }`).join('\n')}\n`));
    assert.equal(msgs.length, bad.length, msgs.join('\n'));
    bad.forEach((n, i) => {
      assert.ok(
        msgs.some((m) => m.includes(`guild.yaml:${i + 3}:5: mcp.servers`) && m.endsWith(`tools are exposed as <server>__<tool>, got ${JSON.stringify(n)}`)),
        `${JSON.stringify(n)}:\n${msgs.join('\n')}`,
      );
    });
  });

  it('every bad value is an error naming file, line and key, all reported at once', () => {
    const file = fileOf(
      'guild.yaml',
      [
        'mcp:', //                                                                       1
        '  tool_ttl: 0', //                                                              2
        '  toolttl: 5m', //                                                              3
        '  servers:', //                                                                 4
        '    remote: { type: sse, url: "http://127.0.0.1:8051/sse" }', //                5
        '    s1:', //                                                                    6
        '      command: ""', //                                                          7
        '      args: [a, { x: 1 }]', //                                                  8
        '      env: { "A=B": 1, "": 2, OK: "x\\0y" }', //                                 9
        '      cwd: "a\\0b"', //                                                          10
        '      memory: 12XB', //                                                         11
        '      limit: -1', //                                                            12
        '      instances: { min: -1, max: 0, concurrency: 1.5, maxx: 3 }', //            13
        '      idle_timeout: 597h', //                                                   14
        '      isolation: per-user', //                                                  15
        '      cacheable: [ok, "has space", { tool: t, pathz: [a] }, 5, { paths: [p] }]', // 16
        '      prefix: maybe', //                                                        17
        '      comand: x', //                                                            18
        '      type: websocket-ish', //                                                  19
      ].join('\n'),
    );
    assertErrors(gatewayErrors(file), [
      /guild\.yaml:2:\d+: mcp\.tool_ttl: Expected a duration of at least 1ms, got 0$/,
      /guild\.yaml:3:3: mcp\.toolttl: unknown key; did you mean 'tool_ttl'\?$/,
      /guild\.yaml:5:\d+: mcp\.servers\.remote\.type: only stdio servers \(command, args, env\) are supported for now; 'remote' is a remote server \(type: sse\): connect your client to it directly$/,
      /guild\.yaml:7:\d+: mcp\.servers\.s1\.command: Expected a non-empty string$/,
      /guild\.yaml:8:\d+: mcp\.servers\.s1\.args\[1\]: Expected a string \(or a number\), got a map$/,
      /guild\.yaml:9:\d+: mcp\.servers\.s1\.env\["A=B"\]: Expected an environment variable name/,
      /guild\.yaml:9:\d+: mcp\.servers\.s1\.env\[""\]: Expected an environment variable name/,
      /guild\.yaml:9:\d+: mcp\.servers\.s1\.env\.OK: Expected an environment value without a NUL character$/,
      /guild\.yaml:10:\d+: mcp\.servers\.s1\.cwd: Expected a folder without a NUL character$/,
      /guild\.yaml:11:\d+: mcp\.servers\.s1\.memory: Expected a size such as 256MB, 1\.5GB or 512MiB, got "12XB"$/,
      /guild\.yaml:12:\d+: mcp\.servers\.s1\.limit: Expected a size such as 256MB, 1\.5GB or 512MiB, got -1$/,
      /guild\.yaml:13:\d+: mcp\.servers\.s1\.instances\.min: Expected a number >= 0, got number -1$/,
      /guild\.yaml:13:\d+: mcp\.servers\.s1\.instances\.max: Expected a number >= 1, got number 0$/,
      /guild\.yaml:13:\d+: mcp\.servers\.s1\.instances\.concurrency: Expected int, got number 1\.5$/,
      /guild\.yaml:13:\d+: mcp\.servers\.s1\.instances\.maxx: unknown key; did you mean 'max'\?$/,
      /guild\.yaml:14:\d+: mcp\.servers\.s1\.idle_timeout: Expected a duration of at most 2147483647 ms \(about 596\.5h, the longest timer Node\.js can set\), got "597h"$/,
      /guild\.yaml:15:\d+: mcp\.servers\.s1\.isolation: Expected one of shared, per-project, per-session, got string "per-user"$/,
      /guild\.yaml:16:\d+: mcp\.servers\.s1\.cacheable\[1\]: Expected a tool name of 1 to 128 characters without spaces or control characters$/,
      /guild\.yaml:16:\d+: mcp\.servers\.s1\.cacheable\[2\]\.pathz: unknown key; did you mean 'paths'\?$/,
      /guild\.yaml:16:\d+: mcp\.servers\.s1\.cacheable\[3\]: Expected a tool name \(1 to 128 characters, no spaces\) or \{ tool: name, paths: \[argument names\] \}, got number 5$/,
      /guild\.yaml:16:\d+: mcp\.servers\.s1\.cacheable\[4\]: Expected a tool name .* got a map$/,
      /guild\.yaml:17:\d+: mcp\.servers\.s1\.prefix: Expected boolean, got string "maybe"$/,
      /guild\.yaml:18:7: mcp\.servers\.s1\.comand: unknown key; did you mean 'command'\?$/,
      /guild\.yaml:19:\d+: mcp\.servers\.s1\.type: Expected one of stdio, got string "websocket-ish"$/,
    ]);
  });

  it('values that need the others: limit >= memory, min <= max, a tool listed once, variables set, an instance within the budget', () => {
    const file = fileOf(
      'guild.yaml',
      [
        'budget: 1GB', //                                                    1
        'mcp:', //                                                           2
        '  servers:', //                                                     3
        '    s1:', //                                                        4
        '      command: "${GUILD_MCP_TEST_SURELY_UNSET}/bin/server"', //     5
        '      memory: 300MB', //                                            6
        '      limit: 200MB', //                                             7
        '      instances: { min: 4, max: 2 }', //                            8
        '      cacheable: [a, { tool: a, paths: [p] }]', //                  9
        '    s2:', //                                                        10
        '      command: x', //                                               11
        '      memory: 900MB', //                                            12
        '      limit: 50MB', //                                              13
        '    s3:', //                                                        14
        '      command: x', //                                               15
        '      limit: 64MB', //                                              16
      ].join('\n'),
    );
    assertErrors(gatewayErrors(file, '1GB'), [
      /guild\.yaml:5:\d+: mcp\.servers\.s1\.command: names an unset environment variable \$\{GUILD_MCP_TEST_SURELY_UNSET\} \(give a default: \$\{GUILD_MCP_TEST_SURELY_UNSET:-value\}\)$/,
      /guild\.yaml:7:\d+: mcp\.servers\.s1\.limit: Expected a limit >= memory \(300 MB\), got 200 MB$/,
      /guild\.yaml:8:\d+: mcp\.servers\.s1\.instances\.min: Expected instances\.min <= max \(2\), got 4$/,
      /guild\.yaml:9:\d+: mcp\.servers\.s1\.cacheable\[1\]: tool 'a' is listed twice \(first at cacheable\[0\]\)$/,
      /guild\.yaml:12:\d+: mcp\.servers\.s2\.memory: MCP server 's2' expects 900 MB per instance; with 1\.2× headroom an instance needs 1\.05 GB free, but the budget is 1\.00 GB \(flag\): it can never start/,
      /guild\.yaml:13:\d+: mcp\.servers\.s2\.limit: Expected a limit >= memory \(900 MB\), got 50\.0 MB$/,
      /guild\.yaml:16:\d+: mcp\.servers\.s3\.limit: Expected a limit >= memory \(100 MB, the default\), got 64\.0 MB$/,
    ]);
  });

  it('first instances that cannot all fit are a warning, not an error', () => {
    const yaml = 'mcp:\n  servers:\n    a: { command: x, memory: 400MB }\n    b: { command: y, memory: 400MB }\n';
    // Together 800 MB, and the last one admitted needs its 1.2× headroom: 880 MB.
    const c = loadGatewayConfig(fileOf('guild.yaml', yaml), { budget: '850MB' });
    assert.equal(c.warnings.length, 1, c.warnings.join('\n'));
    assert.match(c.warnings[0]!, /^the first instances of the 2 MCP servers expect 800 MB together \(880 MB with headroom\), more than the budget 850 MB \(flag\): they cannot all run at once/);
    assert.deepEqual(loadGatewayConfig(fileOf('guild.yaml', yaml), { budget: '900MB' }).warnings, []);
  });

  it('prototype keys: __proto__ is refused anywhere in mcp:, other names are names', () => {
    for (const [yaml, re] of [
      ['mcp:\n  servers:\n    __proto__: { command: x }\n', /guild\.yaml:3:5: mcp\.servers\.__proto__: `__proto__` cannot be a name$/],
      ['mcp:\n  servers:\n    a:\n      command: x\n      env: { __proto__: y }\n', /guild\.yaml:5:\d+: mcp\.servers\.a\.env\.__proto__: `__proto__` cannot be a name$/],
      ['mcp:\n  __proto__: {}\n  servers: { a: { command: x } }\n', /guild\.yaml:2:3: mcp\.__proto__: `__proto__` cannot be a name$/],
    ] as const) {
      const msgs = gatewayErrors(fileOf('guild.yaml', yaml));
      assert.ok(msgs.some((m) => re.test(m)), `${re}:\n${msgs.join('\n')}`);
    }
  });

  it('a file for the gateway needs mcp:; its tasks, when it has some, are checked', () => {
    assertErrors(gatewayErrors(fileOf('guild.yaml', tasks)), [/guild\.yaml:1:1: mcp: no MCP servers: the gateway needs `mcp: \{ servers: \{ <name>: \{ command, args \} \} \}`$/]);
    assertErrors(gatewayErrors(fileOf('guild.yaml', 'mcp:\n  servers: {}\n')), [/guild\.yaml:2:\d+: mcp\.servers: Expected at least one server/]);
    assertErrors(gatewayErrors(fileOf('guild.yaml', 'mcp:\n  servers:\n    a: { command: x }\ntasks:\n  - { id: t, agent: nobody, run: "true" }\n')), [/guild\.yaml:5:\d+: tasks\[0\]\.agent: unknown agent 'nobody' \(no agents are declared\)$/]);
    assertErrors(gatewayErrors(fileOf('guild.yaml', '- a list\n')), [/guild\.yaml:1:1: Expected a map with `mcp:` \(or a client's `mcpServers`\), got a list$/]);
  });
});

/**
 * A project's `.mcp.json` as Claude Code writes it (`claude mcp add --scope project`, its
 * documented env expansion), with a remote server, and keys of other clients (Cline's
 * `autoApprove`, `disabled`, `timeout`) that Guild does not read.
 */
const CLAUDE_MCP_JSON = `{
  "mcpServers": {
    "serena": {
      "type": "stdio",
      "command": "uvx",
      "args": ["--from", "git+https://github.com/oraios/serena", "serena", "start-mcp-server", "--context", "ide-assistant", "--project", "\${GUILD_MCP_TEST_PROJECT:-.}"],
      "env": {}
    },
    "memory": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-memory"],
      "env": { "MEMORY_FILE_PATH": "\${GUILD_MCP_TEST_PROJECT:-/tmp}/memory.jsonl" },
      "autoApprove": ["read_graph"],
      "disabled": false,
      "timeout": 60
    },
    "api-server": {
      "type": "http",
      "url": "\${API_BASE_URL:-https://api.example.com}/mcp",
      "headers": { "Authorization": "Bearer \${API_KEY}" }
    },
    "legacy-sse": { "type": "sse", "url": "https://example.com/sse" },
    "old": { "command": "old-server", "disabled": true },
    "filesystem": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "."],
      "memory": "150MB",
      "cacheable": [{ "tool": "read_text_file", "paths": ["path"] }],
      "instances": { "max": 2 }
    }
  },
  "globalShortcut": "Ctrl+Space"
}
`;

describe("a client's .mcp.json, read as it is", () => {
  it('its stdio servers are the gateway servers, with Guild defaults; what Guild does not run is a located warning', () => {
    const file = fileOf('.mcp.json', CLAUDE_MCP_JSON);
    const c = loadGatewayConfig(file, { budget: '2GB' });
    assert.deepEqual(
      c.mcp.servers.map((s) => s.name),
      ['serena', 'memory', 'filesystem'],
    );
    const [serena, memory, fs] = c.mcp.servers;
    assert.deepEqual(serena!.args.slice(-2), ['--project', '.'], '${VAR:-default} expanded as Claude Code does');
    assert.equal(serena!.memoryBytes, DEFAULTS.mcp.memoryBytes);
    assert.equal(serena!.prefix, true);
    assert.equal(memory!.env.MEMORY_FILE_PATH, '/tmp/memory.jsonl');
    assert.equal(Object.getPrototypeOf(memory!.env), null);
    assert.equal(fs!.memoryBytes, 150 * MB, "Guild's own keys may be added to an entry");
    assert.deepEqual(fs!.cacheable, [{ tool: 'read_text_file', paths: ['path'] }]);
    assert.deepEqual(fs!.instances, { min: 1, max: 2, concurrency: null });
    assert.equal(c.mcp.toolTtlMs, DEFAULTS.mcp.toolTtlMs);
    assert.equal(c.dir, join(file, '..'));

    const w = c.warnings;
    const expected = [
      /\.mcp\.json:13:7: mcpServers\.memory\.autoApprove: ignored: Guild does not read this key$/,
      /\.mcp\.json:15:7: mcpServers\.memory\.timeout: ignored: Guild does not read this key$/,
      /\.mcp\.json:17:5: mcpServers\.api-server: skipped: only stdio servers \(command, args, env\) are supported for now, and this is a remote server \(type: http\); your client can keep connecting to it directly$/,
      /\.mcp\.json:22:5: mcpServers\.legacy-sse: skipped: only stdio servers .* \(type: sse\)/,
      /\.mcp\.json:23:5: mcpServers\.old: skipped: disabled: true$/,
      /\.mcp\.json:32:3: globalShortcut: ignored: a client's MCP configuration is read for `mcpServers` only$/,
    ];
    assert.equal(w.length, expected.length, w.join('\n'));
    expected.forEach((re, i) => assert.match(w[i]!, re, 'in file order'));
  });

  it('a misspelt key is a warning with a suggestion; a bad value is an error at mcpServers.<name>.<key>', () => {
    const file = fileOf(
      'claude_desktop_config.json',
      [
        '{', //                                                                  1
        '  "mcpServers": {', //                                                  2
        '    "serena": {', //                                                    3
        '      "comand": "uvx",', //                 4 (a warning; the missing command is the error)
        '      "args": ["serena", 5, null]', //                                  5
        '    },', //                                                             6
        '    "bad__name": { "command": "x" },', //                               7
        '    "fs": { "command": "npx", "env": { "A=B": "x" }, "memory": "lots", "isolation": "global" }', // 8
        '  }', //                                                                9
        '}', //                                                                  10
      ].join('\n'),
    );
    assertErrors(gatewayErrors(file), [
      /claude_desktop_config\.json:3:\d+: mcpServers\.serena\.command: required key is missing \(expected string\)$/,
      /claude_desktop_config\.json:5:\d+: mcpServers\.serena\.args\[2\]: Expected a string \(or a number\), got null$/,
      /claude_desktop_config\.json:7:5: mcpServers\.bad__name: Expected a server name/,
      /claude_desktop_config\.json:8:\d+: mcpServers\.fs\.env\["A=B"\]: Expected an environment variable name/,
      /claude_desktop_config\.json:8:\d+: mcpServers\.fs\.memory: Expected a size such as 256MB, 1\.5GB or 512MiB, got "lots"$/,
      /claude_desktop_config\.json:8:\d+: mcpServers\.fs\.isolation: Expected one of shared, per-project, per-session, got string "global"$/,
    ]);
    // A misspelt key Guild would read is set aside with a hint, not silently.
    const c = loadGatewayConfig(fileOf('x.json', '{ "mcpServers": { "serena": { "command": "uvx", "arsg": ["a"] } } }'), { budget: '1GB' });
    assert.deepEqual(c.warnings, [`${join(c.dir, 'x.json')}:1:49: mcpServers.serena.arsg: ignored: Guild does not read this key; did you mean 'args'?`]);
  });

  it('a file with only remote or disabled servers has nothing to serve: an error that says why', () => {
    const file = fileOf('.mcp.json', '{\n  "mcpServers": {\n    "api": { "type": "http", "url": "https://x/mcp" },\n    "off": { "command": "x", "disabled": true }\n  }\n}\n');
    assertErrors(gatewayErrors(file), [/\.mcp\.json:2:3: mcpServers: Expected at least one stdio server \(a `command`\); 2 skipped \(see the warnings above\)$/]);
    assertErrors(gatewayErrors(fileOf('.mcp.json', '{ "mcpServers": [] }')), [/\.mcp\.json:1:\d+: mcpServers: Expected a map of servers/]);
  });

  it('YAML errors in JSON keep their line; a JSON file without mcpServers is a workflow file as before', () => {
    assertErrors(gatewayErrors(fileOf('.mcp.json', '{\n  "mcpServers": {\n    "a": { "command": "x" },\n    "a": { "command": "y" }\n  }\n}\n')), [/\.mcp\.json:4:\d+: invalid YAML: Map keys must be unique/]);
    const c = loadConfig(fileOf('guild.json', JSON.stringify({ agents: { a: {} }, tasks: [{ id: 't', agent: 'a', run: 'true' }] })), { budget: '1GB' });
    assert.equal(c.tasks.length, 1);
    assert.equal(c.mcp, null);
  });
});

describe('guild run of a file for the gateway', () => {
  it('a file with only mcp: exits 2 saying it has no tasks, and writes nothing', async () => {
    const dir = tempDir();
    const file = fileOf('gateway.yaml', 'mcp:\n  servers:\n    fs: { command: npx, args: [-y, "@modelcontextprotocol/server-filesystem", .] }\n', dir);
    const r = await guild(['run', file], { cwd: dir, timeoutMs: 30_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /gateway\.yaml:1:1: tasks: no tasks to run: `guild run` needs `tasks:` \(and `agents:`\); its `mcp:` servers are served by `guild mcp serve FILE`/);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
    assert.equal(r.stdout, '');
    assert.deepEqual(readdirSync(dir), ['gateway.yaml']);
  });

  it("a client's .mcp.json exits 2 the same way", async () => {
    const dir = tempDir();
    const file = fileOf('.mcp.json', CLAUDE_MCP_JSON, dir);
    const r = await guild(['run', file, '--json'], { cwd: dir, timeoutMs: 30_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /\.mcp\.json:2:3: mcpServers: no tasks to run: this is a client's MCP configuration \(`mcpServers`\); serve its servers with `guild mcp serve FILE`/);
    assert.equal(r.stdout, '');
    assert.deepEqual(readdirSync(dir), ['.mcp.json']);
  });

  it('a file with neither tasks nor mcp: says it has no tasks too', async () => {
    const dir = tempDir();
    const r = await guild(['run', fileOf('guild.yaml', 'name: empty\nagents: { a: {} }\n', dir)], { cwd: dir, timeoutMs: 30_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /guild\.yaml:1:1: tasks: no tasks to run: `guild run` needs `tasks:` \(and `agents:`\)$/m);
  });
});
