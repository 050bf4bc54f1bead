import type { PressureReading } from './governor.js';

/** One running execution as the reading needs it. */
export interface ExecutionMemory {
  /** Measured memory now (tree RSS or cgroup usage); null or 0 when not measured yet or not measurable. */
  measured: number | null;
  /** What admission reserved for it: the expected memory it was admitted with. */
  reserved: number;
  /**
   * The highest it measured in this attempt (null: not tracked, `measured` is used). Paid memory
   * is counted up to it, not up to `measured` alone: a process tearing down its address space
   * on exit reads ~0 RSS in /proc while the kernel is still freeing (and the cgroup still
   * charging) its pages, for a sample or more; counting only `measured` then turned a batch of
   * agents ending together into "unpaid" memory, and an emergency with a kill (seen in a 1.4 GB
   * cgroup: fraction 1.12 for one reading). The cost: memory an execution touched and gave
   * back stays counted as paid while it runs, which is what its reservation promises it anyway.
   */
  peak?: number | null;
}

/** What one sampling instant saw. */
export interface ReadingInput {
  /** Machine (cgroup-aware) used bytes and effective limit. */
  used: number;
  limit: number;
  /** The agents' budget. */
  budget: number;
  /** /proc/pressure/memory full avg10, when present. */
  psi: number | null;
  agents: Iterable<ExecutionMemory>;
}

/**
 * Builds the governor's reading from one sampling instant. Pure, so any owner of processes (the
 * run loop now, a supervisor later) fills it the same way.
 *
 * Invariants: paid = Σ min(max(measured, peak), reserved) ≤ reserved; over = Σ max(0,
 * measured − reserved) follows the current measurement, so growth past a reservation shows at
 * once and a task that shrank back below it stops counting; agents = Σ measured.
 */
export function pressureReading(input: ReadingInput): PressureReading {
  let reservedBytes = 0;
  let paidBytes = 0;
  let agentsBytes = 0;
  let overBytes = 0;
  for (const a of input.agents) {
    const measured = Math.max(0, a.measured ?? 0);
    const reserved = Math.max(0, a.reserved);
    reservedBytes += reserved;
    paidBytes += Math.min(Math.max(measured, a.peak ?? 0), reserved);
    agentsBytes += measured;
    overBytes += Math.max(0, measured - reserved);
  }
  return {
    usedBytes: input.used,
    limitBytes: input.limit,
    reservedBytes,
    paidBytes,
    agentsBytes,
    overBytes,
    budgetBytes: input.budget,
    psiFullAvg10: input.psi,
  };
}
