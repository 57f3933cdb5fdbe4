/**
 * Every way a backend call can fail, as one `BackendError` with a sentence that says what to do
 * next. Messages are redacted here, once, so no token or Authorization value can reach a user
 * through an error (CONVENTIONS §3).
 */
import { BackendError, type BackendFailure } from '../core/errors.js';
import { CLOUD_API_URL, CLOUD_WEB_URL, type RouteName } from '../contract/routes.js';
import { ErrorCodes, HttpStatus } from '../contract/codes.js';
import { ACCEPTED_EXTENSIONS, MAX_UPLOAD_BYTES } from '../contract/media.js';

export { BackendError };

/** Turns any text into its redacted form (built from the tokens currently in use). */
export type Redact = (text: string) => string;

/**
 * A `/run_sse` turn whose outcome is unknown: the connection dropped, or a time limit passed,
 * after the request was sent. The turn may still be running at the backend and may already be
 * charged, so it must never be re-sent blindly: the runner calls `recoverTurn` (CONTRACT §2.4).
 */
export class TurnLostError extends BackendError {
  /** `dropped`: the stream ended or broke mid-tool; `timeout`: the hard limit; `heartbeat-only`: only keep-alives for too long. */
  readonly reason: 'dropped' | 'timeout' | 'heartbeat-only';
  constructor(reason: TurnLostError['reason'], message: string, cause?: unknown) {
    super({ message, route: 'sse', retryable: false, cause, hint: 'talk checks the session state before deciding whether to send the instruction again', failure: 'turn-lost' });
    this.name = 'TurnLostError';
    this.reason = reason;
  }
}

/** What the error factory needs to know about the request that failed. */
export interface FailureContext {
  route: RouteName;
  baseUrl: string;
  redact: Redact;
  /** True when the token came from `NEMO_TOKEN` (then 1001 means "replace it", not "renew"). */
  userSuppliedToken: boolean;
  /** For the 2001 registration link. */
  anonymousUserId?: string | undefined;
  webUrl?: string | undefined;
  /** Advice for a user out of credits that replaces the web app's (see `outOfCreditsHint`). */
  creditsAdvice?: string | undefined;
}

/**
 * What a user out of credits should do next: the advice the client was given for its backend
 * when there is one (the local backend's accounts are simulated: no web app can top them up);
 * else register, for an anonymous account, with the bind link that keeps its work; else top up
 * at the web app.
 */
export function outOfCreditsHint(ctx: Pick<FailureContext, 'webUrl' | 'anonymousUserId' | 'creditsAdvice'>): string {
  if (ctx.creditsAdvice) return ctx.creditsAdvice;
  const web = ctx.webUrl ?? CLOUD_WEB_URL;
  return ctx.anonymousUserId
    ? `register at ${web}/register?bind=${encodeURIComponent(ctx.anonymousUserId)} to keep this work and get more credits`
    : `top up your credits at ${web}`;
}

/** Routes whose HTTP 404 means "session not found" (CONTRACT §5). */
const SESSION_ROUTES: ReadonlySet<RouteName> = new Set(['sse', 'state', 'upload', 'claim']);

/**
 * The envelope code an answer stands for: the body's numeric non-zero `code` wins; else the
 * HTTP status is mapped (401 → 1001, 404 on a session route → 1002, 413 → 4002, 415 → 4001).
 */
export function effectiveCode(route: RouteName, status: number, bodyCode: number | undefined): number | undefined {
  if (bodyCode !== undefined && bodyCode !== 0) return bodyCode;
  if (status === 401) return ErrorCodes.tokenInvalid;
  if (status === 404 && SESSION_ROUTES.has(route)) return ErrorCodes.sessionNotFound;
  if (status === 413) return ErrorCodes.fileTooLarge;
  if (status === 415) return ErrorCodes.unsupportedType;
  return undefined;
}

/** Build the error for a decoded failure answer. `serverText` is the body's message, if any. */
export function answerError(ctx: FailureContext, init: { status: number; code: number | undefined; serverText: string | undefined; retryAfterMs?: number | undefined }): BackendError {
  const { status, code } = init;
  const said = init.serverText ? `: ${init.serverText}` : '';
  const where = `${ctx.route} request`;
  const make = (message: string, extra: { hint?: string; retryable?: boolean; kind?: 'backend' | 'credits'; failure?: BackendFailure } = {}): BackendError => {
    const error = new BackendError({
      message: ctx.redact(message),
      route: ctx.route,
      envelopeCode: code,
      status,
      retryable: extra.retryable ?? false,
      ...(extra.kind ? { kind: extra.kind } : {}),
      ...(extra.failure ? { failure: extra.failure } : {}),
      ...(extra.hint ? { hint: ctx.redact(extra.hint) } : {}),
    });
    if (init.retryAfterMs !== undefined) retryAfter.set(error, init.retryAfterMs);
    return error;
  };
  switch (code) {
    case ErrorCodes.tokenInvalid:
    case ErrorCodes.gatewayAuthFailed:
    case ErrorCodes.gatewayAuthRejected:
      return ctx.userSuppliedToken
        ? make(`the backend rejected the token in NEMO_TOKEN (code ${code})${said}`, {
            hint: 'replace NEMO_TOKEN with a valid token (web Settings → API Tokens), or unset it to use a free anonymous token',
          })
        : make(`the backend rejected the anonymous token even after renewing it (code ${code})${said}`, {
            hint: 'delete the cached token in the nemovideo config folder and run again',
          });
    case ErrorCodes.sessionNotFound:
      return make(`the backend no longer knows this session (code 1002)${said}`, {
        hint: 'talk starts a new session for the job; edits made in the old one are gone',
        failure: 'session-lost',
      });
    case ErrorCodes.outOfCredits:
      return make(`out of credits (code 2001)${said}`, { hint: outOfCreditsHint(ctx), kind: 'credits' });
    case ErrorCodes.unsupportedType:
      return make(`the backend does not accept this file type (code 4001)${said}`, {
        hint: `use one of: ${ACCEPTED_EXTENSIONS.join(', ')}`,
      });
    case ErrorCodes.fileTooLarge:
      return make(`the file is too large for the backend (code 4002)${said}`, {
        hint: `compress or trim it below ${Math.round(MAX_UPLOAD_BYTES / 1024 / 1024)} MB`,
      });
    default:
      break;
  }
  if (code !== undefined && code !== status) {
    return make(`the backend answered the ${where} with code ${code}${said}`);
  }
  if (status === HttpStatus.exportBlocked) {
    return make(`export blocked by the plan (HTTP 402)${said}; this is a subscription limit, not a lack of credits`, {
      hint: 'register or upgrade at nemovideo.com to unlock export; talk already sends the attribution headers',
      kind: 'credits',
    });
  }
  if (status === HttpStatus.rateLimited) {
    return make(`the backend is rate-limiting requests (HTTP 429)${said}`, {
      hint: 'wait a few minutes and run again; anonymous tokens are limited per client and per network',
      retryable: false,
    });
  }
  if (status === HttpStatus.missingClientId && ctx.route === 'auth') {
    return make(`the backend refused the client id (HTTP 400)${said}`, {
      hint: 'set NEMO_CLIENT_ID to a stable string of at most 64 characters, or unset it to use a generated one',
    });
  }
  if (status >= 500) {
    return make(`the backend failed on the ${where} (HTTP ${status})${said}`, { retryable: true, hint: 'try again in a moment' });
  }
  return make(`the backend refused the ${where} (HTTP ${status})${said}`);
}

/** Retry-After wait attached to a 429 error, read by the retry layer. */
const retryAfter = new WeakMap<BackendError, number>();

/** The `Retry-After` wait carried by a 429 error, if the server sent one. */
export function retryAfterOf(error: BackendError): number | undefined {
  return retryAfter.get(error);
}

/** undici and system error codes that mean "the request may not have reached the server, or its answer was lost". */
const TRANSIENT_NETWORK = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT',
]);

/** The code of a network error, looking through `cause` chains. */
export function networkCode(error: unknown): string | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 4 && e instanceof Error; depth += 1) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (TRANSIENT_NETWORK.has(code) || code === 'ENOTFOUND')) return code;
    // undici's SocketError says this when the peer closed mid-response; some paths (a body
    // read through a web stream) hand it on without its code.
    if (/\bother side closed\b/i.test(e.message)) return 'UND_ERR_SOCKET';
    e = e.cause;
  }
  return undefined;
}

/**
 * A request that got no answer. On the cloud URL the message says so plainly and points at
 * the offline backend.
 */
export function networkError(ctx: FailureContext, error: unknown): BackendError {
  const code = networkCode(error) ?? (error instanceof Error ? error.message : String(error));
  const timedOut = /TIMEOUT/.test(code);
  const isCloud = ctx.baseUrl.replace(/\/+$/, '') === CLOUD_API_URL;
  const what = timedOut ? 'did not answer in time' : 'could not be reached';
  const message = isCloud
    ? `the NemoVideo cloud backend at ${ctx.baseUrl} ${what} (${ctx.route}: ${code})`
    : `the backend at ${ctx.baseUrl} ${what} (${ctx.route}: ${code})`;
  return new BackendError({
    message: ctx.redact(message),
    route: ctx.route,
    retryable: code !== 'ENOTFOUND',
    cause: error,
    hint: isCloud
      ? 'check your network connection, or run offline with `--backend local`'
      : 'check that the backend is running and the URL is right',
  });
}
