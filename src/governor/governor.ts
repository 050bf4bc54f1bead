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

/**
 * One reading of memory, in bytes, as the owner of the running executions saw it. The governor
 * turns it into fractions (see `Governor.observe`); `pressureReading()` in ./reading.ts builds it.
 */
export interface PressureReading {
  /** Machine (cgroup-aware) used and effective limit, bytes. */
  usedBytes: number;
  limitBytes: number;
  /** Σ over running executions of their reservation (the expected memory admission reserved for them). */
  reservedBytes: number;
  /**
   * Σ over running executions of min(measured, reservation): memory admission has already paid
   * for. `pressureReading()` takes "measured" as the attempt's peak so far here (see there why).
   */
  paidBytes: number;
  /** Σ measured memory of running executions, and Σ of what each measured above its reservation. */
  agentsBytes: number;
  overBytes: number;
  /** The agents' budget. */
  budgetBytes: number;
  /** /proc/pressure/memory full avg10, when present. */
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
  /** A level is left after this long below it (minus the margin), straight to the level the reading supports. @default 1000 */
  holdMs?: number;
  /** After a kill, no other kill until this much time has passed (unless at the ceiling). @default 2000 */
  cooldownMs?: number;
  /** Concurrency caps at moderate, high and critical. @default [4, 2, 1] */
  caps?: readonly [number, number, number];
  /** PSI full avg10 at or above this lifts the level to at least `high`. @default 10 */
  psiHigh?: number;
  /** Judge the level by where memory is heading (last unpaid growth extrapolated one reading). @default true */
  predict?: boolean;
  /** The budget view reads a fully reserved budget, every execution within its reservation, as this fraction. @default 0.6 */
  budgetAt?: number;
  /** The system view judges unpaid memory against at least this share of the limit. @default 0.25 */
  roomFloor?: number;
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
  #system = 0;
  #budget = 0;
  /** Unpaid bytes of each view at the previous reading, and their growth then (for the projection). */
  #previous: { unpaid: number; over: number } | null = null;
  #lastGrowth = { unpaid: 0, over: 0 };
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
      budgetAt: DEFAULTS.pressureBudgetAt,
      roomFloor: DEFAULTS.pressureRoomFloor,
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

  /** The fraction of the last reading (the worse view, lifted by PSI stalls). */
  get fraction(): number {
    return this.#fraction;
  }

  /** The two views of the last reading: unpaid machine memory, and the agents against their budget. */
  get views(): { system: number; budget: number } {
    return { system: this.#system, budget: this.#budget };
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

  /**
   * Feeds one reading and applies the responses of the resulting level.
   *
   * Memory a running execution holds up to its reservation was paid for by admission: it is in
   * the budget, and admission left room for it. Counting it again as pressure throttled every
   * batch of agents that filled what they declared. So the governor judges two views of what
   * nobody has paid for, and takes the worse:
   * - system: (used − paid) ÷ (limit − reserved): memory outside Guild, Guild itself and agents'
   *   growth above their reservations, against the part of the machine no reservation holds.
   *   Growth of an agent within its reservation raises used and paid alike: it does not move.
   * - budget: (budgetAt × reserved + over) ÷ budget. A fully reserved budget whose tasks stay
   *   within their reservations reads `budgetAt` (0.6, below moderate − margin): optimal, and a
   *   level raised for another reason can still fall. Memory above a reservation raises it at
   *   once, byte for byte of the budget (over a full budget: moderate at 10 % of the budget above
   *   the reservations, emergency at 35 %); it is the memory admission did not plan for.
   * PSI full stalls lift the level to at least `high` whatever the counters say.
   */
  observe(r: PressureReading): PressureLevel {
    const now = this.#o.now();
    const limit = Math.max(1, r.limitBytes);
    // Reservations may leave (almost) nothing of the limit: a budget near or above the limit, or
    // estimates raised past it. Dividing by what is left would turn a few MB of Guild's own
    // memory into an emergency (and give a negative or infinite fraction past the limit). So the
    // reservations count only up to (1 − roomFloor) of the limit, in the room and in what they
    // paid alike: the room never shrinks below roomFloor of the limit, and paid memory beyond
    // that share, which the machine does not back, counts as unpaid, so a machine really filling
    // up still reads high. With reservations within that share (the default budget is 75 % of
    // the limit) the guard changes nothing, and it is continuous where it starts: no step.
    const backedMax = limit * (1 - this.#o.roomFloor);
    const room = limit - Math.min(r.reservedBytes, backedMax);
    const unpaid = Math.max(0, r.usedBytes - Math.min(r.paidBytes, backedMax));
    const system = unpaid / room;
    const over = Math.max(0, r.overBytes);
    const perBudgetByte = r.budgetBytes > 0 ? 1 / r.budgetBytes : 0;
    const budget = (this.#o.budgetAt * r.reservedBytes + over) * perBudgetByte;
    this.#system = system;
    this.#budget = budget;
    let fraction = Math.max(system, budget);
    // Memory stalls mean trouble whatever the counters say: at least `high`.
    if (r.psiFullAvg10 !== null && r.psiFullAvg10 >= this.#o.psiHigh) fraction = Math.max(fraction, this.#o.thresholds.high);
    this.#fraction = fraction;
    // Act on where memory is heading, not only where it is: agents can grow by hundreds of MB
    // between two readings, and the kernel's OOM killer does not wait for the next one. Only
    // unpaid growth projects (an agent filling its reservation is already accounted for), and
    // only growth seen in two readings in a row counts: a step is not a trend.
    const growth = this.#previous === null ? { unpaid: 0, over: 0 } : { unpaid: unpaid - this.#previous.unpaid, over: over - this.#previous.over };
    const trend = (g: number, last: number): number => Math.max(0, Math.min(g, last));
    this.#projected = this.#o.predict
      ? Math.max(fraction, system + trend(growth.unpaid, this.#lastGrowth.unpaid) / room, budget + trend(growth.over, this.#lastGrowth.over) * perBudgetByte)
      : fraction;
    this.#lastGrowth = growth;
    this.#previous = { unpaid, over };
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
