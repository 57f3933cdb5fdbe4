/**
 * The failure policy, in one place: which errors are worth another attempt, which stop the
 * whole run from starting new work, and how a run's outcome maps to its status.
 */
import { BackendError, CreditsError, TalkError, TimeoutError, environmentErrorFrom } from '../core/errors.js';
import { isAbortError } from '../core/abort.js';
import type { RunStatus } from '../core/events.js';

/** True for errors a retry may cure: 5xx, resets and timeouts of one request. */
export function isTransient(error: unknown): boolean {
  if (error instanceof BackendError) return error.retryable && error.code !== 'credits';
  return false;
}

/** True when the error means the account (or budget) is out: nothing paid may start after it. */
export function isCreditsError(error: unknown): boolean {
  return error instanceof TalkError && error.code === 'credits';
}

/** True when the session is gone at the backend (1002): the job starts over in a new session. */
export function isSessionLost(error: unknown): boolean {
  return error instanceof BackendError && error.failure === 'session-lost';
}

/**
 * Why new steps are no longer started. Running out of credits is not one: admission keeps jobs
 * that do not fit from starting, and a job whose paid steps are done always runs its free ones.
 */
export type StopReason = 'interrupted' | 'fail-fast';

/**
 * Shared across every job of a run: once set, no new step starts. In-flight steps finish (or,
 * for an interrupt, are cancelled by the signal and left resumable).
 */
export class StopSwitch {
  private reason: StopReason | undefined;
  get stopped(): StopReason | undefined {
    return this.reason;
  }
  stop(reason: StopReason): void {
    this.reason ??= reason;
  }
}

/** `{code, message, hint}` of an error for a `step:failed` event. */
export function describeError(error: unknown): { code: string; message: string; hint?: string } {
  if (error instanceof TalkError) return { code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}) };
  const environment = environmentErrorFrom(error);
  if (environment !== undefined) return { code: environment.code, message: environment.message, ...(environment.hint ? { hint: environment.hint } : {}) };
  if (error instanceof Error) return { code: 'internal', message: error.message };
  return { code: 'internal', message: String(error) };
}

/** The run's status from what happened, most severe first. */
export function runStatusOf(facts: { interrupted: boolean; credits: boolean; failed: boolean }): RunStatus {
  if (facts.interrupted) return 'interrupted';
  if (facts.credits) return 'credits';
  if (facts.failed) return 'failed';
  return 'success';
}

/** A job's status when the run stopped before the job could finish. */
export function statusWhenStopped(reason: StopReason | undefined): 'failed' | 'interrupted' {
  if (reason === 'fail-fast') return 'failed';
  return 'interrupted';
}

/** A budget stop: the next paid step would cross `budget.credits`. */
export function budgetExceeded(stepLabel: string, cost: number, used: number, limit: number): CreditsError {
  return new CreditsError(`stopped before ${stepLabel}: it costs about ${cost} credits and ${used} of the budget of ${limit} are used`, {
    hint: 'raise budget.credits in the workflow if you mean to spend more, then run again to continue',
  });
}

export { isAbortError, TimeoutError };
