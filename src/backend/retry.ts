/**
 * The retry layer: the only place the client decides to try a request again (CONVENTIONS §9).
 *
 * - 1001 (token invalid/expired): renew the token once with the same client id, retry at once.
 * - 429: wait `Retry-After` (else the contract's 30 s), retry once, then fail clearly.
 * - 5xx, resets, timeouts: bounded exponential backoff with full jitter, but only for requests
 *   the caller marked repeatable — never `/run_sse`, which charges credits.
 *
 * Every wait is an abortable `sleep` on the caller's signal, so a step deadline or Ctrl-C ends
 * it at once and no timer is left behind. Each wait is reported through `onRetry` so the runner
 * can emit `step:retry`.
 */
import { abortReason, sleep, throwIfAborted } from '../core/abort.js';
import { BackendError } from '../core/errors.js';
import { HttpStatus, TOKEN_ERROR_CODES } from '../contract/codes.js';
import type { RetryInfo } from './types.js';
import type { BackendTiming } from './timing.js';
import { retryAfterOf } from './errors.js';

/** How one logical request may be retried. */
export interface RetryPolicy {
  /** True when sending the same request twice does no harm (reads, uploads, session creation). */
  repeatable: boolean;
  timing: BackendTiming;
  signal?: AbortSignal | undefined;
  onRetry?: ((info: RetryInfo) => void) | undefined;
  /** Renews the token after a 1001; resolves false when it cannot (a user-supplied token). */
  renewToken?: (() => Promise<boolean>) | undefined;
  /** Jitter source, for tests that need fixed delays. */
  random?: () => number;
  /** How a wait is made (default: an abortable timer); tests observe waits through it. */
  sleep?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
}


/** Delay before transient retry number `n` (0-based): base·2ⁿ capped, with full jitter in [½, 1]. */
export function backoffDelay(n: number, timing: Pick<BackendTiming, 'backoffBaseMs' | 'backoffCapMs'>, random: () => number = Math.random): number {
  const ceiling = Math.min(timing.backoffCapMs, timing.backoffBaseMs * 2 ** n);
  return Math.round(ceiling * (0.5 + random() / 2));
}

/** Run `attempt` until it succeeds or the policy says stop; rethrows the last error. */
export async function withRetries<T>(attempt: (n: number) => Promise<T>, policy: RetryPolicy): Promise<T> {
  const { signal, timing } = policy;
  let renewed = false;
  let rateLimited = false;
  let transient = 0;
  for (let n = 1; ; n += 1) {
    throwIfAborted(signal);
    try {
      return await attempt(n);
    } catch (error) {
      if (signal?.aborted) throw abortReason(signal, error);
      if (!(error instanceof BackendError)) throw error;

      let reason: string;
      let delayMs = 0;
      if (error.envelopeCode !== undefined && TOKEN_ERROR_CODES.has(error.envelopeCode)) {
        if (renewed || !policy.renewToken) throw error;
        renewed = true;
        if (!(await policy.renewToken())) throw error;
        reason = 'token expired; renewed it with the same client id';
      } else if (error.status === HttpStatus.rateLimited && (error.envelopeCode === undefined || error.envelopeCode === HttpStatus.rateLimited)) {
        if (rateLimited) {
          throw new BackendError({
            message: `the backend is still rate-limiting after waiting once (HTTP 429, ${error.route})`,
            route: error.route,
            status: error.status,
            envelopeCode: error.envelopeCode,
            cause: error,
            hint: 'wait a few minutes before running again; anonymous tokens are limited per client id and per network',
          });
        }
        rateLimited = true;
        delayMs = retryAfterOf(error) ?? timing.rateLimitWaitMs;
        reason = 'rate-limited (HTTP 429)';
      } else if (error.retryable && policy.repeatable && transient < timing.maxAttempts - 1) {
        delayMs = backoffDelay(transient, timing, policy.random);
        transient += 1;
        reason = error.status === undefined ? 'network error' : `HTTP ${error.status}`;
      } else {
        throw error;
      }
      policy.onRetry?.({ attempt: n, reason, delayMs });
      if (delayMs > 0) await (policy.sleep ?? sleep)(delayMs, signal);
    }
  }
}
