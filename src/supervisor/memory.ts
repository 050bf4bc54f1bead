import type { Execution } from '../executors/executor.js';
import type { SystemProbe } from '../system/probe.js';

// INTEGRATION (part `contain`): `MemorySource`, `MemorySample` and `Execution.memory()`,
// `canPause`, `canKill` move into executors/executor.ts. Then delete the fallbacks below and
// call the execution directly; the types here become re-exports of the executor's.

/** Where a memory figure came from. Learned profiles never mix sources. */
export type MemorySource = 'cgroup' | 'tree-rss' | 'remote';

/** One measurement of one execution. */
export interface MemorySample {
  bytes: number;
  source: MemorySource;
  /** Pids seen (their cached /proc descriptors are dropped when the execution ends). */
  pids: readonly number[];
}

/** The parts of the coming `Execution` the supervisor uses; optional until `contain` lands. */
interface Capable {
  memory?(): MemorySample | null;
  readonly canPause?: boolean;
  readonly canKill?: boolean;
}

/**
 * An execution's memory now: its own `memory()` where it has one (cgroup, remote), else the RSS
 * of the local process tree from the probe. Null when not measurable or gone: the caller then
 * keeps its last figure rather than showing 0 bytes.
 */
export function memoryOf(exec: Execution, probe: SystemProbe): MemorySample | null {
  const own = (exec as Execution & Capable).memory;
  if (typeof own === 'function') return own.call(exec);
  // FALLBACK until `contain`: tree RSS of the local process group.
  if (exec.pid === null) return null;
  const tree = probe.tree(exec.pid);
  return tree.pids.length === 0 ? null : { bytes: tree.rssBytes, source: 'tree-rss', pids: tree.pids };
}

/** Whether the execution can be measured at all: a local process tree, or one that reports its own memory. */
export function measurable(exec: Execution): boolean {
  return typeof (exec as Execution & Capable).memory === 'function' || exec.pid !== null;
}

/** Whether the execution may be paused (FALLBACK until `contain`: a local process can, a function cannot). */
export function canPause(exec: Execution): boolean {
  return (exec as Execution & Capable).canPause ?? exec.pid !== null;
}

/** Whether the execution may be killed (FALLBACK until `contain`: as `canPause`). */
export function canKill(exec: Execution): boolean {
  return (exec as Execution & Capable).canKill ?? exec.pid !== null;
}
