import type { Execution } from '../executors/executor.js';

export type { MemorySample, MemorySource } from '../executors/executor.js';

/** Whether the execution can be measured at all: a local process tree, or one that reports its own memory. */
export function measurable(exec: Execution): boolean {
  return exec.pid !== null || exec.memory() !== null;
}
