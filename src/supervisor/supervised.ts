import type { Execution, ExecOutcome, KillReason } from '../executors/executor.js';
import type { Clock } from './clock.js';
import type { MemorySample } from './memory.js';
import type { WatchOptions } from './watch.js';

/** Why the supervisor stopped an execution (the executor's own reasons, `recycle` among them). */
export type StopReason = KillReason;

/**
 * One execution under supervision, as its owner holds it. Across a recycle the handle stays and
 * its `execution` is replaced; `done` settles once the last execution has ended and its process
 * tree is gone.
 *
 * Invariant: only the supervisor (through this handle) signals the execution.
 */
export class Supervised<R = unknown> {
  readonly id: string;
  readonly watch: WatchOptions<R>;
  readonly done: Promise<ExecOutcome>;
  /** Admission's reservation; the owner may change it (an estimate learned later). */
  reservationBytes: number;
  #lastSample: MemorySample | null = null;
  #peakBytes: number | null = null;
  #restarts = 0;
  #startedAt: number;
  #stoppedFor: StopReason | null = null;
  readonly #pids = new Set<number>();
  #exec: Execution;
  readonly #clock: Clock;
  #pausedAt: number | null = null;
  #pausedMs = 0;
  /** @internal resolves `done`; called by the supervisor. */
  readonly settle: (o: ExecOutcome) => void;

  constructor(exec: Execution, watch: WatchOptions<R>, clock: Clock) {
    this.id = watch.id;
    this.watch = watch;
    this.reservationBytes = watch.reservationBytes;
    this.#exec = exec;
    this.#clock = clock;
    this.#startedAt = clock.now();
    let settle!: (o: ExecOutcome) => void;
    this.done = new Promise((r) => (settle = r));
    this.settle = settle;
    if (exec.pid !== null) this.#pids.add(exec.pid);
  }

  /** Last measurement of the current execution; null until measured. */
  get lastSample(): MemorySample | null {
    return this.#lastSample;
  }

  /** Last and highest measured memory of the current execution, bytes; null until measured. */
  get lastBytes(): number | null {
    return this.#lastSample?.bytes ?? null;
  }

  get peakBytes(): number | null {
    return this.#peakBytes;
  }

  /** Replacements started so far (policy `recycle`). */
  get restarts(): number {
    return this.#restarts;
  }

  /** Clock time the current execution started (the governor's age). */
  get startedAt(): number {
    return this.#startedAt;
  }

  /** Why the supervisor stopped the current execution; null while it runs on its own. */
  get stoppedFor(): StopReason | null {
    return this.#stoppedFor;
  }

  /** Pids seen in samples of the current execution (the probe forgets them at its end). */
  get pids(): ReadonlySet<number> {
    return this.#pids;
  }

  get execution(): Execution {
    return this.#exec;
  }

  /** The current execution's leader pid; null when it is not a local process. */
  get pid(): number | null {
    return this.#exec.pid;
  }

  get paused(): boolean {
    return this.#pausedAt !== null;
  }

  /** Time spent paused so far, including a pause still in progress. */
  get pausedMs(): number {
    return this.#pausedMs + (this.#pausedAt === null ? 0 : this.#clock.now() - this.#pausedAt);
  }

  /** Whether the governor may pause it: its policy allows it and the execution can be paused. */
  get pausable(): boolean {
    return this.watch.onPressure === 'pause' && this.#exec.canPause;
  }

  /** Whether the governor may act on it at all (pause or kill): not when its owner answers pressure itself. */
  get controllable(): boolean {
    return this.#exec.canKill && this.watch.onPressure !== 'owner';
  }

  /**
   * Stops the whole tree for now, at the owner's word (the governor's pauses go through
   * `Supervisor.pause`, which also asks the policy); false when it cannot be (a function,
   * already stopping, gone).
   */
  pause(): boolean {
    if (this.paused || this.#stoppedFor !== null || !this.#exec.canPause || !this.#exec.pause()) return false;
    this.#pausedAt = this.#clock.now();
    return true;
  }

  resume(): void {
    if (this.#pausedAt === null) return;
    this.#exec.resume();
    this.#pausedMs += this.#clock.now() - this.#pausedAt;
    this.#pausedAt = null;
  }

  /** TERM, then KILL after `graceMs`; the first reason sticks. */
  kill(reason: StopReason, graceMs?: number): void {
    if (this.#stoppedFor !== null) return;
    this.#stoppedFor = reason;
    this.#exec.kill(reason, graceMs);
  }

  /** @internal The current execution has ended: close its pause; the supervisor decides what follows. */
  ended(): void {
    this.#closePause();
  }

  /** @internal A replacement took over (policy `recycle`). */
  replace(exec: Execution): void {
    this.#exec = exec;
    this.#restarts++;
    this.#startedAt = this.#clock.now();
    this.#stoppedFor = null;
    this.#peakBytes = null;
    this.#lastSample = null;
    this.#pids.clear();
    if (exec.pid !== null) this.#pids.add(exec.pid);
  }

  /** @internal Records a measurement. */
  record(sample: MemorySample): void {
    this.#lastSample = sample;
    this.#peakBytes = Math.max(this.#peakBytes ?? 0, sample.bytes);
    for (const p of sample.pids) this.#pids.add(p);
  }

  #closePause(): void {
    if (this.#pausedAt === null) return;
    this.#pausedMs += this.#clock.now() - this.#pausedAt;
    this.#pausedAt = null;
  }
}
