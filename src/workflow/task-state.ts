import type { MemorySource } from '../executors/executor.js';
import type { AgentProfile, TaskSpec } from '../config/resolve.js';
import type { SchedulerJob } from '../scheduler/scheduler.js';
import type { Timer } from '../supervisor/clock.js';
import type { Supervised } from '../supervisor/supervised.js';
import type { Estimate } from '../store/profiles.js';
import type { TaskCacheReport, TaskKill, TaskStatus } from './report.js';

/** `hashing`: fingerprinting inputs and looking up the cache; `saving`: storing a result before dependents start. */
export type Phase = 'pending' | 'hashing' | 'queued' | 'running' | 'retry-wait' | 'saving' | TaskStatus;

/** Phases in which a task has not started its next attempt yet: its estimate may still be raised. */
export const WAITING_PHASES: readonly Phase[] = ['pending', 'queued', 'retry-wait'];

/**
 * One task of a run, across its attempts. The scheduler's fields (memoryBytes: the estimate the
 * next admission reserves) are inherited; what the running process does lives in `handle`, owned
 * by the supervisor.
 */
export interface TaskState extends SchedulerJob {
  readonly spec: TaskSpec;
  readonly profile: AgentProfile;
  phase: Phase;
  attempts: number;
  /** Dependencies not yet done. */
  waitingOn: number;
  firstQueuedAt: number;
  exitCode: number | null;
  signal: string | null;
  startedMs: number | null;
  endedMs: number | null;
  busyMs: number;
  /** Highest memory measured over all attempts. */
  peakRss: number | null;
  /** How `peakRss` was measured (learned profiles never mix sources). */
  memorySource: MemorySource | null;
  error: string | null;
  /** The current attempt under supervision; null when not running. */
  handle: Supervised<unknown> | null;
  attemptStartedAt: number;
  /** Last measurement of the current attempt. */
  lastRss: number | null;
  /** Highest measurement of the current attempt. */
  attemptPeak: number | null;
  retryTimer: Timer | null;
  readonly dependents: TaskState[];
  /** Paused time of finished attempts (the running one's is on its handle). */
  pausedMs: number;
  kills: TaskKill[];
  /** Attempts ended by a pressure kill: requeued, and not counted against `retries`. */
  requeues: number;
  /** `cache.fingerprint`: null until fingerprinted, and for tasks that are not cacheable. */
  cache: TaskCacheReport;
  /** What the task reported spending (GUILD_METRICS, `usage:`), summed over its attempts. */
  metrics: Record<string, number>;
  /** Lines of its metrics that could not be read. */
  metricsMalformed: number;
  /** The distributed worker that ran its last attempt; null when it ran here (or never ran). */
  worker: string | null;
}

/** A task as it stands before anything happened to it. */
export function newTaskState(spec: TaskSpec, profile: AgentProfile, estimate: Estimate): TaskState {
  return {
    id: spec.id,
    type: spec.agent,
    priority: spec.priority,
    memoryBytes: estimate.memoryBytes,
    cpu: profile.cpu,
    expectedDurationMs: estimate.durationMs ?? spec.timeoutMs,
    key: 0,
    seq: 0,
    spec,
    profile,
    phase: 'pending',
    attempts: 0,
    waitingOn: spec.needs.length,
    firstQueuedAt: -1,
    exitCode: null,
    signal: null,
    startedMs: null,
    endedMs: null,
    busyMs: 0,
    peakRss: null,
    memorySource: null,
    error: null,
    handle: null,
    attemptStartedAt: 0,
    lastRss: null,
    attemptPeak: null,
    retryTimer: null,
    dependents: [],
    pausedMs: 0,
    kills: [],
    requeues: 0,
    cache: { status: 'off', reason: null, fingerprint: null, saved_ms: 0, serve_ms: null, saved_metrics: {} },
    metrics: {},
    metricsMalformed: 0,
    worker: null,
  };
}
