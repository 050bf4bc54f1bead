/**
 * The service pool (scheduler/service-pool.ts) driven by a fake clock and in-memory instances:
 * every decision that waits on time happens only when the test advances the clock. The last
 * block drives it with real `sleep` processes and checks that none outlives the pool.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { describe, it } from 'node:test';
import type { Clock } from '../src/supervisor/clock.js';
import { AdmissionTimeoutError, ServicePool, type Lease, type ServicePoolOptions, type StopReason } from '../src/scheduler/service-pool.js';
import { GuildError } from '../src/errors.js';

/** Time moves only when `advance` is called; due timers fire in order, each at its own instant. */
class FakeClock implements Clock {
  #now = 1_000;
  #seq = 0;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, ms: number): { cancel(): void } {
    const id = this.#seq++;
    this.#timers.set(id, { at: this.#now + ms, fn });
    return { cancel: () => void this.#timers.delete(id) };
  }

  get pending(): number {
    return this.#timers.size;
  }

  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].at <= target && (next === undefined || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.#timers.delete(next[0]);
      this.#now = next[1].at;
      next[1].fn();
      await settle();
    }
    this.#now = target;
    await settle();
  }
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
};

interface Fake {
  readonly name: string;
  readonly key: string;
  stopped: StopReason | null;
  memory: number;
}

interface Gate {
  key: string;
  resolve(): void;
  reject(err: Error): void;
}

/**
 * A pool over fake instances named A, B, C… in start order. With `gated`, each start waits until
 * the test resolves it (`h.gates`); otherwise it resolves at once (asynchronously).
 */
function harness(opts: Partial<ServicePoolOptions<Fake>> & { gated?: boolean } = {}) {
  const clock = new FakeClock();
  const instances: Fake[] = [];
  const stops: string[] = [];
  const gates: Gate[] = [];
  let n = 0;
  const make = (key: string): Fake => {
    const f: Fake = { name: String.fromCharCode(65 + n++), key, stopped: null, memory: 0 };
    instances.push(f);
    return f;
  };
  const { gated, ...rest } = opts;
  const pool = new ServicePool<Fake>({
    clock,
    start: (key) =>
      gated
        ? new Promise<Fake>((resolve, reject) => gates.push({ key, resolve: () => resolve(make(key)), reject }))
        : Promise.resolve(make(key)),
    stop: (f, reason) => {
      assert.equal(f.stopped, null, `${f.name} stopped twice`);
      f.stopped = reason;
      stops.push(`${f.name}:${reason}`);
    },
    memoryOf: (f) => f.memory,
    ...rest,
  });
  /** Resolves pending starts, oldest first, and lets the pool react. */
  const open = async (count = 1): Promise<void> => {
    for (let i = 0; i < count; i++) gates.shift()!.resolve();
    await settle();
  };
  return { pool, clock, instances, stops, gates, open, make };
}

/** A call's outcome, readable without awaiting it. */
function track<T>(p: Promise<T>): { value?: T; error?: unknown; done: boolean } {
  const t: { value?: T; error?: unknown; done: boolean } = { done: false };
  p.then(
    (v) => Object.assign(t, { value: v, done: true }),
    (e: unknown) => Object.assign(t, { error: e, done: true }),
  );
  return t;
}

const names = (leases: readonly Lease<Fake>[]): string => leases.map((l) => l.instance.name).join('');
const stat = (pool: ServicePool<Fake>, key = 'k') => pool.stats().find((s) => s.key === key)!;

describe('service pool: routing', () => {
  it('starts the first instance on first use, once, however many calls arrive', async () => {
    const h = harness({ gated: true });
    const calls = [1, 2, 3].map(() => track(h.pool.acquire('k')));
    await settle();
    assert.equal(h.gates.length, 1);
    assert.ok(calls.every((c) => !c.done));
    await h.open();
    assert.deepEqual(calls.map((c) => c.value?.instance.name), ['A', 'A', 'A']);
    assert.equal(h.gates.length, 0, 'two calls waiting inside one instance is no reason to scale');
  });

  it('takes the least in-flight instance, ties in round robin (exact sequence)', async () => {
    const h = harness();
    for (let i = 0; i < 3; i++) h.pool.adopt('k', h.make('k'));
    assert.equal(h.instances.map((i) => i.name).join(''), 'ABC');
    // All idle: acquire-and-release walks round robin.
    const seq: string[] = [];
    for (let i = 0; i < 7; i++) {
      const l = await h.pool.acquire('k');
      seq.push(l.instance.name);
      l.release();
    }
    assert.equal(seq.join(''), 'ABCABCA');
    // Held: least in-flight first, ties continue after the last pick.
    const held: Lease<Fake>[] = [];
    for (let i = 0; i < 3; i++) held.push(await h.pool.acquire('k'));
    assert.equal(names(held), 'BCA');
    held[0]!.release(); // B back to 0
    const more: Lease<Fake>[] = [];
    for (let i = 0; i < 5; i++) more.push(await h.pool.acquire('k'));
    // B (only one at 0), then all at 1 → after B: C, A, B; then all at 2 → C.
    assert.equal(names(more), 'BCABC');
    assert.deepEqual(h.pool.members('k').map((m) => m.inFlight), [2, 2, 3]);
    assert.equal(h.gates.length, 0);
  });

  it('min 2: the first call starts one, the second follows once it is up, without a call', async () => {
    const h = harness({ min: 2, gated: true });
    const a = track(h.pool.acquire('k'));
    await settle();
    assert.equal(h.gates.length, 1, 'one start at a time');
    await h.open();
    assert.equal(a.value!.instance.name, 'A');
    assert.equal(h.gates.length, 1, 'then up to min');
    await h.open();
    assert.equal(stat(h.pool).instances, 2);
    await h.clock.advance(600_000);
    assert.deepEqual(h.stops, [], 'idle keeps min');
    assert.equal((await h.pool.acquire('k')).instance.name, 'B');
  });

  it('keys are separate groups: each starts its own instance', async () => {
    const h = harness();
    const a = await h.pool.acquire('server+p1');
    const b = await h.pool.acquire('server+p2');
    const c = await h.pool.acquire('server+p1');
    assert.equal(names([a, b, c]), 'ABA');
    assert.deepEqual(h.instances.map((i) => i.key), ['server+p1', 'server+p2']);
  });
});

describe('service pool: queueing and scale-up', () => {
  it('queues under concurrency and serves waiters first in, first out', async () => {
    const h = harness({ concurrency: 2, max: 1 });
    const order: number[] = [];
    const calls = [0, 1, 2, 3, 4].map((i) => h.pool.acquire('k').then((l) => (order.push(i), l)));
    await settle();
    assert.deepEqual(order, [0, 1]);
    assert.equal(stat(h.pool).waiting, 3);
    // Each slot freed goes to the oldest waiter, whichever call frees it.
    (await calls[1]!).release();
    await settle();
    assert.deepEqual(order, [0, 1, 2]);
    (await calls[0]!).release();
    await settle();
    (await calls[2]!).release();
    await settle();
    assert.deepEqual(order, [0, 1, 2, 3, 4]);
    assert.equal(stat(h.pool).inFlight, 2);
    assert.equal(stat(h.pool).waiting, 0);
    assert.equal(h.instances.length, 1);
  });

  it('scales up exactly when more than 3 calls wait, one start at a time, never past max', async () => {
    const h = harness({ concurrency: 1, max: 3, gated: true });
    const first = track(h.pool.acquire('k'));
    await h.open();
    assert.equal(first.value!.instance.name, 'A');
    const waiting = [1, 2, 3].map(() => track(h.pool.acquire('k')));
    await settle();
    assert.equal(h.gates.length, 0, '3 waiting: not more than 3');
    waiting.push(track(h.pool.acquire('k')));
    await settle();
    assert.equal(h.gates.length, 1, '4 waiting: scale up');
    waiting.push(track(h.pool.acquire('k')), track(h.pool.acquire('k')));
    await settle();
    assert.equal(h.gates.length, 1, 'one start at a time per key');
    await h.open(); // B takes the oldest waiter; 5 still wait → C
    assert.equal(waiting[0]!.value!.instance.name, 'B');
    assert.equal(h.gates.length, 1);
    await h.open();
    assert.equal(waiting[1]!.value!.instance.name, 'C');
    for (let i = 0; i < 5; i++) waiting.push(track(h.pool.acquire('k')));
    await settle();
    assert.equal(h.gates.length, 0, 'max 3');
    assert.equal(stat(h.pool).instances, 3);
    assert.equal(stat(h.pool).waiting, 9);
    assert.equal(stat(h.pool).starts, 3);
  });

  it('without a concurrency bound, scales when the busiest instance holds more than 3 waiting calls', async () => {
    const h = harness({ gated: true });
    const calls = [1, 2, 3, 4].map(() => track(h.pool.acquire('k')));
    await h.open();
    assert.equal(h.gates.length, 0, '4 in flight on A: 3 wait behind the first');
    calls.push(track(h.pool.acquire('k')));
    await settle();
    assert.equal(h.gates.length, 1, '5 in flight: 4 wait');
    await h.open();
    const next = await h.pool.acquire('k');
    assert.equal(next.instance.name, 'B', 'the new instance has the fewest calls');
  });

  it('never scales up when canScaleUp says no, and serves the queue from the instances it has', async () => {
    let allowed = false;
    const h = harness({ concurrency: 1, canScaleUp: () => allowed });
    const first = await h.pool.acquire('k');
    const waiting = Array.from({ length: 10 }, () => track(h.pool.acquire('k')));
    await h.clock.advance(120_000);
    assert.equal(h.instances.length, 1);
    assert.ok(waiting.every((w) => !w.done), 'waiting behind a busy instance is not an admission timeout');
    first.release();
    await settle();
    assert.equal(waiting[0]!.value!.instance.name, 'A');
    allowed = true;
    h.pool.pump(); // pressure fell
    await settle();
    assert.equal(h.instances.length, 5, 'pump lets the refused scale-up happen, up to max');
  });

  it('a scale-up admission refuses is retried while it is refused, and waiters keep waiting', async () => {
    let refuse: string | null = 'needs 240 MB (1.2 × 200 MB); 100 MB of the 1 GB budget free';
    const h = harness({ concurrency: 1, admit: (_k, kind) => (kind === 'scale-up' ? refuse : null) });
    await h.pool.acquire('k');
    const waiting = [1, 2, 3, 4].map(() => track(h.pool.acquire('k')));
    await settle();
    assert.equal(h.instances.length, 1);
    assert.equal(stat(h.pool).admissionDenied, refuse);
    await h.clock.advance(60_000);
    assert.ok(waiting.every((w) => !w.done));
    refuse = null;
    await h.clock.advance(1_000); // the retry timer
    assert.equal(h.instances.length, 2);
    assert.equal(waiting[0]!.value!.instance.name, 'B');
    assert.equal(stat(h.pool).admissionDenied, null);
  });
});

describe('service pool: idle', () => {
  it('stops instances idle past idleTimeoutMs, down to min; a call resets the clock', async () => {
    const h = harness({ min: 1 });
    for (let i = 0; i < 3; i++) h.pool.adopt('k', h.make('k'));
    await h.clock.advance(30_000);
    (await h.pool.acquire('k')).release(); // A used at 30 s
    await h.clock.advance(29_999);
    assert.deepEqual(h.stops, []);
    await h.clock.advance(1);
    assert.deepEqual(h.stops, ['B:idle', 'C:idle']);
    await h.clock.advance(600_000);
    assert.deepEqual(h.stops, ['B:idle', 'C:idle'], 'min 1 keeps A');
    assert.equal(stat(h.pool).stops.idle, 2);
  });

  it('with min 0 the last instance stops too, and the next call starts a fresh one', async () => {
    const h = harness({ min: 0, idleTimeoutMs: 5_000 });
    (await h.pool.acquire('k')).release();
    await h.clock.advance(5_000);
    assert.deepEqual(h.stops, ['A:idle']);
    assert.equal(stat(h.pool).instances, 0);
    const l = await h.pool.acquire('k');
    assert.equal(l.instance.name, 'B');
  });

  it('an instance with a call in flight is never idle', async () => {
    const h = harness({ min: 0, idleTimeoutMs: 1_000 });
    const l = await h.pool.acquire('k');
    await h.clock.advance(10_000);
    assert.deepEqual(h.stops, []);
    l.release();
    await h.clock.advance(1_000);
    assert.deepEqual(h.stops, ['A:idle']);
  });
});

describe('service pool: recycle', () => {
  it('drains: calls in flight finish, a fresh instance takes new calls, the old one stops once drained', async () => {
    const h = harness({ gated: true });
    const c1 = track(h.pool.acquire('k'));
    const c2 = track(h.pool.acquire('k'));
    await h.open();
    assert.equal(h.pool.recycle(h.instances[0]!, 'limit'), true);
    await settle();
    assert.equal(h.gates.length, 1, 'below min: a replacement starts at once');
    const c3 = track(h.pool.acquire('k'));
    await settle();
    assert.equal(c3.done, false, 'the draining instance takes no new call');
    await h.open();
    assert.equal(c3.value!.instance.name, 'B');
    assert.deepEqual(h.stops, []);
    c1.value!.release();
    await settle();
    assert.deepEqual(h.stops, []);
    c2.value!.release();
    await settle();
    assert.deepEqual(h.stops, ['A:recycle']);
    const s = stat(h.pool);
    assert.deepEqual(s.recycles, { limit: 1 });
    assert.equal(s.stops.recycle, 1);
    assert.equal(s.drainTimeouts, 0);
    assert.equal(h.pool.recycle(h.instances[0]!, 'limit'), false, 'gone');
  });

  it('a drain that outlasts drainTimeoutMs is stopped anyway; the late release changes nothing', async () => {
    const h = harness({ drainTimeoutMs: 10_000 });
    const old = await h.pool.acquire('k');
    h.pool.recycle(old.instance, 'limit');
    await settle();
    const fresh = await h.pool.acquire('k');
    assert.equal(fresh.instance.name, 'B');
    await h.clock.advance(9_999);
    assert.deepEqual(h.stops, []);
    await h.clock.advance(1);
    assert.deepEqual(h.stops, ['A:recycle']);
    assert.equal(stat(h.pool).drainTimeouts, 1);
    old.release();
    assert.equal(stat(h.pool).inFlight, 1, 'only B’s call');
  });

  it('an idle recycled instance stops at once; with min 0 and no call nothing replaces it', async () => {
    const h = harness({ min: 0 });
    (await h.pool.acquire('k')).release();
    h.pool.recycle(h.instances[0]!, 'limit');
    await settle();
    assert.deepEqual(h.stops, ['A:recycle']);
    assert.equal(h.instances.length, 1);
  });
});

describe('service pool: failures', () => {
  it('a dead instance leaves the group and is replaced on the next call', async () => {
    const h = harness({ min: 1 });
    const l = await h.pool.acquire('k');
    assert.equal(h.pool.markDead(l.instance), true);
    await settle();
    assert.deepEqual(h.stops, ['A:dead']);
    await h.clock.advance(60_000);
    assert.equal(h.instances.length, 1, 'nothing restarts until a call');
    l.release(); // the caller failed the call; its release is a no-op
    const next = await h.pool.acquire('k');
    assert.equal(next.instance.name, 'B');
    assert.equal(stat(h.pool).inFlight, 1);
  });

  it('calls waiting when the dead instance was the only one get a fresh instance at once', async () => {
    const h = harness({ concurrency: 1 });
    const l = await h.pool.acquire('k');
    const w = track(h.pool.acquire('k'));
    await settle();
    h.pool.markDead(l.instance);
    await settle();
    assert.equal(w.value!.instance.name, 'B');
  });

  it('a failed start fails the calls waiting on it, and the next call tries again', async () => {
    const h = harness({ gated: true });
    const calls = [1, 2, 3].map(() => track(h.pool.acquire('k')));
    await settle();
    const boom = new Error('spawn ENOENT');
    h.gates.shift()!.reject(boom);
    await settle();
    assert.ok(calls.every((c) => c.error === boom));
    await h.clock.advance(600_000);
    assert.equal(h.gates.length, 0, 'no retry loop');
    const again = track(h.pool.acquire('k'));
    await settle();
    assert.equal(h.gates.length, 1);
    await h.open();
    assert.equal(again.value!.instance.name, 'A');
    assert.equal(stat(h.pool).startFailures, 1);
    assert.equal(stat(h.pool).starts, 2);
  });

  it('a failed scale-up leaves the waiting calls to the instances there are', async () => {
    const h = harness({ concurrency: 1, gated: true });
    const first = track(h.pool.acquire('k'));
    await h.open();
    const waiting = [1, 2, 3, 4].map(() => track(h.pool.acquire('k')));
    await settle();
    h.gates.shift()!.reject(new Error('out of file descriptors'));
    await settle();
    assert.ok(waiting.every((w) => !w.done));
    first.value!.release();
    await settle();
    assert.equal(waiting[0]!.value!.instance.name, 'A');
  });
});

describe('service pool: admission', () => {
  const reason = 'needs 240 MB (1.2 × 200 MB) but 100 MB of the 1 GB budget is free';

  it('a call waiting admissionWaitMs for an instance admission will not start fails with admission’s reason', async () => {
    const h = harness({ admit: () => reason });
    const early = track(h.pool.acquire('k'));
    await h.clock.advance(10_000);
    const late = track(h.pool.acquire('k'));
    await h.clock.advance(19_999);
    assert.equal(early.done, false);
    await h.clock.advance(1);
    assert.ok(early.error instanceof AdmissionTimeoutError);
    assert.equal((early.error as GuildError).code, 'UNAVAILABLE');
    assert.equal((early.error as Error).message, `k: no instance could start within 30 s: ${reason}`);
    assert.equal(late.done, false);
    await h.clock.advance(10_000);
    assert.ok(late.error instanceof AdmissionTimeoutError);
    assert.equal(h.instances.length, 0);
    assert.equal(stat(h.pool).admissionTimeouts, 2);
    assert.equal(h.clock.pending, 0, 'no timer left once nothing waits');
  });

  it('a call waiting for memory starts as soon as admission says yes (retry timer or pump)', async () => {
    let refuse: string | null = reason;
    const h = harness({ admit: () => refuse, admissionRetryMs: 500 });
    const a = track(h.pool.acquire('k'));
    await h.clock.advance(20_000);
    refuse = null;
    await h.clock.advance(500);
    assert.equal(a.value!.instance.name, 'A');
    refuse = reason;
    const b = track(h.pool.acquire('other'));
    await settle();
    refuse = null;
    h.pool.pump();
    await settle();
    assert.equal(b.value!.instance.name, 'B');
  });

  it('stopping an instance retries a group that admission refused', async () => {
    let free = 1;
    const h = harness({ admit: () => (free > 0 ? null : reason), admissionRetryMs: 3_600_000 });
    const a = await h.pool.acquire('one');
    free = 0;
    const b = track(h.pool.acquire('two'));
    await settle();
    assert.equal(b.done, false);
    a.release();
    free = 1;
    h.pool.markDead(a.instance);
    await settle();
    assert.equal(b.value!.instance.name, 'B');
  });
});

describe('service pool: abort', () => {
  it('an aborted waiting call leaves the queue and the next one gets the slot', async () => {
    const h = harness({ concurrency: 1 });
    const first = await h.pool.acquire('k');
    const ac = new AbortController();
    const a = track(h.pool.acquire('k', { signal: ac.signal }));
    const b = track(h.pool.acquire('k'));
    await settle();
    assert.equal(stat(h.pool).waiting, 2);
    ac.abort(new Error('client cancelled'));
    await settle();
    assert.equal((a.error as Error).message, 'client cancelled');
    assert.equal(stat(h.pool).waiting, 1);
    first.release();
    await settle();
    assert.equal(b.value!.instance.name, 'A');
    assert.equal(stat(h.pool).inFlight, 1, 'the aborted call holds nothing');
  });

  it('an already aborted signal rejects at once, an abort after the grant changes nothing', async () => {
    const h = harness();
    const ac = new AbortController();
    ac.abort(new Error('gone'));
    await assert.rejects(h.pool.acquire('k', { signal: ac.signal }), /gone/);
    const ac2 = new AbortController();
    const l = await h.pool.acquire('k', { signal: ac2.signal });
    ac2.abort();
    assert.equal(stat(h.pool).inFlight, 1);
    l.release();
    assert.equal(stat(h.pool).inFlight, 0);
  });

  it('an aborted call was the only demand: the admission wait ends with it', async () => {
    const h = harness({ admit: () => 'no memory' });
    const ac = new AbortController();
    const a = track(h.pool.acquire('k', { signal: ac.signal }));
    await settle();
    assert.equal(stat(h.pool).admissionDenied, 'no memory');
    ac.abort(new Error('cancel'));
    await settle();
    assert.ok(a.error);
    assert.equal(stat(h.pool).admissionDenied, null);
    assert.equal(h.clock.pending, 0);
  });
});

describe('service pool: pressure', () => {
  it('stopIdle stops every idle instance, below min too; busy ones stay', async () => {
    const h = harness({ min: 1 });
    h.pool.adopt('k', h.make('k'));
    h.pool.adopt('k', h.make('k'));
    h.pool.adopt('other', h.make('other'));
    const busy = await h.pool.acquire('k');
    assert.equal(busy.instance.name, 'A');
    assert.equal(h.pool.stopIdle(), 2);
    await settle();
    assert.deepEqual(h.stops, ['B:pressure', 'C:pressure']);
    assert.equal(stat(h.pool, 'other').instances, 0);
    assert.equal((await h.pool.acquire('other')).instance.name, 'D', 'the next call starts one');
  });

  it('demand first: memory freed under pressure goes to the call waiting for it, not to refilling min elsewhere', async () => {
    // Room for two instances; `min: 1` everywhere. A call of 'b' waits while 'a' and 'c' hold the room.
    let h: ReturnType<typeof harness>;
    const live = (): number => h.instances.filter((f) => f.stopped === null).length;
    h = harness({ min: 1, admit: () => (live() < 2 ? null : 'no room') });
    h.pool.adopt('a', h.make('a'));
    h.pool.adopt('c', h.make('c'));
    const waiting = track(h.pool.acquire('b'));
    await settle();
    assert.match(String(stat(h.pool, 'b').admissionDenied), /no room/);
    // High pressure stops the idle ones; when their memory is back, 'b' gets it first, and only
    // what is left refills one of the others.
    assert.equal(h.pool.stopIdle(), 2);
    h.pool.pump(); // pressure falls again (the gateway pumps then): refills of min may go
    await h.clock.advance(1_000);
    assert.equal(waiting.done, true);
    assert.equal(waiting.value!.key, 'b');
    await h.clock.advance(2_000); // refused refills try again
    assert.equal(live(), 2, 'never more than the room');
    assert.equal(stat(h.pool, 'a').instances + stat(h.pool, 'c').instances, 1, 'one refill, after the call was served');
    waiting.value!.release();
  });

  it('shrinkTo keeps the busiest n per key and drains the rest', async () => {
    const h = harness({ min: 1 });
    for (let i = 0; i < 3; i++) h.pool.adopt('k', h.make('k'));
    const held = [await h.pool.acquire('k'), await h.pool.acquire('k'), await h.pool.acquire('k'), await h.pool.acquire('k')];
    assert.equal(names(held), 'ABCA'); // A 2, B 1, C 1
    held[2]!.release(); // C 0
    assert.equal(h.pool.shrinkTo(1), 2);
    await settle();
    assert.deepEqual(h.stops, ['C:pressure'], 'idle C stops at once; B drains');
    assert.deepEqual(h.pool.members('k').map((m) => `${m.instance.name}:${m.state}`), ['A:ready', 'B:draining']);
    const next = await h.pool.acquire('k');
    assert.equal(next.instance.name, 'A');
    held[1]!.release();
    await settle();
    assert.deepEqual(h.stops, ['C:pressure', 'B:pressure']);
  });

  it('largestIdle and largest pick by memoryOf; evict stops a busy instance now', async () => {
    const h = harness();
    const sizes = [100, 300, 200];
    for (const mb of sizes) {
      const f = h.make('k');
      f.memory = mb;
      h.pool.adopt('k', f);
    }
    assert.equal(h.pool.largestIdle()!.instance.name, 'B');
    const a = await h.pool.acquire('k');
    const b = await h.pool.acquire('k');
    assert.equal(names([a, b]), 'AB');
    assert.equal(h.pool.largestIdle()!.instance.name, 'C');
    assert.equal(h.pool.largest()!.instance.name, 'B');
    assert.equal(h.pool.largest()!.inFlight, 1);
    assert.equal(h.pool.evict(b.instance), true);
    await settle();
    assert.deepEqual(h.stops, ['B:pressure']);
    b.release();
    assert.equal(stat(h.pool).inFlight, 1);
    h.pool.stopIdle();
    a.release();
    await h.pool.close();
    assert.equal(h.pool.largestIdle(), null);
    assert.equal(h.pool.largest(), null);
  });
});

describe('service pool: stats, options, close', () => {
  it('stats count instances, calls, starts and stops by reason', async () => {
    const h = harness({ concurrency: 1, max: 1, min: 0, idleTimeoutMs: 1_000 });
    const a = await h.pool.acquire('k');
    const w = track(h.pool.acquire('k'));
    await settle();
    assert.deepEqual(
      { ...stat(h.pool), stops: undefined },
      { key: 'k', instances: 1, starting: 0, draining: 0, inFlight: 1, waiting: 1, starts: 1, startFailures: 0, stops: undefined, stopFailures: 0, recycles: {}, drainTimeouts: 0, admissionTimeouts: 0, admissionDenied: null },
    );
    a.release();
    await settle();
    w.value!.release();
    await h.clock.advance(1_000);
    assert.deepEqual(stat(h.pool).stops, { idle: 1, recycle: 0, dead: 0, pressure: 0, closed: 0 });
  });

  it('per-key options override the pool’s, and bad ones are refused with the expected shape', async () => {
    const h = harness({ group: (key) => (key === 'solo' ? { max: 1, concurrency: 1 } : key === 'bad' ? { min: 3, max: 2 } : {}) });
    await h.pool.acquire('solo');
    const w = [1, 2, 3, 4, 5].map(() => track(h.pool.acquire('solo')));
    await settle();
    assert.equal(h.instances.length, 1, 'max 1 for solo, whatever waits');
    assert.equal(w.filter((c) => !c.done).length, 5);
    assert.equal(stat(h.pool, 'solo').waiting, 5);
    await assert.rejects(h.pool.acquire('bad'), (e: GuildError) => e.code === 'INVALID_OPTION' && /expected max for bad to be an integer >= 1 and >= min \(3\), got 2/.test(e.message));
    assert.throws(() => new ServicePool<Fake>({ start: async () => h.make('x'), stop: () => {}, scaleUpWaiting: -1 }), /expected scaleUpWaiting to be an integer >= 0, got -1/);
    assert.throws(() => new ServicePool<Fake>({ start: async () => h.make('x'), stop: () => {}, concurrency: 0 }), (e: GuildError) => e.code === 'INVALID_OPTION');
  });

  it('close fails waiting calls, stops every instance, and a start still in flight is stopped when it lands', async () => {
    const h = harness({ concurrency: 1, gated: true });
    const a = track(h.pool.acquire('k'));
    await h.open();
    const b = track(h.pool.acquire('other'));
    const w = track(h.pool.acquire('k'));
    await settle();
    assert.equal(h.gates.length, 1);
    const closing = h.pool.close();
    await settle();
    assert.equal((w.error as GuildError).code, 'INVALID_STATE');
    assert.equal((b.error as GuildError).code, 'INVALID_STATE');
    assert.deepEqual(h.stops, ['A:closed']);
    let closed = false;
    void closing.then(() => (closed = true));
    await settle();
    assert.equal(closed, false, 'close waits for the start in flight');
    await h.open();
    await closing;
    assert.deepEqual(h.stops, ['A:closed', 'B:closed']);
    a.value!.release();
    await assert.rejects(h.pool.acquire('k'), (e: GuildError) => e.code === 'INVALID_STATE');
    assert.equal(h.clock.pending, 0, 'no timer left');
  });

  it('closeKey drops one key; its next use is a new group', async () => {
    const h = harness();
    await h.pool.acquire('session-1');
    await h.pool.acquire('session-2');
    await h.pool.closeKey('session-1');
    assert.deepEqual(h.stops, ['A:closed']);
    assert.deepEqual(h.pool.stats().map((s) => s.key), ['session-2']);
    assert.equal((await h.pool.acquire('session-1')).instance.name, 'C');
  });

  it('a stop hook that throws is counted, not thrown', async () => {
    const h = harness({ stop: () => Promise.reject(new Error('already gone')) });
    const l = await h.pool.acquire('k');
    h.pool.markDead(l.instance);
    await settle();
    assert.equal(stat(h.pool).stopFailures, 1);
  });
});

describe('service pool: real processes', () => {
  it('sleep processes as instances: scale-up, recycle, death, idle, close — no pid outlives the pool', async () => {
    const children = new Map<number, ChildProcess>();
    const pids: number[] = [];
    const pool = new ServicePool<ChildProcess>({
      concurrency: 1,
      max: 3,
      min: 1,
      idleTimeoutMs: 300,
      drainTimeoutMs: 2_000,
      start: () =>
        new Promise((resolve, reject) => {
          const c = spawn('sleep', ['1000'], { stdio: 'ignore' });
          c.once('error', reject);
          c.once('spawn', () => {
            children.set(c.pid!, c);
            pids.push(c.pid!);
            resolve(c);
          });
        }),
      stop: (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGKILL');
        }),
    });
    try {
      // 8 calls of 100 ms each, concurrency 1: the queue grows past 3, the pool scales to 3.
      const call = async (): Promise<number> => {
        const l = await pool.acquire('sleep');
        await new Promise((r) => setTimeout(r, 100));
        l.release();
        return l.instance.pid!;
      };
      const served = await Promise.all(Array.from({ length: 8 }, call));
      assert.ok(new Set(served).size >= 2, 'calls spread over the instances the pool added');
      assert.ok(pids.length >= 2 && pids.length <= 3, `scaled to ${pids.length}, max 3`);
      // Recycle one with a call in flight: the call completes, the process goes.
      const l = await pool.acquire('sleep');
      assert.equal(pool.recycle(l.instance, 'limit'), true);
      await new Promise((r) => setTimeout(r, 50));
      assert.ok(isAlive(l.instance.pid!), 'draining, not killed');
      l.release();
      await waitFor(() => !isAlive(l.instance.pid!), 5_000);
      // Kill one from outside, as a crash: markDead, and the next call gets a live one.
      const victim = pool.members('sleep')[0]!.instance;
      victim.kill('SIGKILL');
      await new Promise((r) => victim.once('exit', r));
      pool.markDead(victim);
      const after = await pool.acquire('sleep');
      assert.ok(isAlive(after.instance.pid!));
      after.release();
      // Idle: down to min 1.
      await waitFor(() => pool.members('sleep').length === 1, 5_000);
      // A start in flight at close is stopped too.
      const pending = pool.acquire('other').catch(() => null);
      await pool.close();
      await pending;
      assert.ok(pids.length >= 4, `${pids.length} started: the scale-up, a replacement or the start at close`);
      for (const pid of pids) assert.equal(isAlive(pid), false, `pid ${pid} outlived the pool`);
    } finally {
      // Only if an assertion above failed: leave no sleep behind for the next test.
      for (const c of children.values()) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
  });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(ok: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
