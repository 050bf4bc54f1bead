/**
 * The MCP conformance suite (`@modelcontextprotocol/conformance`, issue 12's last test): run
 * against server-everything directly over streamable HTTP, then through `guild mcp serve` with
 * server-everything as its only backend (so names pass through unprefixed). No scenario that
 * passes directly may fail through the gateway. server-everything lacks most of the suite's own
 * fixtures (`test_simple_text`, ...), so only about a third of the scenarios pass directly; the
 * comparison, not the absolute count, is the point.
 *
 * The suite needs Node >= 22: scripts/install-conformance.sh (called by .ci/run) installs it with
 * a Node 22 binary outside the repository's dependencies. Without it, the tests skip and say why.
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import {
  EVERYTHING,
  findConformanceSuite,
  hasMcpServe,
  readResults,
  runSuite,
  startEverythingHttp,
  startGateway,
  stop,
  tally,
  type ConformanceResults,
  type ConformanceSuite,
  type Started,
} from './conformance-helpers.js';
import { tempDir } from './helpers.js';

/** Scenarios any working MCP server passes: their passing directly shows the harness itself works. */
const BASIC = ['server-initialize', 'ping', 'tools-list'];

/** Runs the suite against `target` into a fresh folder and reads the verdict; the suite's output goes to diagnostics when it read nothing. */
async function measure(t: TestContext, suite: ConformanceSuite, target: Started, label: string): Promise<ConformanceResults> {
  const root = tempDir('guild-conformance-');
  const out = join(root, label);
  mkdirSync(out);
  try {
    const run = await runSuite(suite, target.url, out);
    // Exit 1 = some check failed (always, against server-everything); anything else is the harness breaking.
    assert.ok(run.signal === null && (run.code === 0 || run.code === 1), `the suite ended with ${run.signal ?? `code ${run.code}`}:\n${run.output}`);
    const results = readResults(out);
    if (results.scenarios.size === 0) t.diagnostic(`${label}: the suite wrote no results:\n${run.output}`);
    return results;
  } finally {
    // What a failure needs (each failing check and its message) is in the assertion's text.
    rmSync(root, { recursive: true, force: true });
  }
}

/** The direct run, shared by both tests (the second measures it itself when run alone). */
let direct: ConformanceResults | undefined;

async function measureDirect(t: TestContext, suite: ConformanceSuite): Promise<ConformanceResults> {
  const server = await startEverythingHttp();
  try {
    direct = await measure(t, suite, server, 'direct');
    return direct;
  } finally {
    await stop(server.child);
  }
}

describe('MCP conformance suite (server-everything direct vs through guild mcp serve)', () => {
  const suite = findConformanceSuite();

  it('server-everything directly over streamable HTTP passes some scenarios (the harness works)', async (t) => {
    if ('missing' in suite) return t.skip(suite.missing);
    t.diagnostic(`conformance ${suite.version} on node ${suite.nodeVersion}`);
    const r = await measureDirect(t, suite);
    t.diagnostic(`direct: ${tally(r)}`);
    t.diagnostic(`direct passing: ${[...r.passing].sort().join(', ')}`);
    assert.ok(r.scenarios.size > 0, 'the suite ran no scenario');
    assert.ok(r.passing.size > 0, 'no scenario passed directly: the harness is broken');
    for (const s of BASIC) assert.ok(r.passing.has(s), `${s} should pass against server-everything: ${JSON.stringify(r.scenarios.get(s))}`);
    assert.ok(r.checksPassed > 0 && r.checksPassed <= r.checksTotal);
  });

  it('through guild mcp serve, no scenario that passes directly fails', async (t) => {
    if ('missing' in suite) return t.skip(suite.missing);
    if (!hasMcpServe()) return t.skip('guild mcp serve is not built yet');
    const base = direct ?? (await measureDirect(t, suite));
    assert.ok(base.passing.size > 0, 'no scenario passed directly: nothing to compare against');

    const dir = tempDir('guild-conformance-gw-');
    const config = join(dir, 'guild.yaml');
    // One server, so the gateway passes names through unprefixed: tools-call-simple-text and
    // tools-call-error pass directly only because server-everything answers the unknown fixture
    // tool with an isError result, which a prefixing gateway would turn into -32602.
    writeFileSync(config, `mcp:\n  servers:\n    everything:\n      command: ${JSON.stringify(process.execPath)}\n      args: [${JSON.stringify(EVERYTHING)}, stdio]\n`);
    const gateway = await startGateway(config);
    let viaGateway: ConformanceResults;
    try {
      viaGateway = await measure(t, suite, gateway, 'gateway');
    } finally {
      const ended = await stop(gateway.child);
      t.diagnostic(`gateway ended with ${ended.signal ?? `code ${ended.code}`} after SIGTERM`);
      rmSync(dir, { recursive: true, force: true });
    }

    t.diagnostic(`direct:  ${tally(base)}`);
    t.diagnostic(`gateway: ${tally(viaGateway)}`);
    const gained = [...viaGateway.passing].filter((s) => !base.passing.has(s)).sort();
    if (gained.length > 0) t.diagnostic(`passing only through the gateway: ${gained.join(', ')}`);

    const regressed = [...base.passing]
      .filter((s) => !viaGateway.passing.has(s))
      .sort()
      .map((s) => {
        const checks = viaGateway.scenarios.get(s);
        if (!checks) return `${s}: not run through the gateway`;
        const bad = checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING');
        return `${s}: ${bad.map((c) => `${c.id} ${c.status}${c.errorMessage ? ` (${c.errorMessage})` : ''}`).join('; ')}`;
      });
    assert.deepEqual(regressed, [], `scenarios that pass directly but not through the gateway:\n${regressed.join('\n')}\n${gateway.output()}`);
  });
});
