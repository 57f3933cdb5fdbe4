/**
 * The NemoVideo protocol's routes (CONTRACT §2), shared by the client and the local backend.
 * Route names are public: fault rules, latency knobs and `/__local/stats` use them.
 *
 * Why two functions live in `contract/`: each route is written once, as a path template, and
 * both sides read it — the client fills templates in (`fillRoute`), the local backend matches
 * requests against them — so the template syntax must be read in one place (`routePieces`).
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

/**
 * A route: its method and its path as a template. `:name` stands for a parameter of one path
 * segment; a name is letters, digits and `_`, ended by `/`, `.` or the end of the path.
 */
export interface RouteDefinition {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  /** Parameters narrower than "any one segment": the regular-expression source each must match. */
  readonly params?: Readonly<Record<string, string>>;
}

/**
 * The protocol's routes by name (CONTRACT §2). The client builds its URLs from them (`paths`),
 * the local backend matches requests against them, in this order.
 */
export const ROUTES = {
  auth: { method: 'POST', path: '/api/auth/anonymous-token' },
  claim: { method: 'POST', path: '/api/auth/claim-token' },
  session: { method: 'POST', path: `/api/tasks/:user/with-session/${APP_NAME}` },
  sse: { method: 'POST', path: '/run_sse' },
  upload: { method: 'POST', path: `/api/upload-video/${APP_NAME}/:user/:sessionId` },
  credits: { method: 'GET', path: '/api/credits/balance/simple' },
  state: { method: 'GET', path: `/api/state/${APP_NAME}/:user/:sessionId/latest` },
  render: { method: 'POST', path: '/api/render/proxy/lambda' },
  'render-cancel': { method: 'POST', path: '/api/render/proxy/lambda/:renderId/cancel' },
  'render-status': { method: 'GET', path: '/api/render/proxy/lambda/:renderId' },
  /** Fallback download: note there is no `/lambda` segment (§2.11). */
  download: { method: 'GET', path: '/api/render/proxy/:renderId/download' },
} as const satisfies { readonly [K in RouteName]: RouteDefinition };

/**
 * URLs only the local backend serves, never part of the cloud protocol: the files it hands out
 * (`cdn_url`, `outputUrl`) and its test hooks. `route` names the protocol route a URL counts as
 * for `--fault`, `--latency` and `stats.requests`; the others are outside all three.
 */
export const LOCAL_ROUTES = {
  /** The finished video `outputUrl` names: no bearer needed, like a CDN link. */
  renderResult: { method: 'GET', path: '/static/render-result/:renderId.mp4', route: 'download' },
  /** A stored upload (`cdn_url`): the names the server chose, `<id>.<ext>`. */
  media: { method: 'GET', path: '/media/:file', params: { file: '[A-Za-z0-9_-]+\\.[A-Za-z0-9]+' } },
  stats: { method: 'GET', path: '/__local/stats' },
  /** NDJSON stream of server-side events (turn accepted, render started, …) for ordering tests. */
  events: { method: 'GET', path: '/__local/events' },
  faults: { method: 'POST', path: '/__local/faults' },
} as const satisfies Record<string, RouteDefinition & { readonly route?: RouteName }>;

/** The parameter names of a path template, as a union (`never` for a path without any). */
export type RouteParamName<P extends string> = P extends `${string}:${infer Rest}` ? ParamNameAt<Rest> | RouteParamName<Rest> : never;
type ParamNameAt<S extends string> = S extends `${infer Name}/${string}` ? BeforeDot<Name> : BeforeDot<S>;
type BeforeDot<S extends string> = S extends `${infer Name}.${string}` ? Name : S;

/** The parameters a path template takes, by name. */
export type RouteParams<P extends string> = Readonly<Record<RouteParamName<P>, string>>;

/** One piece of a path template: literal text, or a parameter. */
export type RoutePiece = { literal: string } | { param: string };

/** A path template in pieces, in order: the one reading of the template syntax. */
export function routePieces(template: string): RoutePiece[] {
  const pieces: RoutePiece[] = [];
  let at = 0;
  for (const match of template.matchAll(/:([A-Za-z0-9_]+)/g)) {
    if (match.index > at) pieces.push({ literal: template.slice(at, match.index) });
    pieces.push({ param: match[1] ?? '' });
    at = match.index + match[0].length;
  }
  if (at < template.length) pieces.push({ literal: template.slice(at) });
  return pieces;
}

/** A path from its template, each parameter URL-encoded. */
export function fillRoute<P extends string>(template: P, params: RouteParams<P>): string {
  const values = params as Readonly<Record<string, string>>;
  return routePieces(template)
    .map((piece) => ('literal' in piece ? piece.literal : encodeURIComponent(values[piece.param] ?? '')))
    .join('');
}

export const paths = {
  anonymousToken: ROUTES.auth.path,
  claimToken: ROUTES.claim.path,
  createSession: fillRoute(ROUTES.session.path, { user: ME }),
  runSse: ROUTES.sse.path,
  upload: (sessionId: string): string => fillRoute(ROUTES.upload.path, { user: ME, sessionId }),
  credits: ROUTES.credits.path,
  state: (sessionId: string): string => fillRoute(ROUTES.state.path, { user: ME, sessionId }),
  renderSubmit: ROUTES.render.path,
  renderStatus: (renderId: string): string => fillRoute(ROUTES['render-status'].path, { renderId }),
  renderCancel: (renderId: string): string => fillRoute(ROUTES['render-cancel'].path, { renderId }),
  /** Fallback download: note there is no `/lambda` segment (§2.11). */
  renderDownload: (renderId: string): string => fillRoute(ROUTES.download.path, { renderId }),
} as const;

/** Local-backend-only test hooks (never part of the cloud protocol). */
export const localPaths = {
  stats: LOCAL_ROUTES.stats.path,
  faults: LOCAL_ROUTES.faults.path,
  /** NDJSON stream of server-side events (turn accepted, render started, …) for ordering tests. */
  events: LOCAL_ROUTES.events.path,
} as const;

/** Attribution headers sent on every request (§1.3). */
export const ATTRIBUTION_HEADERS = ['x-skill-source', 'x-skill-version', 'x-skill-platform'] as const;

/** Defaults from the seed skill text. */
export const DEFAULT_SKILL_SOURCE = 'infinite-talk-ai';
export const DEFAULT_SKILL_PLATFORM = 'unknown';

/** Cloud hosts (§1.1). */
export const CLOUD_API_URL = 'https://mega-api-prod.nemovideo.ai';
export const CLOUD_WEB_URL = 'https://nemovideo.com';
