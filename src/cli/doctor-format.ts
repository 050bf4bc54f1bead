import type { SystemReport } from '../config/doctor.js';
import { formatBytes } from '../util/units.js';

export function formatDoctor(r: SystemReport): string {
  const m = r.memory;
  const lines = [
    'memory',
    `  source in force     ${m.source}${m.cgroup_dir ? ` (cgroup ${m.cgroup_dir})` : ''}`,
    `  limit               ${formatBytes(m.limit_bytes)}`,
    `  used                ${formatBytes(m.used_bytes)}`,
    `  available           ${formatBytes(m.available_bytes)}`,
    `  host total / avail  ${formatBytes(m.host_total_bytes)} / ${formatBytes(m.host_available_bytes)} (/proc/meminfo)`,
    `  effective limit     ${formatBytes(m.effective_limit_bytes)}${m.source === 'meminfo' ? ' (MemAvailable + Guild’s own RSS)' : ' (cgroup limit)'}`,
    `  default budget      ${formatBytes(m.default_budget_bytes)} (${Math.round(m.default_budget_share * 100)}% of the effective limit)`,
    `  kernel OOM kills    ${m.oom_kills ?? 'not readable'}`,
    'budget pools (of the default budget)',
    ...(['critical', 'execution', 'caching', 'buffer'] as const).map((k) => `  ${k.padEnd(18)}  ${String(Math.round(r.pools[k].share * 100)).padStart(3)}%  ${formatBytes(r.pools[k].bytes)}`),
    `  tasks below critical may reserve ${formatBytes(r.pools.non_critical_limit_bytes)} while no critical task waits`,
    'cpu',
    `  cores               ${r.cpu.cores} (${r.cpu.source})`,
    `  admission cap       ${r.cpu.cap.toFixed(2)} cores of declared shares`,
    `  usage now           ${r.cpu.usage === null ? 'unknown' : `${Math.round(r.cpu.usage * 100)}%`} (/proc/stat over 200ms)`,
    'pressure (PSI)',
    r.psi
      ? `  memory some avg10 ${r.psi.some_avg10}%, full avg10 ${r.psi.full_avg10}%`
      : '  /proc/pressure/memory not available',
    'process trees',
    `  ${r.process_tree.method}: ${r.process_tree.available ? 'available' : 'NOT available (kernel without CONFIG_PROC_CHILDREN)'}`,
    'guild',
    `  pid ${r.guild.pid}, RSS ${formatBytes(r.guild.rss_bytes)}, node ${r.guild.node}, ${r.guild.platform}`,
  ];
  return lines.join('\n');
}
