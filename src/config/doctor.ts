import { readSystem } from '../system/inspect.js';
import type { MemorySnapshot, SystemProbe } from '../system/probe.js';
import { DEFAULTS } from './defaults.js';
import { poolReport, type PoolsReport } from './pools.js';
import { effectiveLimit } from './resolve.js';

// `guild doctor`: the system's readings (system/inspect.ts) with what the defaults make of them
// (effective limit, default budget, pools, CPU cap). Configuration is what turns readings into a
// budget, so this sits in config, above the probes it reads.

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

/** Reads every probe once (CPU usage over `cpuWindowMs`) and applies the defaults to it. */
export async function inspectSystem(probe: SystemProbe, cpuWindowMs = 200): Promise<SystemReport> {
  const r = await readSystem(probe, cpuWindowMs);
  const mem = r.memory;
  const limit = effectiveLimit(probe);
  const budget = Math.floor(limit * DEFAULTS.budgetShare);
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
      default_budget_bytes: budget,
      default_budget_share: DEFAULTS.budgetShare,
    },
    pools: poolReport(DEFAULTS.pools, budget, { critical: 0, other: 0 }),
    cpu: { cores: r.cpu.cores, source: r.cpu.source, cap: r.cpu.cores * DEFAULTS.cpuShare, usage: r.cpuUsage },
    psi: r.psi ? { some_avg10: r.psi.someAvg10, full_avg10: r.psi.fullAvg10, some_total_us: r.psi.someTotalUs, full_total_us: r.psi.fullTotalUs } : null,
    process_tree: r.processTree,
    guild: { pid: r.guild.pid, rss_bytes: r.guild.rssBytes, node: r.guild.node, platform: r.guild.platform },
  };
}
