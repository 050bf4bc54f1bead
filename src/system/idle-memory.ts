import { nativeAddon } from './native.js';

/**
 * Gives memory back once this process has gone quiet: `reduce` (V8's LowMemoryNotification,
 * native/memory.cc) after `quietMs` without `activity()`, if there was activity since the last
 * time, and at most once per `minGapMs`.
 *
 * Why: a `guild run` starts its agents in a burst and then waits on them, often for minutes. The
 * burst grows V8's young generation to 4 MB of semi-spaces, and V8 keeps them until its own memory
 * reducer decides the process is idle, 8-16 s later; a waiting run held 57 MB for its first
 * seconds and 53-54 MB after one reduction (bench/startup.ts, "Guild's own footprint" in the
 * README). One reduction is a few full collections of a heap of ~8 MB: tens of ms of CPU once per
 * quiet spell, never while tasks start and end back to back. A library user's process is not
 * touched: the CLI's run and worker use this.
 */
export class IdleMemoryReducer {
  readonly #reduce: () => void;
  readonly #quietMs: number;
  readonly #minGapMs: number;
  #lastActivity = 0;
  #lastReduce = -Infinity;
  #dirty = false;
  #timer: NodeJS.Timeout | null = null;
  #reductions = 0;
  #stopped = false;

  constructor(reduce: () => void, options: { quietMs?: number; minGapMs?: number } = {}) {
    this.#reduce = reduce;
    this.#quietMs = options.quietMs ?? QUIET_MS;
    this.#minGapMs = options.minGapMs ?? MIN_GAP_MS;
  }

  /** Something happened (a task started or ended): the quiet spell starts again. */
  activity(): void {
    if (this.#stopped) return;
    this.#lastActivity = performance.now();
    this.#dirty = true;
    this.#arm(this.#quietMs);
  }

  /** How many times memory was given back. */
  get reductions(): number {
    return this.#reductions;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #arm(ms: number): void {
    if (this.#timer) return; // the pending check re-arms itself for what is left of the spell
    this.#timer = setTimeout(() => this.#check(), Math.max(1, ms));
    this.#timer.unref();
  }

  #check(): void {
    this.#timer = null;
    if (this.#stopped || !this.#dirty) return;
    const now = performance.now();
    const quietFor = now - this.#lastActivity;
    if (quietFor < this.#quietMs) return this.#arm(this.#quietMs - quietFor);
    const gap = now - this.#lastReduce;
    if (gap < this.#minGapMs) return this.#arm(this.#minGapMs - gap);
    this.#dirty = false;
    this.#lastReduce = now;
    this.#reductions++;
    this.#reduce();
  }
}

/** A second without a task starting or ending: the burst of starts is over. */
const QUIET_MS = 1000;
/** A run whose tasks end every few seconds is not reduced more often than this. */
const MIN_GAP_MS = 10_000;

/** The reducer over V8's LowMemoryNotification, or null where the native addon is not built. */
export function idleMemoryReducer(): IdleMemoryReducer | null {
  const addon = nativeAddon();
  return addon ? new IdleMemoryReducer(() => addon.reduceMemory()) : null;
}
