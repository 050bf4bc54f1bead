import { DEFAULTS } from '../config/defaults.js';
import { GuildError } from '../errors.js';
// Type-only: the supervisor sits above the scheduler, but its clock's shape is what every caller
// already holds (the gateway passes the supervisor's clock), so the pool names it rather than a copy.
import type { Clock } from '../supervisor/clock.js';

/** Why the pool stopped an instance (the `stop` hook gets it; `stats().stops` counts it). */
export type StopReason =
  /** No call for `idleTimeoutMs`, and the group is above `min`. */
  | 'idle'
  /** Recycled (`recycle()`): drained, or its drain timed out. */
  | 'recycle'
  /** Reported dead (`markDead()`); `stop` must tolerate an instance that is already gone. */
  | 'dead'
  /** Memory pressure: `stopIdle()`, `shrinkTo()` once drained, `evict()`. */
  | 'pressure'
  /** `close()` or `closeKey()`, or a start that finished after either. */
  | 'closed';

export const STOP_REASONS: readonly StopReason[] = ['idle', 'recycle', 'dead', 'pressure', 'closed'];

/** What the pool starts for: the first instance of a call, filling up to `min`, or a scale-up. */
export type StartKind = 'demand' | 'min' | 'scale-up';

/** How one key's group of instances behaves. */
export interface GroupOptions {
  /** Instances kept once the key has had one; idle never stops below it (`stopIdle()` does). @default 1 */
  min: number;
  /** Instances that take calls at once (draining ones are not counted). @default 5 */
  max: number;
  /** Calls in flight per instance; null = unbounded. @default null */
  concurrency: number | null;
  /** An instance with no call for this long is stopped, down to `min` (Infinity = never). @default 60000 */
  idleTimeoutMs: number;
  /** Scale up when more than this many calls wait on the busiest instance. @default 3 */
  scaleUpWaiting: number;
  /** A call waiting this long for an instance that admission will not start fails. @default 30000 */
  admissionWaitMs: number;
  /** A recycled instance still busy after this long is stopped anyway. @default 60000 */
  drainTimeoutMs: number;
}

/**
 * The seed's agent pool (DESIGN.md: min 1, max 5, scale up when more than 3 wait, stop after 60 s
 * idle) and the 30 s admission wait. The drain bound is 60 s, the MCP SDK's default request
 * timeout, so a recycle never cuts a call the backend itself would still have answered.
 */
export const POOL_DEFAULTS: Readonly<GroupOptions> = Object.freeze({
  min: DEFAULTS.mcp.instances.min,
  max: DEFAULTS.mcp.instances.max,
  concurrency: null,
  idleTimeoutMs: DEFAULTS.mcp.idleTimeoutMs,
  scaleUpWaiting: DEFAULTS.mcp.scaleUpWaiting,
  admissionWaitMs: DEFAULTS.mcp.admissionWaitMs,
  drainTimeoutMs: DEFAULTS.mcp.drainTimeoutMs,
});

/** The pool's options: the hooks it is driven through, and the groups' defaults. */
export interface ServicePoolOptions<I> extends Partial<GroupOptions> {
  /** Start one instance for `key`. May reject; see `ServicePool` for what the waiting calls get. */
  start(key: string): Promise<I>;
  /** Stop an instance the pool is done with. Errors are counted (`stopFailures`), never thrown. */
  stop(instance: I, reason: StopReason): void | Promise<void>;
  /** Per-key overrides of the defaults above, asked once when the key is first seen. @default () => ({}) */
  group?(key: string): Partial<GroupOptions>;
  /**
   * May an instance start now? Null if so, else why not: that text is what a call still waiting
   * after `admissionWaitMs` fails with, so it should name the budget. Asked before every start.
   * @default () => null
   */
  admit?(key: string, kind: StartKind): string | null;
  /**
   * May the group grow beyond what calls strictly need (scale-up, refilling `min`)? The governor's
   * moderate level and above say no; the first instance of a call is never refused here.
   * @default () => true
   */
  canScaleUp?(key: string): boolean;
  /** Bytes an instance holds (its tree's RSS), for `largest()` / `largestIdle()`. @default () => 0 */
  memoryOf?(instance: I): number;
  /** @default performance.now and setTimeout */
  clock?: Clock;
  /** While admission refuses a start that calls need, ask again this often. @default 1000 */
  admissionRetryMs?: number;
}

/** A call's hold on an instance. `release()` when the call ends (twice is harmless). */
export interface Lease<I> {
  readonly key: string;
  readonly instance: I;
  release(): void;
}

/** One instance as `members()` reports it. */
export interface PoolMember<I> {
  key: string;
  instance: I;
  state: 'ready' | 'draining';
  inFlight: number;
  /** Calls it has taken since it started. */
  calls: number;
  memoryBytes: number;
}

/** One key's counters. */
export interface PoolGroupStats {
  key: string;
  /** Instances taking calls. */
  instances: number;
  starting: number;
  draining: number;
  /** Calls in flight, on draining instances too. */
  inFlight: number;
  /** Calls queued for an instance. */
  waiting: number;
  starts: number;
  startFailures: number;
  stops: Record<StopReason, number>;
  /** `stop` hooks that threw or rejected. */
  stopFailures: number;
  /** Recycles by the `why` given to `recycle()` (e.g. `limit`, `pressure`). */
  recycles: Record<string, number>;
  /** Recycles whose calls had not finished within `drainTimeoutMs`. */
  drainTimeouts: number;
  /** Calls failed after `admissionWaitMs` because admission would not start an instance. */
  admissionTimeouts: number;
  /** Why admission refuses the start this group wants, while it does; else null. */
  admissionDenied: string | null;
}

/**
 * A call waited `admissionWaitMs` for an instance that admission would not start. The message
 * carries admission's own reason (which names the budget). Code `UNAVAILABLE`: the service is
 * there, it cannot be given memory now; a later call may succeed.
 */
export class AdmissionTimeoutError extends GuildError {
  readonly key: string;
  readonly reason: string;
  constructor(key: string, waitedMs: number, reason: string) {
    super('UNAVAILABLE', `${key}: no instance could start within ${Math.round(waitedMs / 1000)} s: ${reason}`);
    this.key = key;
    this.reason = reason;
  }
}

function expect(ok: boolean, what: string, got: unknown): void {
  if (!ok) throw new GuildError('INVALID_OPTION', `service pool: expected ${what}, got ${String(got)}`);
}

const isCount = (v: unknown, from: number): boolean => typeof v === 'number' && Number.isInteger(v) && v >= from;
const isMs = (v: unknown): boolean => typeof v === 'number' && v >= 0 && !Number.isNaN(v);

/** Defaults merged once, then checked: "Expected X, got Y". */
export function resolveGroup(base: Partial<GroupOptions>, over: Partial<GroupOptions>, key: string): GroupOptions {
  const defined = <T extends object>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
  const g: GroupOptions = { ...POOL_DEFAULTS, ...defined(base), ...defined(over) };
  const at = key === '' ? '' : ` for ${key}`;
  expect(isCount(g.min, 0), `min${at} to be an integer >= 0`, g.min);
  expect(isCount(g.max, 1) && g.max >= g.min, `max${at} to be an integer >= 1 and >= min (${g.min})`, g.max);
  expect(g.concurrency === null || isCount(g.concurrency, 1), `concurrency${at} to be null or an integer >= 1`, g.concurrency);
  expect(isCount(g.scaleUpWaiting, 0), `scaleUpWaiting${at} to be an integer >= 0`, g.scaleUpWaiting);
  expect(isMs(g.idleTimeoutMs), `idleTimeoutMs${at} to be a number of ms >= 0 (Infinity: never)`, g.idleTimeoutMs);
  expect(isMs(g.admissionWaitMs), `admissionWaitMs${at} to be a number of ms >= 0`, g.admissionWaitMs);
  expect(isMs(g.drainTimeoutMs), `drainTimeoutMs${at} to be a number of ms >= 0`, g.drainTimeoutMs);
  return g;
}

export function checkRetry(ms: number): number {
  expect(isMs(ms) && ms > 0 && Number.isFinite(ms), 'admissionRetryMs to be a finite number of ms > 0', ms);
  return ms;
}
