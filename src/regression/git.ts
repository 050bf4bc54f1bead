import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../errors.js';

// The git facts `guild bench` records (the commit measured, whether the tree was dirty) and the
// temporary worktree `--against REV` measures the other side in.

function git(cwd: string, args: readonly string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** The commit checked out at `dir`, whether its tree has uncommitted changes, and the repository's root; null outside a repository (or without git). */
export function commitOf(dir: string): { sha: string; dirty: boolean; root: string } | null {
  try {
    const root = git(dir, ['rev-parse', '--show-toplevel']);
    const sha = git(dir, ['rev-parse', 'HEAD']);
    // Guild's own folder (.guild/: the store, the cache) changes with every run and is no change to the code.
    const dirty = git(dir, ['status', '--porcelain', '--untracked-files=no', '--', '.', ':(exclude,glob)**/.guild/**']).length > 0;
    return { sha, dirty, root };
  } catch {
    return null;
  }
}

/**
 * A detached worktree of `rev` in a fresh folder under `under` (the workflow's `.guild/bench-worktrees`,
 * so that nothing is written outside the project); `remove()` deletes it and its registration.
 * Whatever else is under `under` is what a killed `guild bench` left: the caller holds the
 * machine-wide bench lock, so no other bench can be using it, and it is removed first.
 */
export function addWorktree(root: string, rev: string, under: string): { dir: string; sha: string; remove(): void } {
  let sha: string;
  try {
    sha = git(root, ['rev-parse', '--verify', '--end-of-options', `${rev}^{commit}`]);
  } catch {
    throw new UsageError(`--against: '${rev}' is not a commit of the repository at ${root}`);
  }
  mkdirSync(under, { recursive: true });
  for (const leftover of readdirSync(under)) removeWorktree(root, join(under, leftover));
  try {
    git(root, ['worktree', 'prune']);
  } catch {
    /* a prune that fails changes nothing we rely on */
  }
  const dir = mkdtempSync(join(under, 'rev-'));
  try {
    git(root, ['worktree', 'add', '--detach', '--force', dir, sha]);
  } catch (cause) {
    rmSync(dir, { recursive: true, force: true });
    throw new UsageError(`--against: cannot check out ${rev} into ${dir}: ${(cause as Error).message.split('\n')[0]}`);
  }
  let removed = false;
  return {
    dir,
    sha,
    remove(): void {
      if (removed) return;
      removed = true;
      removeWorktree(root, dir);
    },
  };
}

function removeWorktree(root: string, dir: string): void {
  try {
    git(root, ['worktree', 'remove', '--force', dir]);
  } catch {
    /* not registered (any more): the folder goes below, the registration with the next prune */
  }
  rmSync(dir, { recursive: true, force: true });
}
