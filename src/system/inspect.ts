import { existsSync } from 'node:fs';
import type { CpuInfo, MemorySnapshot, PsiSnapshot, SystemProbe } from './probe.js';

/** Every probe read once: the machine as `guild doctor` starts from it, before any configuration. */
export interface SystemReadings {
  memory: MemorySnapshot;
  cpu: CpuInfo;
  /** Busy fraction of all CPU time over the window, or null when /proc/stat is not readable. */
  cpuUsage: number | null;
  psi: PsiSnapshot | null;
  /** How process trees are walked, and whether this kernel offers it. */
  processTree: { method: string; available: boolean };
  /** Guild itself. */
  guild: { pid: number; rssBytes: number; node: string; platform: string };
}

/** Reads every probe once (CPU usage over `cpuWindowMs`). */
export async function readSystem(probe: SystemProbe, cpuWindowMs = 200): Promise<SystemReadings> {
  probe.cpuUsage();
  await new Promise((r) => setTimeout(r, cpuWindowMs));
  const cpuUsage = probe.cpuUsage();
  return {
    memory: probe.memory(),
    cpu: probe.cpu(),
    cpuUsage,
    psi: probe.psi(),
    processTree: { method: '/proc/<pid>/task/<tid>/children + /proc/<pid>/statm', available: existsSync(`/proc/self/task/${process.pid}/children`) },
    guild: { pid: process.pid, rssBytes: probe.selfRss(), node: process.version, platform: `${process.platform}-${process.arch}` },
  };
}
