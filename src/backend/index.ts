/**
 * The backend client (CONTRACT, SPEC §4): what `commands/` and `runner/` import. The client
 * talks to the cloud and the local backend through the same code path.
 */
import { UsageError } from '../core/errors.js';
import { CLOUD_API_URL } from '../contract/routes.js';

export { createBackendClient, readRenderStatus, RenderFailedError, type BackendClientOptions, type BackendClientExtras } from './client.js';
export { createTokenProvider, defaultConfigDir, resolveClientId, type TokenProvider, type TokenProviderOptions } from './auth.js';
export { resolveAttribution, detectPlatform, type Attribution } from './attribution.js';
export { CLOUD_TIMING, LOCAL_TIMING, resolveTiming, isLoopbackUrl, type BackendTiming } from './timing.js';
export { backoffDelay } from './retry.js';
export { BackendError, TurnLostError } from './errors.js';
export { withUploadCache, uploadAccount, UPLOAD_CACHE_TTL_MS, type UploadCacheOptions, type UploadCacheCounters } from './upload-cache.js';
export { translateGuiPhrases } from './gui-phrases.js';
export { snapshotState, describeChange, stateChanged } from './state-diff.js';
export { classifySseData, TurnAccumulator, toolLabel, type TurnFact, type TurnReading } from './turn.js';
export type * from './types.js';

/**
 * The base URL for `--backend` / the workflow's `backend:` (`cloud`, `local` or a URL): `cloud` → `NEMO_API_URL` or the
 * production URL; an http(s) URL as given. `local` is not resolved here: the run command starts
 * the local backend and passes its URL.
 */
export function resolveBackendUrl(choice: string, env: Readonly<Record<string, string | undefined>>): string {
  if (choice === 'cloud') return checkUrl(env.NEMO_API_URL?.trim() || CLOUD_API_URL, 'NEMO_API_URL');
  if (choice === 'local') {
    throw new UsageError('the local backend has no fixed URL: start it first (as `talk run --backend local` does) and pass its URL');
  }
  return checkUrl(choice, '--backend');
}

function checkUrl(value: string, what: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${what} must be cloud, local or an http(s) URL (got ${JSON.stringify(value)})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`${what} must be an http(s) URL (got ${url.protocol})`);
  }
  return value.replace(/\/+$/, '');
}
