import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { GuildError } from '../src/errors.js';
import { jobFolder, locateWorkflow } from '../src/distributed/where.js';
import { tempDir } from './helpers.js';

function repo(): { root: string; commit: string } {
  const root = realpathSync(tempDir('guild-where-'));
  mkdirSync(join(root, 'sub'));
  writeFileSync(join(root, 'sub', 'guild.yaml'), 'tasks: []\n');
  const git = (...a: string[]): string => execFileSync('git', ['-C', root, ...a], { encoding: 'utf8' }).trim();
  git('init', '-q');
  git('add', '.');
  git('-c', 'user.email=t@guild', '-c', 'user.name=t', 'commit', '-qm', 'x');
  return { root, commit: git('rev-parse', 'HEAD') };
}

const notFound = (re: RegExp) => (e: unknown) => e instanceof GuildError && e.code === 'NOT_FOUND' && re.test(e.message);

describe('where a job runs', () => {
  it('a workflow in a git repository travels as its folder in the repository and the commit', () => {
    const { root, commit } = repo();
    assert.deepEqual(locateWorkflow(join(root, 'sub')), { kind: 'git', commit, path: 'sub' });
    assert.equal(jobFolder({ kind: 'git', commit, path: 'sub' }, root), join(root, 'sub'));
  });

  it('a worker refuses a commit its checkout does not have, or a workdir that is no checkout', () => {
    const { root } = repo();
    assert.throws(() => jobFolder({ kind: 'git', commit: '0123456789abcdef0123456789abcdef01234567', path: 'sub' }, root), notFound(/commit 0123456789ab is not in this worker's checkout/));
    assert.throws(() => jobFolder({ kind: 'git', commit: '0123456789abcdef0123456789abcdef01234567', path: '.' }, tempDir()), notFound(/is not a git checkout/));
  });

  it('outside git a workflow runs at its absolute path, and a missing one is named', () => {
    const dir = realpathSync(tempDir());
    assert.deepEqual(locateWorkflow(dir), { kind: 'path', dir });
    assert.equal(jobFolder({ kind: 'path', dir }, '/'), dir);
    assert.throws(() => jobFolder({ kind: 'path', dir: join(dir, 'gone') }, '/'), notFound(/does not exist on this worker/));
  });
});
