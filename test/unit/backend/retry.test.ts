import { sleep } from '../../../src/core/abort.js';
import { describe, expect, it } from 'vitest';
import { BackendError, InterruptedError } from '../../../src/core/errors.js';
import { backoffDelay, withRetries } from '../../../src/backend/retry.js';
import { answerError } from '../../../src/backend/errors.js';
import { resolveTiming } from '../../../src/backend/timing.js';
import type { RetryInfo } from '../../../src/backend/types.js';

const timing = resolveTiming('http://127.0.0.1:1', { rateLimitWaitMs: 5, backoffBaseMs: 1, backoffCapMs: 4, maxAttempts: 3 });
const ctx = { route: 'state' as const, baseUrl: 'http://127.0.0.1:1', redact: (t: string) => t, userSuppliedToken: false };
const http = (status: number, code?: number, retryAfterMs?: number): BackendError => answerError(ctx, { status, code, serverText: undefined, retryAfterMs });

/** An attempt function that fails with the given errors in order, then returns 'ok'. */
function failing(...errors: Error[]): { attempt: () => Promise<string>; calls: () => number } {
  let n = 0;
  return {
    attempt: async () => {
      const error = errors[n];
      n += 1;
      if (error) throw error;
      return 'ok';
    },
    calls: () => n,
  };
}

describe('withRetries', () => {
  it('waits Retry-After (else the default) after a 429 and retries once', async () => {
    const seen: RetryInfo[] = [];
    const f = failing(http(429, 429, 7));
    await expect(withRetries(f.attempt, { repeatable: false, timing, onRetry: (i) => seen.push(i) })).resolves.toBe('ok');
    expect(seen).toEqual([{ attempt: 1, reason: 'rate-limited (HTTP 429)', delayMs: 7 }]);
    const g = failing(http(429));
    const waits: number[] = [];
    await withRetries(g.attempt, { repeatable: false, timing, onRetry: (i) => waits.push(i.delayMs) });
    expect(waits).toEqual([5]);
  });

  it('fails clearly after a second 429', async () => {
    const f = failing(http(429), http(429), http(429));
    await expect(withRetries(f.attempt, { repeatable: true, timing })).rejects.toThrow(/still rate-limiting after waiting once/);
    expect(f.calls()).toBe(2);
  });

  it('backs off on 5xx only for repeatable requests, and only maxAttempts times', async () => {
    const f = failing(http(503), http(502), http(500), http(500));
    const seen: RetryInfo[] = [];
    await expect(withRetries(f.attempt, { repeatable: true, timing, onRetry: (i) => seen.push(i) })).rejects.toMatchObject({ status: 500 });
    expect(f.calls()).toBe(3);
    expect(seen.map((s) => s.reason)).toEqual(['HTTP 503', 'HTTP 502']);
    const once = failing(http(503));
    await expect(withRetries(once.attempt, { repeatable: false, timing })).rejects.toMatchObject({ status: 503 });
    expect(once.calls()).toBe(1);
  });

  it('renews the token once on 1001 and gives up on the second', async () => {
    let renewals = 0;
    const renewToken = async () => {
      renewals += 1;
      return true;
    };
    const f = failing(http(200, 1001));
    await expect(withRetries(f.attempt, { repeatable: false, timing, renewToken })).resolves.toBe('ok');
    const g = failing(http(200, 1001), http(200, 1001));
    await expect(withRetries(g.attempt, { repeatable: false, timing, renewToken })).rejects.toMatchObject({ envelopeCode: 1001 });
    expect(renewals).toBe(2);
    const h = failing(http(200, 1001));
    await expect(withRetries(h.attempt, { repeatable: false, timing, renewToken: async () => false })).rejects.toMatchObject({ envelopeCode: 1001 });
  });

  it('does not retry errors that are not the backend\'s', async () => {
    const f = failing(new TypeError('bug'));
    await expect(withRetries(f.attempt, { repeatable: true, timing })).rejects.toBeInstanceOf(TypeError);
  });

  it('ends a wait as soon as the signal aborts and leaves no timer behind', async () => {
    const controller = new AbortController();
    const long = resolveTiming('http://127.0.0.1:1', { rateLimitWaitMs: 60_000 });
    // The waits this call makes, observed through the policy's sleep (the real timer inside):
    // counting only these keeps other timers of the process out of the count.
    const waits: { ms: number; settled: boolean }[] = [];
    const observed = async (ms: number, signal: AbortSignal | undefined): Promise<void> => {
      const wait = { ms, settled: false };
      waits.push(wait);
      try {
        await sleep(ms, signal);
      } finally {
        wait.settled = true;
      }
    };
    const pending = withRetries(failing(http(429)).attempt, {
      repeatable: true,
      timing: long,
      signal: controller.signal,
      sleep: observed,
      onRetry: () => queueMicrotask(() => controller.abort()),
    });
    await expect(pending).rejects.toBeInstanceOf(InterruptedError);
    expect(waits).toEqual([{ ms: 60_000, settled: true }]);
  });

  it('keeps backoff within [half, full] of base·2ⁿ and under the cap', () => {
    const t = { backoffBaseMs: 100, backoffCapMs: 1000 };
    expect(backoffDelay(0, t, () => 0)).toBe(50);
    expect(backoffDelay(0, t, () => 1)).toBe(100);
    expect(backoffDelay(3, t, () => 1)).toBe(800);
    expect(backoffDelay(10, t, () => 1)).toBe(1000);
  });
});
