/**
 * Defaults of the workflow format, in one place: the loader applies them and the plan
 * re-exports them (src/plan/types.ts) under the names the runner uses.
 */

/** Jobs (and steps) in flight at once when neither the file nor --concurrency says. */
export const DEFAULT_CONCURRENCY = 4;
/** Extra attempts for transient failures. */
export const DEFAULT_RETRIES = 2;
/** Default step timeout: long enough for a 15-minute SSE turn plus recovery. */
export const DEFAULT_TIMEOUT_MS = 30 * 60_000;
/** Language sent to the backend when neither the file nor the locale says. */
export const DEFAULT_LANGUAGE = 'en';

/** `watch:` defaults (the brief of `talk watch`). */
export const DEFAULT_WATCH = {
  pairing: 'stem',
  roles: { portrait: ['jpg', 'jpeg', 'png', 'webp'], voice: ['mp3', 'wav', 'm4a', 'aac'] },
  manifest: 'job.yaml',
  settleMs: 2_000,
  bundleTimeoutMs: 10 * 60_000,
  scanIntervalMs: 30_000,
  maxAttempts: 3,
  outputDir: 'out',
  processedDir: 'processed',
  failedDir: 'failed',
} as const;
