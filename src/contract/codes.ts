/** Envelope error codes and their meaning (CONTRACT §5). */
export const ErrorCodes = {
  ok: 0,
  /** Token invalid or expired: renew with the same client id, retry once. */
  tokenInvalid: 1001,
  /** Session not found: create a new session. */
  sessionNotFound: 1002,
  /** Auth failure on the sibling gateway (CONTRACT §8): treated like 1001. */
  gatewayAuthFailed: 1010,
  /** Auth failure on the sibling gateway (CONTRACT §8): treated like 1001. */
  gatewayAuthRejected: 1011,
  /** Out of credits: do not retry. */
  outOfCredits: 2001,
  /** Unsupported file type. */
  unsupportedType: 4001,
  /** File too large. */
  fileTooLarge: 4002,
} as const;
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** The codes that mean "this token is no good": renew once, then give up. */
export const TOKEN_ERROR_CODES: ReadonlySet<number> = new Set([ErrorCodes.tokenInvalid, ErrorCodes.gatewayAuthFailed, ErrorCodes.gatewayAuthRejected]);

/** HTTP statuses with a protocol meaning (CONTRACT §5). */
export const HttpStatus = {
  missingClientId: 400,
  exportBlocked: 402,
  rateLimited: 429,
} as const;

/** Wait before the single retry after a 429 when no Retry-After is sent (seconds). */
export const RATE_LIMIT_WAIT_SECONDS = 30;
