import { execFileSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { GuildError } from '../errors.js';
import type { JobWhere } from './job.js';

function git(cwd: string, args: string[]): string | null {
  try {
    return execFileSync('git', ['-C', cwd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

/**
 * Where a workflow's tasks run, as a job carries it: its folder inside its git repository and the
 * commit checked out (workers run it in their own checkout), or, outside any repository, its
 * absolute path.
 */
export function locateWorkflow(dir: string): JobWhere {
  const abs = realpathSync(resolve(dir));
  const root = git(abs, ['rev-parse', '--show-toplevel']);
  const commit = root === null ? null : git(abs, ['rev-parse', '--verify', 'HEAD^{commit}']);
  if (root === null || commit === null) return { kind: 'path', dir: abs };
  const path = relative(realpathSync(root), abs);
  return { kind: 'git', commit, path: path === '' ? '.' : path.split(sep).join('/') };
}

/**
 * The folder a worker runs a job in, or a `GuildError` (NOT_FOUND) that says why it cannot: a
 * commit its checkout at `workdir` does not have, a workdir that is no checkout, a path missing here.
 */
export function jobFolder(where: JobWhere, workdir: string, known?: Map<string, string>): string {
  if (where.kind === 'path') {
    if (!existsSync(where.dir)) throw new GuildError('NOT_FOUND', `the workflow's folder ${where.dir} does not exist on this worker (a workflow outside git runs at its absolute path: one machine or a shared file system)`);
    return where.dir;
  }
  // A commit once found stays found: `known` (workdir and commit → the checkout's root) spares two git processes per job.
  const seen = known?.get(`${workdir}\0${where.commit}`);
  if (seen !== undefined && existsSync(join(seen, where.path))) return join(seen, where.path);
  const root = git(workdir, ['rev-parse', '--show-toplevel']);
  if (root === null) throw new GuildError('NOT_FOUND', `the job comes from a git repository (commit ${where.commit.slice(0, 12)}), but this worker's --workdir ${workdir} is not a git checkout`);
  if (git(root, ['cat-file', '-e', `${where.commit}^{commit}`]) === null) {
    throw new GuildError('NOT_FOUND', `commit ${where.commit.slice(0, 12)} is not in this worker's checkout at ${root}: fetch it (git fetch) and try again`);
  }
  const dir = join(root, where.path);
  if (!existsSync(dir)) throw new GuildError('NOT_FOUND', `the workflow's folder ${where.path} is missing from this worker's checkout at ${root}`);
  known?.set(`${workdir}\0${where.commit}`, root);
  return dir;
}
