/** A pending timer; cancelling one that already fired is a no-op. */
export interface Timer {
  cancel(): void;
}

/**
 * Time as the supervisor and the run loop see it: a monotonic `now()` in milliseconds and
 * one-shot timers. Injected so that a unit test drives every decision that waits on time
 * (sampling, retry backoff) by advancing a fake clock.
 */
export interface Clock {
  now(): number;
  setTimer(fn: () => void, ms: number): Timer;
}

/** The real clock: `performance.now()` and `setTimeout`. Timers keep the process alive, as a retry backoff must. */
export const realClock: Clock = {
  now: () => performance.now(),
  setTimer(fn, ms) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

/**
 * `clock` with its zero moved to now: every time a run reports (events, the report, governor
 * actions) is milliseconds from its start, so the run and the supervisor share one such clock.
 */
export function clockFromNow(clock: Clock): Clock {
  const t0 = clock.now();
  return { now: () => clock.now() - t0, setTimer: (fn, ms) => clock.setTimer(fn, ms) };
}
