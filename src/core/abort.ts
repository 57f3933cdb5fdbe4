import { setTimeout as delay } from 'node:timers/promises';
import { InterruptedError, TimeoutError } from './errors.js';

/** Options every async function doing I/O accepts. */
export interface SignalOptions {
  signal?: AbortSignal | undefined;
}

/** A deadline's signal, and `clear()` to drop its timer once the work it guards has ended. */
export interface Deadline {
  readonly signal: AbortSignal;
  clear(): void;
}

/**
 * Pass a parent's abort on to a controller, with the parent's reason; returns `unlink`, which
 * stops listening. Unlike `AbortSignal.any`, nothing stays behind once unlinked: `any` keeps a
 * weak reference to every signal it made in each source, so a run-wide signal combined with a
 * per-step one collects tens of thousands of them over a big batch.
 */
export function linkAbort(parent: AbortSignal | undefined, controller: AbortController): () => void {
  if (!parent) return () => undefined;
  if (parent.aborted) {
    controller.abort(parent.reason);
    return () => undefined;
  }
  const forward = (): void => controller.abort(parent.reason);
  parent.addEventListener('abort', forward, { once: true });
  return () => parent.removeEventListener('abort', forward);
}

/**
 * Combine a parent signal with a deadline. A deadline abort carries a `TimeoutError`
 * reason, a parent abort its own reason, so callers can tell a timeout from a cancel.
 * Call `clear()` when the work is done: a 30-minute step timeout left armed would keep its
 * timer, controller and listeners alive for 30 minutes after every step of a big batch.
 */
export function withDeadline(parent: AbortSignal | undefined, ms: number, what: string): Deadline {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new TimeoutError(`${what} timed out after ${formatDuration(ms)}`)), ms);
  timer.unref();
  const unlink = linkAbort(parent, controller);
  const clear = (): void => {
    clearTimeout(timer);
    unlink();
  };
  controller.signal.addEventListener('abort', clear, { once: true });
  return {
    signal: controller.signal,
    clear() {
      clear();
      controller.signal.removeEventListener('abort', clear);
    },
  };
}

/** Sleep that ends early (rejecting) when the signal aborts; leaves no timer behind. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, { signal });
  } catch (error) {
    throw abortReason(signal, error);
  }
}

/**
 * `promise`, or its abort: rejects as soon as `signal` aborts, for work that cannot be
 * cancelled (a command queued on a connection that waits for its server). What `promise` does
 * later is ignored, a rejection included.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(abortReason(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    void promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** The error to raise for an aborted signal: its reason when it is ours, else an interrupt. */
export function abortReason(signal: AbortSignal | undefined, fallback?: unknown): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error && !(reason.name === 'AbortError')) return reason;
  if (fallback instanceof Error && fallback.name !== 'AbortError') return fallback;
  return new InterruptedError();
}

/** Throw when the signal has aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}

/** True when the error came from an abort (cancel or deadline). */
export function isAbortError(error: unknown): boolean {
  return error instanceof Error && (error.name === 'AbortError' || error instanceof InterruptedError || error instanceof TimeoutError);
}

/** `30s`, `15m`, `1h` or a number of seconds → milliseconds. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!match) return undefined;
  const n = Number(match[1]);
  switch (match[2]) {
    case 'ms':
      return n;
    case 'm':
      return n * 60_000;
    case 'h':
      return n * 3_600_000;
    default:
      return n * 1000;
  }
}

/** 1500 → `1.5 s`, 90000 → `1 min 30 s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(1))} s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return seconds === 0 ? `${minutes} min` : `${minutes} min ${seconds} s`;
}
