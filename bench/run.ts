/**
 * Runs every benchmark in sequence, each in its own node process (fresh heap, --expose-gc), then
 * prints the headline ratios from their bench/results/<name>.json files.
 *
 * Run: npm run bench            (= tsc -p tsconfig.json && node dist/bench/run.js)
 *      node dist/bench/run.js [--only=startup,memory-bound] [extra args passed to each, e.g. --rounds=1]
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmtMB, fmtRatio, REPO_ROOT } from './lib.js';
import type { McpGatewayResult } from './mcp-gateway.js';

const BENCHMARKS = ['scheduler-throughput', 'memory-bound', 'many-small', 'startup', 'under-declared', 'reaction', 'sampling-cost', 'cache-tiers', 'cache-compression', 'memo-quickstart', 'dashboard-overhead', 'mcp-gateway', 'bench-verdicts', 'task-metrics'] as const;
const here = dirname(fileURLToPath(import.meta.url));

const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
const passThrough = process.argv.slice(2).filter((a) => !a.startsWith('--only='));
const selected = BENCHMARKS.filter((b) => !only || only.includes(b));

const failed: string[] = [];
const t0 = performance.now();
for (const name of selected) {
  console.log(`\n=== ${name} ${'='.repeat(Math.max(0, 70 - name.length))}`);
  const r = spawnSync(process.execPath, ['--expose-gc', join(here, `${name}.js`), ...passThrough], { stdio: 'inherit' });
  if (r.status !== 0) failed.push(`${name} (exit ${r.status ?? r.signal})`);
}

const load = (name: string): Record<string, unknown> | null => {
  try {
    return JSON.parse(readFileSync(join(REPO_ROOT, 'bench', 'results', `${name}.json`), 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
};

console.log(`\n=== summary (${((performance.now() - t0) / 1000).toFixed(0)} s) ${'='.repeat(50)}`);
if (selected.includes('scheduler-throughput')) {
  const r = load('scheduler-throughput') as { results: { concurrency: number; ratio: number; drainRatio: number }[]; guildInversions: number; allRan: boolean } | null;
  for (const x of r?.results ?? []) console.log(`scheduler-throughput  Guild / p-queue tasks/s @ conc ${x.concurrency}: ${fmtRatio(x.ratio)} (goal >= 1.0; drain phase alone ${fmtRatio(x.drainRatio)})`);
  if (r) console.log(`scheduler-throughput  all tasks ran: ${r.allRan ? 'yes' : 'NO'}; Guild priority inversions: ${r.guildInversions}`);
}
if (selected.includes('memory-bound')) {
  const r = load('memory-bound') as { summary: { runner: string; makespanMs: number; peakBytes: number; peakOverBudget: number; makespanOverLowerBound: number }[] } | null;
  for (const s of r?.summary ?? []) {
    console.log(`memory-bound          ${s.runner.padEnd(32)} makespan/LB ${fmtRatio(s.makespanOverLowerBound)}  peak/budget ${fmtRatio(s.peakOverBudget)}  (${(s.makespanMs / 1000).toFixed(1)} s, ${fmtMB(s.peakBytes)})`);
  }
  const cg = load('memory-bound') as { cgroup: { makespanOverLowerBound: number; peakOverBudget: number; kernelOomKills: number; ok: boolean; rounds: { governor: { pauses: number; caps: number; kills: number } }[] } | null; cgroupSkipped: string | null } | null;
  if (cg?.cgroup) {
    const c = cg.cgroup;
    const n = (k: 'pauses' | 'caps' | 'kills'): number => c.rounds.reduce((a, r) => a + r.governor[k], 0);
    console.log(
      `memory-bound          ${'Guild in a 1.4 GB cgroup'.padEnd(32)} makespan/LB ${fmtRatio(c.makespanOverLowerBound)}  peak/budget ${fmtRatio(c.peakOverBudget)}  kernel OOM kills ${c.kernelOomKills}; pauses ${n('pauses')}, caps ${n('caps')}, kills ${n('kills')}${c.ok ? '' : '  NOT ALL OK'}`,
    );
  } else if (cg?.cgroupSkipped) console.log(`memory-bound          in a 1.4 GB cgroup: skipped (${cg.cgroupSkipped})`);
  console.log('memory-bound          goals for Guild (host and cgroup): makespan/LB <= 1.25, peak/budget <= 1.0');
}
if (selected.includes('many-small')) {
  const r = load('many-small') as { summary: { runner: string; makespanOverLowerBound: number; peakOverBudget: number; pauses: number; caps: number; kills: number; ok: boolean }[]; cgroupSkipped: string | null } | null;
  for (const s of r?.summary ?? []) {
    console.log(
      `many-small            ${s.runner.padEnd(32)} makespan/LB ${fmtRatio(s.makespanOverLowerBound)}  peak/budget ${fmtRatio(s.peakOverBudget)}  pauses ${s.pauses}, caps ${s.caps}, kills ${s.kills}${s.ok ? '' : '  NOT ALL OK'}`,
    );
  }
  if (r?.cgroupSkipped) console.log(`many-small            in an 800 MB cgroup: skipped (${r.cgroupSkipped})`);
  if (r) console.log('many-small            200 x 50 MB under 600 MB (before issue 10: 2.3–2.4 x the lower bound, 16–24 pauses, a cap of 1)');
}
if (selected.includes('startup')) {
  const r = load('startup') as { cold: { guildMedianMs: number; guildP90Ms: number; ratio: number }; idle: { guildMidRunBytes: number; ratio: number } } | null;
  if (r) {
    console.log(`startup               guild --version median ${r.cold.guildMedianMs.toFixed(0)} ms, p90 ${r.cold.guildP90Ms.toFixed(0)} ms (target < 2000 ms); / node -e 0: ${fmtRatio(r.cold.ratio)}`);
    console.log(`startup               Guild RSS while waiting ${fmtMB(r.idle.guildMidRunBytes)} (target < 50 MB); / bare node: ${fmtRatio(r.idle.ratio)}`);
  }
}
if (selected.includes('under-declared')) {
  const r = load('under-declared') as { skipped: string | null; summary: { runner: string; makespanMs: number; completed: number; attempted: number; kernelOomKills: number; makespanOverGuild: number }[] } | null;
  if (r?.skipped) console.log(`under-declared        skipped: ${r.skipped}`);
  for (const s of r?.summary ?? []) {
    console.log(`under-declared        ${s.runner.padEnd(32)} completed ${s.completed}/${s.attempted}  kernel OOM kills ${s.kernelOomKills}  makespan/Guild ${fmtRatio(s.makespanOverGuild)}  (${(s.makespanMs / 1000).toFixed(1)} s)`);
  }
  if (r && !r.skipped) console.log('under-declared        goals for Guild: all tasks completed, 0 kernel OOM kills');
}
if (failed.length > 0) {
  console.log(`FAILED: ${failed.join(', ')}`);
  process.exitCode = 1;
}
if (selected.includes('reaction')) {
  const r = load('reaction') as { kill: { p50: number; p99: number; trials: number }; pause: { p50: number; p99: number; trials: number } } | null;
  if (r) {
    console.log(`reaction              kill over hard limit: p50 ${r.kill.p50.toFixed(0)} ms, p99 ${r.kill.p99.toFixed(0)} ms (${r.kill.trials} trials; goal p99 <= 250 ms)`);
    console.log(`reaction              pause at high pressure: p50 ${r.pause.p50.toFixed(0)} ms, p99 ${r.pause.p99.toFixed(0)} ms (${r.pause.trials} trials)`);
  }
}
if (selected.includes('sampling-cost')) {
  const r = load('sampling-cost') as { guildUs: number; naiveUs: number; psUs: number; agents: number } | null;
  if (r) {
    console.log(
      `sampling-cost         ${r.agents} trees: ${r.guildUs.toFixed(0)} µs per sample = ${(r.guildUs / 1000).toFixed(2)} % of a core at 100 ms (goal < 1 %); re-open peer ${fmtRatio(r.naiveUs / r.guildUs)}×, ps peer ${fmtRatio(r.psUs / r.guildUs)}×`,
    );
  }
}
if (selected.includes('cache-tiers')) {
  const r = load('cache-tiers') as {
    l1: { guildMedian: number; ratio: number; layered: { guildMedian: number } };
    l2: { medians: { guildGets: number; guildSets: number }; ratios: { getsVsRaw: number; setsVsRaw: number } };
    l3: { ratios: { sequential: number; concurrent: number } } | null;
    l3Skipped: string | null;
  } | null;
  if (r) {
    const ops = (x: number): string => Math.round(x).toLocaleString('en-US');
    console.log(`cache-tiers           L1 MemoryTier.get / lru-cache: ${fmtRatio(r.l1.ratio)} (goal >= 0.7; ${ops(r.l1.guildMedian)}/s); LayeredCache.get L1 hit ${ops(r.l1.layered.guildMedian)}/s`);
    console.log(`cache-tiers           L2 SqliteTier gets ${ops(r.l2.medians.guildGets)}/s (goal >= 100,000; / raw ${fmtRatio(r.l2.ratios.getsVsRaw)}), sets ${ops(r.l2.medians.guildSets)}/s (goal >= 50,000; / raw ${fmtRatio(r.l2.ratios.setsVsRaw)})`);
    if (r.l3) console.log(`cache-tiers           L3 RedisTier.get / ioredis: sequential ${fmtRatio(r.l3.ratios.sequential)}, 100 in flight ${fmtRatio(r.l3.ratios.concurrent)}`);
    else console.log(`cache-tiers           L3 skipped: ${r.l3Skipped}`);
  }
}
if (selected.includes('task-metrics')) {
  const r = load('task-metrics') as { tasks: number; rounds: number; ratio: number; goal: number; rows: { counted: boolean }[] } | null;
  if (r) {
    console.log(
      `task-metrics          makespan with task metrics on / off, ${r.tasks} tasks: ${r.ratio.toFixed(3)} (goal <= ${r.goal}; median of ${r.rounds} rounds)${r.rows.every((x) => x.counted) ? '' : '  COUNTS WRONG'}`,
    );
  }
}
if (selected.includes('bench-verdicts')) {
  type Counts = { guild: number; thresholdOnly: number; singleSample: number };
  const r = load('bench-verdicts') as { rounds: number; threshold: number; falseAlarms: Counts; detection: Counts } | null;
  if (r) {
    const n = r.rounds;
    console.log(
      `bench-verdicts        guild bench --against, same commit: ${r.falseAlarms.guild} of ${n} false alarms (goal 0; single-sample peer ${r.falseAlarms.singleSample}, threshold alone ${r.falseAlarms.thresholdOnly})`,
    );
    console.log(
      `bench-verdicts        ~20 % slower (threshold ${r.threshold * 100} %): detected ${r.detection.guild} of ${n} (single-sample peer ${r.detection.singleSample}, threshold alone ${r.detection.thresholdOnly})`,
    );
  }
}
if (selected.includes('cache-compression')) {
  type Row = { tier: string; content: string; size: number; storedOn: number; storedOff: number; setsOn: number; setsOff: number; getsOn: number; getsOff: number };
  const r = load('cache-compression') as { default: { codec: string; level: number; thresholdBytes: number }; sqlite: Row[]; redis: Row[] | null; redisSkipped: string | null } | null;
  if (r) {
    const d = r.default;
    for (const x of [...r.sqlite, ...(r.redis ?? [])].filter((x) => x.size === 16 * 1024 || x.size === 5 * 1024 * 1024)) {
      console.log(
        `cache-compression     ${d.codec}-${d.level} ${x.tier} ${x.content} ${x.size >= 1024 * 1024 ? `${x.size / 1024 / 1024} MiB` : `${x.size / 1024} KiB`}: stored on/off ${fmtRatio(x.storedOn / x.storedOff)}, sets ${fmtRatio(x.setsOn / x.setsOff)}, gets ${fmtRatio(x.getsOn / x.getsOff)}`,
      );
    }
    if (r.redisSkipped) console.log(`cache-compression     Redis skipped: ${r.redisSkipped}`);
  }
}
if (selected.includes('dashboard-overhead')) {
  const r = load('dashboard-overhead') as {
    headline: { dashboardOverOff: number; telemetryOverOff: number; guildRssWithClientsWorstBytes: number; clientsMissingEnd: number; clientsTotal: number };
  } | null;
  if (r) {
    const h = r.headline;
    console.log(
      `dashboard-overhead    makespan dashboard + 50 SSE / off ${h.dashboardOverOff.toFixed(3)} (goal <= 1.03), telemetry / off ${h.telemetryOverOff.toFixed(3)} (medians of same-round ratios); ` +
        `Guild peak RSS with 50 clients ${fmtMB(h.guildRssWithClientsWorstBytes)} worst round (goal < 200 MB); end event ${h.clientsTotal - h.clientsMissingEnd}/${h.clientsTotal} clients`,
    );
  }
}
if (selected.includes('memo-quickstart')) {
  const r = load('memo-quickstart') as { summary: { warmOverCold: number; warmHitRate: number; serveMedianMs: number; warmSavedMs: number; changedOverCold: number; coldMakespanMs: number } } | null;
  if (r) {
    const s = r.summary;
    console.log(
      `memo-quickstart       again / cold makespan ${fmtRatio(s.warmOverCold)} (goal <= 0.3), hit rate ${s.warmHitRate.toFixed(2)} (goal >= 0.7), median serve ${s.serveMedianMs.toFixed(1)} ms (goal < 20 ms), saved ${(s.warmSavedMs / 1000).toFixed(1)} s; +1 byte / cold ${fmtRatio(s.changedOverCold)}`,
    );
  }
}
if (selected.includes('mcp-gateway')) {
  const r = load('mcp-gateway') as McpGatewayResult | null;
  if (r) {
    const p = 'mcp-gateway          ';
    const ms = (x: number | null | undefined): string => (x == null ? '—' : `${x.toFixed(2)} ms`);
    if (r.gatewayMissing) console.log(`${p} ${r.gatewayMissing.split(':')[0]}: direct figures only`);
    for (const where of ['host', 'cgroup'] as const) {
      const rows = r.memory.filter((m) => m.where === where);
      if (rows.length === 0) continue;
      const label = where === 'host' ? 'on the host' : 'in a 4 GiB cgroup';
      const cells = rows.map((m) =>
        m.pssRatio !== null && m.rssRatio !== null
          ? `${m.clients}: PSS ${fmtRatio(m.pssRatio)}, RSS ${fmtRatio(m.rssRatio)}${m.cgroupRatio !== null ? `, charged ${fmtRatio(m.cgroupRatio)}` : ''}`
          : `${m.clients}: direct ${m.direct.processes} procs, PSS ${fmtMB(m.direct.pssBytes)}, RSS ${fmtMB(m.direct.rssBytes)}`,
      );
      const what = rows.some((m) => m.pssRatio !== null) ? 'memory gateway / direct' : 'memory direct only';
      console.log(`${p} ${what} ${label}, by clients: ${cells.join('; ')} (goal at 5 clients <= 0.3)`);
    }
    if (r.memory.length > 0 && r.cgroupSkipped && !r.memory.some((m) => m.where === 'cgroup')) console.log(`${p} memory in a 4 GiB cgroup: skipped (${r.cgroupSkipped})`);
    const l = r.latency;
    if (l) {
      const pa = l.paths;
      if (l.overheadUncachedP50Ms !== null) {
        console.log(
          `${p} echo p50 overhead uncached (gateway − direct HTTP) ${ms(l.overheadUncachedP50Ms)} (goal <= 2 ms); cached beyond the gateway's ping ${ms(l.cachedOverPingP50Ms)} (goal <= 1 ms; absolute ${ms(l.cachedP50Ms)})`,
        );
      }
      const gwP50 = pa['gateway uncached'] ? `, gateway uncached ${ms(pa['gateway uncached'].p50Ms)}, cached ${ms(pa['gateway cached']?.p50Ms)}` : '';
      console.log(`${p} echo p50: direct stdio ${ms(pa['direct stdio']?.p50Ms)}, direct HTTP ${ms(pa['direct HTTP']?.p50Ms)}${gwP50}`);
      if (l.long.gatewayUncached && l.long.gatewayCached) {
        console.log(`${p} 300 ms tool p50: gateway uncached ${ms(l.long.gatewayUncached.p50Ms)}, cached ${ms(l.long.gatewayCached.p50Ms)} (direct stdio ${ms(l.long.directStdio.p50Ms)})`);
      }
    }
    const t = r.throughput;
    if (t) {
      const rate = (x: number | null): string => (x === null ? '—' : `${Math.round(x)}/s`);
      const direct = `direct stdio ${rate(t.directStdio)}, direct HTTP ${rate(t.directHttp)}`;
      console.log(
        t.uncachedOverStdio === null
          ? `${p} echo calls/s, ${t.clients} clients: ${direct}`
          : `${p} echo calls/s, ${t.clients} clients: gateway / direct stdio ${fmtRatio(t.uncachedOverStdio)} uncached, ${fmtRatio(t.cachedOverStdio ?? NaN)} cached (no goal set); ${direct}, gateway ${rate(t.gatewayUncached)}, cached ${rate(t.gatewayCached)}`,
      );
    }
    if (r.gatewayFailures.length > 0) console.log(`${p} gateway FAILED ${r.gatewayFailures.length} time(s): ${r.gatewayFailures[0]!.split('\n')[0]}`);
  }
}
