import type { ResolvedConfig } from '../config/resolve.js';
import type { Claim, LayeredCache } from '../cache/layered-cache.js';
import { TASKS_NAMESPACE, TaskMemo, type MemoEntry } from '../cache/memo.js';
import { GuildError } from '../errors.js';
import type { Db } from '../store/db.js';
import { CACHE_DISABLED_TEXT, type CacheDisabledBy, type RunReport } from './report.js';
import { round } from './run-report.js';
import type { TaskState } from './task-state.js';

/** A path refused by the cache: a link out of the project, or an entry that would write outside it. */
const unsafe = (e: unknown): boolean => e instanceof GuildError && e.code === 'UNSAFE_PATH';

/** How often a run waiting on another process's computation of a task looks for its result. */
const CLAIM_POLL_MS = 200;

/** Raises a run alert (the run owns the list and the event). */
export type RaiseAlert = (severity: 'warning' | 'critical', message: string, rule: 'cache', key: string) => void;

/** What memoization hands back to the run loop. */
export interface CacheLoop {
  /** The task must run: queue it. */
  enqueue(s: TaskState): void;
  /** A hit was restored (`s.cache`, `startedMs`, `endedMs` are set): it is done as `cached`. */
  served(s: TaskState, storedDurationMs: number): void;
  /** A fresh result is stored: the task is done as `succeeded`, its dependents may start. */
  stored(s: TaskState): void;
}

/** What a TaskCache needs from its run. */
export interface TaskCacheContext {
  config: ResolvedConfig;
  /** The caller's cache; none: the workflow's own, opened here. */
  given: LayeredCache | undefined;
  isFunction: (id: string) => boolean;
  states: ReadonlyMap<string, TaskState>;
  logFile: (s: TaskState) => string | null;
  now: () => number;
  alert: RaiseAlert;
  loop: CacheLoop;
  /**
   * The run's hold on the folder (its lease); null without a store. Results are restored and
   * stored only under it: without one, two runs of a folder could mix each other's outputs.
   */
  lock: { holds(): boolean } | null;
}

/**
 * Task memoization for one run: the cache it uses (the caller's, or the workflow's own opened
 * and closed here), which tasks may be looked up, lookups with restore, and saves.
 */
export class TaskCache {
  readonly #config: ResolvedConfig;
  readonly #c: TaskCacheContext;
  #cache: LayeredCache | null = null;
  #owns = false;
  #memo: TaskMemo | null = null;
  /**
   * Memoization is on, but no task of the workflow could be looked up (none declares inputs, or
   * each has `cache: false` or is a function) and no MCP gateway shares the cache: the tiers are
   * not opened and their code is not loaded (with the codecs and lru-cache loaded at first use,
   * 0.6 MB of a waiting run's RSS: bench/startup.ts). The report names the tiers the workflow
   * configures, as if they had been opened.
   */
  #unopened: readonly string[] | null = null;
  /** Fingerprints this run claimed (single flight across processes), by task id. */
  readonly #claims = new Map<string, Claim>();

  constructor(context: TaskCacheContext) {
    this.#c = context;
    this.#config = context.config;
  }

  /** The layered cache in use (the governor's caching responses reach it); null without one. */
  get layered(): LayeredCache | null {
    return this.#cache;
  }

  /** Whether memoization is on for this run. */
  get enabled(): boolean {
    return this.#memo !== null || this.#unopened !== null;
  }

  /** The tiers in use (or that would be, when nothing could use them). */
  get tiers(): readonly string[] {
    return this.#cache?.tiers.map((t) => t.name) ?? this.#unopened ?? [];
  }

  /** The caller's cache, or the workflow's own when memoization is on and there is a store (`db`). */
  async open(db: Db | null): Promise<void> {
    const cfg = this.#config.cache;
    if (!cfg.enabled) return;
    if (this.#c.given) this.#cache = this.#c.given;
    else if (db) {
      if (this.#c.lock && !this.#config.mcp && !this.#anyCacheable()) {
        this.#unopened = ['memory', 'sqlite', ...(cfg.redisUrl !== null ? ['redis'] : [])];
        return;
      }
      const { openCache } = await import('../cache/open.js');
      try {
        this.#cache = await openCache(cfg, this.#config.dir, { db });
      } catch (e) {
        if (!(e instanceof GuildError && e.code === 'CACHE')) throw e;
        // The shared tier is down: memoize locally rather than refuse to run, and say so.
        this.#c.alert('warning', `${e.message}; caching in memory and on disk only`, 'cache', 'cache:redis');
        this.#cache = await openCache({ ...cfg, redisUrl: null }, this.#config.dir, { db });
      }
      this.#owns = true;
    } else return;
    // No run lock (no store): the cache still answers the governor, but nothing is memoized.
    if (!this.#c.lock) return;
    this.#memo = new TaskMemo(this.#cache, this.#config.dir);
  }

  /** Closes a cache opened here, flushes the caller's; a failure becomes a warning of the report. */
  async close(report: RunReport): Promise<void> {
    if (!this.#cache) return;
    await Promise.all([...this.#claims.values()].map((c) => c.release()));
    this.#claims.clear();
    try {
      if (this.#owns) await this.#cache.close();
      else await this.#cache.flush();
    } catch (e) {
      report.warnings.push(`the cache could not be written at the end of the run: ${(e as Error).message}`);
    }
  }

  disabledBy(): CacheDisabledBy | null {
    return this.#memo || this.#unopened ? null : (this.#config.cache.disabledBy ?? 'no store');
  }

  /** Whether any task could be looked up: cache on, not a function, inputs declared. */
  #anyCacheable(): boolean {
    for (const [id, s] of this.#c.states) if (s.spec.cache && !this.#c.isFunction(id) && s.spec.inputs.length > 0) return true;
    return false;
  }

  /** Why a task will not be looked up in (or stored to) the cache; null when it will. */
  uncacheable(s: TaskState): string | null {
    if (!this.#memo && !this.#unopened) return `caching off (${CACHE_DISABLED_TEXT[this.disabledBy()!]})`;
    if (!s.spec.cache) return 'cache: false';
    if (this.#c.isFunction(s.id)) return 'an in-process function';
    if (s.spec.inputs.length === 0) return 'no inputs declared';
    for (const id of s.spec.needs) if (this.#c.states.get(id)!.cache.fingerprint === null) return `needs '${id}', which is not cached`;
    return null;
  }

  /** A task whose dependencies are done: served from the cache when it can be, queued otherwise. */
  ready(s: TaskState, stopping: boolean): void {
    const reason = stopping ? null : this.uncacheable(s);
    if (stopping || reason !== null) {
      s.cache.reason = reason;
      this.#c.loop.enqueue(s);
      return;
    }
    s.phase = 'hashing';
    void this.#serve(s);
  }

  async #serve(s: TaskState): Promise<void> {
    const t0 = this.#c.now();
    let entry = await this.#lookup(s, this.#c.logFile(s));
    if (entry === undefined && s.cache.fingerprint !== null && s.phase === 'hashing') entry = await this.#claimOrWait(s);
    if (s.phase !== 'hashing') return; // cancelled while hashing (a claim is released as it settles)
    if (entry === undefined) {
      if (s.cache.fingerprint !== null) s.cache.status = 'miss';
      this.#c.loop.enqueue(s);
      return;
    }
    const now = this.#c.now();
    s.cache.status = 'hit';
    s.cache.serve_ms = round(now - t0)!;
    s.cache.saved_ms = round(Math.max(0, entry.durationMs - (now - t0)))!;
    s.cache.saved_metrics = { ...entry.metrics };
    s.startedMs = t0;
    s.endedMs = now;
    this.#c.loop.served(s, entry.durationMs);
  }

  /**
   * Single flight across the processes sharing the cache's Redis tier (two submitters of one
   * cluster, two machines): the first to miss claims the fingerprint and runs the task, holding
   * the claim until the task settles; the others wait, then restore its stored result. Undefined
   * when this run holds the claim (or the claim could not be asked for): the task runs here.
   */
  async #claimOrWait(s: TaskState): Promise<MemoEntry | undefined> {
    const fp = s.cache.fingerprint!;
    for (;;) {
      let claim: Claim | null;
      try {
        claim = await this.#cache!.claim(TASKS_NAMESPACE, fp);
      } catch {
        return undefined; // the shared tier is unreachable: compute here rather than wait on it
      }
      if (claim !== null) {
        if (s.phase === 'hashing') this.#claims.set(s.id, claim);
        else void claim.release();
        return undefined;
      }
      await new Promise((r) => setTimeout(r, CLAIM_POLL_MS));
      if (s.phase !== 'hashing') return undefined;
      try {
        const entry = await this.#memo!.lookup(fp);
        if (entry !== undefined && s.phase === 'hashing') {
          await this.#memo!.restore(entry, this.#c.logFile(s));
          return entry;
        }
      } catch (e) {
        s.cache.reason = `cache: ${(e as Error).message}`;
        return undefined;
      }
    }
  }

  /** The task is settled, whatever its status: its claim (if this run held one) is released, its result stored by now. */
  settled(s: TaskState): void {
    const claim = this.#claims.get(s.id);
    if (claim === undefined) return;
    this.#claims.delete(s.id);
    void claim.release();
  }

  /**
   * Fingerprints a task and looks it up; a hit is restored (outputs and log). Undefined on a miss
   * or any failure (the reason is kept on the task). While it awaits, the task may be cancelled:
   * it then stops at the next step, and the caller checks `s.phase` again.
   */
  async #lookup(s: TaskState, logFile: string | null): Promise<MemoEntry | undefined> {
    const memo = this.#memo!;
    try {
      const needs = new Map(s.spec.needs.map((id) => [id, this.#c.states.get(id)!.cache.fingerprint!]));
      const fp = await memo.fingerprint(s.spec, s.profile, needs);
      s.cache.fingerprint = fp.key;
      if (s.phase !== 'hashing') return undefined;
      const entry = await memo.lookup(fp.key);
      if (entry && s.phase === 'hashing') await memo.restore(entry, logFile);
      return entry;
    } catch (e) {
      // Unreadable inputs or a failed restore: the task runs, and the summary says why.
      s.cache.reason = `cache: ${(e as Error).message}`;
      // A stored result that would write outside the project (a poisoned shared entry) is worth an alert.
      if (unsafe(e)) this.#c.alert('warning', (e as Error).message, 'cache', 'cache:restore');
      return undefined;
    }
  }

  /**
   * Stores a fresh result (outputs as the task left them) before its dependents may touch them;
   * a failure is kept on the task and alerted. The task is done either way.
   */
  async save(s: TaskState, durationMs: number): Promise<void> {
    if (!this.#c.lock!.holds()) {
      // Another start took this run over as dead: what the task left may be mixed with its work.
      s.cache.reason = "not stored: this run no longer holds the folder's run lock";
      this.#c.alert('warning', `${s.id}: result not cached: this run no longer holds the folder's run lock`, 'cache', 'cache:lock');
      this.#c.loop.stored(s);
      return;
    }
    try {
      await this.#memo!.save(s.cache.fingerprint!, s.spec, this.#c.logFile(s), durationMs, s.peakRss, s.metrics);
    } catch (e) {
      // An output refused (a link out of the project) says the task, the path and "not stored" itself.
      const message = (e as Error).message;
      s.cache.reason = unsafe(e) ? message : `not stored: ${message}`;
      this.#c.alert('warning', unsafe(e) ? message : `${s.id}: result not cached: ${message}`, 'cache', 'cache:store');
    }
    this.#c.loop.stored(s);
  }
}
