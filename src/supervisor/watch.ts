import type { Priority } from '../config/schema.js';
import type { Execution, ExecOutcome } from '../executors/executor.js';
import type { PressureLevel } from '../governor/levels.js';
import type { MemorySample } from './memory.js';

/**
 * What the governor's responses may do to an execution, chosen by its owner:
 * - `pause`: a task — paused and resumed as pressure rises and falls; at an emergency it is
 *   killed and its owner requeues it (it sees `killedBy: 'pressure'`);
 * - `kill-requeue`: a task that must not be stopped mid-way (it holds a lock, talks to a peer) —
 *   never paused; killed at an emergency, requeued by its owner;
 * - `recycle`: a long-lived server — never paused (callers would hang); at an emergency or over
 *   its hard limit it is stopped and its owner's `restart` starts a fresh one in its place;
 * - `owner`: a pooled server whose owner answers pressure itself (the MCP gateway recycles the
 *   largest idle instance first, and fails calls it cuts with a clear error) — never paused and
 *   never picked by the governor; its memory still counts in every reading, and its hard limit holds.
 */
export type PressurePolicy = 'pause' | 'kill-requeue' | 'recycle' | 'owner';

/** Why the supervisor is stopping an execution, told to its owner before the signal goes. */
export interface KillNotice {
  /** `limit`: above its hard limit; `pressure`: the governor's emergency; `recycle`: the owner asked. */
  reason: 'limit' | 'pressure' | 'recycle';
  /** The governor's level for `pressure`, else null. */
  level: PressureLevel | null;
  /** The last measured memory, when there is one. */
  bytes: number | null;
  /** What happens next: the execution ends for good, or a fresh one replaces it (policy `recycle`). */
  then: 'end' | 'restart';
}

/** How one execution is watched; given by its owner to `Supervisor.start`. */
export interface WatchOptions<R> {
  /** The name the governor and the owner know it by; unique among executions watched at once. */
  id: string;
  /** Decides, with age, who is paused and who dies first under pressure. */
  priority: Priority;
  /** The memory admission reserved for it (its expected memory), bytes: growth up to it is paid for. */
  reservationBytes: number;
  /** Above this measured memory it is stopped (TERM, KILL after a short grace); null: no limit. */
  limitBytes: number | null;
  /** What the governor's responses do to it. */
  onPressure: PressurePolicy;
  /** Every measurement, before the limit is checked (the owner learns estimates from it). */
  onSample?(bytes: number, sample: MemorySample): void;
  /** The supervisor is about to stop it (limit, pressure, recycle). */
  onKill?(notice: KillNotice): void;
  /**
   * Policy `recycle`: the request that starts the replacement, given how the old one ended; null
   * ends the watch instead. Called only for executions the supervisor stopped to recycle.
   * @default none: a recycled execution just ends
   */
  restart?(ended: ExecOutcome): R | null;
  /** A replacement started (policy `recycle`). */
  onRestart?(execution: Execution): void;
}
