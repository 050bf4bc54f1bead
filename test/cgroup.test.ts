import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { resolveMemoryCgroup } from '../src/system/cgroup.js';
import { GUILD, guild, hog, MB, tempDir, writeWorkflow } from './helpers.js';

interface TestCgroup {
  version: 1 | 2;
  dir: string;
  oomKills(): number;
  remove(): void;
}

/**
 * Creates a memory cgroup limited to `limitBytes` beside ours, or explains why it cannot.
 * v1: a child of the memory hierarchy's root; v2: a child of the unified root.
 */
function makeCgroup(limitBytes: number): TestCgroup | string {
  if (process.getuid?.() !== 0) return 'needs root to create a memory cgroup';
  const loc = resolveMemoryCgroup(readFileSync('/proc/self/cgroup', 'utf8'), readFileSync('/proc/self/mountinfo', 'utf8'));
  if (!loc) return 'no memory cgroup hierarchy is mounted';
  const dir = join(loc.mountPoint, `guild-test-${process.pid}-${Date.now()}`);
  try {
    mkdirSync(dir);
    if (loc.version === 1) {
      writeFileSync(join(dir, 'memory.limit_in_bytes'), String(limitBytes));
    } else {
      writeFileSync(join(dir, 'memory.max'), String(limitBytes));
      if (existsSync(join(dir, 'memory.swap.max'))) writeFileSync(join(dir, 'memory.swap.max'), '0');
    }
  } catch (e) {
    return `cannot create a memory cgroup under ${loc.mountPoint}: ${(e as Error).message}`;
  }
  const eventsFile = join(dir, loc.version === 1 ? 'memory.oom_control' : 'memory.events');
  return {
    version: loc.version,
    dir,
    oomKills: () => Number(/^oom_kill (\d+)$/m.exec(readFileSync(eventsFile, 'utf8'))?.[1] ?? NaN),
    remove: () => {
      try {
        rmdirSync(dir);
      } catch {
        /* a leftover process would keep it; the next boot clears it */
      }
    },
  };
}

describe('inside a memory cgroup limited to 800 MB', () => {
  const cg = makeCgroup(800 * MB);
  const skip = typeof cg === 'string' ? `skipped: ${cg}` : false;
  if (skip) process.stdout.write(`# cgroup test ${skip}\n`);

  it('guild finds the limit by itself and the kernel OOM-kills nothing', { skip }, async () => {
    const c = cg as TestCgroup;
    try {
      // 8 hogs of ~195 MB each: 1.5 GB at once would be far over 800 MB; Guild must pace them.
      const tasks = Array.from({ length: 8 }, (_, i) => `  - { id: hog-${i}, agent: hog, run: "${hog(150, 600)}" }`);
      const dir = tempDir();
      const file = writeWorkflow(`agents:\n  hog: { memory: 200MB, cpu: 0.1 }\ntasks:\n${tasks.join('\n')}\n`, dir);
      // Enter the cgroup first, then become guild: everything it starts is inside the limit.
      const r = await guild(['run', file, '--json'], {
        env: { GUILD_CGROUP_PROCS: join(c.dir, 'cgroup.procs') },
        wrap: `echo $$ > "$GUILD_CGROUP_PROCS" && exec "${process.execPath}" "${GUILD}"`,
      });
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout) as { ok: boolean; budget_bytes: number; budget_source: string; memory_source: string; effective_limit_bytes: number; peak_rss_bytes: number };
      assert.equal(doc.memory_source, c.version === 1 ? 'cgroup-v1' : 'cgroup-v2');
      assert.equal(doc.effective_limit_bytes, 800 * MB);
      assert.equal(doc.budget_source, 'default');
      assert.equal(doc.budget_bytes, 600 * MB, '75% of the cgroup limit');
      assert.ok(doc.peak_rss_bytes <= doc.budget_bytes);
      assert.equal(doc.ok, true);
      assert.equal(c.oomKills(), 0, 'the kernel OOM-killed nothing');
    } finally {
      c.remove();
    }
  });
});
