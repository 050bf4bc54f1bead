import type { PressureLevel } from '../governor/levels.js';
import type { Measurement } from '../supervisor/supervisor.js';
import type { SystemProbe } from '../system/probe.js';
import type { SelfHealth, SelfMonitor } from '../telemetry/self-monitor.js';
import type { RunEvent, RunningTaskView } from './events.js';
import type { TaskState } from './task-state.js';

/** What the run's queue and governor say at a sampling instant (read after the governor responded). */
export interface QueueView {
  reservedBytes: number;
  budgetBytes: number;
  queued: number;
  done: number;
  total: number;
  blocked: { id: string; reason: string; waitedMs: number } | null;
  level: PressureLevel;
  denied: { memory: number; cpu: number };
  cacheRequests: Extract<RunEvent, { type: 'sample' }>['cacheRequests'];
}

/**
 * The run's sampling instants added up: how many, the peaks (agents and Guild itself), and the
 * `sample` event. Running tasks are viewed before the governor acts on the instant (the event
 * shows what was measured), the queue and the level after.
 *
 * Nothing here throws into the sampling timer: a read that fails (EMFILE when the process is out
 * of descriptors, a probe that throws) makes the instant a failed sample, counted in
 * `failedSamples`, whose figures are the last good ones (or null); the run goes on.
 */
export class RunGauges {
  samples = 0;
  /** Instants at which some read failed (this one's or the probe's since the previous instant). */
  failedSamples = 0;
  /** Highest Σ of running trees at one instant. */
  peakTotal = 0;
  guildPeak = 0;
  #guildRss = 0;
  #available = 0;
  #views: RunningTaskView[] = [];
  #paused = 0;
  #health: SelfHealth | null = null;
  /** A read of this instant failed. */
  #failed = false;
  /** The probe's failed reads as of the previous instant. */
  #probeFailures: number;
  readonly #probe: SystemProbe;
  readonly #self: SelfMonitor;

  constructor(probe: SystemProbe, self: SelfMonitor) {
    this.#probe = probe;
    this.#self = self;
    this.#probeFailures = probe.failedReads ?? 0;
  }

  /** Every running tree and the machine were measured; the governor reads next. */
  measured(m: Measurement, running: Iterable<TaskState>): void {
    const views: RunningTaskView[] = [];
    let paused = 0;
    for (const s of running) {
      if (s.handle?.paused) paused++;
      const worker = s.handle?.execution.worker;
      views.push({ id: s.id, agent: s.type, pid: s.handle?.pid ?? null, rssBytes: s.lastRss, elapsedMs: m.now - s.attemptStartedAt, attempt: s.attempts, ...(worker != null && { worker }) });
    }
    this.#views = views;
    this.#paused = paused;
    this.samples++;
    if (m.totalBytes > this.peakTotal) this.peakTotal = m.totalBytes;
    this.#failed = false;
    this.#guildRss = this.#read(() => this.#probe.selfRss(), this.#guildRss);
    if (this.#guildRss > this.guildPeak) this.guildPeak = this.#guildRss;
    this.#available = m.memory.availableBytes;
  }

  /** The `sample` event of the instant. */
  event(m: Measurement, q: QueueView): RunEvent {
    const cpu = this.#read(() => this.#probe.cpuUsage(), null);
    const health = (this.#health = this.#read(() => this.#self.read(), this.#health));
    const probeFailures = this.#probe.failedReads ?? 0;
    if (this.#failed || probeFailures > this.#probeFailures) this.failedSamples++;
    this.#probeFailures = probeFailures;
    return {
      type: 'sample',
      t: m.now,
      totalRssBytes: m.totalBytes,
      reservedBytes: q.reservedBytes,
      budgetBytes: q.budgetBytes,
      availableBytes: this.#available,
      queued: q.queued,
      running: this.#views,
      done: q.done,
      total: q.total,
      blocked: q.blocked,
      level: q.level,
      paused: this.#paused,
      usedBytes: m.memory.usedBytes,
      limitBytes: m.memory.limitBytes,
      cpu,
      guildRssBytes: this.#guildRss,
      guildHealth: health ?? EMPTY_HEALTH,
      denied: q.denied,
      cacheRequests: q.cacheRequests,
    };
  }

  /** One read of the instant; when it throws, the fallback, and the instant has failed. */
  #read<T>(read: () => T, fallback: T): T {
    try {
      return read();
    } catch {
      this.#failed = true;
      return fallback;
    }
  }
}

/** Guild's own health before anything could be read. */
const EMPTY_HEALTH: SelfHealth = {
  event_loop_delay_p50_ms: 0,
  event_loop_delay_p99_ms: 0,
  event_loop_delay_max_ms: 0,
  gc_count: 0,
  gc_pause_total_ms: 0,
  gc_pause_max_ms: 0,
};
