import type { ResolvedConfig } from '../config/resolve.js';
import type { LayeredCache } from '../cache/layered-cache.js';
import { TaskMemo, type MemoEntry } from '../cache/memo.js';
import { openCache } from '../cache/open.js';
import { GuildError } from '../errors.js';
import type { Db } from '../store/db.js';
import { CACHE_DISABLED_TEXT, type CacheDisabledBy, type RunReport } from './report.js';
import type { TaskState } from './task-state.js';

/** Raises a run alert (the run owns the list and the event). */
export type RaiseAlert = (severity: 'warning' | 'critical', message: string, rule: 'cache', key: string) => void;

/**
 * Task memoization for one run: the cache it uses (the caller's, or the workflow's own opened
 * and closed here), which tasks may be looked up, lookups with restore, and saves.
 */
export class TaskCache {
  readonly #config: ResolvedConfig;
  readonly #given: LayeredCache | undefined;
  readonly #isFunction: (id: string) => boolean;
  #cache: LayeredCache | null = null;
  #owns = false;
  #memo: TaskMemo | null = null;

  constructor(config: ResolvedConfig, given: LayeredCache | undefined, isFunction: (id: string) => boolean) {
    this.#config = config;
    this.#given = given;
    this.#isFunction = isFunction;
  }

  /** The layered cache in use (the governor's caching responses reach it); null without one. */
  get layered(): LayeredCache | null {
    return this.#cache;
  }

  /** Whether memoization is on for this run. */
  get enabled(): boolean {
    return this.#memo !== null;
  }

  /** The caller's cache, or the workflow's own when memoization is on and there is a store (`db`). */
  async open(db: Db | null, alert: RaiseAlert): Promise<void> {
    const cfg = this.#config.cache;
    if (!cfg.enabled) return;
    if (this.#given) this.#cache = this.#given;
    else if (db) {
      try {
        this.#cache = await openCache(cfg, this.#config.dir, { db });
      } catch (e) {
        if (!(e instanceof GuildError && e.code === 'CACHE')) throw e;
        // The shared tier is down: memoize locally rather than refuse to run, and say so.
        alert('warning', `${e.message}; caching in memory and on disk only`, 'cache', 'cache:redis');
        this.#cache = await openCache({ ...cfg, redisUrl: null }, this.#config.dir, { db });
      }
      this.#owns = true;
    } else return;
    this.#memo = new TaskMemo(this.#cache, this.#config.dir);
  }

  /** Closes a cache opened here, flushes the caller's; a failure becomes a warning of the report. */
  async close(report: RunReport): Promise<void> {
    if (!this.#cache) return;
    try {
      if (this.#owns) await this.#cache.close();
      else await this.#cache.flush();
    } catch (e) {
      report.warnings.push(`the cache could not be written at the end of the run: ${(e as Error).message}`);
    }
  }

  disabledBy(): CacheDisabledBy | null {
    return this.#memo ? null : (this.#config.cache.disabledBy ?? 'no store');
  }

  /** Why a task will not be looked up in (or stored to) the cache; null when it will. */
  uncacheable(s: TaskState, states: ReadonlyMap<string, TaskState>): string | null {
    if (!this.#memo) return `caching off (${CACHE_DISABLED_TEXT[this.disabledBy()!]})`;
    if (!s.spec.cache) return 'cache: false';
    if (this.#isFunction(s.id)) return 'an in-process function';
    if (s.spec.inputs.length === 0) return 'no inputs declared';
    for (const id of s.spec.needs) if (states.get(id)!.cache.fingerprint === null) return `needs '${id}', which is not cached`;
    return null;
  }

  /**
   * Fingerprints a task and looks it up; a hit is restored (outputs and log). Undefined on a miss
   * or any failure (the reason is kept on the task). While it awaits, the task may be cancelled:
   * it then stops at the next step, and the caller checks `s.phase` again.
   */
  async lookup(s: TaskState, states: ReadonlyMap<string, TaskState>, logFile: string | null): Promise<MemoEntry | undefined> {
    const memo = this.#memo!;
    try {
      const needs = new Map(s.spec.needs.map((id) => [id, states.get(id)!.cache.fingerprint!]));
      const fp = await memo.fingerprint(s.spec, s.profile, needs);
      s.cache.fingerprint = fp.key;
      if (s.phase !== 'hashing') return undefined;
      const entry = await memo.lookup(fp.key);
      if (entry && s.phase === 'hashing') await memo.restore(entry, logFile);
      return entry;
    } catch (e) {
      // Unreadable inputs or a failed restore: the task runs, and the summary says why.
      s.cache.reason = `cache: ${(e as Error).message}`;
      return undefined;
    }
  }

  /** Stores a fresh result (outputs as the task left them); a failure is kept on the task and alerted. */
  async save(s: TaskState, logFile: string | null, durationMs: number, alert: RaiseAlert): Promise<void> {
    try {
      await this.#memo!.save(s.cache.fingerprint!, s.spec, logFile, durationMs, s.peakRss);
    } catch (e) {
      s.cache.reason = `not stored: ${(e as Error).message}`;
      alert('warning', `${s.id}: result not cached: ${(e as Error).message}`, 'cache', 'cache:store');
    }
  }
}
