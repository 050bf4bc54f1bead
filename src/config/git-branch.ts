import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The checked-out branch of the git work tree containing `dir`, read from `.git/HEAD` (no git
 * process); null when detached, not a repository, or unreadable. Follows `.git` files (worktrees).
 */
export function currentBranch(dir: string): string | null {
  for (let d = dir; ; d = dirname(d)) {
    const dotGit = join(d, '.git');
    if (existsSync(dotGit)) {
      try {
        let gitDir = dotGit;
        const head = (): string => readFileSync(join(gitDir, 'HEAD'), 'utf8').trim();
        let text: string;
        try {
          text = head();
        } catch {
          // A worktree or submodule: `.git` is a file naming the real git dir.
          const m = /^gitdir:\s*(.+)$/m.exec(readFileSync(dotGit, 'utf8'));
          if (!m) return null;
          gitDir = join(d, m[1]!.trim());
          text = head();
        }
        const ref = /^ref:\s*refs\/heads\/(.+)$/.exec(text);
        return ref ? ref[1]! : null;
      } catch {
        return null;
      }
    }
    if (dirname(d) === d) return null;
  }
}
