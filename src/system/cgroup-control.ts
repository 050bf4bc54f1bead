import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveHierarchy, resolveMemoryCgroup, statField } from './cgroup.js';
import { ProcReader } from './proc-reader.js';

/**
 * Per-task cgroups: where Guild may create cgroups, every task runs in a group of its own, a
 * child of Guild's own group in each hierarchy used. A process that changes its process group or
 * session is still inside, so a kill that empties the group cannot be escaped.
 *
 * Layouts (one is chosen once per process by `detect`):
 * - v2 (unified): one directory per task; memory from memory.current, pause and kill through
 *   cgroup.freeze and cgroup.kill (the freezer loop where cgroup.kill is missing, before 5.14).
 * - v1: the memory hierarchy (usage, optional backstop limit) plus the freezer hierarchy when it is
 *   mounted; a kill freezes, SIGKILLs every member, thaws, and repeats until the group is empty.
 */

/** One hierarchy task groups are made in. */
export interface Hierarchy {
  version: 1 | 2;
  /** Guild's own group in that hierarchy: task groups are made as its children. */
  parent: string;
  /** Memory accounting (and the backstop limit) is read from this hierarchy's groups. */
  memory: boolean;
  /** Pause and the kill loop can freeze this hierarchy's groups (v1 freezer.state, v2 cgroup.freeze). */
  freezer: boolean;
  /** v2 `cgroup.kill` exists (Linux ≥ 5.14): the kernel kills every member, forks included, at once. */
  kill: boolean;
}

/** What tests (a fake cgroupfs) and the exit hook replace. */
export interface CgroupControlDeps {
  /** Sends a signal to one pid; must not throw for a pid that is gone. @default process.kill, errors ignored */
  signal?: (pid: number, sig: NodeJS.Signals) => void;
  /** Async pause between polls. @default setTimeout */
  sleep?: (ms: number) => Promise<void>;
  /** Makes a group directory; the kernel fills it with its files. @default mkdirSync */
  mkdir?: (path: string) => void;
  /** Removes an (empty) group directory. @default rmdirSync */
  rmdir?: (path: string) => void;
}

/** What one task group measures: usage less inactive file cache, and its live members. */
export interface CgroupMemory {
  bytes: number;
  pids: number[];
}

const POLL_MS = 5;
/** A freeze normally completes in well under a millisecond; a member stuck in the kernel (D state) may delay it. */
const FREEZE_WAIT_MS = 200;
/** The kill loop gives up after this long: a member that cannot die (stuck in the kernel) must not hang Guild. */
const KILL_WAIT_MS = 5000;
/** The synchronous exit-hook kill waits at most this long before removing the directories. */
const SYNC_WAIT_MS = 200;
/** rmdir may briefly fail (EBUSY) while the last members are being torn down. */
const REMOVE_WAIT_MS = 1000;

const defaultSignal = (pid: number, sig: NodeJS.Signals): void => {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone already */
  }
};
const defaultSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const withDefaults = (d: CgroupControlDeps): Required<CgroupControlDeps> => ({
  signal: d.signal ?? defaultSignal,
  sleep: d.sleep ?? defaultSleep,
  mkdir: d.mkdir ?? ((p) => mkdirSync(p)),
  rmdir: d.rmdir ?? ((p) => rmdirSync(p)),
});

// Blocks the thread without spinning: the exit hook and pause() must be synchronous.
const sleepCell = new Int32Array(new SharedArrayBuffer(4));
const sleepSync = (ms: number): void => void Atomics.wait(sleepCell, 0, 0, ms);

const readText = (path: string): string | null => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
};

/** The directories in a group: the groups nested in it (a gone or unreadable group has none). */
function subgroups(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => join(dir, e.name));
  } catch {
    return [];
  }
}

/** Adds the members of a group and of every group nested in it. */
function membersOf(dir: string, into: Set<number>): void {
  for (const p of parsePids(readText(join(dir, 'cgroup.procs')))) into.add(p);
  for (const sub of subgroups(dir)) membersOf(sub, into);
}

const parsePids = (text: string | null): number[] => {
  if (!text) return [];
  const out: number[] = [];
  for (const line of text.split('\n')) {
    const n = Number(line);
    if (line !== '' && n > 0) out.push(n);
  }
  return out;
};


/** A cgroup name from its parts: only [A-Za-z0-9_.-], never a kernel file name, within NAME_MAX. */
export function cgroupName(runId: string, taskId: string, attempt: number): string {
  const clean = (s: string): string => s.replace(/[^A-Za-z0-9_.-]/g, '_');
  return `guild-${clean(runId)}-${clean(taskId)}-${attempt}`.slice(0, 200);
}

/** Where Guild creates task groups, and how it creates them. */
export class CgroupControl {
  readonly hierarchies: readonly Hierarchy[];
  readonly #deps: Required<CgroupControlDeps>;
  // Kept-open descriptors for the files sampled several times a second (see ProcReader).
  readonly #reader = new ProcReader(1024);

  constructor(hierarchies: readonly Hierarchy[], deps: CgroupControlDeps = {}) {
    this.hierarchies = hierarchies;
    this.#deps = withDefaults(deps);
  }

  /**
   * Makes the group `name` in every hierarchy. `limitBytes` sets the kernel memory limit (only
   * ever a backstop above Guild's own limit: see the executor). Throws when a directory cannot be
   * made; whatever was made is removed again.
   */
  create(name: string, limitBytes: number | null = null): TaskCgroup {
    const made: string[] = [];
    try {
      for (const h of this.hierarchies) {
        const dir = join(h.parent, name);
        this.#deps.mkdir(dir);
        made.push(dir);
        if (h.memory && limitBytes !== null && limitBytes > 0) {
          writeFileSync(join(dir, h.version === 2 ? 'memory.max' : 'memory.limit_in_bytes'), String(Math.ceil(limitBytes)));
        }
      }
    } catch (e) {
      for (const dir of made.reverse()) {
        try {
          this.#deps.rmdir(dir);
        } catch {
          /* best effort */
        }
      }
      throw e;
    }
    return new TaskCgroup(
      this.hierarchies.map((h, i) => ({ ...h, dir: made[i]! })),
      this.#reader,
      this.#deps,
    );
  }
}

interface Group extends Hierarchy {
  dir: string;
}

/** One task's group (one directory per hierarchy). Members are read from cgroup.procs, never remembered. */
export class TaskCgroup {
  readonly #groups: readonly Group[];
  readonly #mem: Group | null;
  readonly #freezer: Group | null;
  readonly #reader: ProcReader;
  readonly #deps: Required<CgroupControlDeps>;
  #killing: Promise<boolean> | null = null;

  constructor(groups: readonly Group[], reader: ProcReader, deps: Required<CgroupControlDeps>) {
    this.#groups = groups;
    this.#mem = groups.find((g) => g.memory) ?? null;
    this.#freezer = groups.find((g) => g.freezer) ?? null;
    this.#reader = reader;
    this.#deps = deps;
  }

  /** The directories, one per hierarchy (for the run's lease). */
  get dirs(): string[] {
    return this.#groups.map((g) => g.dir);
  }

  /** The files a process writes its pid to, in order, to join the group in every hierarchy. */
  get procsFiles(): string[] {
    return this.#groups.map((g) => join(g.dir, 'cgroup.procs'));
  }

  /** True when usage is measured here (a memory controller), so memory() can answer. */
  get measures(): boolean {
    return this.#mem !== null;
  }

  /** Live members: the union over hierarchies (a member joins them one after the other). Zombies are not listed. */
  pids(): number[] {
    // A fresh open every time: v1 serves a kept-open cgroup.procs from a pid list cached for up to
    // a second, which would hide a new member from a kill loop.
    // Groups nested in the task's count too (a Guild run inside a task makes its own): cgroup.procs
    // lists a group's own members only, and a kill must reach every process inside.
    const all = new Set<number>();
    for (const g of this.#groups) membersOf(g.dir, all);
    return [...all];
  }

  /** Usage less inactive file cache (what the kernel cannot easily reclaim); null without a memory controller. */
  memory(): CgroupMemory | null {
    const g = this.#mem;
    if (!g) return null;
    const text = this.#reader.read(join(g.dir, g.version === 2 ? 'memory.current' : 'memory.usage_in_bytes'));
    const usage = text === null ? NaN : Number(text.trim());
    if (!Number.isFinite(usage)) return null; // the group is gone
    const stat = this.#reader.read(join(g.dir, 'memory.stat'));
    // v1 counts the whole subtree in total_*; a task group has no children, so either would do.
    const inactive = statField(stat, g.version === 2 ? 'inactive_file' : 'total_inactive_file');
    // The memory group's members are all of them: the wrapper joins it first, before any other.
    return { bytes: Math.max(0, usage - inactive), pids: parsePids(readText(join(g.dir, 'cgroup.procs'))) };
  }

  /**
   * Kernel OOM kills inside this group (the backstop limit acting), or null where not exposed.
   * v1 does not add a child's kills to its parent's oom_control, so Guild's own counter misses them.
   */
  oomKills(): number | null {
    const g = this.#mem;
    if (!g) return null;
    const m = /^oom_kill (\d+)$/m.exec(readText(join(g.dir, g.version === 2 ? 'memory.events' : 'memory.oom_control')) ?? '');
    return m ? Number(m[1]) : null;
  }

  /** Sends `sig` to every member; returns how many there were. */
  signalAll(sig: NodeJS.Signals): number {
    const pids = this.pids();
    for (const p of pids) this.#deps.signal(p, sig);
    return pids.length;
  }

  /** True when pause can freeze the group (invisible to its processes) rather than SIGSTOP it. */
  get freezes(): boolean {
    return this.#freezer !== null;
  }

  /**
   * Pauses every member. With a freezer the group is frozen: no member runs or forks, and no
   * member can tell (SIGSTOP would be reported to parents: a job-control shell's `wait` returns
   * when its job stops, so the script runs on and ends early once resumed). Frozen members read as
   * state D in /proc. Without a freezer, every member gets SIGSTOP, re-reading the members until
   * a pass finds none new (a stopped process cannot fork). False when the group is empty.
   */
  pause(): boolean {
    if (this.#freezer) {
      if (this.pids().length === 0) return false;
      this.#writeFreeze(true);
      return true;
    }
    const stopped = new Set<number>();
    for (let pass = 0; pass < 10; pass++) {
      const fresh = this.pids().filter((p) => !stopped.has(p));
      if (fresh.length === 0) break;
      for (const p of fresh) {
        this.#deps.signal(p, 'SIGSTOP');
        stopped.add(p);
      }
    }
    return stopped.size > 0;
  }

  /** Undoes pause: thaws the group, or (without a freezer) SIGCONT to every member. */
  resume(): void {
    if (this.#freezer) this.#thaw();
    else this.signalAll('SIGCONT');
  }

  /**
   * Kills every member and resolves true once the group is empty (false if some member would not
   * die within KILL_WAIT_MS). v2 with cgroup.kill: one write; else freeze, SIGKILL every member,
   * thaw, repeat: a frozen group cannot fork, so each pass shrinks it. Concurrent calls share one loop.
   */
  kill(): Promise<boolean> {
    this.#killing ??= this.#killLoop().finally(() => (this.#killing = null));
    return this.#killing;
  }

  async #killLoop(): Promise<boolean> {
    const v2kill = this.#groups.find((g) => g.kill);
    for (let waited = 0; waited <= KILL_WAIT_MS; waited += POLL_MS) {
      if (v2kill) {
        if (this.pids().length === 0) return true;
        this.#write(join(v2kill.dir, 'cgroup.kill'), '1');
      } else if (!(await this.#killPass())) return true;
      await this.#deps.sleep(POLL_MS);
    }
    return this.pids().length === 0;
  }

  /** One freeze–KILL–thaw pass; false when the group was already empty. */
  async #killPass(): Promise<boolean> {
    if (this.#freezer) {
      this.#writeFreeze(true);
      for (let waited = 0; waited < FREEZE_WAIT_MS && !this.#frozen(); waited += POLL_MS) await this.#deps.sleep(POLL_MS);
    }
    const n = this.signalAll('SIGKILL');
    // A frozen member only acts on SIGKILL once thawed.
    this.#thaw();
    return n > 0;
  }

  /** The exit hook's kill: synchronous, bounded; removes the directories if the group empties in time. */
  killSync(): void {
    for (let waited = 0; waited <= SYNC_WAIT_MS; waited += 1) {
      const v2kill = this.#groups.find((g) => g.kill);
      if (v2kill) {
        if (this.pids().length === 0) break;
        this.#write(join(v2kill.dir, 'cgroup.kill'), '1');
      } else {
        if (this.#freezer) this.#freezeSync();
        const n = this.signalAll('SIGKILL');
        this.#thaw();
        if (n === 0) break;
      }
      sleepSync(1);
    }
    this.removeSync();
  }

  /** Removes the directories (they must be empty); resolves false if one stays busy. */
  async remove(): Promise<boolean> {
    for (let waited = 0; ; waited += POLL_MS) {
      if (this.removeSync()) return true;
      if (waited >= REMOVE_WAIT_MS) return false;
      await this.#deps.sleep(POLL_MS);
    }
  }

  /** One attempt at removing every directory, the groups nested in each first; true when none is left. */
  removeSync(): boolean {
    let ok = true;
    const remove = (dir: string): void => {
      for (const sub of subgroups(dir)) remove(sub);
      try {
        this.#deps.rmdir(dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') ok = false;
      }
    };
    for (const g of this.#groups) {
      this.#reader.forget(`${g.dir}/`);
      remove(g.dir);
    }
    return ok;
  }

  #freezeSync(): void {
    this.#writeFreeze(true);
    for (let waited = 0; waited < FREEZE_WAIT_MS && !this.#frozen(); waited += 1) sleepSync(1);
  }

  #thaw(): void {
    this.#writeFreeze(false);
  }

  #writeFreeze(on: boolean): void {
    const g = this.#freezer;
    if (!g) return;
    if (g.version === 2) this.#write(join(g.dir, 'cgroup.freeze'), on ? '1' : '0');
    else this.#write(join(g.dir, 'freezer.state'), on ? 'FROZEN' : 'THAWED');
  }

  #frozen(): boolean {
    const g = this.#freezer;
    if (!g) return true;
    if (g.version === 2) return /^frozen 1$/m.test(readText(join(g.dir, 'cgroup.events')) ?? '');
    return (readText(join(g.dir, 'freezer.state')) ?? '').trim() === 'FROZEN';
  }

  #write(path: string, text: string): void {
    try {
      writeFileSync(path, text);
    } catch {
      /* the group is gone, or the kernel refused: the loop re-reads the members either way */
    }
  }
}

/** Where to look, for `detect`; defaults read this process's own files. */
export interface DetectOptions extends CgroupControlDeps {
  cgroupText?: string;
  mountinfoText?: string;
  /** The pid to move into the v2 leaf. @default process.pid */
  pid?: number;
}

/**
 * Finds out once whether Guild can make task groups, and prepares for it: on v2 Guild first
 * moves itself into the leaf `<own>/guild`, because a group with members cannot enable
 * controllers for its children (the "no internal processes" rule); a test group is then made and
 * removed in every hierarchy. Null when any step fails: the executor falls back to the tree walk.
 * A v2 hierarchy without the memory controller is not used (memory accounting is the point; the
 * v1 memory hierarchy is preferred on hybrid hosts, as in resolveMemoryCgroup).
 */
export function detectCgroupControl(opts: DetectOptions = {}): CgroupControl | null {
  const cgroupText = opts.cgroupText ?? readText('/proc/self/cgroup') ?? '';
  const mountinfoText = opts.mountinfoText ?? readText('/proc/self/mountinfo') ?? '';
  const mem = resolveMemoryCgroup(cgroupText, mountinfoText);
  if (!mem) return null;
  const deps = withDefaults(opts);
  let hierarchies: Hierarchy[];
  if (mem.version === 2) {
    const prepared = prepareV2(mem.dir, mem.dir === mem.mountPoint, opts.pid ?? process.pid, deps);
    if (!prepared) return null;
    hierarchies = [prepared];
  } else {
    hierarchies = [{ version: 1, parent: mem.dir, memory: true, freezer: false, kill: false }];
    const fr = resolveHierarchy(cgroupText, mountinfoText, 'freezer');
    if (fr) hierarchies.push({ version: 1, parent: fr.dir, memory: false, freezer: true, kill: false });
  }
  return probeGroups(hierarchies, deps) ? new CgroupControl(hierarchies, deps) : null;
}

/** v2: Guild into `<own>/guild`, then the memory controller on for `<own>`'s children. */
function prepareV2(own: string, isRoot: boolean, pid: number, deps: Required<CgroupControlDeps>): Hierarchy | null {
  const subtree = join(own, 'cgroup.subtree_control');
  const enabled = (): boolean => /(^|\s)memory(\s|$)/.test(readText(subtree) ?? '');
  if (!enabled()) {
    // The root group is exempt from the rule: Guild can stay where it is.
    const leaf = join(own, 'guild');
    try {
      if (!isRoot) {
        if (!existsSync(leaf)) deps.mkdir(leaf);
        writeFileSync(join(leaf, 'cgroup.procs'), String(pid));
      }
      // The kernel refuses the write (EBUSY) if the rule is still in force; no re-read needed.
      writeFileSync(subtree, '+memory');
    } catch {
      // Another process in <own> (the shell that started Guild) keeps the rule in force: go back.
      if (!isRoot) {
        try {
          writeFileSync(join(own, 'cgroup.procs'), String(pid));
        } catch {
          /* stays in the leaf: harmless, it is Guild's own group's child */
        }
      }
      return null;
    }
  }
  return { version: 2, parent: own, memory: true, freezer: true, kill: false };
}

/** Makes and removes a test group in every hierarchy; fills in what the kernel offers (v2 cgroup.kill, cgroup.freeze). */
function probeGroups(hierarchies: Hierarchy[], deps: Required<CgroupControlDeps>): boolean {
  const name = `guild-probe-${process.pid}-${Date.now().toString(36)}`;
  const made: string[] = [];
  try {
    for (const h of hierarchies) {
      const dir = join(h.parent, name);
      deps.mkdir(dir);
      made.push(dir);
      if (h.version === 2) {
        h.kill = existsSync(join(dir, 'cgroup.kill'));
        h.freezer = existsSync(join(dir, 'cgroup.freeze'));
        if (!existsSync(join(dir, 'memory.current'))) return false;
      } else if (h.memory && !existsSync(join(dir, 'memory.usage_in_bytes'))) return false;
      else if (h.freezer && !existsSync(join(dir, 'freezer.state'))) h.freezer = false;
    }
    return true;
  } catch {
    return false;
  } finally {
    for (const dir of made) {
      try {
        deps.rmdir(dir);
      } catch {
        /* best effort: an empty test group holds nothing */
      }
    }
  }
}

let systemControl: CgroupControl | null | undefined;

/**
 * The cgroup control of this process, detected on first use. `GUILD_CONTAINMENT=tree` in the
 * environment turns cgroups off (the tree walk is used), for comparison and for hosts where
 * creating groups is unwanted.
 */
export function systemCgroupControl(): CgroupControl | null {
  if (systemControl === undefined) systemControl = process.env.GUILD_CONTAINMENT === 'tree' ? null : detectCgroupControl();
  return systemControl;
}
