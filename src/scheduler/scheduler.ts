import type { AdmissionRule } from '../governor/governor.js';
import type { Priority } from '../config/schema.js';
import { DEFAULTS } from '../config/defaults.js';
import { denyReason, mayBackfill, shadow, type Capacity, type Demand, type DenyReason, type RunningShare } from './admission.js';
import { PriorityHeap, type Keyed } from './priority-queue.js';
import { priorityRank, queueKey } from './queue-key.js';
import { poolLimitShare, type Pools } from '../config/pools.js';

/** A unit of work as the scheduler sees it. The scheduler fills in the Keyed fields. */
export interface SchedulerJob extends Keyed, Demand {
  readonly id: string;
  /** Agent type: per-type concurrency applies to it. */
  readonly type: string;
  readonly priority: Priority;
}

export interface SchedulerOptions<J extends SchedulerJob> {
  /** Memory Guild may give to running tasks, in bytes. */
  budgetBytes: number;
  /** Sum of running CPU shares may not exceed this (cores × 0.8 by default upstream). */
  cpuCap: number;
  /** Global cap on running tasks. @default null (no cap beyond memory and CPU) */
  maxParallel?: number | null;
  /** @default 1.2 */
  headroom?: number;
  /** @default 60000 */
  agingMs?: number;
  /** After the blocked head waited this long, backfill stops until it starts. @default 30000 */
  starvationLimitMs?: number;
  /** Per-type concurrency limit; null for none. @default () => null */
  concurrency?: (type: string) => number | null;
  /** Injected clock (ms). @default performance.now */
  now?: () => number;
  /** Called when a job is admitted. It must eventually lead to `release(job)`. */
  start: (job: J) => void;
  /** Budget pools (shares); without them every task may use the whole budget. @default null */
  pools?: Pools | null;
  /** Bytes the caches hold now (taken out of what tasks may borrow from the caching pool). @default () => 0 */
  cacheBytes?: () => number;
  /** Bytes held on the same budget by what is not a task (a run's MCP gateway backends): out of every class's share. @default () => 0 */
  otherBytes?: () => number;
  /** Called once when a head starts waiting for memory: caches should give memory back. */
  reclaim?: () => void;
}

/** Counters for telemetry: how often a head was first found blocked, by reason. */
export interface SchedulerStats {
  admitted: number;
  backfilled: number;
  denied: Record<DenyReason, number>;
  /** Highest reservations (max of expected and measured) held at once, by class. */
  peakReserved: { critical: number; other: number };
}

interface TypeQueue<J> {
  readonly name: string;
  readonly heap: PriorityHeap<J & SchedulerJob>;
  readonly limit: number | null;
  running: number;
}

interface Running<J> {
  job: J;
  /** The estimate at admission: it may be raised later for queued jobs, not for this one. */
  expectedBytes: number;
  observedBytes: number;
  accountedBytes: number;
  expectedEnd: number;
}

/**
 * Priority queue + admission control + backfill. One heap per agent type, so a type at its
 * concurrency limit never blocks other types and picking the next task costs O(types + log n).
 * Within a type, tasks share one memory and CPU profile: if the head of a type does not fit,
 * none of that type does.
 */
export class Scheduler<J extends SchedulerJob> {
  readonly #opts: Required<Omit<SchedulerOptions<J>, 'maxParallel' | 'pools'>> & { maxParallel: number | null; pools: Pools | null };
  readonly #types = new Map<string, TypeQueue<J>>();
  #typeList: TypeQueue<J>[] = [];
  readonly #running = new Map<J, Running<J>>();
  #queued = 0;
  #seq = 0;
  #accounted = 0;
  #untouched = 0; // Σ max(0, expected − observed): memory reserved but not yet visible to the probe
  #cpuUsed = 0;
  #systemAvailable: number | null = null;
  #cap: number | null = null;
  #criticalQueued = 0;
  #lendBuffer = false;
  #accountedCritical = 0;
  #maxRank = 3; // priorities admitted: rank <= this (3 = all, 2 = low deferred, 0 = critical only)
  #stopped = false;
  #pumping = false;
  #again = false;
  #batchDepth = 0;
  #batchNow = 0;
  #pending: J[] = [];
  #pendingMixed = false; // pending jobs differ in memory: worth sorting
  // Reused on every admission decision: the hot path allocates nothing per task.
  readonly #capacityView: Capacity = { budgetBytes: 0, accountedBytes: 0, systemFreeBytes: null, cpuCap: 0, cpuUsed: 0, running: 0, headroom: 1 };
  readonly #heads: J[] = [];
  #blocked: { job: J; since: number; reason: DenyReason } | null = null;
  readonly stats: SchedulerStats = { admitted: 0, backfilled: 0, denied: { memory: 0, cpu: 0 }, peakReserved: { critical: 0, other: 0 } };

  constructor(options: SchedulerOptions<J>) {
    this.#opts = {
      headroom: DEFAULTS.headroom,
      agingMs: DEFAULTS.agingMs,
      starvationLimitMs: DEFAULTS.starvationLimitMs,
      concurrency: () => null,
      now: () => performance.now(),
      cacheBytes: () => 0,
      otherBytes: () => 0,
      reclaim: () => undefined,
      ...options,
      maxParallel: options.maxParallel ?? null,
      pools: options.pools ?? null,
    };
  }

  get queued(): number {
    return this.#queued;
  }

  get running(): number {
    return this.#running.size;
  }

  /** Σ max(expected, observed) over running tasks, in bytes. */
  get accountedBytes(): number {
    return this.#accounted;
  }

  get budgetBytes(): number {
    return this.#opts.budgetBytes;
  }

  /** The head that is waiting for memory or CPU, if any. */
  get blocked(): { id: string; reason: DenyReason; waitedMs: number } | null {
    const b = this.#blocked;
    return b ? { id: b.job.id, reason: b.reason, waitedMs: this.#opts.now() - b.since } : null;
  }

  /** Queues a job. `enqueuedAt` may be passed to keep a retried job's place. */
  enqueue(job: J, enqueuedAt?: number): void {
    if (this.#batchDepth > 0) {
      job.key = queueKey(enqueuedAt ?? this.#batchNow, job.priority, this.#opts.agingMs);
      const prev = this.#pending[this.#pending.length - 1];
      if (prev !== undefined && prev.memoryBytes !== job.memoryBytes) this.#pendingMixed = true;
      this.#pending.push(job);
      return;
    }
    job.key = queueKey(enqueuedAt ?? this.#opts.now(), job.priority, this.#opts.agingMs);
    this.#push(job);
    this.pump();
  }

  #push(job: J): void {
    if (job.priority === 'critical') this.#criticalQueued++;
    job.seq = this.#seq++;
    this.#typeQueue(job.type).heap.push(job);
    this.#queued++;
  }

  /**
   * Jobs queued in one batch share one instant. Among equals in priority, the larger goes first
   * (first-fit decreasing): small tasks then fill the gaps the large ones leave, instead of the
   * large ones running alone at the end.
   */
  #flushPending(): void {
    const jobs = this.#pending;
    if (jobs.length === 0) return;
    this.#pending = [];
    if (this.#pendingMixed) jobs.sort((a, b) => a.key - b.key || b.memoryBytes - a.memoryBytes);
    this.#pendingMixed = false;
    for (const j of jobs) this.#push(j);
  }

  /** A running job ended (any outcome): its memory, CPU and slot are free again. */
  release(job: J): void {
    const r = this.#running.get(job);
    if (!r) return;
    this.#running.delete(job);
    this.#accounted -= r.accountedBytes;
    if (job.priority === 'critical') this.#accountedCritical -= r.accountedBytes;
    this.#untouched -= Math.max(0, r.expectedBytes - r.observedBytes);
    this.#cpuUsed -= job.cpu;
    this.#types.get(job.type)!.running--;
    this.pump();
  }

  /** The measured RSS of a running job's process tree. */
  observe(job: J, rssBytes: number): void {
    const r = this.#running.get(job);
    if (!r) return;
    this.#untouched += Math.max(0, r.expectedBytes - rssBytes) - Math.max(0, r.expectedBytes - r.observedBytes);
    r.observedBytes = rssBytes;
    const accounted = Math.max(r.expectedBytes, rssBytes);
    this.#accounted += accounted - r.accountedBytes;
    if (job.priority === 'critical') this.#accountedCritical += accounted - r.accountedBytes;
    r.accountedBytes = accounted;
    this.#notePeaks();
  }

  /** Live available memory from the probe (null: trust the budget alone). */
  setSystemAvailable(bytes: number | null): void {
    this.#systemAvailable = bytes;
  }

  /** An extra cap on running tasks (the governor's response to pressure); null lifts it. */
  setCap(cap: number | null): void {
    this.#cap = cap;
    this.pump();
  }

  /**
   * Which priorities may start (the governor's response to pressure): `all`, `defer-low`
   * (low waits), `critical-only`. Running jobs are not affected.
   */
  setAdmission(rule: AdmissionRule): void {
    this.#maxRank = rule === 'all' ? 3 : rule === 'defer-low' ? 2 : 0;
    this.pump();
  }

  /** Whether tasks below critical may borrow the buffer pool (the machine is calm). */
  setLendBuffer(lend: boolean): void {
    if (lend === this.#lendBuffer) return;
    this.#lendBuffer = lend;
    if (lend) this.pump();
  }

  /** Stops admitting; queued jobs stay queued until drained. */
  stop(): void {
    this.#stopped = true;
  }

  /** Removes and returns every queued job. */
  drain(): J[] {
    const out: J[] = this.#pending;
    this.#pending = [];
    for (const t of this.#typeList) out.push(...t.heap.drain());
    this.#queued = 0;
    this.#criticalQueued = 0;
    this.#blocked = null;
    return out;
  }

  /** Queued jobs in no particular order (for display). */
  queuedJobs(): J[] {
    return this.#typeList.flatMap((t) => t.heap.toArray());
  }

  /**
   * Runs `fn` with admission held back, then admits once: jobs enqueued and released together
   * are then ordered by priority among themselves, not by the order of the calls.
   */
  batch<T>(fn: () => T): T {
    if (this.#batchDepth++ === 0) this.#batchNow = this.#opts.now();
    try {
      return fn();
    } finally {
      if (--this.#batchDepth === 0) {
        this.#flushPending();
        this.pump();
      }
    }
  }

  /** Admits as many queued jobs as fit. Re-entrant calls (from `start`) are folded into one loop. */
  pump(): void {
    if (this.#batchDepth > 0) return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#again = false;
        while (this.#admitOne()) {
          /* keep admitting */
        }
      } while (this.#again);
    } finally {
      this.#pumping = false;
    }
  }

  #limit(): number | null {
    const { maxParallel } = this.#opts;
    const cap = this.#cap;
    if (maxParallel === null) return cap;
    return cap === null ? maxParallel : Math.min(cap, maxParallel);
  }

  /** Starts one job if one may start; false when nothing more can start now. */
  #admitOne(): boolean {
    if (this.#stopped || this.#queued === 0) return false;
    const limit = this.#limit();
    if (limit !== null && this.#running.size >= limit) return false;

    const heads = this.#eligibleHeads();
    if (heads.length === 0) return false;
    const head = heads[0]!;
    // A job that asks for no memory and no CPU (in-process work) always fits: skip the arithmetic.
    const reason = head.memoryBytes === 0 && head.cpu === 0 ? null : denyReason(head, this.#capacity(head));
    if (reason === null) {
      if (this.#blocked?.job === head) this.#blocked = null;
      this.#start(head);
      return true;
    }

    const now = this.#opts.now();
    if (this.#blocked?.job !== head) {
      this.#blocked = { job: head, since: now, reason };
      this.stats.denied[reason]++;
      if (reason === 'memory') this.#opts.reclaim();
    } else {
      this.#blocked.reason = reason;
    }
    if (heads.length === 1 || now - this.#blocked.since >= this.#opts.starvationLimitMs) return false;

    const s = shadow(head, this.#capacity(head), this.#shares(now), now);
    for (let i = 1; i < heads.length; i++) {
      const c = heads[i]!;
      if (denyReason(c, this.#capacity(c)) === null && mayBackfill(c, s, now)) {
        this.stats.backfilled++;
        this.#start(c);
        return true;
      }
    }
    return false;
  }

  /** The head of each type that is under its concurrency limit, most urgent first (a reused array). */
  #eligibleHeads(): J[] {
    const out = this.#heads;
    out.length = 0;
    for (const t of this.#typeList) {
      if (t.heap.size === 0 || (t.limit !== null && t.running >= t.limit)) continue;
      const head = t.heap.peek()!;
      if (this.#maxRank < 3 && priorityRank(head.priority) > this.#maxRank) continue;
      out.push(head);
    }
    if (out.length > 1) out.sort((a, b) => a.key - b.key || a.seq - b.seq);
    return out;
  }

  /** What `job` may use: the whole budget, or the pools its class may draw on. */
  #capacity(job: J): Capacity {
    const c = this.#capacityView;
    const p = this.#opts.pools;
    c.budgetBytes =
      p === null
        ? this.#opts.budgetBytes
        : this.#opts.budgetBytes * poolLimitShare(p, job.priority === 'critical', this.#criticalQueued > 0, this.#lendBuffer) -
          (job.priority === 'critical' ? 0 : Math.min(this.#opts.cacheBytes(), this.#opts.budgetBytes * p.caching));
    c.accountedBytes = this.#accounted + this.#opts.otherBytes();
    c.systemFreeBytes = this.#systemAvailable === null ? null : this.#systemAvailable - this.#untouched;
    c.cpuCap = this.#opts.cpuCap;
    c.cpuUsed = this.#cpuUsed;
    c.running = this.#running.size;
    c.headroom = this.#opts.headroom;
    return c;
  }

  #shares(now: number): RunningShare[] {
    const out: RunningShare[] = [];
    for (const r of this.#running.values()) out.push({ accountedBytes: r.accountedBytes, cpu: r.job.cpu, expectedEnd: Math.max(now, r.expectedEnd) });
    return out;
  }

  #start(job: J): void {
    const t = this.#types.get(job.type)!;
    t.heap.pop();
    this.#queued--;
    t.running++;
    const now = this.#opts.now();
    this.#running.set(job, { job, expectedBytes: job.memoryBytes, observedBytes: 0, accountedBytes: job.memoryBytes, expectedEnd: now + job.expectedDurationMs });
    this.#accounted += job.memoryBytes;
    if (job.priority === 'critical') {
      this.#accountedCritical += job.memoryBytes;
      this.#criticalQueued--;
    }
    this.#untouched += job.memoryBytes;
    this.#notePeaks();
    this.#cpuUsed += job.cpu;
    this.stats.admitted++;
    this.#opts.start(job);
  }

  #notePeaks(): void {
    const p = this.stats.peakReserved;
    if (this.#accountedCritical > p.critical) p.critical = this.#accountedCritical;
    const other = this.#accounted - this.#accountedCritical;
    if (other > p.other) p.other = other;
  }

  #typeQueue(name: string): TypeQueue<J> {
    let t = this.#types.get(name);
    if (!t) {
      t = { name, heap: new PriorityHeap<J & SchedulerJob>(), limit: this.#opts.concurrency(name), running: 0 };
      this.#types.set(name, t);
      this.#typeList = [...this.#types.values()];
    }
    return t;
  }
}
