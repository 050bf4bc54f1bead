/**
 * The seed's agent pool, for long-lived services (MCP servers): per key, a group of instances
 * started on first use, routed by least in-flight calls then round robin, scaled up when calls
 * wait, stopped when idle, recycled gracefully, and answering memory pressure. Pure logic: it
 * owns no process; it is driven through `start` / `stop`, a clock and an admission check, so the
 * gateway (one group per server + project, or server + session) and later distributed placement
 * can both use it, and a unit test drives every decision by advancing a fake clock.
 *
 * Decisions this file and ./service-group.ts make (and test/service-pool.test.ts pins):
 * - "Calls waiting on the busiest instance": with a `concurrency` bound, calls queue in the group
 *   (every instance is full, so they wait on the busiest as on any) and the queue's length counts;
 *   without a bound nothing queues, and an instance's calls beyond its first count as waiting
 *   inside it (one process shares itself among them). Scale up when that number exceeds
 *   `scaleUpWaiting`, below `max`, one start at a time per key, if `canScaleUp` and `admit` agree.
 * - A failed start fails the calls that were waiting on it when the group has no instance to give
 *   them (a broken command must not be restarted in a loop); after a failed start, or a death, the
 *   group starts only what calls already waiting need, until the next call, which tries again.
 *   Nothing restarts a dead instance by itself: the next call (or one already waiting) does.
 * - Admission timeout: only calls with no instance to wait for (none ready) fail after
 *   `admissionWaitMs` of refusals, counted from when each began waiting or the refusal began,
 *   whichever is later. Calls queued behind busy instances wait for them (their caller's signal
 *   bounds that), even when a scale-up is refused.
 * - `min` holds once a key has had an instance: the first instance of a key is started by its
 *   first call (or `adopt()`ed, as the gateway does with the one it starts at serve), the rest up
 *   to `min` follow one at a time, and idle never stops below `min`. With `min: 0` the last
 *   instance stops after `idleTimeoutMs` too and the next call starts a fresh one (a cold start).
 *   Refilling `min` (after a recycle, after `stopIdle`) is growth beyond what calls need, so it
 *   asks `canScaleUp` as a scale-up does; the instance a waiting call needs asks only `admit`.
 * - `stopIdle()` (high pressure) stops every idle instance, down to 0, not `min`: memory wins
 *   over a warm start; `min` is refilled when pressure lets `canScaleUp` say yes again.
 * - Demand first: while calls of some key wait for an instance admission refused, no other key
 *   refills `min` or scales up (that memory is what the waiting calls need), and freed memory is
 *   offered to groups with waiting calls before the others.
 * - Draining instances take no calls and do not count toward `max` or `min`: a recycle's
 *   replacement starts while the old one finishes its calls.
 */
import { GuildError } from '../errors.js';
import type { Clock } from '../supervisor/clock.js';
import { ServiceGroup, type GroupHost, type Member } from './service-group.js';
import { checkRetry, resolveGroup, type GroupOptions, type Lease, type PoolGroupStats, type PoolMember, type ServicePoolOptions, type StopReason } from './service-pool-options.js';

export { AdmissionTimeoutError, POOL_DEFAULTS, type GroupOptions, type Lease, type PoolGroupStats, type PoolMember, type ServicePoolOptions, type StartKind, type StopReason } from './service-pool-options.js';

const realClock: Clock = {
  now: () => performance.now(),
  setTimer(fn, ms) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

export class ServicePool<I> {
  readonly #base: Partial<GroupOptions>;
  readonly #groupOf: (key: string) => Partial<GroupOptions>;
  readonly #memoryOf: (instance: I) => number;
  readonly #host: GroupHost<I>;
  readonly #groups = new Map<string, ServiceGroup<I>>();
  readonly #byInstance = new Map<I, Member<I>>();
  /** Groups closed by closeKey() whose stops are still running; close() waits for them too. */
  readonly #closing = new Set<ServiceGroup<I>>();
  #nextId = 1;
  #closed = false;

  constructor(options: ServicePoolOptions<I>) {
    const { start, stop, group, admit, canScaleUp, memoryOf, clock, admissionRetryMs, ...base } = options;
    resolveGroup(base, {}, ''); // the defaults themselves are checked once, here
    this.#base = base;
    this.#groupOf = group ?? (() => ({}));
    this.#memoryOf = memoryOf ?? (() => 0);
    const pool = this;
    this.#host = {
      clock: clock ?? realClock,
      retryMs: checkRetry(admissionRetryMs ?? 1000),
      get closed() {
        return pool.#closed;
      },
      start,
      stop,
      admit: (key, kind) => {
        // Demand first: while calls of another key wait for memory, a refill of `min` or a
        // scale-up would take what those calls need (and, on a tight budget, keep it).
        if (kind !== 'demand') {
          for (const g of this.#groups.values()) if (g.key !== key && g.demandDenied) return `calls of ${g.key} wait for memory first`;
        }
        return admit?.(key, kind) ?? null;
      },
      canScaleUp: canScaleUp ?? (() => true),
      joined: (instance, g) => {
        const m: Member<I> = { id: this.#nextId++, group: g, instance, state: 'ready', drainReason: 'recycle', inFlight: 0, calls: 0, idleTimer: null, drainTimer: null };
        this.#byInstance.set(instance, m);
        return m;
      },
      left: (m) => void this.#byInstance.delete(m.instance),
      // An instance's memory is back: groups that admission refused try again.
      freed: () => {
        if (this.#closed) return;
        // Waiting calls first, then refills and scale-ups (which the rule above holds back meanwhile).
        for (const g of this.#groups.values()) if (g.demandDenied) g.evaluate();
        for (const g of this.#groups.values()) if (g.denied && !g.demandDenied) g.evaluate();
      },
    };
  }

  /**
   * A lease on an instance of `key`'s group: at once if one has room, else when one has (FIFO).
   * Rejects with `signal.reason` if the signal aborts while waiting (the call leaves the queue);
   * once granted, the lease is the caller's to release whatever its signal does.
   */
  acquire(key: string, options: { signal?: AbortSignal } = {}): Promise<Lease<I>> {
    const { signal } = options;
    if (this.#closed) return Promise.reject(new GuildError('INVALID_STATE', `service pool: closed (acquire ${key})`));
    if (signal?.aborted) return Promise.reject(signal.reason);
    try {
      return this.#group(key).acquire(signal);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Take an instance started elsewhere into `key`'s group (the one the gateway starts at serve to learn a server's tools). */
  adopt(key: string, instance: I): void {
    if (this.#closed) throw new GuildError('INVALID_STATE', `service pool: closed (adopt into ${key})`);
    const known = this.#byInstance.get(instance);
    if (known !== undefined) throw new GuildError('INVALID_STATE', `service pool: instance already in ${known.group.key}`);
    const g = this.#group(key);
    g.counts.starts++;
    g.hold = false;
    g.join(instance);
  }

  /**
   * Graceful recycle: the instance takes no new call, its calls finish (stopped with `recycle`
   * after `drainTimeoutMs` regardless), and a fresh one starts if calls wait or the group falls
   * below `min`. False if the instance is not a ready member.
   */
  recycle(instance: I, why: string): boolean {
    const m = this.#byInstance.get(instance);
    if (m === undefined || m.state !== 'ready') return false;
    const g = m.group;
    g.counts.recycles[why] = (g.counts.recycles[why] ?? 0) + 1;
    g.drain(m, 'recycle');
    g.evaluate();
    return true;
  }

  /**
   * The instance died. It leaves its group now (`stop(instance, 'dead')` lets its owner clean up);
   * its leases' calls are the caller's to fail and their release() does nothing. A replacement
   * starts now only if calls wait with no instance left, else with the next call.
   */
  markDead(instance: I): boolean {
    const m = this.#byInstance.get(instance);
    if (m === undefined) return false;
    m.group.remove(m, 'dead');
    m.group.hold = true;
    m.group.evaluate();
    return true;
  }

  /** Stop an instance now, calls in flight or not (emergency): as `markDead`, with `reason`. */
  evict(instance: I, reason: StopReason = 'pressure'): boolean {
    const m = this.#byInstance.get(instance);
    if (m === undefined) return false;
    m.group.remove(m, reason);
    m.group.evaluate();
    return true;
  }

  /** High pressure: stop every instance with no call in flight, below `min` too. Returns how many. */
  stopIdle(): number {
    let n = 0;
    for (const g of this.#groups.values()) {
      for (const m of [...g.members]) {
        if (m.state === 'ready' && m.inFlight === 0) {
          g.remove(m, 'pressure');
          n++;
        }
      }
    }
    return n;
  }

  /**
   * Critical pressure: keep at most `n` ready instances per key (all keys, or `key`), those with
   * the most calls in flight, and drain the rest (stopped with `pressure` once their calls end).
   * It lasts while `canScaleUp` says no. Returns how many were set draining.
   */
  shrinkTo(n: number, key?: string): number {
    if (!Number.isInteger(n) || n < 0) throw new GuildError('INVALID_OPTION', `service pool: expected shrinkTo(n) with an integer n >= 0, got ${n}`);
    let drained = 0;
    const groups = key === undefined ? [...this.#groups.values()] : [this.#groups.get(key)].filter((g) => g !== undefined);
    for (const g of groups) {
      // The least busy drain first: they stop, and give their memory back, soonest.
      const ready = g.members.filter((m) => m.state === 'ready').sort((a, b) => b.inFlight - a.inFlight || a.id - b.id);
      for (const m of ready.slice(n)) {
        g.drain(m, 'pressure');
        drained++;
      }
      g.evaluate();
    }
    return drained;
  }

  /** The ready instance with no call in flight holding the most memory: what an emergency recycles first. */
  largestIdle(): PoolMember<I> | null {
    return this.#largest((m) => m.state === 'ready' && m.inFlight === 0);
  }

  /** The instance (ready or draining) holding the most memory: what an emergency evicts when none is idle. */
  largest(): PoolMember<I> | null {
    return this.#largest(() => true);
  }

  members(key?: string): PoolMember<I>[] {
    const out: PoolMember<I>[] = [];
    for (const g of this.#groups.values()) if (key === undefined || g.key === key) for (const m of g.members) out.push(this.#info(m));
    return out;
  }

  stats(): PoolGroupStats[] {
    return [...this.#groups.values()].map((g) => g.stats());
  }

  /** Memory was freed or pressure fell: every group reconsiders what it needs to start. */
  pump(): void {
    for (const g of this.#groups.values()) g.evaluate();
  }

  /** Drop a key (a session ended): its waiting calls fail, its instances stop (`closed`). */
  async closeKey(key: string): Promise<void> {
    const g = this.#groups.get(key);
    if (g === undefined) return;
    this.#groups.delete(key);
    this.#closing.add(g);
    g.shut();
    await g.settle();
    this.#closing.delete(g);
  }

  /** Fail every waiting call, stop every instance (and any that finishes starting later), and wait for the stops. */
  async close(): Promise<void> {
    this.#closed = true;
    const groups = [...this.#groups.values(), ...this.#closing];
    for (const g of groups) g.shut();
    await Promise.all(groups.map((g) => g.settle()));
  }

  #group(key: string): ServiceGroup<I> {
    let g = this.#groups.get(key);
    if (g === undefined) {
      g = new ServiceGroup<I>(key, resolveGroup(this.#base, this.#groupOf(key), key), this.#host);
      this.#groups.set(key, g);
    }
    return g;
  }

  #largest(ok: (m: Member<I>) => boolean): PoolMember<I> | null {
    let best: PoolMember<I> | null = null;
    for (const g of this.#groups.values()) {
      for (const m of g.members) {
        if (!ok(m)) continue;
        const info = this.#info(m);
        if (best === null || info.memoryBytes > best.memoryBytes) best = info;
      }
    }
    return best;
  }

  #info(m: Member<I>): PoolMember<I> {
    return { key: m.group.key, instance: m.instance, state: m.state === 'draining' ? 'draining' : 'ready', inFlight: m.inFlight, calls: m.calls, memoryBytes: this.#memoryOf(m.instance) };
  }
}
