import { load1, machineBusyTicks, memAvailableBytes, psiSomeTotalUs, TICKS_PER_SECOND, treeCpuTicks } from '../system/machine-load.js';
import type { MachineRecord } from './types.js';

// The machine while one iteration is measured: load, the lowest available memory, PSI stall
// shares and the CPU that processes outside Guild's own tree used. An iteration measured under
// outside pressure is marked disturbed, so `--exclude-disturbed` can leave it out.
//
// Only pressure from elsewhere counts: Guild's own tasks saturating the cores stall each other
// on CPU (PSI cpu rises), which is the workload, not a disturbance, so CPU contention is judged by
// the outside tree's CPU use and PSI cpu is only recorded. Memory stalls are judged by PSI memory
// whoever causes them: an iteration that reclaimed or swapped measures the machine, not the change.

/** When an iteration counts as disturbed. */
export const DISTURBED = {
  /** Cores used on average by processes outside Guild's tree. */
  outsideCpuCores: 0.5,
  /** Share of the iteration some task stalled on memory (PSI memory `some`). */
  psiMemorySome: 0.05,
} as const;

/** Available memory is sampled this often (the rest is read at start and stop). */
const SAMPLE_MS = 250;

export interface MachineWatchSources {
  busyTicks(): number | null;
  treeTicks(): number;
  load1(): number | null;
  memAvailable(): number | null;
  psiSome(resource: 'memory' | 'cpu'): number | null;
  now(): number;
}

const REAL: MachineWatchSources = {
  busyTicks: () => machineBusyTicks(),
  treeTicks: () => treeCpuTicks(process.pid),
  load1: () => load1(),
  memAvailable: () => memAvailableBytes(),
  psiSome: (r) => psiSomeTotalUs(r),
  now: () => performance.now(),
};

interface Mark {
  at: number;
  busy: number | null;
  tree: number;
  psiMemory: number | null;
  psiCpu: number | null;
}

/** Watches the machine from start() to stop(). */
export class MachineWatch {
  private start0: Mark | null = null;
  private minAvailable = Infinity;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly src: MachineWatchSources = REAL) {}

  private mark(): Mark {
    return { at: this.src.now(), busy: this.src.busyTicks(), tree: this.src.treeTicks(), psiMemory: this.src.psiSome('memory'), psiCpu: this.src.psiSome('cpu') };
  }

  private sampleMemory(): void {
    const a = this.src.memAvailable();
    if (a !== null && a < this.minAvailable) this.minAvailable = a;
  }

  start(): void {
    this.start0 = this.mark();
    this.minAvailable = Infinity;
    this.sampleMemory();
    this.timer = setInterval(() => this.sampleMemory(), SAMPLE_MS);
    this.timer.unref();
  }

  stop(): MachineRecord {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    const a = this.start0;
    if (a === null) throw new Error('MachineWatch.stop() before start()');
    this.sampleMemory();
    const b = this.mark();
    return judge(a, b, this.src.load1() ?? 0, Number.isFinite(this.minAvailable) ? this.minAvailable : 0);
  }
}

function judge(a: Mark, b: Mark, load: number, memAvailable: number): MachineRecord {
  const seconds = Math.max(1e-3, (b.at - a.at) / 1000);
  const outsideTicks = a.busy !== null && b.busy !== null ? Math.max(0, b.busy - a.busy - (b.tree - a.tree)) : 0;
  const outsideCpuCores = outsideTicks / TICKS_PER_SECOND / seconds;
  const share = (x: number | null, y: number | null): number | null => (x !== null && y !== null ? Math.min(1, Math.max(0, (y - x) / 1e6 / seconds)) : null);
  const psiMemorySome = share(a.psiMemory, b.psiMemory);
  const psiCpuSome = share(a.psiCpu, b.psiCpu);
  const reasons: string[] = [];
  if (outsideCpuCores > DISTURBED.outsideCpuCores) reasons.push(`other processes used ${outsideCpuCores.toFixed(2)} cores`);
  if (psiMemorySome !== null && psiMemorySome > DISTURBED.psiMemorySome) reasons.push(`memory stalls ${(psiMemorySome * 100).toFixed(1)} % of the time (PSI)`);
  return { load1: load, memAvailableBytes: memAvailable, outsideCpuCores, psiMemorySome, psiCpuSome, disturbed: reasons.length > 0, reasons };
}
