import type { GovernorAction } from '../governor/governor.js';
import type { PressureLevel } from '../governor/levels.js';
import type { CacheRequests } from '../cache/layered-cache.js';
import type { KillReason } from '../executors/executor.js';
import type { SelfHealth } from '../telemetry/self-monitor.js';
import type { AlertRule } from '../telemetry/state.js';
import type { RunReport, TaskStatus } from './report.js';

/** A running task at one sampling instant. */
export interface RunningTaskView {
  id: string;
  agent: string;
  pid: number | null;
  rssBytes: number | null;
  elapsedMs: number;
  attempt: number;
  /** Distributed mode: the worker running it (absent while it waits for one, and for local tasks). */
  worker?: string;
}

/** Everything a run reports while it goes. Times are ms from the run's start. */
export type RunEvent =
  | { type: 'run-start'; runId: string; t: number; tasks: number; budgetBytes: number; logDir: string | null; instructionsFile: string | null; warnings: readonly string[] }
  | { type: 'task-queued'; t: number; id: string }
  | { type: 'task-start'; t: number; id: string; agent: string; attempt: number; pid: number | null }
  | {
      type: 'task-end';
      t: number;
      id: string;
      agent: string;
      attempt: number;
      /** The task's state after this attempt: a final status, 'retrying', or 'requeued' after a pressure kill. */
      status: TaskStatus | 'retrying' | 'requeued';
      exitCode: number | null;
      signal: string | null;
      durationMs: number;
      peakRssBytes: number | null;
      error: string | null;
      /** Why Guild stopped the attempt (timeout, pressure, limit, cancelled); null when it ended by itself. */
      killedBy: KillReason | null;
      /** Distributed mode: the worker that ran this attempt; absent when it ran here. */
      worker?: string;
      /** A cached task: how long the stored run took. */
      savedMs?: number;
      /** What this attempt reported spending (the task's totals grew by this); for a cached task, nothing. */
      metrics?: Record<string, number>;
      /** A cached task: what the stored run reported spending, not spent again. */
      savedMetrics?: Record<string, number>;
    }
  /** A task that ended without an attempt ending: skipped after a failed dependency, or cancelled while it waited. */
  | { type: 'task-settled'; t: number; id: string; agent: string; status: TaskStatus; error: string }
  | {
      type: 'sample';
      t: number;
      /** Measured: the sum of every running tree's RSS. */
      totalRssBytes: number;
      /** What admission counts: Σ max(expected, measured) over running tasks. */
      reservedBytes: number;
      budgetBytes: number;
      availableBytes: number;
      queued: number;
      running: RunningTaskView[];
      done: number;
      total: number;
      blocked: { id: string; reason: string; waitedMs: number } | null;
      level: PressureLevel;
      paused: number;
      /** The machine's (cgroup's) used memory and effective limit. */
      usedBytes: number;
      limitBytes: number;
      /** Machine CPU use since the previous sample (0..1); null when unreadable. */
      cpu: number | null;
      guildRssBytes: number;
      /** Guild's event loop and GC so far. */
      guildHealth: SelfHealth;
      /** Admissions denied so far, by what was short. */
      denied: { memory: number; cpu: number };
      /** Cache lookups so far per namespace and tier; empty without a cache. */
      cacheRequests: CacheRequests[];
    }
  | { type: 'governor'; t: number; action: GovernorAction }
  /** `key` de-duplicates: telemetry sends one alert per key and cooldown, counting repeats. */
  | { type: 'alert'; t: number; severity: 'warning' | 'critical'; message: string; rule: AlertRule; key: string }
  | { type: 'run-stopping'; t: number; reason: 'failure' | 'interrupted'; detail: string }
  | { type: 'run-end'; t: number; report: RunReport };
