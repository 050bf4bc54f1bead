import { DEFAULTS } from '../config/defaults.js';
import type { Priority } from '../config/schema.js';
import { priorityRank } from '../config/priority.js';
import { DEFAULT_THRESHOLDS, levelRank, type PressureLevel, type Thresholds } from './levels.js';
import { PressureTracker } from './pressure.js';

/** Which tasks the scheduler may start. */
export type AdmissionRule = 'all' | 'defer-low' | 'critical-only';

/** What caches are asked to do (the cache issue implements the tiers; Guild's own structures obey now). */
export type CacheMode = 'normal' | 'shrink' | 'evict' | 'off';

/** Anything that holds memory it could give back under pressure (the layered cache implements it). */
export interface MemoryConsumer {
  /** Shrink, evict or stop caching as pressure rises; back to normal as it falls. */
  onCacheMode(mode: CacheMode): void;
  /** Bytes held now, counted against the caching pool. */
  bytes?(): number;
  /** A task is about to wait for memory: give back what can be given. */
  reclaim?(): void;
}

/** A running agent as the governor sees it. */
export interface GovernedAgent {
  id: string;
  priority: Priority;
  /** Start of the current attempt (run clock, ms): age decides who pauses and who dies first. */
  startedAt: number;
  paused: boolean;
  /** False for in-process functions: they cannot be stopped or killed. */
  controllable: boolean;
  rssBytes: number | null;
}

/** What the governor acts on; the run loop implements it. The governor owns no process. */
export interface GovernorTarget {
  agents(): readonly GovernedAgent[];
  setCap(cap: number | null): void;
  setAdmission(rule: AdmissionRule): void;
  setCaching(mode: CacheMode): void;
  pause(id: string): void;
  resume(id: string): void;
  /** Kill for pressure: TERM, then KILL; the task is requeued with what it was observed to use. */
  kill(id: string, level: PressureLevel): void;
}

/** One reading of memory, as fractions of what each view allows. */
export interface PressureReading {
  /** Used ÷ effective limit (cgroup-aware). */
  system: number;
  /** Agents' summed tree RSS ÷ budget, scaled so that the budget sits at `budgetShare`. */
  budget: number;
  /** /proc/pressure/memory full avg10 (% of time all tasks stalled on memory), when present. */
  psiFullAvg10: number | null;
}

/** Something the governor did, for events, the summary and --json. */
export type GovernorAction =
  | { type: 'level'; from: PressureLevel; to: PressureLevel; fraction: number }
  | { type: 'cap'; cap: number | null }
  | { type: 'admission'; rule: AdmissionRule }
  | { type: 'caching'; mode: CacheMode }
  | { type: 'pause'; id: string }
  | { type: 'resume'; id: string }
  | { type: 'kill'; id: string; level: PressureLevel; rssBytes: number | null };

export interface GovernorOptions {
  target: GovernorTarget;
  /** @default the seed's 70 / 80 / 90 / 95 / 98 % */
  thresholds?: Thresholds;
  /** @default 0.05 */
  margin?: number;
  /** @default 2000 */
  holdMs?: number;
  /** After a kill, no other kill until this much time has passed (unless at the ceiling). @default 2000 */
  cooldownMs?: number;
  /** Concurrency caps at moderate, high and critical. @default [4, 2, 1] */
  caps?: readonly [number, number, number];
  /** PSI full avg10 at or above this lifts the level to at least `high`. @default 10 */
  psiHigh?: number;
  /** Judge the level by where memory is heading (last growth extrapolated one reading). @default true */
  predict?: boolean;
  now: () => number;
  onAction?: (a: GovernorAction, at: number) => void;
}

interface Response {
  cap: number | null;
  admission: AdmissionRule;
  caching: CacheMode;
}

/** Admission and caching by level rank (caps come from the options). */
const RESPONSES: readonly Omit<Response, 'cap'>[] = [
  { admission: 'all', caching: 'normal' },
  { admission: 'defer-low', caching: 'shrink' },
  { admission: 'defer-low', caching: 'evict' },
  { admission: 'critical-only', caching: 'off' },
  { admission: 'critical-only', caching: 'off' },
];

/**
 * The memory governor: turns readings into a level (with hysteresis) and the level into graded
 * responses, applied idempotently on every reading so that they also reverse as pressure falls.
 *
 * - moderate: caches shrink, low priority deferred, cap 4;
 * - high: caps 2, caches evict, the youngest low-priority agents paused (the oldest agent keeps running);
 * - critical: cap 1, only critical tasks admitted, caching off, all but the oldest agent paused;
 * - emergency: as critical, and the youngest lowest-priority agent is killed (one at a time, with
 *   a cooldown, unless memory is at the ceiling).
 * Pausing stops growth but frees nothing; killing frees memory. Paused agents resume oldest first.
 */
export class Governor {
  readonly #o: Required<Omit<GovernorOptions, 'onAction'>> & Pick<GovernorOptions, 'onAction'>;
  readonly #tracker: PressureTracker;
  #applied: Response = { cap: null, admission: 'all', caching: 'normal' };
  #lastKillAt = -Infinity;
  #killInFlight: string | null = null;
  #fraction = 0;
  #projected = 0;
  #previous: number | null = null;
  #lastGrowth = 0;
  kills = 0;

  constructor(options: GovernorOptions) {
    this.#o = {
      thresholds: DEFAULT_THRESHOLDS,
      margin: DEFAULTS.pressureMargin,
      holdMs: DEFAULTS.pressureHoldMs,
      cooldownMs: DEFAULTS.killCooldownMs,
      caps: [4, 2, 1],
      psiHigh: 10,
      predict: true,
      ...options,
    };
    this.#tracker = new PressureTracker({ thresholds: this.#o.thresholds, margin: this.#o.margin, holdMs: this.#o.holdMs });
  }

  get level(): PressureLevel {
    return this.#tracker.level;
  }

  get highest(): PressureLevel {
    return this.#tracker.highest;
  }

  /** The fraction of the last reading (the worse view). */
  get fraction(): number {
    return this.#fraction;
  }

  /** Where the fraction will be one reading from now if it keeps growing as it just did. */
  get projected(): number {
    return this.#projected;
  }

  get timeAtMs(): Readonly<Record<PressureLevel, number>> {
    return this.#tracker.timeAtMs;
  }

  /** The agent killed last has ended: the next kill may follow after the cooldown. */
  killSettled(id: string): void {
    if (this.#killInFlight === id) this.#killInFlight = null;
  }

  /** Feeds one reading and applies the responses of the resulting level. */
  observe(r: PressureReading): PressureLevel {
    const now = this.#o.now();
    let fraction = Math.max(r.system, r.budget);
    // Memory stalls mean trouble whatever the counters say: at least `high`.
    if (r.psiFullAvg10 !== null && r.psiFullAvg10 >= this.#o.psiHigh) fraction = Math.max(fraction, this.#o.thresholds.high);
    this.#fraction = fraction;
    // Act on where memory is heading, not only where it is: agents can grow by hundreds of MB
    // between two readings, and the kernel's OOM killer does not wait for the next one. Only
    // growth seen in two readings in a row counts: an agent filling its working set once at
    // start is a step, not a trend.
    const growth = fraction - (this.#previous ?? fraction);
    this.#projected = this.#o.predict ? fraction + Math.max(0, Math.min(growth, this.#lastGrowth)) : fraction;
    this.#lastGrowth = growth;
    this.#previous = fraction;
    const before = this.#tracker.level;
    const level = this.#tracker.update(this.#projected, now);
    if (level !== before) this.#emit({ type: 'level', from: before, to: level, fraction }, now);
    this.#apply(level, now);
    return level;
  }

  #apply(level: PressureLevel, now: number): void {
    const t = this.#o.target;
    const rank = levelRank(level);
    const want: Response = { cap: rank === 0 ? null : this.#o.caps[Math.min(rank, 3) - 1]!, ...RESPONSES[rank]! };
    if (want.caching !== this.#applied.caching) {
      t.setCaching(want.caching);
      this.#emit({ type: 'caching', mode: want.caching }, now);
    }
    if (want.admission !== this.#applied.admission) {
      t.setAdmission(want.admission);
      this.#emit({ type: 'admission', rule: want.admission }, now);
    }
    if (want.cap !== this.#applied.cap) {
      t.setCap(want.cap);
      this.#emit({ type: 'cap', cap: want.cap }, now);
    }
    this.#applied = want;

    const agents = t.agents().filter((a) => a.controllable);
    const oldestFirst = [...agents].sort((a, b) => a.startedAt - b.startedAt);
    const oldest = oldestFirst[0];
    const shouldPause = (a: GovernedAgent): boolean => {
      if (a === oldest) return false; // someone always makes progress
      if (rank >= 3) return true;
      if (rank === 2) return a.priority === 'low';
      return false;
    };
    for (const a of oldestFirst) {
      if (!a.paused || shouldPause(a)) continue;
      t.resume(a.id);
      this.#emit({ type: 'resume', id: a.id }, now);
    }
    for (let i = oldestFirst.length - 1; i >= 0; i--) {
      const a = oldestFirst[i]!;
      if (a.paused || !shouldPause(a)) continue;
      t.pause(a.id);
      this.#emit({ type: 'pause', id: a.id }, now);
    }

    // Pausing is cheap and undone later; a kill is not: it needs memory really at the emergency
    // line, or past critical and heading for the ceiling.
    const th = this.#o.thresholds;
    const mustKill = this.#fraction >= th.emergency || (this.#fraction >= th.critical && this.#projected >= th.ceiling);
    if (level === 'emergency' && mustKill && this.#killInFlight === null) {
      const atCeiling = this.#fraction >= th.ceiling || this.#projected >= th.ceiling;
      if (atCeiling || now - this.#lastKillAt >= this.#o.cooldownMs) {
        const victim = [...agents].sort((a, b) => priorityRank(b.priority) - priorityRank(a.priority) || b.startedAt - a.startedAt)[0];
        if (victim) {
          this.#killInFlight = victim.id;
          this.#lastKillAt = now;
          this.kills++;
          t.kill(victim.id, level);
          this.#emit({ type: 'kill', id: victim.id, level, rssBytes: victim.rssBytes }, now);
        }
      }
    }
  }

  #emit(a: GovernorAction, at: number): void {
    this.#o.onAction?.(a, at);
  }
}
