/**
 * The layering rule of DESIGN.md, as CI checks it (`npm run lint:layers`): dependency-cruiser with
 * the repository's own `.dependency-cruiser.cjs`, pointed at a fixture tree
 * (test/fixtures/layers/src) whose imports break the layers on purpose. The source tree itself is
 * checked by `lint:layers` in .ci/run, not here.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ROOT } from './helpers.js';

const run = promisify(execFile);
const CRUISER = join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
const FIXTURE = 'test/fixtures/layers/src';
const at = (file: string): string => `${FIXTURE}/${file}`;

interface Violation {
  type: string;
  from: string;
  to: string;
  rule: { name: string; severity: string };
}

/** Runs depcruise as `lint:layers` does, on fixture files. With `err` output, errors make the exit code non-zero. */
async function cruise(files: string[], outputType: 'err' | 'json'): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run(process.execPath, [CRUISER, ...files.map(at), '--config', '.dependency-cruiser.cjs', '--output-type', outputType], {
      cwd: ROOT,
      env: { ...process.env, GUILD_LAYERS_SRC: FIXTURE },
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout };
  } catch (e) {
    const err = e as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

// Each run is a few seconds of parsing; they are independent.
describe('layers: dependency-cruiser with .dependency-cruiser.cjs', { concurrency: true }, () => {
  it('fails on a runtime import up the layers, naming both files', async () => {
    const r = await cruise(['system/upward.ts'], 'err');
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stdout, /upward-import-from-system-io-util-errors: test\/fixtures\/layers\/src\/system\/upward\.ts → test\/fixtures\/layers\/src\/cli\/main\.ts/);
  });

  it('passes a type-only upward import, and a sideways import whose way back is a type only', async () => {
    const r = await cruise(['system/type-only.ts', 'telemetry/sideways.ts'], 'err');
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /no dependency violations found/);
  });

  it('over the whole fixture: exactly the upward import, the runtime cycle and the reversed direction within a line, and the unknown layer', async () => {
    const r = await cruise(['.'], 'json');
    const found = (JSON.parse(r.stdout) as { summary: { violations: Violation[] } }).summary.violations
      .map((v) => `${v.rule.name}: ${v.from.slice(FIXTURE.length + 1)} → ${v.to.slice(FIXTURE.length + 1)}`)
      .sort();
    assert.deepEqual(found, [
      'layer-unknown: mystery/orphan-domain.ts → util/bytes.ts',
      'no-runtime-cycle: io/cycle-b.ts → system/cycle-a.ts',
      'same-line-direction-cache-to-telemetry: cache/backwards.ts → telemetry/sideways.ts',
      'upward-import-from-system-io-util-errors: system/upward.ts → cli/main.ts',
    ]);
  });
});
