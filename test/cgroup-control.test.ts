import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cgroupName, detectCgroupControl, type CgroupControlDeps } from '../src/system/cgroup-control.js';
import { timeoutDelay } from '../src/executors/executor.js';
import { MB, tempDir } from './helpers.js';

/**
 * A fake cgroupfs: a temporary directory with the kernel's files. mkdir fills a new group with
 * them, as the kernel does; "the kernel" (run on every poll) empties a group whose cgroup.kill was
 * written and drops members that got SIGKILL.
 */
class FakeCgroupfs {
  readonly root = tempDir('guild-fake-cgroupfs-');
  readonly signals: { pid: number; sig: string; freezer: string | null }[] = [];
  /** Runs first on every poll: what a test's processes do meanwhile. */
  onTick: (() => void) | null = null;

  constructor(readonly version: 1 | 2) {}

  /** A group with the files its hierarchy has (v1: by the path's first component). */
  populate(dir: string, procs: number[] = []): void {
    mkdirSync(dir, { recursive: true });
    const put = (f: string, text: string): void => writeFileSync(join(dir, f), text);
    put('cgroup.procs', procs.map((p) => `${p}\n`).join(''));
    if (this.version === 2) {
      put('memory.current', '0\n');
      put('memory.max', 'max\n');
      put('memory.stat', 'anon 0\ninactive_file 0\n');
      put('cgroup.freeze', '0\n');
      put('cgroup.events', 'populated 0\nfrozen 0\n');
      put('cgroup.kill', '');
      put('cgroup.subtree_control', '');
    } else if (dir.startsWith(join(this.root, 'memory'))) {
      put('memory.usage_in_bytes', '0\n');
      put('memory.limit_in_bytes', '9223372036854771712\n');
      put('memory.stat', 'inactive_file 0\ntotal_inactive_file 0\n');
    } else {
      put('freezer.state', 'THAWED\n');
    }
  }

  procs(dir: string): number[] {
    const f = join(dir, 'cgroup.procs');
    if (!existsSync(f)) return []; // an intermediate directory of the fake, not a group
    return readFileSync(f, 'utf8').split('\n').filter(Boolean).map(Number);
  }

  setProcs(dir: string, pids: number[]): void {
    writeFileSync(join(dir, 'cgroup.procs'), pids.map((p) => `${p}\n`).join(''));
  }

  /** Every group directory under the root (kernel files excluded). */
  groups(dir = this.root): string[] {
    const out: string[] = [];
    const walk = (d: string): void => {
      for (const e of readdirNames(d)) {
        const p = join(d, e);
        if (isDir(p)) {
          out.push(p);
          walk(p);
        }
      }
    };
    walk(dir);
    return out;
  }

  /** What the kernel would do between two polls. */
  tick(): void {
    this.onTick?.();
    for (const g of this.groups()) {
      const kill = join(g, 'cgroup.kill');
      if (existsSync(kill) && readFileSync(kill, 'utf8').trim() === '1') {
        this.setProcs(g, []);
        writeFileSync(kill, '');
      }
    }
  }

  deps(): Required<CgroupControlDeps> {
    return {
      signal: (pid, sig) => {
        const groups = this.groups().filter((g) => this.procs(g).includes(pid));
        const fz = groups.map((g) => join(g, 'freezer.state')).find((f) => existsSync(f));
        this.signals.push({ pid, sig, freezer: fz ? readFileSync(fz, 'utf8').trim() : null });
        if (sig === 'SIGKILL') for (const g of groups) this.setProcs(g, this.procs(g).filter((p) => p !== pid));
      },
      sleep: async () => this.tick(),
      mkdir: (p) => {
        if (existsSync(p)) throw Object.assign(new Error(`EEXIST: ${p}`), { code: 'EEXIST' });
        this.populate(p);
      },
      rmdir: (p) => {
        if (this.procs(p).length > 0) throw Object.assign(new Error(`EBUSY: ${p}`), { code: 'EBUSY' });
        rmSync(p, { recursive: true });
      },
    };
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

const readdirNames = (d: string): string[] => readdirSync(d);
const isDir = (p: string): boolean => statSync(p).isDirectory();

describe('cgroup control on a fake cgroup v2', () => {
  const setup = () => {
    const fs = new FakeCgroupfs(2);
    const own = join(fs.root, 'user.slice', 'term.scope');
    fs.populate(own, [4242, 77]);
    const opts = {
      cgroupText: '0::/user.slice/term.scope\n',
      mountinfoText: `40 30 0:37 / ${fs.root} rw,relatime - cgroup2 cgroup2 rw\n`,
      pid: 4242,
      ...fs.deps(),
    };
    return { fs, own, opts };
  };

  it('moves Guild into the leaf <own>/guild, enables memory for the siblings and removes its test group', () => {
    const { fs, own, opts } = setup();
    try {
      const c = detectCgroupControl(opts);
      assert.ok(c, 'detected');
      assert.deepEqual(c.hierarchies, [{ version: 2, parent: own, memory: true, freezer: true, kill: true }]);
      assert.deepEqual(fs.procs(join(own, 'guild')), [4242]);
      assert.equal(readFileSync(join(own, 'cgroup.subtree_control'), 'utf8'), '+memory');
      assert.deepEqual(fs.groups(own), [join(own, 'guild')], 'only the leaf is left');
    } finally {
      fs.remove();
    }
  });

  it('is null (the tree fallback) when the controllers cannot be enabled, and Guild goes back to its group', () => {
    const { fs, own, opts } = setup();
    try {
      // The kernel refuses the write while another process (the shell) stays in <own>.
      rmSync(join(own, 'cgroup.subtree_control'));
      mkdirSync(join(own, 'cgroup.subtree_control'));
      assert.equal(detectCgroupControl(opts), null);
      assert.equal(readFileSync(join(own, 'cgroup.procs'), 'utf8'), '4242');
    } finally {
      fs.remove();
    }
  });

  it('is null without a memory cgroup', () => {
    assert.equal(detectCgroupControl({ cgroupText: '0::/\n', mountinfoText: '' }), null);
  });

  it('a task group: backstop limit, memory is usage less inactive_file, freezer pause, cgroup.kill, removal', async () => {
    const { fs, own, opts } = setup();
    try {
      const c = detectCgroupControl(opts)!;
      const g = c.create(cgroupName('run1', 'build', 2), 500 * MB);
      const dir = join(own, 'guild-run1-build-2');
      assert.deepEqual(g.dirs, [dir]);
      assert.deepEqual(g.procsFiles, [join(dir, 'cgroup.procs')]);
      assert.equal(readFileSync(join(dir, 'memory.max'), 'utf8'), String(500 * MB));
      fs.setProcs(dir, [10, 11]);
      writeFileSync(join(dir, 'memory.current'), `${300 * MB}\n`);
      writeFileSync(join(dir, 'memory.stat'), `anon ${180 * MB}\ninactive_file ${100 * MB}\n`);
      assert.deepEqual(g.memory(), { bytes: 200 * MB, pids: [10, 11] });

      assert.equal(g.pause(), true);
      assert.equal(readFileSync(join(dir, 'cgroup.freeze'), 'utf8'), '1');
      assert.deepEqual(fs.signals, [], 'a freezer pause sends no signal');
      g.resume();
      assert.equal(readFileSync(join(dir, 'cgroup.freeze'), 'utf8'), '0');

      assert.equal(await g.kill(), true);
      assert.deepEqual(fs.procs(dir), []);
      assert.equal(await g.remove(), true);
      assert.equal(existsSync(dir), false);
    } finally {
      fs.remove();
    }
  });

  it('without cgroup.kill (before Linux 5.14) the freezer loop kills', async () => {
    const { fs, own, opts } = setup();
    try {
      const c = detectCgroupControl(opts)!;
      (c.hierarchies[0] as { kill: boolean }).kill = false;
      const g = c.create('guild-x-t-1');
      const dir = join(own, 'guild-x-t-1');
      fs.setProcs(dir, [21, 22]);
      // The fake kernel reports frozen as soon as cgroup.freeze is 1.
      const events = join(dir, 'cgroup.events');
      fs.onTick = () => writeFileSync(events, `populated 1\nfrozen ${readFileSync(join(dir, 'cgroup.freeze'), 'utf8').trim()}\n`);
      assert.equal(await g.kill(), true);
      assert.deepEqual(
        fs.signals.map((s) => `${s.pid}:${s.sig}`),
        ['21:SIGKILL', '22:SIGKILL'],
      );
      assert.equal(readFileSync(join(dir, 'cgroup.freeze'), 'utf8'), '0', 'thawed after the kill');
      assert.equal(g.removeSync(), true);
    } finally {
      fs.remove();
    }
  });
});

describe('cgroup control on a fake cgroup v1 (memory + freezer)', () => {
  const setup = () => {
    const fs = new FakeCgroupfs(1);
    const mem = join(fs.root, 'memory', 'process_api', 'abc');
    const fz = join(fs.root, 'freezer');
    fs.populate(mem, [4242]);
    fs.populate(fz, [4242]);
    const opts = {
      cgroupText: '6:freezer:/\n4:memory:/process_api/abc\n0::/\n',
      mountinfoText: `34 30 0:31 / ${join(fs.root, 'memory')} rw,relatime - cgroup cgroup rw,memory\n36 30 0:33 / ${fz} rw,relatime - cgroup cgroup rw,freezer\n`,
      pid: 4242,
      ...fs.deps(),
    };
    return { fs, mem, fz, opts };
  };

  it('uses the memory and freezer hierarchies, each group a child of Guild\'s own', () => {
    const { fs, mem, fz, opts } = setup();
    try {
      const c = detectCgroupControl(opts)!;
      assert.deepEqual(c.hierarchies, [
        { version: 1, parent: mem, memory: true, freezer: false, kill: false },
        { version: 1, parent: fz, memory: false, freezer: true, kill: false },
      ]);
      assert.deepEqual(fs.groups(mem), [], 'the test groups are gone');
      const g = c.create('guild-r-t-1', 100 * MB);
      assert.deepEqual(g.procsFiles, [join(mem, 'guild-r-t-1', 'cgroup.procs'), join(fz, 'guild-r-t-1', 'cgroup.procs')]);
      assert.equal(readFileSync(join(mem, 'guild-r-t-1', 'memory.limit_in_bytes'), 'utf8'), String(100 * MB));
      writeFileSync(join(mem, 'guild-r-t-1', 'memory.usage_in_bytes'), `${50 * MB}\n`);
      writeFileSync(join(mem, 'guild-r-t-1', 'memory.stat'), `inactive_file 0\ntotal_inactive_file ${10 * MB}\n`);
      assert.equal(g.memory()!.bytes, 40 * MB);
      g.removeSync();
    } finally {
      fs.remove();
    }
  });

  it('a kill freezes, SIGKILLs every member while frozen, thaws, and repeats until empty', async () => {
    const { fs, mem, fz, opts } = setup();
    try {
      const c = detectCgroupControl(opts)!;
      const g = c.create('guild-r-t-1');
      // A member that was mid-fork: its child shows up only on the second pass.
      fs.setProcs(join(mem, 'guild-r-t-1'), [31, 32]);
      fs.setProcs(join(fz, 'guild-r-t-1'), [31, 32]);
      let forked = false;
      fs.onTick = () => {
        if (forked) return;
        forked = true;
        fs.setProcs(join(mem, 'guild-r-t-1'), [33]);
        fs.setProcs(join(fz, 'guild-r-t-1'), [33]);
      };
      assert.equal(await g.kill(), true);
      assert.deepEqual(
        fs.signals.map((s) => `${s.pid}:${s.sig}:${s.freezer}`),
        ['31:SIGKILL:FROZEN', '32:SIGKILL:FROZEN', '33:SIGKILL:FROZEN'],
      );
      assert.equal(readFileSync(join(fz, 'guild-r-t-1', 'freezer.state'), 'utf8'), 'THAWED');
      assert.equal(await g.remove(), true);
      assert.deepEqual(fs.groups(mem), []);
      assert.deepEqual(fs.groups(fz), []);
    } finally {
      fs.remove();
    }
  });
});

describe('groups a task makes inside its own', () => {
  it('their members are the task\'s: a kill reaches them, and removal takes the nested groups first', async () => {
    const fs = new FakeCgroupfs(2);
    const own = join(fs.root, 'user.slice', 'term.scope');
    fs.populate(own, [4242]);
    try {
      const c = detectCgroupControl({ cgroupText: '0::/user.slice/term.scope\n', mountinfoText: `40 30 0:37 / ${fs.root} rw,relatime - cgroup2 cgroup2 rw\n`, pid: 4242, ...fs.deps() })!;
      const g = c.create('guild-r-t-1');
      const dir = fs.groups().find((d) => d.endsWith('guild-r-t-1'))!;
      // A Guild run inside the task moved its own tasks' processes into groups of its own.
      fs.setProcs(dir, [51]);
      fs.populate(join(dir, 'guild-inner-t1-1'), [52]);
      fs.populate(join(dir, 'guild-inner-t2-1', 'deeper'), [53]);
      assert.deepEqual(g.pids().sort(), [51, 52, 53]);
      g.signalAll('SIGKILL');
      assert.deepEqual(fs.signals.map((x) => x.pid).sort(), [51, 52, 53]);
      assert.deepEqual(g.pids(), []);
      assert.equal(await g.remove(), true);
      assert.deepEqual(fs.groups().filter((d) => d.includes('guild-r-t-1')), [], 'the nested groups went first, then the task\'s');
    } finally {
      fs.remove();
    }
  });
});

describe('names and timers', () => {
  it('cgroup names keep only safe characters', () => {
    assert.equal(cgroupName('20261201-0542-ab', 'lint/src api', 3), 'guild-20261201-0542-ab-lint_src_api-3');
    assert.equal(cgroupName('r', '../x', 1), 'guild-r-.._x-1');
  });

  it('a timeout of 2^31 ms or more sets no timer instead of firing at once', () => {
    assert.equal(timeoutDelay(null), null);
    assert.equal(timeoutDelay(2 ** 31 - 1), null);
    assert.equal(timeoutDelay(Number.MAX_SAFE_INTEGER), null);
    assert.equal(timeoutDelay(0), null);
    assert.equal(timeoutDelay(1500), 1500);
  });
});
