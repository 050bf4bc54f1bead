import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { readCgroupMemory, resolveMemoryCgroup } from '../src/system/cgroup.js';
import { parseMeminfo } from '../src/system/meminfo.js';
import { ProcReader } from '../src/system/proc-reader.js';
import { parseProcStat } from '../src/system/process-tree.js';
import { createSystemProbe, LinuxProbe } from '../src/system/probe.js';
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
