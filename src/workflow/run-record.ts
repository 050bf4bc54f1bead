import type { ResolvedConfig } from '../config/resolve.js';
import { shareDatabase, storeFile, type Db } from '../store/db.js';
import { learnedProfiles, type LearnedProfile } from '../store/profiles.js';
import type { RunLease } from '../store/lease.js';
import { RunHistory, type TaskRow } from '../store/runs.js';
import type { Supervised } from '../supervisor/supervised.js';
import type { RunReport } from './report.js';
import type { TaskState } from './task-state.js';

const round = (v: number): number => Math.round(v * 10) / 10;

/**
 * The run as the store keeps it: its row (started, then finished with the report), a row per
 * settled task (written in batches: each sampling tick and at the end), and queue snapshots at
 * emergencies. Without a store (`store: false`) every write is a no-op.
 *
 * The run's lease (the folder's run lock) was taken by executeWorkflow before the run was built:
 * it inserted the run's row, records where each attempt runs, and is released after the run.
 */
export class RunRecord {
  readonly #runId: string;
  readonly #history: RunHistory | null;
  readonly #lease: RunLease | null;
  readonly #unsaved: TaskRow[] = [];

  private constructor(runId: string, history: RunHistory | null, lease: RunLease | null) {
    this.#runId = runId;
    this.#history = history;
    this.#lease = lease;
  }

  /** Opens `<dir>/.guild/guild.db` when `store` is on. */
  static open(config: ResolvedConfig, runId: string, store: boolean, lease: RunLease | null): RunRecord {
    return new RunRecord(runId, store ? new RunHistory(shareDatabase(storeFile(config.dir))) : null, lease);
  }

  /** What the lease found at the start: crashed runs whose leftovers it ended. */
  get notes(): readonly string[] {
    return this.#lease?.notes ?? [];
  }

  /** The open store (the cache's SQLite tier shares it); null without one. */
  get db(): Db | null {
    return this.#history?.db ?? null;
  }

  /** Learned profiles from earlier runs (empty without a store). */
  learned(): Map<string, LearnedProfile> {
    return this.#history ? learnedProfiles(this.#history.db) : new Map();
  }

  /** The run begins: its row (with a lease, the lease inserted it already). */
  started(config: ResolvedConfig, startedAt: number): void {
    if (this.#lease) return;
    this.#history?.startRun({ id: this.#runId, workflow: config.file, name: config.name, started_at: startedAt, budget_bytes: config.budgetBytes });
  }

  /**
   * An attempt started under supervision: the lease records where it runs
   * (`handle.execution.lease`: its cgroups, or its leader's pid and start time).
   */
  attemptStarted(task: TaskState, handle: Supervised<unknown>): void {
    if (this.#lease && handle.pid !== null) this.#lease.recordAttempt(task.id, task.attempts, handle.execution.lease);
  }

  /** A task settled: its row is written with the next flush. */
  settled(s: TaskState): void {
    this.#unsaved.push({
      run_id: this.#runId,
      id: s.id,
      agent: s.type,
      status: s.phase,
      exit_code: s.exitCode,
      signal: s.signal,
      started_ms: s.startedMs,
      ended_ms: s.endedMs,
      duration_ms: s.busyMs,
      peak_rss_bytes: s.peakRss,
      memory_source: s.peakRss === null ? null : s.memorySource,
      attempts: s.attempts,
      error: s.error,
    });
  }

  /** Writes settled tasks in one transaction. */
  flush(): void {
    if (this.#unsaved.length === 0 || !this.#history) return;
    this.#history.recordTasks(this.#unsaved.splice(0));
  }

  /** Writes what is queued, running and finished: readable after an emergency. */
  saveQueueState(atMs: number, reason: string, states: Iterable<TaskState>, running: Iterable<TaskState>): void {
    this.flush();
    if (!this.#history) return;
    const all = [...states];
    const by = (phases: string[]): TaskState[] => all.filter((t) => phases.includes(t.phase));
    const state = {
      running: [...running].map((t) => ({ id: t.id, agent: t.type, priority: t.priority, rss_bytes: t.lastRss, estimate_bytes: t.memoryBytes, paused: t.handle?.paused ?? false })),
      queued: by(['queued', 'retry-wait']).map((t) => ({ id: t.id, agent: t.type, priority: t.priority, estimate_bytes: t.memoryBytes })),
      pending: by(['pending']).map((t) => t.id),
      finished: by(['succeeded', 'failed', 'skipped', 'cancelled']).map((t) => ({ id: t.id, status: t.phase })),
    };
    this.#history.saveQueueState(this.#runId, round(atMs), reason, JSON.stringify(state));
  }

  /** The run ended: its row gets the status and the report (the lease is released after, by executeWorkflow). */
  finished(report: RunReport, endedAt: number): void {
    this.flush();
    this.#history?.finishRun({
      id: this.#runId,
      status: report.interrupted ? 'interrupted' : report.ok ? 'succeeded' : 'failed',
      ended_at: endedAt,
      makespan_ms: report.makespan_ms,
      lower_bound_ms: report.lower_bound_ms,
      peak_rss_bytes: report.peak_rss_bytes,
      report: JSON.stringify(report),
    });
  }

  close(): void {
    this.#history?.db.close();
  }
}

