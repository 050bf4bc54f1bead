import type { PressureReading } from './governor.js';

/** One running execution as the reading needs it. */
export interface ExecutionMemory {
  /** Measured memory now (tree RSS or cgroup usage); null or 0 when not measured yet or not measurable. */
  measured: number | null;
  /** What admission reserved for it: the expected memory it was admitted with. */
  reserved: number;
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
 * Invariants: paid = Σ min(measured, reserved) ≤ reserved; agents = paid + over, since each
 * execution's measured memory is min(measured, reserved) + max(0, measured − reserved).
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
    paidBytes += Math.min(measured, reserved);
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
