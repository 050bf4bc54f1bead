/**
 * One key's group of the service pool: its instances, its queue of calls, and every decision that
 * concerns only it (routing, starting, idling, draining, the admission wait). The pool
 * (./service-pool.ts) holds the groups, the hooks and what spans groups; its header lists the
 * decisions both files implement.
 */
import { GuildError } from '../errors.js';
import type { Clock, Timer } from '../supervisor/clock.js';
import { AdmissionTimeoutError, STOP_REASONS, type GroupOptions, type Lease, type PoolGroupStats, type StartKind, type StopReason } from './service-pool-options.js';

/** What a group asks of its pool. */
export interface GroupHost<I> {
  readonly clock: Clock;
  readonly retryMs: number;
  readonly closed: boolean;
  start(key: string): Promise<I>;
  stop(instance: I, reason: StopReason): void | Promise<void>;
  admit(key: string, kind: StartKind): string | null;
  canScaleUp(key: string): boolean;
  /** A new member: ids ascend across the pool, and the pool indexes it by instance. */
  joined(instance: I, group: ServiceGroup<I>): Member<I>;
  left(m: Member<I>): void;
  /** A stop finished: memory is back. */
  freed(): void;
}

export interface Member<I> {
  readonly id: number;
  readonly group: ServiceGroup<I>;
  readonly instance: I;
  state: 'ready' | 'draining' | 'gone';
  drainReason: StopReason;
  inFlight: number;
  calls: number;
  idleTimer: Timer | null;
  drainTimer: Timer | null;
}

interface Waiter<I> {
  readonly since: number;
  resolve(lease: Lease<I>): void;
  reject(err: unknown): void;
}

type Counters = Omit<PoolGroupStats, 'key' | 'instances' | 'starting' | 'draining' | 'inFlight' | 'waiting' | 'admissionDenied'>;

export class ServiceGroup<I> {
  /** Ready and draining instances, in start order (ids ascending: round robin relies on it). */
  readonly members: Member<I>[] = [];
  /** FIFO; a Set so an aborted waiter leaves in O(1) and order is kept. */
  readonly #waiters = new Set<Waiter<I>>();
  /** Starts and stops in flight, awaited by close(). */
  readonly #pending = new Set<Promise<void>>();
  readonly counts: Counters = {
    starts: 0,
    startFailures: 0,
    stops: Object.fromEntries(STOP_REASONS.map((r) => [r, 0])) as Record<StopReason, number>,
    stopFailures: 0,
    recycles: {},
    drainTimeouts: 0,
    admissionTimeouts: 0,
  };
  #starting = 0;
  /** Id of the instance picked last: ties go to the next id after it, wrapping. */
  #lastPick = 0;
  /** After a failed start or a death: start only what a waiting call needs, until the next call. */
  hold = false;
  /** An instance has joined: from then on the group keeps `min` (a group whose first call gave up before any start does not). */
  #joined = false;
  #denial: { reason: string; since: number; kind: StartKind } | null = null;
  #retryTimer: Timer | null = null;
  #deadlineTimer: Timer | null = null;
  #closed = false;

  readonly key: string;
  readonly opts: GroupOptions;
  readonly #host: GroupHost<I>;

  constructor(key: string, opts: GroupOptions, host: GroupHost<I>) {
    this.key = key;
    this.opts = opts;
    this.#host = host;
  }

  get denied(): boolean {
    return this.#denial !== null;
  }

  /** Calls of this group wait for an instance that admission refused (not a refill or a scale-up). */
  get demandDenied(): boolean {
    return this.#denial?.kind === 'demand';
  }

  acquire(signal: AbortSignal | undefined): Promise<Lease<I>> {
    this.hold = false;
    if (this.#waiters.size === 0) {
      const m = this.#pick();
      if (m !== null) {
        const lease = this.#grant(m);
        this.evaluate();
        return Promise.resolve(lease);
      }
    }
    return new Promise<Lease<I>>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.#waiters.delete(w)) return;
        reject(signal!.reason);
        this.evaluate();
      };
      const w: Waiter<I> = {
        since: this.#host.clock.now(),
        resolve: (lease) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(lease);
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      this.#waiters.add(w);
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        this.evaluate();
      } catch (err) {
        // A hook threw: the call fails rather than waiting on a group that cannot decide.
        this.#waiters.delete(w);
        w.reject(err);
      }
    });
  }

  join(instance: I): void {
    const m = this.#host.joined(instance, this);
    this.members.push(m);
    this.#joined = true;
    this.#dispatch();
    if (m.inFlight === 0) this.#armIdle(m);
    this.evaluate();
  }

  /** Least in-flight among ready instances with room; ties to the first id after the last pick, wrapping. */
  #pick(): Member<I> | null {
    const cap = this.opts.concurrency ?? Infinity;
    let best: Member<I> | null = null;
    let bestWrapped = true;
    for (const m of this.members) {
      if (m.state !== 'ready' || m.inFlight >= cap) continue;
      const wrapped = m.id <= this.#lastPick;
      if (best === null || m.inFlight < best.inFlight || (m.inFlight === best.inFlight && bestWrapped && !wrapped)) {
        best = m;
        bestWrapped = wrapped;
      }
    }
    return best;
  }

  #grant(m: Member<I>): Lease<I> {
    m.inFlight++;
    m.calls++;
    this.#lastPick = m.id;
    m.idleTimer?.cancel();
    m.idleTimer = null;
    let released = false;
    return {
      key: this.key,
      instance: m.instance,
      release: () => {
        if (released) return;
        released = true;
        this.#release(m);
      },
    };
  }

  #release(m: Member<I>): void {
    if (m.state === 'gone') return; // dead, evicted or drain timed out: the call was the caller's to fail
    m.inFlight--;
    if (m.state === 'draining') {
      if (m.inFlight === 0) this.remove(m, m.drainReason);
      return;
    }
    this.#dispatch();
    if (m.inFlight === 0) this.#armIdle(m);
  }

  /** Hand waiting calls, oldest first, to instances with room. */
  #dispatch(): void {
    for (const w of this.#waiters) {
      const m = this.#pick();
      if (m === null) return;
      this.#waiters.delete(w);
      w.resolve(this.#grant(m));
    }
  }

  readyCount(): number {
    let n = 0;
    for (const m of this.members) if (m.state === 'ready') n++;
    return n;
  }

  /** Calls waiting on the busiest instance (see the pool's header for the unbounded case). */
  #waiting(): number {
    if (this.opts.concurrency !== null) return this.#waiters.size;
    let most = 0;
    for (const m of this.members) if (m.state === 'ready') most = Math.max(most, m.inFlight - 1);
    return most + this.#waiters.size;
  }

  #need(): StartKind | null {
    const ready = this.readyCount();
    if (ready === 0 && this.#waiters.size > 0) return 'demand';
    if (this.hold) return null;
    if (ready < this.opts.min && this.#joined) return 'min';
    if (ready < this.opts.max && this.#waiting() > this.opts.scaleUpWaiting) return 'scale-up';
    return null;
  }

  /** Start what the group needs now, if anything, one start at a time. */
  evaluate(): void {
    if (this.#host.closed || this.#closed || this.#starting > 0) return;
    const kind = this.#need();
    if (kind === null || (kind !== 'demand' && !this.#host.canScaleUp(this.key))) return this.#clearDenial();
    const reason = this.#host.admit(this.key, kind);
    if (reason !== null) return this.#deny(kind, reason);
    this.#clearDenial();
    this.#starting++;
    this.counts.starts++;
    this.#track(
      (async () => this.#host.start(this.key))().then(
        (instance) => {
          this.#starting--;
          if (this.#host.closed || this.#closed) return this.#callStop(instance, 'closed');
          this.join(instance);
        },
        (err: unknown) => {
          this.#starting--;
          this.counts.startFailures++;
          if (this.#host.closed || this.#closed) return;
          this.hold = true;
          if (this.readyCount() > 0) return; // the calls still have instances to wait on
          for (const w of this.#waiters) w.reject(err);
          this.#waiters.clear();
        },
      ),
    );
  }

  #deny(kind: StartKind, reason: string): void {
    if (this.#denial === null || this.#denial.kind !== kind) {
      this.#deadlineTimer?.cancel();
      this.#deadlineTimer = null;
      this.#denial = { reason, since: this.#host.clock.now(), kind };
    } else this.#denial.reason = reason;
    this.#retryTimer ??= this.#host.clock.setTimer(() => {
      this.#retryTimer = null;
      this.evaluate();
    }, this.#host.retryMs);
    if (kind === 'demand') this.#armDeadline();
  }

  #clearDenial(): void {
    this.#denial = null;
    this.#retryTimer?.cancel();
    this.#retryTimer = null;
    this.#deadlineTimer?.cancel();
    this.#deadlineTimer = null;
  }

  /** One timer per group, at the oldest waiter's deadline (waiters are FIFO, so it is the first). */
  #armDeadline(): void {
    const first = this.#waiters.values().next();
    if (this.#deadlineTimer !== null || this.#denial === null || first.done) return;
    const at = Math.max(first.value.since, this.#denial.since) + this.opts.admissionWaitMs;
    this.#deadlineTimer = this.#host.clock.setTimer(() => {
      this.#deadlineTimer = null;
      this.#expire();
    }, Math.max(0, at - this.#host.clock.now()));
  }

  #expire(): void {
    this.evaluate(); // admission may say yes by now
    const d = this.#denial;
    if (d === null || d.kind !== 'demand') return;
    const now = this.#host.clock.now();
    for (const w of this.#waiters) {
      if (now - Math.max(w.since, d.since) < this.opts.admissionWaitMs) break;
      this.#waiters.delete(w);
      this.counts.admissionTimeouts++;
      w.reject(new AdmissionTimeoutError(this.key, now - w.since, d.reason));
    }
    if (this.#waiters.size === 0) this.#clearDenial();
    else this.#armDeadline();
  }

  #armIdle(m: Member<I>): void {
    const ms = this.opts.idleTimeoutMs;
    if (!Number.isFinite(ms) || m.idleTimer !== null) return; // setTimeout would clamp Infinity to 1 ms
    m.idleTimer = this.#host.clock.setTimer(() => {
      m.idleTimer = null;
      if (m.state === 'ready' && m.inFlight === 0 && this.readyCount() > this.opts.min) this.remove(m, 'idle');
    }, ms);
  }

  /** No new calls; stopped with `reason` when its calls end, or after `drainTimeoutMs`. */
  drain(m: Member<I>, reason: StopReason): void {
    m.state = 'draining';
    m.drainReason = reason;
    m.idleTimer?.cancel();
    m.idleTimer = null;
    if (m.inFlight === 0) return this.remove(m, reason);
    const ms = this.opts.drainTimeoutMs;
    if (!Number.isFinite(ms)) return;
    m.drainTimer = this.#host.clock.setTimer(() => {
      m.drainTimer = null;
      if (m.state !== 'draining') return;
      this.counts.drainTimeouts++;
      this.remove(m, reason);
    }, ms);
  }

  remove(m: Member<I>, reason: StopReason): void {
    if (m.state === 'gone') return;
    m.state = 'gone';
    m.idleTimer?.cancel();
    m.drainTimer?.cancel();
    m.idleTimer = m.drainTimer = null;
    this.members.splice(this.members.indexOf(m), 1);
    this.#host.left(m);
    this.#callStop(m.instance, reason);
  }

  #callStop(instance: I, reason: StopReason): void {
    this.counts.stops[reason]++;
    this.#track(
      (async () => this.#host.stop(instance, reason))().then(
        () => this.#host.freed(),
        () => {
          this.counts.stopFailures++;
          this.#host.freed();
        },
      ),
    );
  }

  #track(p: Promise<void>): void {
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  stats(): PoolGroupStats {
    let inFlight = 0;
    let draining = 0;
    for (const m of this.members) {
      inFlight += m.inFlight;
      if (m.state === 'draining') draining++;
    }
    const c = this.counts;
    return {
      key: this.key,
      instances: this.members.length - draining,
      starting: this.#starting,
      draining,
      inFlight,
      waiting: this.#waiters.size,
      ...c,
      stops: { ...c.stops },
      recycles: { ...c.recycles },
      admissionDenied: this.#denial?.reason ?? null,
    };
  }

  /** Fail the waiting calls, stop every instance (and, when it lands, one still starting). */
  shut(): void {
    this.#closed = true;
    this.#clearDenial();
    const err = new GuildError('INVALID_STATE', `service pool: ${this.key} closed`);
    for (const w of this.#waiters) w.reject(err);
    this.#waiters.clear();
    for (const m of [...this.members]) this.remove(m, 'closed');
  }

  /** Resolves when no start or stop is in flight (a start that lands after shut() adds a stop). */
  async settle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }
}
