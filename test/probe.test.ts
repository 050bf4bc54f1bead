import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { readCgroupMemory, resolveMemoryCgroup } from '../src/system/cgroup.js';
import { parseMeminfo } from '../src/system/meminfo.js';
import { ProcReader } from '../src/system/proc-reader.js';
import { parseProcStat } from '../src/system/process-tree.js';
import { createSystemProbe, LinuxProbe, type SystemProbe } from '../src/system/probe.js';
import type { Measurement } from '../src/supervisor/supervisor.js';
import { SelfMonitor } from '../src/telemetry/self-monitor.js';
import type { RunEvent } from '../src/workflow/events.js';
import { RunGauges, type QueueView } from '../src/workflow/run-gauges.js';
import { HOG, MB, sleep } from './helpers.js';

const V1_MOUNTS = `35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw`;

describe('cgroup resolution through /proc/self/cgroup and mountinfo', () => {
  const all = () => true;

  it('cgroup v1 on a host mount', () => {
    const loc = resolveMemoryCgroup('4:memory:/process_api/abc\n0::/', V1_MOUNTS, (p) => p.includes('/memory/'));
    assert.deepEqual(loc, { version: 1, dir: '/sys/fs/cgroup/memory/process_api/abc', mountPoint: '/sys/fs/cgroup/memory' });
  });

  it('cgroup v1 inside a container whose mount root is the cgroup itself', () => {
    const mounts = '100 90 0:32 /docker/abc123 /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory';
    const loc = resolveMemoryCgroup('9:memory:/docker/abc123', mounts, all);
    assert.equal(loc?.dir, '/sys/fs/cgroup/memory');
  });

  it('cgroup v2 unified', () => {
    const loc = resolveMemoryCgroup('0::/user.slice/session-1.scope', '30 20 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw', all);
    assert.deepEqual(loc, { version: 2, dir: '/sys/fs/cgroup/user.slice/session-1.scope', mountPoint: '/sys/fs/cgroup' });
  });

  it('hybrid: v2 mounted without the memory controller falls back to v1', () => {
    const loc = resolveMemoryCgroup('4:memory:/x\n0::/', V1_MOUNTS, (p) => !p.includes('unified'));
    assert.equal(loc?.version, 1);
  });

  it('none at all', () => {
    assert.equal(resolveMemoryCgroup('', '', all), null);
  });

  it('reads the tightest limit up the hierarchy and its working set; v1 "unlimited" counts as none', async () => {
    const { mkdtempSync, mkdirSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const root = mkdtempSync(join(tmpdir(), 'cg-'));
    const leaf = join(root, 'parent', 'leaf');
    mkdirSync(leaf, { recursive: true });
    const files: Record<string, string> = {
      [join(root, 'memory.limit_in_bytes')]: '9223372036854771712',
      [join(root, 'parent', 'memory.limit_in_bytes')]: String(800 * MB),
      [join(root, 'parent', 'memory.usage_in_bytes')]: String(300 * MB),
      [join(root, 'parent', 'memory.stat')]: `cache 1\ntotal_inactive_file ${100 * MB}\n`,
      [join(leaf, 'memory.limit_in_bytes')]: '9223372036854771712',
      [join(leaf, 'memory.oom_control')]: 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n',
    };
    for (const [f, v] of Object.entries(files)) writeFileSync(f, v);
    const r = readCgroupMemory({ version: 1, dir: leaf, mountPoint: root }, new ProcReader(), 64 * 1024 ** 3);
    assert.equal(r.limitBytes, 800 * MB);
    assert.equal(r.workingSetBytes, 200 * MB);
    assert.equal(r.oomKills, 2);
  });
});

describe('/proc parsing', () => {
  it('meminfo in kB', () => {
    const m = parseMeminfo('MemTotal:       16000000 kB\nMemFree:  1000 kB\nMemAvailable:    8000000 kB\n');
    assert.equal(m.totalBytes, 16000000 * 1024);
    assert.equal(m.availableBytes, 8000000 * 1024);
  });

  it('stat with spaces and parentheses in the command name', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i));
    fields[0] = 'S'; // state
    fields[1] = '77'; // ppid
    fields[2] = '99'; // pgrp
    fields[21] = '2500'; // rss pages (field 24)
    const st = parseProcStat(`1234 (my (odd) proc) ${fields.join(' ')}`);
    assert.equal(st?.pid, 1234);
    assert.equal(st?.ppid, 77);
    assert.equal(st?.pgrp, 99);
    assert.equal(st?.rssPages, 2500);
  });
});

describe('the real probe on this machine', () => {
  it('reports a consistent memory snapshot and never os.freemem alone', () => {
    const p = createSystemProbe();
    const m = p.memory();
    assert.ok(m.limitBytes > 0 && m.availableBytes > 0 && m.availableBytes <= m.limitBytes);
    assert.ok(['cgroup-v1', 'cgroup-v2', 'meminfo'].includes(m.source));
    assert.ok(p.cpu().cores >= 1);
    p.close();
  });

  it('measures the RSS of a whole process tree, grandchildren included', async () => {
    // sh → node hog (120 MB) → node grandchild: the tree holds at least the hog's 120 MB.
    const child = spawn('/bin/sh', ['-c', `${process.execPath} ${HOG} 120 3000 0 --grandchild 3000`], { detached: true, stdio: 'ignore' });
    const probe = new LinuxProbe();
    try {
      let sample = probe.tree(child.pid!);
      for (let i = 0; i < 50 && sample.rssBytes < 120 * MB; i++) {
        await sleep(100);
        sample = probe.tree(child.pid!);
      }
      assert.ok(sample.rssBytes >= 120 * MB, `tree RSS ${sample.rssBytes / MB} MB`);
      assert.ok(sample.rssBytes < 400 * MB, `tree RSS ${sample.rssBytes / MB} MB`);
      assert.ok(sample.pids.length >= 3, `pids ${sample.pids.join(',')}`);
    } finally {
      process.kill(-child.pid!, 'SIGKILL');
      probe.close();
    }
  });
});

/**
 * Runs `body` (an ES module's text, with `probe` imported) in a child under `prlimit --nofile=<n>`
 * and returns what it printed as JSON.
 */
function underFdLimit(n: number, body: string): { code: number | null; out: unknown; stderr: string } {
  const probeJs = new URL('../src/system/probe.js', import.meta.url).href;
  const script = `import { closeSync, openSync } from 'node:fs';\nimport { LinuxProbe } from ${JSON.stringify(probeJs)};\n` +
    // Opens /dev/null until EMFILE; returns the descriptors, to be closed by the caller.
    `const exhaust = () => { const held = []; try { for (;;) held.push(openSync('/dev/null', 'r')); } catch (e) { if (e.code !== 'EMFILE') throw e; } return held; };\n` +
    `const rssThrows = () => { try { process.memoryUsage.rss(); return null; } catch (e) { return e.code; } };\n${body}`;
  const r = spawnSync('prlimit', [`--nofile=${n}:${n}`, process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  let out: unknown = null;
  try {
    out = JSON.parse(r.stdout);
  } catch {
    /* left null: the assertion on code shows stderr */
  }
  return { code: r.status, out, stderr: r.stderr };
}

const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;

describe('out of file descriptors: a failed read is a failed sample, never an exception', { skip: hasPrlimit ? false : 'prlimit (util-linux) is not installed' }, () => {
  it('a probe built while descriptors were free keeps sampling the machine and itself with none left', () => {
    const r = underFdLimit(
      128,
      `const p = new LinuxProbe();
       const before = { rss: p.selfRss(), mem: p.memory() };
       const held = exhaust();
       const out = { held: held.length, rssThrows: rssThrows(), rss: p.selfRss(), mem: p.memory(), cpu: [p.cpuUsage(), p.cpuUsage()], psi: p.psi(), tree: p.tree(process.pid), failed: p.failedReads, before };
       process.stdout.write(JSON.stringify(out));`,
    );
    assert.equal(r.code, 0, r.stderr);
    const o = r.out as { held: number; rssThrows: string | null; rss: number; mem: { limitBytes: number; availableBytes: number }; cpu: (number | null)[]; tree: { rssBytes: number }; failed: number; before: { rss: number; mem: { limitBytes: number } } };
    assert.ok(o.held > 50, `held ${o.held} descriptors`);
    assert.equal(o.rssThrows, 'EMFILE', 'the condition is real: process.memoryUsage.rss() throws');
    assert.ok(o.rss > o.before.rss / 2 && o.rss < o.before.rss * 2, `own RSS ${o.rss} (was ${o.before.rss})`);
    assert.equal(o.mem.limitBytes, o.before.mem.limitBytes);
    assert.ok(o.mem.availableBytes > 0, 'never "no memory left" for want of a descriptor');
    assert.ok(o.cpu.every((c) => c === null || (c >= 0 && c <= 1)));
    assert.equal(o.tree.rssBytes, 0, 'a process whose files cannot be opened is not measured now');
    assert.equal(o.failed, 0, 'the kept descriptors served every machine read');
  });

  it('a read that needs a new descriptor and gets none answers the last good value and is counted', () => {
    const r = underFdLimit(
      128,
      `const p = new LinuxProbe();
       const good = { rss: p.selfRss(), mem: p.memory() };
       p.close(); // its descriptors go, as an evicted one would: each read must open again
       const held = exhaust();
       const out = { rssThrows: rssThrows(), rss: p.selfRss(), mem: p.memory(), cpu: p.cpuUsage(), failed: p.failedReads, good };
       process.stdout.write(JSON.stringify(out));`,
    );
    assert.equal(r.code, 0, r.stderr);
    const o = r.out as { rssThrows: string | null; rss: number; mem: unknown; cpu: number | null; failed: number; good: { rss: number; mem: unknown } };
    assert.equal(o.rssThrows, 'EMFILE');
    assert.equal(o.rss, o.good.rss, 'the last good RSS');
    assert.deepEqual(o.mem, o.good.mem, 'the last good snapshot, not a zeroed one');
    assert.equal(o.cpu, null);
    assert.equal(o.failed, 3, 'statm, meminfo and stat failed once each');
  });
});

describe('RunGauges: a probe that throws makes a failed sample', () => {
  it('measured() and event() never throw; the instant is counted failed and keeps the last good figures', () => {
    let fail = false;
    const probe = createSystemProbe();
    const flaky: SystemProbe = {
      memory: () => probe.memory(),
      cpu: () => probe.cpu(),
      cpuUsage: () => {
        if (fail) throw Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' });
        return 0.5;
      },
      psi: () => null,
      tree: (pid) => probe.tree(pid),
      forget: () => undefined,
      selfRss: () => {
        if (fail) throw Object.assign(new Error('EMFILE: too many open files, uv_resident_set_memory'), { code: 'EMFILE' });
        return 100 * MB;
      },
      close: () => probe.close(),
    };
    const gauges = new RunGauges(flaky, new SelfMonitor());
    const m: Measurement = { now: 0, final: false, totalBytes: 0, memory: probe.memory(), reading: null };
    const q: QueueView = { reservedBytes: 0, budgetBytes: 0, queued: 0, done: 0, total: 1, blocked: null, level: 'optimal', denied: { memory: 0, cpu: 0 }, cacheRequests: [] };
    gauges.measured(m, []);
    gauges.event(m, q);
    fail = true;
    gauges.measured(m, []);
    const e = gauges.event(m, q) as Extract<RunEvent, { type: 'sample' }>;
    assert.equal(e.guildRssBytes, 100 * MB, 'the last good RSS');
    assert.equal(e.cpu, null);
    assert.equal(gauges.samples, 2);
    assert.equal(gauges.failedSamples, 1);
    assert.equal(gauges.guildPeak, 100 * MB);
    fail = false;
    gauges.measured(m, []);
    gauges.event(m, q);
    assert.equal(gauges.failedSamples, 1, 'a good instant after a failed one is good');
    probe.close();
  });
});
