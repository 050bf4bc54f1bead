import type { AgentProfile, ResolvedConfig } from '../config/resolve.js';
import { aloneCapBytes } from '../config/resolved.js';
import { estimateFor, type Estimate, type LearnedProfile } from '../store/profiles.js';
import { formatBytes } from '../util/units.js';
import { WAITING_PHASES, type TaskState } from './task-state.js';

/** A task killed for pressure this many times fails instead of being requeued again. */
const MAX_REQUEUES = 5;

/**
 * What each agent type is expected to use: declared or learned at the start, raised during the
 * run when an agent is measured above it. Learning lives with the owner of the tasks (the run),
 * not in the supervisor: raising touches tasks that are not running, which only the run knows.
 */
export class TaskEstimates {
  readonly #config: ResolvedConfig;
  readonly #learned: ReadonlyMap<string, LearnedProfile>;
  /** Per agent type, the highest estimate raised to so far: a sample above it raises the rest. */
  readonly #raised = new Map<string, number>();

  constructor(config: ResolvedConfig, learned: ReadonlyMap<string, LearnedProfile>) {
    this.#config = config;
    this.#learned = learned;
  }

  /** The estimate of an agent type at the start: learned p90 when there is one, else declared. */
  of(a: AgentProfile): Estimate {
    return estimateFor(a, this.#learned.get(a.name) ?? null, aloneCapBytes(this.#config));
  }

  /** The raised floor of a type (a task queued after the raise takes it). */
  floor(type: string): number {
    return this.#raised.get(type) ?? 0;
  }

  /**
   * Raises the estimate of every not-yet-running task of `type` (never past what could run alone).
   * Only a new high scans the tasks; a task queued later takes the high through `floor`.
   */
  raise(type: string, bytes: number, tasks: Iterable<TaskState>): void {
    const estimate = Math.min(bytes, aloneCapBytes(this.#config));
    if (estimate <= (this.#raised.get(type) ?? 0)) return;
    this.#raised.set(type, estimate);
    for (const t of tasks) if (t.type === type && t.memoryBytes < estimate && WAITING_PHASES.includes(t.phase)) t.memoryBytes = estimate;
  }

  /** After a pressure kill: requeue with the observed peak as the estimate, unless it can never fit. */
  requeueAfterKill(s: TaskState, tasks: Iterable<TaskState>): 'requeued' | 'failed' {
    s.requeues++;
    const observed = Math.max(s.memoryBytes, s.attemptPeak ?? 0);
    if (observed > aloneCapBytes(this.#config)) {
      s.error = `needs ${formatBytes(observed)} (observed before Guild killed it) but with ${this.#config.headroom}× headroom that exceeds the budget ${formatBytes(this.#config.budgetBytes)}`;
      return 'failed';
    }
    if (s.requeues > MAX_REQUEUES) {
      s.error = `killed under memory pressure ${s.requeues} times`;
      return 'failed';
    }
    s.memoryBytes = observed;
    this.raise(s.type, observed, tasks);
    return 'requeued';
  }
}
