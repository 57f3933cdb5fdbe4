/**
 * Timers as an injectable edge, beside the clock (core/clock.ts): code that waits for time to
 * pass (the watcher's settle window, its incomplete-bundle timeout, its scans and lease
 * heartbeats) schedules through a `Timers`, so a test can hand it timers that fire only when
 * the test moves time on, and a check that depends on elapsed time no longer races the machine.
 */

/** Cancels a scheduled callback; safe to call twice, or after the callback ran. */
export type CancelTimer = () => void;

/** Schedules callbacks. Every timer keeps the process alive until it fires or is cancelled. */
export interface Timers {
  /** Call `callback` once, `ms` from now. */
  setTimeout(callback: () => void, ms: number): CancelTimer;
  /** Call `callback` every `ms` until cancelled. */
  setInterval(callback: () => void, ms: number): CancelTimer;
}

/** Node's own timers. */
export const systemTimers: Timers = {
  setTimeout(callback, ms) {
    const timer = setTimeout(callback, ms);
    return () => clearTimeout(timer);
  },
  setInterval(callback, ms) {
    const timer = setInterval(callback, ms);
    return () => clearInterval(timer);
  },
};
