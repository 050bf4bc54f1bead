import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ProcReader } from './proc-reader.js';

/** Where this process's memory cgroup lives and which interface it speaks. */
export interface CgroupLocation {
  version: 1 | 2;
  /** Directory of this process's own cgroup, e.g. /sys/fs/cgroup/memory/process_api/ab12. */
  dir: string;
  /** Mount point of the hierarchy: ancestors are walked up to here, inclusive. */
  mountPoint: string;
}

interface MountEntry {
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    out.push({
      root: unescapeMount(left[3] ?? '/'),
      mountPoint: unescapeMount(left[4] ?? ''),
      fsType: right[0] ?? '',
      superOptions: (right[2] ?? '').split(','),
    });
  }
  return out;
}

// mountinfo escapes space, tab, newline and backslash as octal.
const unescapeMount = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

function joinCgroupPath(mount: MountEntry, cgroupPath: string): string {
  // In a cgroup namespace or a container the mount's root may be the cgroup itself.
  let rel = cgroupPath;
  if (mount.root !== '/' && (cgroupPath === mount.root || cgroupPath.startsWith(`${mount.root}/`))) {
    rel = cgroupPath.slice(mount.root.length);
  }
  rel = rel.replace(/^\/+/, '');
  return rel ? `${mount.mountPoint}/${rel}` : mount.mountPoint;
}

/** One line of /proc/<pid>/cgroup: `<id>:<controllers>:<path>` (the path may itself hold ':'). */
interface CgroupEntry {
  /** The unified (v2) hierarchy: id 0 with no controllers listed. */
  unified: boolean;
  controllers: string[];
  path: string;
}

function cgroupEntries(cgroupText: string): CgroupEntry[] {
  const out: CgroupEntry[] = [];
  for (const line of cgroupText.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    out.push({ unified: line.slice(0, first) === '0' && controllers === '', controllers: controllers.split(','), path: line.slice(second + 1) });
  }
  return out;
}

/**
 * Resolves the memory cgroup of this process from /proc/self/cgroup and /proc/self/mountinfo.
 * cgroup v2 wins when its memory controller is enabled for our group; hybrid hosts that mount
 * v2 without the memory controller fall back to v1.
 */
export function resolveMemoryCgroup(cgroupText: string, mountinfoText: string, exists: (path: string) => boolean = existsSync): CgroupLocation | null {
  const mounts = parseMountinfo(mountinfoText);
  let v1Path: string | undefined;
  let v2Path: string | undefined;
  for (const e of cgroupEntries(cgroupText)) {
    if (e.unified) v2Path = e.path;
    else if (e.controllers.includes('memory')) v1Path = e.path;
  }
  if (v2Path !== undefined) {
    for (const m of mounts.filter((e) => e.fsType === 'cgroup2')) {
      const dir = joinCgroupPath(m, v2Path);
      if (exists(`${dir}/memory.max`) || exists(`${dir}/memory.current`)) return { version: 2, dir, mountPoint: m.mountPoint };
    }
  }
  if (v1Path !== undefined) {
    const m = mounts.find((e) => e.fsType === 'cgroup' && e.superOptions.includes('memory'));
    if (m) {
      const dir = joinCgroupPath(m, v1Path);
      if (exists(`${dir}/memory.limit_in_bytes`)) return { version: 1, dir, mountPoint: m.mountPoint };
    }
  }
  return null;
}

/**
 * This process's cgroup in one hierarchy: the v1 hierarchy that carries `controller`, or the
 * unified (v2) one when `controller` is null. Used by cgroup-control to place task groups beside
 * Guild in every hierarchy it uses (the memory one comes from resolveMemoryCgroup).
 */
export function resolveHierarchy(cgroupText: string, mountinfoText: string, controller: string | null): { dir: string; mountPoint: string } | null {
  const mounts = parseMountinfo(mountinfoText);
  for (const { unified, controllers, path } of cgroupEntries(cgroupText)) {
    if (controller === null ? !unified : unified || !controllers.includes(controller)) continue;
    const m = mounts.find((e) => (controller === null ? e.fsType === 'cgroup2' : e.fsType === 'cgroup' && e.superOptions.includes(controller)));
    if (m) return { dir: joinCgroupPath(m, path), mountPoint: m.mountPoint };
  }
  return null;
}

/** What one reading of the cgroup says; limit is null when no ancestor sets one. */
export interface CgroupMemoryReading {
  /** The tightest limit on the path from our group up to the root. */
  limitBytes: number | null;
  /** The directory whose limit is the tightest (its usage is the one that matters). */
  limitDir: string;
  /** Usage of that directory minus inactive file cache: what the kernel cannot easily reclaim. */
  workingSetBytes: number;
  /** Raw usage (includes page cache). */
  usageBytes: number;
  /** Kernel OOM kills in our group, when the kernel exposes the counter. */
  oomKills: number | null;
}

const readNumber = (reader: ProcReader, path: string): number | null => {
  const t = reader.read(path);
  if (t === null) return null;
  const s = t.trim();
  if (s === 'max') return Infinity;
  const n = Number(s);
  return Number.isFinite(n) ? n : null;
};

/** A `key value` line of memory.stat, 0 when absent. */
export const statField = (text: string | null, key: string): number => {
  if (!text) return 0;
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
};

/**
 * Reads limit and usage, walking ancestors because a limit set on a parent applies to us too.
 * Limits at or above `unlimitedAtOrAbove` (total memory) count as none: v1 reports
 * 9223372036854771712 when unlimited.
 */
export function readCgroupMemory(loc: CgroupLocation, reader: ProcReader, unlimitedAtOrAbove: number): CgroupMemoryReading {
  const limitFile = loc.version === 2 ? 'memory.max' : 'memory.limit_in_bytes';
  const usageFile = loc.version === 2 ? 'memory.current' : 'memory.usage_in_bytes';
  let limitBytes: number | null = null;
  let limitDir = loc.dir;
  for (let dir = loc.dir; ; dir = dirname(dir)) {
    const v = readNumber(reader, `${dir}/${limitFile}`);
    if (v !== null && v < unlimitedAtOrAbove && (limitBytes === null || v < limitBytes)) {
      limitBytes = v;
      limitDir = dir;
    }
    if (dir === loc.mountPoint || dir.length <= loc.mountPoint.length || dir === '/') break;
  }
  const usageBytes = readNumber(reader, `${limitDir}/${usageFile}`) ?? 0;
  const stat = reader.read(`${limitDir}/memory.stat`);
  const inactiveFile = loc.version === 2 ? statField(stat, 'inactive_file') : statField(stat, 'total_inactive_file');
  const workingSetBytes = Math.max(0, usageBytes - inactiveFile);
  let oomKills: number | null = null;
  const events = reader.read(loc.version === 2 ? `${loc.dir}/memory.events` : `${loc.dir}/memory.oom_control`);
  if (events !== null) {
    const m = /^oom_kill (\d+)$/m.exec(events);
    oomKills = m ? Number(m[1]) : null;
  }
  return { limitBytes, limitDir, workingSetBytes, usageBytes, oomKills };
}

/** CPU quota in cores from the cgroup (v2 cpu.max, v1 cfs quota/period), or null. */
export function readCpuQuota(cgroupText: string, mountinfoText: string, reader: ProcReader): number | null {
  const mounts = parseMountinfo(mountinfoText);
  for (const { unified, controllers, path } of cgroupEntries(cgroupText)) {
    if (unified) {
      const m = mounts.find((e) => e.fsType === 'cgroup2');
      if (!m) continue;
      const t = reader.readOnce(`${joinCgroupPath(m, path)}/cpu.max`);
      const [quota, period] = (t ?? '').trim().split(' ');
      if (quota && quota !== 'max' && period) return Number(quota) / Number(period);
    } else if (controllers.includes('cpu')) {
      const m = mounts.find((e) => e.fsType === 'cgroup' && e.superOptions.includes('cpu'));
      if (!m) continue;
      const dir = joinCgroupPath(m, path);
      const quota = Number(reader.readOnce(`${dir}/cpu.cfs_quota_us`) ?? '-1');
      const period = Number(reader.readOnce(`${dir}/cpu.cfs_period_us`) ?? '0');
      if (quota > 0 && period > 0) return quota / period;
    }
  }
  return null;
}
