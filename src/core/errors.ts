import type { Diagnostic } from './diagnostics.js';

/**
 * Stable error codes. Users and scripts may match on them; keep them.
 * - `usage`: bad flags or arguments (exit 2)
 * - `workflow-invalid`: the workflow file failed validation (exit 2)
 * - `step-failed`: a step of a run failed for good (exit 1)
 * - `backend`: the backend answered with an error or could not be reached (exit 1 unless mapped)
 * - `credits`: out of credits, budget exceeded or export blocked by plan (exit 3)
 * - `interrupted`: SIGINT/SIGTERM; state is saved and the run resumable (exit 130)
 * - `timeout`: an operation ran past its deadline (exit 1)
 * - `environment`: the machine lacks something talk needs (a tool such as ffprobe); the message
 *   says how to get it (exit 1)
 * - `internal`: a bug in talk (exit 1)
 */
export type TalkErrorCode =
  | 'usage'
  | 'workflow-invalid'
  | 'step-failed'
  | 'backend'
  | 'credits'
  | 'interrupted'
  | 'timeout'
  | 'environment'
  | 'internal';

/** Process exit codes fixed by SPEC §1. */
export const ExitCode = {
  ok: 0,
  failed: 1,
  invalid: 2,
  credits: 3,
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Base of every error talk raises on purpose. The message is a sentence a user can act on. */
export class TalkError extends Error {
  readonly code: TalkErrorCode;
  /** The next thing the user can do, e.g. "resume with `talk run x.yaml`". */
  readonly hint: string | undefined;

  constructor(code: TalkErrorCode, message: string, options?: { cause?: unknown; hint?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TalkError';
    this.code = code;
    this.hint = options?.hint;
  }
}

/** Bad command-line usage. */
export class UsageError extends TalkError {
  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super('usage', message, options);
    this.name = 'UsageError';
  }
}

/** A workflow failed validation; holds every diagnostic found, sorted. */
export class WorkflowInvalidError extends TalkError {
  readonly diagnostics: readonly Diagnostic[];
  constructor(diagnostics: readonly Diagnostic[], message = 'the workflow is invalid') {
    super('workflow-invalid', message, { hint: 'fix the problems above, then run `talk validate` again' });
    this.name = 'WorkflowInvalidError';
    this.diagnostics = diagnostics;
  }
}

/** A step failed after its retries. */
export class StepFailedError extends TalkError {
  readonly job: string;
  readonly step: string;
  constructor(job: string, step: string, message: string, options?: { cause?: unknown; hint?: string }) {
    super('step-failed', message, options);
    this.name = 'StepFailedError';
    this.job = job;
    this.step = step;
  }
}

/**
 * The backend answered with an error, or could not be reached.
 * `envelopeCode` is the contract's numeric code (1001, 1002, 2001, 4001, 4002, …) when one was
 * sent; `status` the HTTP status when a response arrived. Never holds a token.
 */
export class BackendError extends TalkError {
  readonly envelopeCode: number | undefined;
  readonly status: number | undefined;
  /** Route name as in the contract (`auth`, `session`, `upload`, `sse`, …). */
  readonly route: string;
  /** True when the same request may be tried again (5xx, reset, timeout). */
  readonly retryable: boolean;

  constructor(init: {
    message: string;
    route: string;
    envelopeCode?: number | undefined;
    status?: number | undefined;
    retryable?: boolean;
    cause?: unknown;
    hint?: string;
    /**
     * `credits` for the answers SPEC §1 maps to exit 3 (2001 out of credits, 402 export
     * blocked by plan); `backend` otherwise.
     */
    kind?: 'backend' | 'credits';
  }) {
    super(init.kind ?? 'backend', init.message, { cause: init.cause, ...(init.hint === undefined ? {} : { hint: init.hint }) });
    this.name = 'BackendError';
    this.envelopeCode = init.envelopeCode;
    this.status = init.status;
    this.route = init.route;
    this.retryable = init.retryable ?? false;
  }
}

/** Out of credits (2001), budget exceeded, or export blocked by plan (402). Exit 3. */
export class CreditsError extends TalkError {
  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super('credits', message, options);
    this.name = 'CreditsError';
  }
}

/** The run was interrupted by a signal; state is saved. Exit 130. */
export class InterruptedError extends TalkError {
  constructor(message = 'interrupted', options?: { cause?: unknown; hint?: string }) {
    super('interrupted', message, options);
    this.name = 'InterruptedError';
  }
}

/** An operation ran past its deadline. Distinct from a cancel (`InterruptedError`). */
export class TimeoutError extends TalkError {
  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super('timeout', message, options);
    this.name = 'TimeoutError';
  }
}

/** A bug in talk. The only kind whose message says so. */
export class InternalError extends TalkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('internal', `internal error (this is a bug in talk): ${message}`, options);
    this.name = 'InternalError';
  }
}

/** The single mapping from an error to a process exit code (used by main.ts only). */
export function exitCodeFor(error: unknown): ExitCode {
  if (!(error instanceof TalkError)) return ExitCode.failed;
  switch (error.code) {
    case 'usage':
    case 'workflow-invalid':
      return ExitCode.invalid;
    case 'credits':
      return ExitCode.credits;
    case 'interrupted':
      return ExitCode.interrupted;
    case 'step-failed':
    case 'backend':
    case 'timeout':
    case 'environment':
    case 'internal':
      return ExitCode.failed;
    default: {
      const unreachable: never = error.code;
      return unreachable;
    }
  }
}
