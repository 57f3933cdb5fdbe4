/**
 * Timers as an injectable edge, beside the clock (core/clock.ts): code that waits for time to
 * pass (the watcher's settle window, its incomplete-bundle timeout, its scans and lease
 * heartbeats; the local backend's render progress and `render=MS` floor) schedules through a `Timers`, so a test can hand it timers that fire only when
 * the test moves time on, and a check that depends on elapsed time no longer races the machine.
 */
import { abortReason } from './abort.js';

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

/**
 * Wait `ms` on `timers`. Rejects when `signal` aborts first, with the same error `sleep` in
 * core/abort.ts gives (the signal's own reason, else an interrupt), and leaves no timer behind.
 */
export function sleepOn(timers: Timers, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = (): void => {
      cancel();
      reject(abortReason(signal));
    };
    const cancel = timers.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
