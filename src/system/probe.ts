import { readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { ProcReader } from './proc-reader.js';
import { parseMeminfo } from './meminfo.js';
import { readCgroupMemory, readCpuQuota, resolveMemoryCgroup, type CgroupLocation } from './cgroup.js';
import { sampleTree, ThreadCache, type TreeSample } from './process-tree.js';

/** Which reading decides the effective memory limit. */
export type MemorySource = 'cgroup-v2' | 'cgroup-v1' | 'meminfo';

/** Memory as Guild sees it at one instant, all in bytes. */
export interface MemorySnapshot {
  source: MemorySource;
  /** The cgroup directory read, when a memory cgroup was found (even if it sets no limit). */
  cgroupDir: string | null;
  /** The effective limit: the tightest cgroup limit, else MemTotal. */
  limitBytes: number;
  /** Used within that limit: the cgroup's working set, else MemTotal − MemAvailable. */
  usedBytes: number;
  /** What can still be used: min(limit − used, MemAvailable). */
  availableBytes: number;
  /** Host MemTotal and MemAvailable from /proc/meminfo. */
  hostTotalBytes: number;
  hostAvailableBytes: number;
  /** Kernel OOM kills counted by the cgroup, when readable. */
  oomKills: number | null;
}

export interface CpuInfo {
  /** Cores Guild may use: the cgroup quota if lower than the online CPUs. */
  cores: number;
  source: 'cgroup-quota' | 'online-cpus';
}

/** Memory pressure stall information from /proc/pressure/memory, when the kernel offers it. */
export interface PsiSnapshot {
  someAvg10: number;
  fullAvg10: number;
  someTotalUs: number;
  fullTotalUs: number;
}

/**
 * Everything Guild measures about the machine, behind one interface so that tests can inject
 * a fake and the core never reads /proc directly.
 *
 * The sampling methods (memory, cpuUsage, psi, tree, selfRss) never throw: they run on the sampling
 * timer, where an exception would end the run. A read that fails (EMFILE when descriptors run out,
 * anything else) gives the last good value, or null where the type allows one, and counts in
 * `failedReads`.
 */
export interface SystemProbe {
  memory(): MemorySnapshot;
  cpu(): CpuInfo;
  /** Fraction of all CPU time spent busy since the previous call (0..1), from /proc/stat. */
  cpuUsage(): number | null;
  psi(): PsiSnapshot | null;
  /** RSS of a whole process tree. */
  tree(rootPid: number): TreeSample;
  /** Drops cached descriptors of a process that has ended. */
  forget(pid: number): void;
  /** This process's own resident memory in bytes. */
  selfRss(): number;
  /** Reads that failed so far and were answered with the last good value or null. Absent: the probe cannot fail. */
  readonly failedReads?: number;
  close(): void;
}

export interface LinuxProbeOptions {
  /** Root of the proc filesystem. @default '/proc' */
  procRoot?: string;
}

/**
 * The real probe: cgroup v2, then cgroup v1, then /proc/meminfo. Never os.freemem().
 *
 * Descriptors: the files it reads on every sample stay open (ProcReader), and the machine's are
 * opened here, in the constructor, while descriptors are plentiful; so once built, sampling the
 * machine and this process opens nothing, and a process out of descriptors (a connection flood
 * on the dashboard) still gets its samples. Only a new process's files need new descriptors.
 */
export class LinuxProbe implements SystemProbe {
  readonly #reader: ProcReader;
  readonly #threads = new ThreadCache();
  readonly #cgroup: CgroupLocation | null;
  readonly #pageSize: number;
  readonly #cpu: CpuInfo;
  #lastCpu: { busy: number; total: number } | null = null;
  /** The last snapshot read whole: what a failed read answers (a zeroed one would read as "no memory left" and set off the governor). */
  #lastMemory: MemorySnapshot | null = null;
  #lastSelfRss = 0;
  #failedReads = 0;

  constructor() {
    this.#reader = new ProcReader(procDescriptorCache(openFilesLimit()));
    const cgroupText = this.#reader.readOnce('/proc/self/cgroup') ?? '';
    const mountinfo = this.#reader.readOnce('/proc/self/mountinfo') ?? '';
    this.#cgroup = resolveMemoryCgroup(cgroupText, mountinfo);
    this.#pageSize = detectPageSize(this.#reader);
    const online = availableParallelism();
    const quota = readCpuQuota(cgroupText, mountinfo, this.#reader);
    this.#cpu = quota !== null && quota < online ? { cores: quota, source: 'cgroup-quota' } : { cores: online, source: 'online-cpus' };
    // Opens and keeps what every sample reads; the counter starts from a probe that has read once.
    this.memory();
    this.selfRss();
    this.psi();
    this.#reader.read('/proc/stat'); // the descriptor only: cpuUsage()'s first call still sets the baseline
    this.#failedReads = 0;
  }

  get failedReads(): number {
    return this.#failedReads;
  }

  get cgroup(): CgroupLocation | null {
    return this.#cgroup;
  }

  get pageSize(): number {
    return this.#pageSize;
  }

  memory(): MemorySnapshot {
    try {
      const m = this.#readMemory();
      if (m !== null) return (this.#lastMemory = m);
    } catch {
      // counted below, as an unreadable /proc/meminfo
    }
    this.#failedReads++;
    return this.#lastMemory ?? this.#hostSnapshot(totalmem(), 0, this.#cgroup?.dir ?? null, null);
  }

  /** null when /proc/meminfo cannot be read: it always exists, so that is a failed read, not an answer. */
  #readMemory(): MemorySnapshot | null {
    const info = parseMeminfo(this.#reader.read('/proc/meminfo') ?? '');
    if (info.totalBytes === 0) return null;
    const hostTotal = info.totalBytes;
    if (this.#cgroup) {
      const cg = readCgroupMemory(this.#cgroup, this.#reader, hostTotal);
      if (cg.limitBytes !== null) {
        return {
          source: this.#cgroup.version === 2 ? 'cgroup-v2' : 'cgroup-v1',
          cgroupDir: this.#cgroup.dir,
          limitBytes: cg.limitBytes,
          usedBytes: cg.workingSetBytes,
          availableBytes: Math.max(0, Math.min(cg.limitBytes - cg.workingSetBytes, info.availableBytes)),
          hostTotalBytes: hostTotal,
          hostAvailableBytes: info.availableBytes,
          oomKills: cg.oomKills,
        };
      }
      return this.#hostSnapshot(hostTotal, info.availableBytes, this.#cgroup.dir, cg.oomKills);
    }
    return this.#hostSnapshot(hostTotal, info.availableBytes, null, null);
  }

  #hostSnapshot(total: number, available: number, dir: string | null, oomKills: number | null): MemorySnapshot {
    return {
      source: 'meminfo',
      cgroupDir: dir,
      limitBytes: total,
      usedBytes: total - available,
      availableBytes: available,
      hostTotalBytes: total,
      hostAvailableBytes: available,
      oomKills,
    };
  }

  cpu(): CpuInfo {
    return this.#cpu;
  }

  cpuUsage(): number | null {
    const text = this.#reader.read('/proc/stat');
    if (!text) {
      this.#failedReads++; // /proc/stat always exists
      return null;
    }
    const line = text.slice(0, text.indexOf('\n'));
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    const total = v.reduce((a, b) => a + b, 0);
    const prev = this.#lastCpu;
    this.#lastCpu = { busy: total - idle, total };
    if (!prev || total === prev.total) return null;
    return (total - idle - prev.busy) / (total - prev.total);
  }

  psi(): PsiSnapshot | null {
    const text = this.#reader.read('/proc/pressure/memory');
    if (!text) return null;
    const some = /some avg10=([\d.]+).*total=(\d+)/.exec(text);
    const full = /full avg10=([\d.]+).*total=(\d+)/.exec(text);
    if (!some) return null;
    return {
      someAvg10: Number(some[1]),
      someTotalUs: Number(some[2]),
      fullAvg10: full ? Number(full[1]) : 0,
      fullTotalUs: full ? Number(full[2]) : 0,
    };
  }

  tree(rootPid: number): TreeSample {
    try {
      return sampleTree(rootPid, this.#reader, this.#pageSize, this.#threads);
    } catch {
      // sampleTree catches its reads itself; this is the contract, not an expected path.
      this.#failedReads++;
      return { rssBytes: 0, pids: [] };
    }
  }

  forget(pid: number): void {
    this.#reader.forget(`/proc/${pid}/`);
    this.#threads.forget(pid);
  }

  /**
   * From /proc/self/statm on a kept descriptor: process.memoryUsage.rss() opens /proc/self/stat on
   * every call, and throws EMFILE when the process is out of descriptors.
   */
  selfRss(): number {
    const statm = this.#reader.read('/proc/self/statm');
    const pages = statm === null ? NaN : Number(statm.split(' ')[1]);
    if (pages > 0) return (this.#lastSelfRss = pages * this.#pageSize);
    this.#failedReads++;
    try {
      return (this.#lastSelfRss = process.memoryUsage.rss());
    } catch {
      return this.#lastSelfRss;
    }
  }

  close(): void {
    this.#reader.close();
  }
}

/** Page size from comparing our own statm (pages) with status VmRSS (kB); 4096 when unsure. */
function detectPageSize(reader: ProcReader): number {
  const statm = reader.readOnce('/proc/self/statm');
  const status = reader.readOnce('/proc/self/status');
  const pages = Number(statm?.split(' ')[1]);
  const kb = Number(/VmRSS:\s*(\d+)/.exec(status ?? '')?.[1]);
  if (pages > 0 && kb > 0) {
    const guess = (kb * 1024) / pages;
    for (const size of [4096, 16384, 65536]) if (Math.abs(guess - size) / size < 0.2) return size;
  }
  return 4096;
}

/**
 * This process's soft limit on open files (RLIMIT_NOFILE), from /proc/self/limits; null when
 * unlimited or unreadable. Node raises the soft limit to the hard one at startup, so under
 * `prlimit --nofile=1024:1024` (or `ulimit -Hn 1024`) this is 1024.
 */
export function openFilesLimit(procRoot = '/proc'): number | null {
  let text: string;
  try {
    text = readFileSync(`${procRoot}/self/limits`, 'utf8');
  } catch {
    return null;
  }
  const m = /^Max open files\s+(\S+)/m.exec(text);
  const n = Number(m?.[1]);
  return Number.isInteger(n) && n > 0 ? n : null;
}

/**
 * Descriptors the probe keeps open at most: a quarter of the soft limit (the dashboard may hold
 * another quarter; tasks, logs and the store the rest), between 64 and 4096.
 */
function procDescriptorCache(softLimit: number | null): number {
  return softLimit === null ? 4096 : Math.max(64, Math.min(4096, Math.floor(softLimit / 4)));
}

/** The probe for this machine. */
export function createSystemProbe(): SystemProbe {
  return new LinuxProbe();
}
