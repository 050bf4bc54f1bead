import type { TaskCgroup } from '../system/cgroup-control.js';
import type { SystemProbe } from '../system/probe.js';
import { ProcReader } from '../system/proc-reader.js';
import { parseProcStat, pidsInGroup } from '../system/process-tree.js';
import type { MemorySample } from './executor.js';
import { groupAlive, signalGroup } from './process-groups.js';
import { pidsWithEnv } from '../system/proc-scan.js';
import { liveStartTime } from '../system/process-identity.js';

/**
 * Where one attempt's processes are held, and the only way the executor reaches them.
 * Two kinds: a cgroup of its own (the boundary nothing escapes), else the walked tree.
 * The leader's process group is signalled too where it adds something: for a cgroup, in the
 * instant between spawn and the wrapper joining (the group is empty then); for the tree, children
 * the walk has not seen yet. Every process gets a signal once.
 */
export interface Container {
  readonly kind: 'cgroup' | 'tree';
  /** The cgroup directories (empty for the tree). */
  readonly cgroups: readonly string[];
  /** Set once, right after spawn. */
  attach(leader: number): void;
  /** Measured memory now; null once nothing is left. */
  memory(): MemorySample | null;
  /** `sig` to every process of the attempt. */
  signal(sig: NodeJS.Signals): void;
  /** Pauses every process (the freezer where there is one, else SIGSTOP); false when nothing was there. */
  pause(): boolean;
  /** Undoes pause (thaw, or SIGCONT); also what lets a paused attempt act on a TERM. */
  resume(): void;
  /** True while any process of the attempt is alive (zombies excluded). Cheap for cgroups; a /proc scan for the tree. */
  alive(): boolean;
  /** SIGKILL to everything, repeated until nothing is left (bounded). */
  killAll(): Promise<void>;
  /** Synchronous SIGKILL of everything (Guild's exit hook: no time to wait). */
  killNow(): void;
  /** Kernel OOM kills inside the attempt's cgroup; null without one. Read before release. */
  oomKills(): number | null;
  /** Removes what containing it took (the cgroup directories); call once nothing is alive. */
  release(): Promise<void>;
}

const POLL_MS = 20;
/** The tree kill loop gives up after this long (a process stuck in the kernel cannot die sooner). */
const KILL_WAIT_MS = 3000;
/** The exit hook's tree kill waits at most this long for the processes to go. */
const SYNC_WAIT_MS = 200;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
// Blocks without spinning: the exit hook is synchronous.
const sleepCell = new Int32Array(new SharedArrayBuffer(4));
const sleepSync = (ms: number): void => void Atomics.wait(sleepCell, 0, 0, ms);
const signalPid = (pid: number, sig: NodeJS.Signals): void => {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
};

/** An attempt in a cgroup of its own: members are read from the kernel, never guessed. */
export class CgroupContainer implements Container {
  readonly kind = 'cgroup';
  readonly #cg: TaskCgroup;
  readonly #tree: TreeContainer;
  #pgid: number | null = null;

  /** `tree` measures memory where the hierarchy has no memory controller. */
  constructor(cg: TaskCgroup, tree: TreeContainer) {
    this.#cg = cg;
    this.#tree = tree;
  }

  get cgroups(): readonly string[] {
    return this.#cg.dirs;
  }

  attach(leader: number): void {
    this.#pgid = leader;
    this.#tree.attach(leader);
  }

  memory(): MemorySample | null {
    if (!this.#cg.measures) return this.#tree.memory();
    const m = this.#cg.memory();
    if (m === null || m.pids.length === 0) return null;
    return { bytes: m.bytes, source: 'cgroup', pids: m.pids };
  }

  /**
   * Each member once (a second TERM reads as "force" to many tools). The group is signalled only
   * while the cgroup is empty: before the wrapper has joined, the leader is all there is.
   */
  signal(sig: NodeJS.Signals): void {
    if (this.#cg.signalAll(sig) === 0 && this.#pgid !== null) signalGroup(this.#pgid, sig);
  }

  pause(): boolean {
    return this.#cg.pause();
  }

  resume(): void {
    this.#cg.resume();
  }

  /**
   * The cgroup alone decides: zombies are not members (init may take a second to reap a
   * reparented one), and once the leader has exited, nothing of the attempt can be outside (the
   * wrapper starts nothing before it joins).
   */
  alive(): boolean {
    return this.#cg.pids().length > 0;
  }

  async killAll(): Promise<void> {
    if (this.#pgid !== null) signalGroup(this.#pgid, 'SIGKILL');
    await this.#cg.kill();
  }

  killNow(): void {
    if (this.#pgid !== null) signalGroup(this.#pgid, 'SIGKILL');
    this.#cg.killSync();
  }

  oomKills(): number | null {
    return this.#cg.oomKills();
  }

  async release(): Promise<void> {
    await this.#cg.remove();
  }
}

/**
 * The fallback where no cgroup can be made: the leader's tree as walked through the probe, every
 * pid ever seen in a walk (a reparented escapee is no longer a descendant; its start time tells it
 * from a reused pid), the leader's process group, and on kill and reap every process that carries
 * the attempt's environment markers. Signalled pid by pid and re-walked until empty.
 */
export class TreeContainer implements Container {
  readonly kind = 'tree';
  readonly cgroups: readonly string[] = [];
  readonly #probe: Pick<SystemProbe, 'tree'>;
  readonly #markers: readonly string[];
  #leader: number | null = null;
  readonly #reader = new ProcReader(1);
  /** pid → start time, for every process seen in a walk. */
  readonly #seen = new Map<number, number>();

  constructor(probe: Pick<SystemProbe, 'tree'>, markers: readonly string[]) {
    this.#probe = probe;
    this.#markers = markers;
  }

  attach(leader: number): void {
    this.#leader = leader;
  }

  memory(): MemorySample | null {
    if (this.#leader === null) return null;
    const t = this.#probe.tree(this.#leader);
    let bytes = t.rssBytes;
    const pids = [...t.pids];
    const inTree = new Set(pids);
    for (const p of pids) this.#remember(p);
    // Remembered pids outside the leader's tree: reparented, still ours (rare: one stat read each).
    for (const [p, start] of this.#seen) {
      if (inTree.has(p)) continue;
      if (liveStartTime(p) !== start) {
        this.#seen.delete(p); // gone, or the pid now names another process
        continue;
      }
      const sub = this.#probe.tree(p);
      for (const q of sub.pids) {
        if (inTree.has(q)) continue;
        inTree.add(q);
        pids.push(q);
        this.#remember(q);
      }
      bytes += sub.rssBytes;
    }
    return pids.length === 0 ? null : { bytes, source: 'tree-rss', pids };
  }

  /** The leader's group at once, then each member outside it (each process gets the signal once). */
  signal(sig: NodeJS.Signals): void {
    if (this.#leader !== null) signalGroup(this.#leader, sig);
    for (const p of this.#members(true)) if (this.#pgrpOf(p) !== this.#leader) signalPid(p, sig);
  }

  #pgrpOf(pid: number): number | null {
    return parseProcStat(this.#reader.readOnce(`/proc/${pid}/stat`) ?? '')?.pgrp ?? null;
  }

  pause(): boolean {
    // Stopped processes cannot fork: re-walk until a pass finds nothing new.
    const stopped = new Set<number>();
    if (this.#leader !== null) signalGroup(this.#leader, 'SIGSTOP');
    for (let pass = 0; pass < 10; pass++) {
      // The first pass also scans for the markers: a reparented escapee is in no walk.
      const fresh = this.#members(pass === 0).filter((p) => !stopped.has(p));
      if (fresh.length === 0) break;
      for (const p of fresh) {
        signalPid(p, 'SIGSTOP');
        stopped.add(p);
      }
    }
    return stopped.size > 0;
  }

  resume(): void {
    // Children before parents (the walk lists parents first), the leader's group last: a parent
    // that runs again while its child is still stopped may take the stop for the child's end.
    for (const p of this.#members(true).reverse()) signalPid(p, 'SIGCONT');
    if (this.#leader !== null) signalGroup(this.#leader, 'SIGCONT');
  }

  alive(): boolean {
    return this.#members(true).length > 0 || this.#groupLive();
  }

  /** A live (non-zombie) process left in the leader's group: init may take a second to reap a zombie. */
  #groupLive(): boolean {
    return this.#leader !== null && groupAlive(this.#leader) && pidsInGroup(this.#leader, this.#reader).length > 0;
  }

  async killAll(): Promise<void> {
    for (let waited = 0; waited < KILL_WAIT_MS; waited += POLL_MS) {
      if (this.#leader !== null) signalGroup(this.#leader, 'SIGKILL');
      const pids = this.#members(true);
      if (pids.length === 0 && !this.#groupLive()) return;
      for (const p of pids) signalPid(p, 'SIGKILL');
      await sleep(POLL_MS);
    }
  }

  /** Re-scans until nothing is left, bounded: the exit hook cannot wait long. */
  killNow(): void {
    for (let waited = 0; waited <= SYNC_WAIT_MS; waited += 2) {
      if (this.#leader !== null) signalGroup(this.#leader, 'SIGKILL');
      const pids = this.#members(true);
      if (pids.length === 0) return;
      for (const p of pids) signalPid(p, 'SIGKILL');
      sleepSync(2);
    }
  }

  oomKills(): null {
    return null;
  }

  async release(): Promise<void> {}

  /**
   * Every live process of the attempt that Guild can name: the leader's tree, remembered pids
   * (same start time) and their trees, and with `scan` every process carrying the markers.
   */
  #members(scan: boolean): number[] {
    const out = new Set<number>();
    const walk = (root: number): void => {
      for (const p of this.#probe.tree(root).pids) {
        if (out.has(p)) continue;
        out.add(p);
        this.#remember(p);
      }
    };
    if (this.#leader !== null) walk(this.#leader);
    for (const [p, start] of this.#seen) {
      if (out.has(p)) continue;
      if (liveStartTime(p) !== start) {
        this.#seen.delete(p); // gone, or the pid now names another process
        continue;
      }
      walk(p);
    }
    if (scan && this.#markers.length > 0) {
      for (const p of pidsWithEnv(this.#markers)) {
        if (out.has(p)) continue;
        out.add(p);
        this.#remember(p);
        walk(p);
      }
    }
    return [...out];
  }

  #remember(pid: number): void {
    if (this.#seen.has(pid)) return;
    const start = liveStartTime(pid);
    if (start !== null) this.#seen.set(pid, start);
  }
}
