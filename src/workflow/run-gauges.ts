import type { PressureLevel } from '../governor/levels.js';
import type { Measurement } from '../supervisor/supervisor.js';
import type { SystemProbe } from '../system/probe.js';
import type { SelfMonitor } from '../telemetry/self-monitor.js';
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
 */
export class RunGauges {
  samples = 0;
  /** Highest Σ of running trees at one instant. */
  peakTotal = 0;
  guildPeak = 0;
  #guildRss = 0;
  #available = 0;
  #views: RunningTaskView[] = [];
  #paused = 0;
  readonly #probe: SystemProbe;
  readonly #self: SelfMonitor;

  constructor(probe: SystemProbe, self: SelfMonitor) {
    this.#probe = probe;
    this.#self = self;
  }

  /** Every running tree and the machine were measured; the governor reads next. */
  measured(m: Measurement, running: Iterable<TaskState>): void {
    const views: RunningTaskView[] = [];
    let paused = 0;
    for (const s of running) {
      if (s.handle?.paused) paused++;
      views.push({ id: s.id, agent: s.type, pid: s.handle?.pid ?? null, rssBytes: s.lastRss, elapsedMs: m.now - s.attemptStartedAt, attempt: s.attempts });
    }
    this.#views = views;
    this.#paused = paused;
    this.samples++;
    if (m.totalBytes > this.peakTotal) this.peakTotal = m.totalBytes;
    this.#guildRss = this.#probe.selfRss();
    if (this.#guildRss > this.guildPeak) this.guildPeak = this.#guildRss;
    this.#available = m.memory.availableBytes;
  }

  /** The `sample` event of the instant. */
  event(m: Measurement, q: QueueView): RunEvent {
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
      cpu: this.#probe.cpuUsage(),
      guildRssBytes: this.#guildRss,
      guildHealth: this.#self.read(),
      denied: q.denied,
      cacheRequests: q.cacheRequests,
    };
  }
}
