import { monitorEventLoopDelay, PerformanceObserver, type IntervalHistogram } from 'node:perf_hooks';

/** Guild's own health over a run: its event loop, its garbage collector. */
export interface SelfHealth {
  event_loop_delay_p50_ms: number;
  event_loop_delay_p99_ms: number;
  event_loop_delay_max_ms: number;
  gc_count: number;
  gc_pause_total_ms: number;
  gc_pause_max_ms: number;
}

/**
 * Watches Guild's event loop delay (perf_hooks histogram, 10 ms resolution) and GC pauses
 * (PerformanceObserver 'gc' entries). Both are cheap: the histogram samples on a libuv timer,
 * GC entries arrive after each collection.
 */
export class SelfMonitor {
  readonly #loop: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  readonly #gc: PerformanceObserver;
  #gcCount = 0;
  #gcTotal = 0;
  #gcMax = 0;

  constructor() {
    this.#gc = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        this.#gcCount++;
        this.#gcTotal += e.duration;
        if (e.duration > this.#gcMax) this.#gcMax = e.duration;
      }
    });
  }

  start(): void {
    this.#loop.enable();
    this.#gc.observe({ entryTypes: ['gc'] });
  }

  stop(): SelfHealth {
    this.#loop.disable();
    this.#gc.disconnect();
    return this.read();
  }

  /** The figures so far (the monitor keeps going). */
  read(): SelfHealth {
    const ms = (ns: number): number => Math.round(ns / 1e4) / 100;
    const n = this.#loop.count > 0;
    return {
      event_loop_delay_p50_ms: n ? ms(this.#loop.percentile(50)) : 0,
      event_loop_delay_p99_ms: n ? ms(this.#loop.percentile(99)) : 0,
      event_loop_delay_max_ms: n ? ms(this.#loop.max) : 0,
      gc_count: this.#gcCount,
      gc_pause_total_ms: Math.round(this.#gcTotal * 100) / 100,
      gc_pause_max_ms: Math.round(this.#gcMax * 100) / 100,
    };
  }
}
