import { GuildError } from '../errors.js';
import type { Execution, ExecOutcome } from '../executors/executor.js';
import type { GovernedAgent, Governor } from '../governor/governor.js';
import { DEFAULT_THRESHOLDS, type PressureLevel } from '../governor/levels.js';
import type { MemorySnapshot, SystemProbe } from '../system/probe.js';
import { realClock, type Clock, type Timer } from './clock.js';
import { withDefaultExecutors, type Executors, type RequestOf } from './executors.js';
import { measurable } from './memory.js';
import { governorFor, type SupervisorGovernance } from './governance.js';
import type { PressureReading } from '../governor/governor.js';
import { pressureReading, type ExecutionMemory } from '../governor/reading.js';
import { EARLY_SAMPLE_MS, nextInterval } from './sampling.js';
import { Supervised, type StopReason } from './supervised.js';
import type { WatchOptions } from './watch.js';

/** Grace between TERM and KILL when memory is short: there is no time to wait for a clean exit. */
const MEMORY_KILL_GRACE_MS = 500;
/** Above this share of its hard limit an execution is "near" it: sampling goes fast. */
const NEAR_LIMIT = 0.8;

/** One sampling instant, handed to the owner. */
export interface Measurement {
  /** Clock time of the instant. */
  now: number;
  /** A last look after the work is over: measured, not governed. */
  final: boolean;
  /** Σ measured memory of the executions watched (those not measurable now count 0). */
  totalBytes: number;
  /** The machine's (cgroup's) memory. */
  memory: MemorySnapshot;
  /** What the governor is fed; null without a governor and in a final sample. */
  reading: PressureReading | null;
}

/** Options of a `Supervisor`. */
export interface SupervisorOptions {
  /** Measures the machine and, where an execution cannot measure itself, its process tree. */
  probe: SystemProbe;
  /** Executors by kind. @default a ProcessExecutor and a FunctionExecutor */
  executors?: Executors;
  /** @default realClock */
  clock?: Clock;
  /** Sampling interval while executions run with headroom, ms. @default 200 */
  sampleIntervalMs?: number;
  /** TERM→KILL grace for limit and pressure kills, ms. @default 500 */
  memoryKillGraceMs?: number;
  /** Feed a governor and carry out its responses. @default none: measure and enforce limits only */
  governance?: SupervisorGovernance;
  /** The owner has work waiting to start: sampling does not slow to the idle interval. @default () => false */
  waiting?: () => boolean;
  /** Each sampling instant after every execution and the machine were measured, before the governor reads it. */
  onMeasure?: (m: Measurement) => void;
  /** Each sampling instant after the governor responded. */
  onSampled?: (m: Measurement) => void;
}

/**
 * Owns the executions of whoever asks — a workflow's tasks, a gateway's servers — from start to
 * reaped: starts them through an injected executor, measures every one on one adaptive timer,
 * enforces hard limits, feeds the governor and carries out its pause, resume and kill through each
 * execution's policy, and on `close()` ends everything still running.
 *
 * Invariant: nothing else signals an execution it watches (owners go through the `Supervised` handle).
 */
export class Supervisor {
  readonly #probe: SystemProbe;
  readonly #executors: Executors;
  readonly #clock: Clock;
  readonly #intervalMs: number;
  readonly #graceMs: number;
  readonly #gov: SupervisorGovernance | null;
  readonly #governor: Governor | null;
  readonly #waiting: () => boolean;
  readonly #onMeasure: ((m: Measurement) => void) | undefined;
  readonly #onSampled: ((m: Measurement) => void) | undefined;
  /** In start order: the governor breaks ties in age by it. */
  readonly #watched = new Map<string, Supervised<any>>();
  #timer: Timer | null = null;
  #delay = 0;
  #sampling = false;
  readonly #sampleFailures: { count: number; first: string | null } = { count: 0, first: null };
  #closing = false;
  #nearLimit = false;
  /** Reused per instant: what each execution contributes to the reading. */
  readonly #memories: ExecutionMemory[] = [];

  constructor(options: SupervisorOptions) {
    this.#probe = options.probe;
    this.#executors = withDefaultExecutors(options.executors, options.probe);
    this.#clock = options.clock ?? realClock;
    this.#intervalMs = options.sampleIntervalMs ?? 200;
    this.#graceMs = options.memoryKillGraceMs ?? MEMORY_KILL_GRACE_MS;
    this.#waiting = options.waiting ?? (() => false);
    this.#onMeasure = options.onMeasure;
    this.#onSampled = options.onSampled;
    this.#gov = options.governance ?? null;
    const g = this.#gov;
    this.#governor = g
      ? governorFor(g, this.#clock, {
          agents: () => this.#agents(),
          pause: (id) => void this.pause(id),
          resume: (id) => this.resume(id),
          kill: (id, level) => this.#pressureKill(id, level),
        })
      : null;
  }

  /** The governor fed by this supervisor; null without governance. */
  get governor(): Governor | null {
    return this.#governor;
  }

  /** Executions watched now. */
  get size(): number {
    return this.#watched.size;
  }

  /** Whether some execution was above 80 % of its hard limit at the last look. */
  get nearLimit(): boolean {
    return this.#nearLimit;
  }

  /** The executions watched now, in start order. */
  watching(): IterableIterator<Supervised<any>> {
    return this.#watched.values();
  }

  /** The execution watched under `id`, if any. */
  get(id: string): Supervised<any> | undefined {
    return this.#watched.get(id);
  }

  /**
   * Starts an execution through the executor of `kind` and watches it until it has ended (and,
   * for a process, its whole tree is gone): its handle's `done` settles then.
   */
  start<K extends keyof Executors & string>(kind: K, request: RequestOf<Executors, K>, watch: WatchOptions<RequestOf<Executors, K>>): Supervised<RequestOf<Executors, K>> {
    if (this.#closing) throw new GuildError('INVALID_STATE', `Expected an open supervisor, got one closing (starting '${watch.id}')`);
    if (this.#watched.has(watch.id)) throw new GuildError('INVALID_STATE', `Expected a unique execution id, got '${watch.id}' twice`);
    const executor = this.#executors[kind];
    if (!executor) throw new GuildError('INVALID_OPTION', `Expected an executor for kind '${kind}', got none`);
    const exec = executor.start(request);
    const h = new Supervised<RequestOf<Executors, K>>(exec, watch, this.#clock);
    this.#watched.set(watch.id, h);
    // Waking from idle: the next sample must not wait the idle interval.
    if (this.#timer !== null && this.#delay > this.#intervalMs) {
      this.#timer.cancel();
      this.#arm();
    } else if (this.#timer === null && !this.#sampling && !this.#closing) {
      // A standalone owner need not start sampling itself.
      this.#sampling = true;
      this.#arm();
    }
    this.#earlyLook(h, exec);
    this.#follow(h, kind, exec);
    return h;
  }

  /** Timer instants that threw (counted, never fatal), and the first error's message. */
  get sampleFailures(): { readonly count: number; readonly first: string | null } {
    return this.#sampleFailures;
  }

  /** Measures now, then keeps measuring on the adaptive timer until `close()`. */
  startSampling(): void {
    this.sample();
    this.#sampling = true;
    if (this.#timer === null) this.#arm();
  }

  /**
   * One sampling instant: every execution, the machine; then the governor, then the owner.
   * `final`: the work is over — measure and report, but nothing is governed any more.
   */
  sample(final = false): void {
    const now = this.#clock.now();
    this.#nearLimit = false;
    let total = 0;
    const memories = this.#memories;
    memories.length = 0;
    for (const h of this.#watched.values()) {
      total += this.#measure(h);
      // Memory of another machine is neither this machine's pressure nor paid for on it.
      if (h.execution.remote === true) continue;
      // Per execution: reservation = its expected memory; measured = its last sample.
      memories.push({ measured: h.lastBytes, reserved: h.reservationBytes, peak: h.peakBytes });
    }
    const memory = this.#probe.memory();
    const g = this.#gov;
    const reading = g && !final ? pressureReading({ used: memory.usedBytes, limit: memory.limitBytes, budget: g.budgetBytes, psi: this.#probe.psi()?.fullAvg10 ?? null, agents: memories }) : null;
    const m: Measurement = { now, final, totalBytes: total, memory, reading };
    this.#onMeasure?.(m);
    if (reading) this.#governor!.observe(reading);
    this.#onSampled?.(m);
  }

  /** Pauses an execution whose policy allows it; false when it was not paused. */
  pause(id: string): boolean {
    const h = this.#watched.get(id);
    return h !== undefined && h.pausable && h.pause();
  }

  /** Resumes a paused execution (a no-op when it is not paused). */
  resume(id: string): void {
    this.#watched.get(id)?.resume();
  }

  /**
   * Stops an execution and starts its replacement through its owner's `restart` (policy
   * `recycle`; without `restart` it just ends).
   */
  recycle(id: string): void {
    const h = this.#watched.get(id);
    if (!h || h.stoppedFor !== null) return;
    h.watch.onKill?.({ reason: 'recycle', level: null, bytes: h.lastBytes, then: h.watch.restart ? 'restart' : 'end' });
    h.kill('recycle');
  }

  /** Ends every execution still running and waits until each tree is gone; sampling stops. */
  async close(): Promise<void> {
    this.#closing = true;
    this.#sampling = false;
    this.#timer?.cancel();
    this.#timer = null;
    const all = [...this.#watched.values()];
    for (const h of all) h.kill('cancelled');
    await Promise.all(all.map((h) => h.done));
  }

  /** Stops the sampling timer (the owner is done); executions still watched keep being followed. */
  stopSampling(): void {
    this.#sampling = false;
    this.#timer?.cancel();
    this.#timer = null;
  }

  #arm(): void {
    const g = this.#governor;
    this.#delay = nextInterval({
      watched: this.#watched.size,
      waiting: this.#waiting(),
      pressured: g !== null && g.level !== 'optimal',
      projected: g?.projected ?? 0,
      // Without a governor nothing is "near" a pressure line: only limits and idleness matter.
      moderate: this.#gov ? (this.#gov.options.thresholds ?? DEFAULT_THRESHOLDS).moderate : Infinity,
      nearLimit: this.#nearLimit,
      intervalMs: this.#intervalMs,
    });
    this.#timer = this.#clock.setTimer(() => {
      this.#timer = null;
      try {
        this.sample();
      } catch (e) {
        // A failed instant (EMFILE in a read, an owner's callback that threw) is a failed
        // sample: counted, its first error kept for the report; sampling goes on.
        this.#sampleFailures.count++;
        this.#sampleFailures.first ??= e instanceof Error ? e.message : String(e);
      }
      // Sampling may have started executions (the owner admits on each instant); arm once.
      if (this.#sampling && this.#timer === null) this.#arm();
    }, this.#delay);
  }

  /** One early look, so that an execution shorter than the sampling interval still gets a measured peak. */
  #earlyLook(h: Supervised<any>, exec: Execution): void {
    if (!measurable(exec)) return;
    this.#clock.setTimer(() => {
      if (this.#watched.get(h.id) === h && h.execution === exec) this.#measure(h);
    }, EARLY_SAMPLE_MS);
  }

  /** Measures one execution, enforces its limit; returns its bytes (0 when not measurable now). */
  #measure(h: Supervised<any>): number {
    const sample = h.execution.memory();
    if (sample === null) return 0;
    h.record(sample);
    h.watch.onSample?.(sample.bytes, sample);
    const limit = h.watch.limitBytes;
    // A remote execution's limit is enforced where it runs.
    if (limit !== null && h.execution.remote !== true) {
      if (sample.bytes > limit) this.#limitKill(h, sample.bytes);
      else if (sample.bytes > limit * NEAR_LIMIT) this.#nearLimit = true;
    }
    return sample.bytes;
  }

  /** Above its hard limit an execution dies at once (TERM, KILL after a short grace), or is recycled. */
  #limitKill(h: Supervised<any>, bytes: number): void {
    if (h.stoppedFor !== null) return;
    const recycle = h.watch.onPressure === 'recycle';
    h.watch.onKill?.({ reason: 'limit', level: null, bytes, then: recycle && h.watch.restart ? 'restart' : 'end' });
    h.kill(recycle ? 'recycle' : 'limit', this.#graceMs);
  }

  /** The governor's emergency: the execution's policy says kill (its owner requeues) or recycle. */
  #pressureKill(id: string, level: PressureLevel): void {
    const h = this.#watched.get(id);
    if (!h || h.stoppedFor !== null) return;
    const recycle = h.watch.onPressure === 'recycle';
    h.watch.onKill?.({ reason: 'pressure', level, bytes: h.lastBytes, then: recycle && h.watch.restart ? 'restart' : 'end' });
    h.kill(recycle ? 'recycle' : 'pressure', this.#graceMs);
  }

  #agents(): GovernedAgent[] {
    const out: GovernedAgent[] = [];
    for (const h of this.#watched.values()) {
      // The governor acts on this machine's executions only: a remote one has its worker's governor.
      if (h.execution.remote === true) continue;
      out.push({ id: h.id, priority: h.watch.priority, startedAt: h.startedAt, paused: h.paused, controllable: h.controllable, rssBytes: h.lastBytes });
    }
    return out;
  }

  #follow(h: Supervised<any>, kind: string, exec: Execution): void {
    exec.done.then(
      (o) => this.#ended(h, kind, o),
      (e: unknown) => this.#ended(h, kind, { exitCode: null, signal: null, killedBy: null, error: String(e), durationMs: 0 }),
    );
  }

  #ended(h: Supervised<any>, kind: string, o: ExecOutcome): void {
    for (const pid of h.pids) this.#probe.forget(pid);
    h.ended();
    // A kill the governor asked for has landed (ended or recycled): the next may follow after its cooldown.
    this.#governor?.killSettled(h.id);
    if (h.stoppedFor === 'recycle' && !this.#closing && h.watch.restart) {
      const request = h.watch.restart(o);
      if (request !== null) {
        const next = this.#executors[kind]!.start(request);
        h.replace(next);
        this.#earlyLook(h, next);
        this.#follow(h, kind, next);
        h.watch.onRestart?.(next);
        return;
      }
    }
    this.#watched.delete(h.id);
    h.settle(o);
  }
}

export type { StopReason, SupervisorGovernance };
