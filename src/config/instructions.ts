import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { instructionsSchema, type UserInstructions } from './schema.js';
import { YamlSource } from './source.js';
import { validateSource } from './validate.js';

/** The `performance:` block of a .guild/instructions.md, and where it came from. */
export interface LoadedInstructions {
  file: string;
  performance: UserInstructions;
}

/** The nearest .guild/instructions.md in `dir` or its parents, if any. */
export function findInstructions(dir: string): string | null {
  for (let d = resolve(dir); ; d = dirname(d)) {
    const candidate = join(d, '.guild', 'instructions.md');
    if (existsSync(candidate)) return candidate;
    if (dirname(d) === d) return null;
  }
}

const FENCE_RE = /^(```|~~~)\s*(ya?ml)\s*$/i;

/**
 * Reads the first fenced YAML block of an instructions.md that has a `performance:` key. Errors
 * name the markdown file and the line inside it.
 */
export function loadInstructions(file: string): LoadedInstructions | null {
  const lines = readFileSync(file, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE_RE.exec(lines[i]!.trim());
    if (!open) continue;
    const fenceLine = i; // 0-based; the block's first line is 1-based line fenceLine + 2
    let j = i + 1;
    while (j < lines.length && !lines[j]!.trim().startsWith(open[1]!)) j++;
    const block = lines.slice(i + 1, j).join('\n');
    i = j;
    if (!/^performance\s*:/m.test(block)) continue;
    const source = YamlSource.parse(file, block, fenceLine + 1);
    const data = (source.data ?? {}) as { performance?: unknown };
    const performance = validateSource(source, instructionsSchema, data.performance ?? {}, ['performance']);
    return { file, performance };
  }
  return null;
}
