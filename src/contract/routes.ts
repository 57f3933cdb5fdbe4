/**
 * The NemoVideo protocol's routes (CONTRACT §2), shared by the client and the local backend.
 * Route names are public: fault rules, latency knobs and `/__local/stats` use them.
 */

/** Route names used by `--fault`, `--latency` and `stats.requests`. */
export const ROUTE_NAMES = [
  'auth',
  'session',
  'claim',
  'upload',
  'sse',
  'credits',
  'state',
  'render',
  'render-status',
  'render-cancel',
  'download',
] as const;
export type RouteName = (typeof ROUTE_NAMES)[number];
/** `any` matches every protocol route in fault rules, never `/__local/*`. */
export type RouteSelector = RouteName | 'any';

/** The app name every session path and `/run_sse` body uses. */
export const APP_NAME = 'nemo_agent';
/** The user slot in per-user paths; the server derives the user from the token (§1.2). */
export const ME = 'me';

export const paths = {
  anonymousToken: '/api/auth/anonymous-token',
  claimToken: '/api/auth/claim-token',
  createSession: `/api/tasks/${ME}/with-session/${APP_NAME}`,
  runSse: '/run_sse',
  upload: (sessionId: string): string => `/api/upload-video/${APP_NAME}/${ME}/${encodeURIComponent(sessionId)}`,
  credits: '/api/credits/balance/simple',
  state: (sessionId: string): string => `/api/state/${APP_NAME}/${ME}/${encodeURIComponent(sessionId)}/latest`,
  renderSubmit: '/api/render/proxy/lambda',
  renderStatus: (renderId: string): string => `/api/render/proxy/lambda/${encodeURIComponent(renderId)}`,
  renderCancel: (renderId: string): string => `/api/render/proxy/lambda/${encodeURIComponent(renderId)}/cancel`,
  /** Fallback download: note there is no `/lambda` segment (§2.11). */
  renderDownload: (renderId: string): string => `/api/render/proxy/${encodeURIComponent(renderId)}/download`,
} as const;

/** Local-backend-only test hooks (never part of the cloud protocol). */
export const localPaths = {
  stats: '/__local/stats',
  faults: '/__local/faults',
  /** NDJSON stream of server-side events (turn accepted, render started, …) for ordering tests. */
  events: '/__local/events',
} as const;

/** Attribution headers sent on every request (§1.3). */
export const ATTRIBUTION_HEADERS = ['x-skill-source', 'x-skill-version', 'x-skill-platform'] as const;

/** Defaults from the seed skill text. */
export const DEFAULT_SKILL_SOURCE = 'infinite-talk-ai';
export const DEFAULT_SKILL_PLATFORM = 'unknown';

/** Cloud hosts (§1.1). */
export const CLOUD_API_URL = 'https://mega-api-prod.nemovideo.ai';
export const CLOUD_WEB_URL = 'https://nemovideo.com';
