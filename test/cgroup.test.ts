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

/** Runs `guild run <file> --json` inside the cgroup: the shell enters it, then becomes guild. */
async function runInCgroup(c: TestCgroup, file: string) {
  const r = await guild(['run', file, '--json'], {
    env: { GUILD_CGROUP_PROCS: join(c.dir, 'cgroup.procs') },
    wrap: `echo $$ > "$GUILD_CGROUP_PROCS" && exec "${process.execPath}" "${GUILD}"`,
    timeoutMs: 240_000,
  });
  return { ...r, doc: r.stdout ? (JSON.parse(r.stdout) as Record<string, unknown>) : null };
}

function cgroupSuite(limitMb: number, title: string, body: (c: TestCgroup) => Promise<void>): void {
  describe(`inside a memory cgroup limited to ${limitMb} MB`, () => {
    const cg = makeCgroup(limitMb * MB);
    const skip = typeof cg === 'string' ? `skipped: ${cg}` : false;
    if (skip) process.stdout.write(`# cgroup test ${skip}\n`);
    it(title, { skip }, async () => {
      const c = cg as TestCgroup;
      try {
        await body(c);
      } finally {
        c.remove();
      }
    });
  });
}

cgroupSuite(800, 'guild finds the limit by itself and the kernel OOM-kills nothing', async (c) => {
  // 8 hogs of ~195 MB each: 1.5 GB at once would be far over 800 MB; Guild must pace them.
  const tasks = Array.from({ length: 8 }, (_, i) => `  - { id: hog-${i}, agent: hog, run: "${hog(150, 600)}" }`);
  const file = writeWorkflow(`agents:\n  hog: { memory: 200MB, cpu: 0.1 }\ntasks:\n${tasks.join('\n')}\n`, tempDir());
  const r = await runInCgroup(c, file);
  assert.equal(r.code, 0, r.stderr);
  const doc = r.doc as { ok: boolean; budget_bytes: number; budget_source: string; memory_source: string; effective_limit_bytes: number; peak_rss_bytes: number };
  assert.equal(doc.memory_source, c.version === 1 ? 'cgroup-v1' : 'cgroup-v2');
  assert.equal(doc.effective_limit_bytes, 800 * MB);
  assert.equal(doc.budget_source, 'default');
  assert.equal(doc.budget_bytes, 600 * MB, '75% of the cgroup limit');
  assert.ok(doc.peak_rss_bytes <= doc.budget_bytes);
  assert.equal(doc.ok, true);
  assert.equal(c.oomKills(), 0, 'the kernel OOM-killed nothing');
});

cgroupSuite(1200, 'under-declared agents (100 MB declared, 400 MB used) all finish; the kernel OOM-kills nothing', async (c) => {
  const tasks = Array.from({ length: 16 }, (_, i) => `  - { id: agent-${i}, agent: liar, run: "${hog(355, 1000, '0 --ramp 1000')}" }`);
  const file = writeWorkflow(`agents:\n  liar: { memory: 100MB, cpu: 0.05, timeout: 2m }\ntasks:\n${tasks.join('\n')}\n`, tempDir());
  const r = await runInCgroup(c, file);
  const doc = r.doc as {
    ok: boolean;
    guild_kills: number;
    oom_kills: number | null;
    pressure: { highest: string };
    tasks: { id: string; status: string; attempts: number; peak_rss_bytes: number; kills: { reason: string }[] }[];
    responses: { type: string }[];
  };
  assert.ok(doc, r.stderr);
  process.stdout.write(
    `# under-declared: guild kills ${doc.guild_kills}, pauses ${doc.responses.filter((x) => x.type === 'pause').length}, highest pressure ${doc.pressure.highest}, kernel OOM kills ${c.oomKills()}\n`,
  );
  assert.equal(c.oomKills(), 0, 'the kernel OOM-killed nothing');
  assert.equal(doc.oom_kills, 0, 'and Guild saw none');
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  assert.equal(doc.ok, true);
  for (const t of doc.tasks) {
    assert.equal(t.status, 'succeeded', t.id);
    assert.ok(t.peak_rss_bytes > 350 * MB, `${t.id} really used ${t.peak_rss_bytes / MB} MB`);
    if (t.kills.length > 0) assert.ok(t.attempts > t.kills.length, `${t.id} was requeued after each kill and then succeeded`);
  }
  assert.equal(
    doc.guild_kills,
    doc.tasks.reduce((n, t) => n + t.kills.length, 0),
    'every kill is recorded on its task',
  );
});
