/**
 * Runs the official Keyv adapter suite (test/keyv-suite.vitest.ts, under vitest) as one node:test
 * test, so `npm test` covers GuildKeyvStore.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers.js';


/** `@keyv/test-suite` 2.1: keyvTestSuite (22 API, 13 value, 3 namespace tests) + keyvIteratorTests (4). */
const OFFICIAL = 42;
/** Guild's own tests in the same file, under `describe('GuildKeyvStore')`. */
const OWN = 2;

interface VitestJson {
  numTotalTests: number;
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  testResults: { assertionResults: { ancestorTitles: string[]; fullName: string; status: string; failureMessages: string[] }[] }[];
}

test('GuildKeyvStore passes the official @keyv/test-suite', (t) => {
  const r = spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--config', join(ROOT, 'vitest.config.ts'), '--reporter=json'],
    { cwd: ROOT, encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, NO_COLOR: '1' } },
  );
  assert.equal(r.error, undefined, `vitest did not run: ${r.error?.message}`);
  const start = r.stdout.indexOf('{');
  assert.ok(start >= 0, `no JSON report from vitest (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  const report = JSON.parse(r.stdout.slice(start)) as VitestJson;
  const results = report.testResults.flatMap((f) => f.assertionResults);
  const official = results.filter((a) => a.ancestorTitles[0] !== 'GuildKeyvStore');
  const officialPassed = official.filter((a) => a.status === 'passed').length;
  const failures = results.filter((a) => a.status === 'failed');
  t.diagnostic(`@keyv/test-suite: ${officialPassed}/${official.length} passed`);
  t.diagnostic(`vitest total: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${report.numPendingTests} skipped of ${report.numTotalTests}`);
  for (const f of failures) t.diagnostic(`failed: ${f.fullName}: ${f.failureMessages[0]?.split('\n')[0] ?? ''}`);
  assert.equal(report.numFailedTests, 0, failures.map((f) => f.fullName).join('\n'));
  assert.equal(r.status, 0, r.stderr);
  assert.equal(officialPassed, OFFICIAL);
  assert.equal(report.numPassedTests, OFFICIAL + OWN);
  assert.equal(report.numTotalTests, OFFICIAL + OWN);
});
