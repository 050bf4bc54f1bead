// INTEGRATION (part `governor`): this is a local copy of governor/reading.ts's
// `pressureReading(...)` with the PressureReading shape of PLAN.md. When that part lands, delete
// this file, import both from the governor, and feed `observe()` the reading itself (see
// `legacyReading` in supervisor.ts).

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

/** What one running execution contributes. */
export interface ExecutionMemory {
  /** The expected memory admission reserved for it. */
  reservationBytes: number;
  /** Its last measurement; null when never measured (it then counts as 0 measured). */
  measuredBytes: number | null;
}

/** Builds a reading from the machine's figures and every running execution's. Pure. */
export function pressureReading(
  machine: { usedBytes: number; limitBytes: number },
  executions: Iterable<ExecutionMemory>,
  budgetBytes: number,
  psiFullAvg10: number | null,
): PressureReading {
  let reserved = 0;
  let paid = 0;
  let agents = 0;
  let over = 0;
  for (const e of executions) {
    const measured = e.measuredBytes ?? 0;
    reserved += e.reservationBytes;
    paid += Math.min(measured, e.reservationBytes);
    agents += measured;
    over += Math.max(0, measured - e.reservationBytes);
  }
  return {
    usedBytes: machine.usedBytes,
    limitBytes: machine.limitBytes,
    reservedBytes: reserved,
    paidBytes: paid,
    agentsBytes: agents,
    overBytes: over,
    budgetBytes,
    psiFullAvg10,
  };
}
