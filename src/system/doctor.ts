import { existsSync } from 'node:fs';
import { DEFAULTS } from '../config/defaults.js';
import { effectiveLimit } from '../config/resolve.js';
import type { MemorySnapshot, SystemProbe } from './probe.js';
import { poolReport } from '../workflow/pool-report.js';
import type { PoolsReport } from '../workflow/report.js';

/** What `guild doctor` shows: every reading and which source is in force. */
export interface SystemReport {
  memory: {
    source: MemorySnapshot['source'];
    cgroup_dir: string | null;
    limit_bytes: number;
    used_bytes: number;
    available_bytes: number;
    host_total_bytes: number;
    host_available_bytes: number;
    oom_kills: number | null;
    /** The memory the default budget is a share of. */
    effective_limit_bytes: number;
    default_budget_bytes: number;
    default_budget_share: number;
  };
  /** The seed's pools applied to the default budget. */
  pools: PoolsReport;
  cpu: { cores: number; source: string; cap: number; usage: number | null };
  psi: { some_avg10: number; full_avg10: number; some_total_us: number; full_total_us: number } | null;
  process_tree: { method: string; available: boolean };
  guild: { pid: number; rss_bytes: number; node: string; platform: string };
}

/** Reads every probe once (CPU usage over `cpuWindowMs`). */
export async function inspectSystem(probe: SystemProbe, cpuWindowMs = 200): Promise<SystemReport> {
  probe.cpuUsage();
  await new Promise((r) => setTimeout(r, cpuWindowMs));
  const usage = probe.cpuUsage();
  const mem = probe.memory();
  const limit = effectiveLimit(probe);
  const cpu = probe.cpu();
  const psi = probe.psi();
  return {
    memory: {
      source: mem.source,
      cgroup_dir: mem.cgroupDir,
      limit_bytes: mem.limitBytes,
      used_bytes: mem.usedBytes,
      available_bytes: mem.availableBytes,
      host_total_bytes: mem.hostTotalBytes,
      host_available_bytes: mem.hostAvailableBytes,
      oom_kills: mem.oomKills,
      effective_limit_bytes: limit,
      default_budget_bytes: Math.floor(limit * DEFAULTS.budgetShare),
      default_budget_share: DEFAULTS.budgetShare,
    },
    pools: poolReport(DEFAULTS.pools, Math.floor(limit * DEFAULTS.budgetShare), { critical: 0, other: 0 }),
    cpu: { cores: cpu.cores, source: cpu.source, cap: cpu.cores * DEFAULTS.cpuShare, usage },
    psi: psi ? { some_avg10: psi.someAvg10, full_avg10: psi.fullAvg10, some_total_us: psi.someTotalUs, full_total_us: psi.fullTotalUs } : null,
    process_tree: { method: '/proc/<pid>/task/<tid>/children + /proc/<pid>/statm', available: existsSync(`/proc/self/task/${process.pid}/children`) },
    guild: { pid: process.pid, rss_bytes: probe.selfRss(), node: process.version, platform: `${process.platform}-${process.arch}` },
  };
}
