import type { Diagnostic } from './diagnostics.js';
import { unreachable } from './unreachable.js';

/**
 * Stable error codes. Users and scripts may match on them; keep them.
 * - `usage`: bad flags or arguments (exit 2)
 * - `workflow-invalid`: the workflow file failed validation (exit 2)
 * - `step-failed`: a step of a run failed for good (exit 1)
 * - `backend`: the backend answered with an error or could not be reached (exit 1 unless mapped)
 * - `credits`: out of credits, budget exceeded or export blocked by plan (exit 3)
 * - `interrupted`: SIGINT/SIGTERM; state is saved and the run resumable (exit 130)
 * - `timeout`: an operation ran past its deadline (exit 1)
 * - `environment`: the user's machine stands in the way (a missing tool, permissions, a full
 *   disk); the message says what and what to do (exit 1)
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
  /** What went wrong, for callers that act on it (never the class name or the message). */
  readonly failure: BackendFailure | undefined;

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
    failure?: BackendFailure;
  }) {
    super(init.kind ?? 'backend', init.message, { cause: init.cause, ...(init.hint === undefined ? {} : { hint: init.hint }) });
    this.name = 'BackendError';
    this.envelopeCode = init.envelopeCode;
    this.status = init.status;
    this.route = init.route;
    this.retryable = init.retryable ?? false;
    this.failure = init.failure;
  }
}

/**
 * Backend failures the runner acts on: a render that ended failed (render again with a new
 * id), a session the backend no longer knows (1002: start over in a new one), a turn whose
 * stream was lost (recover by reading state before sending again).
 */
export type BackendFailure = 'render-failed' | 'session-lost' | 'turn-lost';

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

/**
 * The user's environment, not a bug: a tool that is missing, a folder that cannot be written,
 * a full disk. `reason` is the system's code (`ENOSPC`, `EACCES`, …, or `missing-tool`).
 */
export class EnvironmentError extends TalkError {
  readonly reason: string;
  constructor(reason: string, message: string, options?: { cause?: unknown; hint?: string }) {
    super('environment', message, options);
    this.name = 'EnvironmentError';
    this.reason = reason;
  }
}

/** What each system error code says about the machine, and what to do about it. */
const ENVIRONMENT_CODES: Record<string, { what: string; hint: string }> = {
  ENOSPC: { what: 'the disk is full', hint: 'free some space (or point the output or --state-dir at a disk with room), then run again' },
  EDQUOT: { what: 'the disk quota is used up', hint: 'free some space within your quota, then run again' },
  EACCES: { what: 'permission denied', hint: 'make the folder writable for this user (or choose another output folder), then run again' },
  EPERM: { what: 'the operation is not permitted', hint: 'check the folder permissions and that no other program holds the file, then run again' },
  EROFS: { what: 'the file system is read-only', hint: 'choose an output folder on a writable disk, then run again' },
  EEXIST: { what: 'a file is in the way', hint: 'remove the leftover file named here (an interrupted copy or a file of another program), then run again' },
  EMFILE: { what: 'too many files are open', hint: 'lower --concurrency or raise the open-file limit (ulimit -n), then run again' },
};

/**
 * An `EnvironmentError` for a system error that is about the machine (disk, permissions, a
 * missing program), looking through `cause`; undefined for anything else.
 */
export function environmentErrorFrom(error: unknown): EnvironmentError | undefined {
  if (error instanceof EnvironmentError) return error;
  let e: unknown = error;
  for (let depth = 0; depth < 4 && e instanceof Error; depth += 1) {
    const errno = e as NodeJS.ErrnoException;
    const known = errno.code === undefined ? undefined : ENVIRONMENT_CODES[errno.code];
    const where = errno.path === undefined ? '' : ` (${errno.path})`;
    if (known !== undefined && errno.code !== undefined) return new EnvironmentError(errno.code, `${known.what}${where}: ${errno.syscall ?? 'file operation'} failed with ${errno.code}`, { cause: error, hint: known.hint });
    if (errno.code === 'ENOENT' && typeof errno.syscall === 'string' && errno.syscall.startsWith('spawn')) {
      const tool = errno.path ?? 'a program';
      return new EnvironmentError('missing-tool', `${tool} was not found on this machine`, { cause: error, hint: `install ${tool} (for ffmpeg: \`apt-get install ffmpeg\`, or set FFMPEG_PATH/FFPROBE_PATH), then run again` });
    }
    e = e.cause;
  }
  return undefined;
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
    default:
      return unreachable(error.code, 'code');
  }
}

/** The exit code of a run that ended with `status` (the one map from outcomes to codes, with `exitCodeFor`). */
export function exitCodeForStatus(status: 'success' | 'failed' | 'interrupted' | 'credits'): ExitCode {
  switch (status) {
    case 'success':
      return ExitCode.ok;
    case 'failed':
      return ExitCode.failed;
    case 'credits':
      return ExitCode.credits;
    case 'interrupted':
      return ExitCode.interrupted;
    default:
      return unreachable(status, 'status');
  }
}
