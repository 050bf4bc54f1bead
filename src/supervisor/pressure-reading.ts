// INTEGRATION (part `governor`): a local copy of governor/reading.ts — the same signature and
// PLAN.md's PressureReading shape. When that part lands, delete this file, import
// `pressureReading` and `ExecutionMemory` from '../governor/reading.js' and `PressureReading`
// from '../governor/governor.js', and feed `observe()` the reading itself (governance.ts).

/** One memory reading for the governor (PLAN.md's shape). All bytes. */
export interface PressureReading {
  /** Machine (cgroup-aware) used and effective limit. */
  usedBytes: number;
  limitBytes: number;
  /** Σ over running executions of their reservation. */
  reservedBytes: number;
  /** Σ over running executions of min(measured, reservation): already paid for by admission. */
  paidBytes: number;
  /** Σ measured memory of running executions. */
  agentsBytes: number;
  /** Σ of what each execution measured above its reservation. */
  overBytes: number;
  /** The agents' budget. */
  budgetBytes: number;
  /** /proc/pressure/memory full avg10, when present. */
  psiFullAvg10: number | null;
}

/** One running execution as the reading needs it. */
export interface ExecutionMemory {
  /** Measured memory now; null when not measured yet or not measurable (counts as 0). */
  measured: number | null;
  /** What admission reserved for it: the expected memory it was admitted with. */
  reserved: number;
  /** Its highest measurement so far: paid memory counts up to it (an exiting tree reads ~0 while the kernel still frees it). */
  peak?: number | null;
}

/** What one sampling instant saw. */
export interface ReadingInput {
  used: number;
  limit: number;
  budget: number;
  psi: number | null;
  agents: Iterable<ExecutionMemory>;
}

/**
 * Builds the governor's reading from one sampling instant. Pure. Invariants: paid ≤ reserved;
 * over follows the current measurement; agents = Σ measured.
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
  return { usedBytes: input.used, limitBytes: input.limit, reservedBytes, paidBytes, agentsBytes, overBytes, budgetBytes: input.budget, psiFullAvg10: input.psi };
}
