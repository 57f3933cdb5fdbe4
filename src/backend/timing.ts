/**
 * Every wait the backend client makes, in one place, so the cloud gets the contract's timings
 * and tests and the local backend can run the same code in milliseconds.
 */

/** All waits and limits of the client, in milliseconds unless named otherwise. */
export interface BackendTiming {
  /** Time between render status reads (seed: every 30 s on the cloud). */
  renderPollMs: number;
  /** Give up on a render that has not finished after this long (unknown statuses keep polling until then). */
  renderCapMs: number;
  /** Hard limit of one `/run_sse` turn (CONTRACT §2.4: 15 min). */
  sseHardLimitMs: number;
  /** A turn that sends only heartbeats for this long has timed out (CONTRACT §2.4: 10 min). */
  sseHeartbeatOnlyMs: number;
  /** How often a heartbeat-only wait is reported as "still working" (seed: every 2 min). */
  stillWorkingMs: number;
  /** Disconnect recovery: first wait before reading state (CONTRACT §2.4: 30 s). */
  recoveryFirstMs: number;
  /** Disconnect recovery: later waits between reads (60 s). */
  recoveryNextMs: number;
  /** Disconnect recovery: unchanged reads (with nothing frozen) before `not-applied` (5). */
  recoveryReads: number;
  /** Disconnect recovery: longest total wait while credits stay frozen. */
  recoveryMaxMs: number;
  /** Wait before the single retry after a 429 without `Retry-After` (30 s). */
  rateLimitWaitMs: number;
  /** Exponential backoff for idempotent requests: first delay, cap, and attempts in all. */
  backoffBaseMs: number;
  backoffCapMs: number;
  maxAttempts: number;
  /** Per-request wait for response headers and between body chunks (not for `/run_sse`). */
  requestTimeoutMs: number;
}

/** The contract's timings, for the cloud backend. */
export const CLOUD_TIMING: Readonly<BackendTiming> = {
  renderPollMs: 30_000,
  renderCapMs: 10 * 60_000,
  sseHardLimitMs: 900_000,
  sseHeartbeatOnlyMs: 600_000,
  stillWorkingMs: 120_000,
  recoveryFirstMs: 30_000,
  recoveryNextMs: 60_000,
  recoveryReads: 5,
  recoveryMaxMs: 900_000,
  rateLimitWaitMs: 30_000,
  backoffBaseMs: 1_000,
  backoffCapMs: 15_000,
  maxAttempts: 4,
  requestTimeoutMs: 60_000,
};

/**
 * Timings for a backend on this machine: renders are polled often because a local render is
 * seconds of ffmpeg, and a lost turn is judged quickly because the local agent is synchronous.
 * The SSE limits stay the contract's: a long local turn is still a legitimate turn.
 */
export const LOCAL_TIMING: Readonly<BackendTiming> = {
  ...CLOUD_TIMING,
  renderPollMs: 200,
  recoveryFirstMs: 500,
  recoveryNextMs: 1_000,
  backoffBaseMs: 100,
  backoffCapMs: 2_000,
};

/** True for a base URL on the loopback interface (the local backend, or a test server). */
export function isLoopbackUrl(baseUrl: string): boolean {
  try {
    const host = new URL(baseUrl).hostname;
    return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);
  } catch {
    return false;
  }
}

/** The defaults for a base URL, with the caller's overrides on top. */
export function resolveTiming(baseUrl: string, overrides: Partial<BackendTiming> = {}): BackendTiming {
  const base = isLoopbackUrl(baseUrl) ? LOCAL_TIMING : CLOUD_TIMING;
  const merged: BackendTiming = { ...base };
  for (const [key, value] of Object.entries(overrides) as [keyof BackendTiming, number | undefined][]) {
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) merged[key] = value;
  }
  return merged;
}
