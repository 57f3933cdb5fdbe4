/**
 * The contract between the watcher and the job it runs for each bundle: what it hands over
 * (`BundleJob`), what it hears back (`BundleResult`), and how a thrown error becomes a
 * `BundleError`. The job itself is injected (`RunBundle`), so src/watch never knows about
 * runners or backends.
 */
import { TalkError, environmentErrorFrom } from '../core/errors.js';

/** One job for one bundle, handed to the injected runner. */
export interface BundleJob {
  /** Bundle id (content hash). Stable across restarts: key the job's run state by it. */
  id: string;
  /** Bundle name (stem or folder); also the job name users see. */
  name: string;
  /** Role → absolute path. */
  files: Record<string, string>;
  /** The bundle's own instructions, replacing the workflow's; undefined keeps the workflow's. */
  instructions?: string[];
  /** Absolute path the render must be written to (atomically). */
  output: string;
  /** 1-based attempt of this content. */
  attempt: number;
  /** True when an earlier watcher was running this bundle when it stopped or crashed. */
  resumed: boolean;
}

/** What a job reports. A thrown error counts as `failed` (or as interrupted when aborted). */
export type BundleResult =
  | { status: 'done'; output?: string; sessionIds?: string[]; renderIds?: string[]; creditsUsed?: number }
  | { status: 'failed'; error: BundleError; sessionIds?: string[]; renderIds?: string[]; creditsUsed?: number };

/** Why a job failed; `hint` is the next thing the user can do (it lands in `error.txt`). */
export interface BundleError {
  code: string;
  message: string;
  hint?: string;
}

/** Runs one bundle as a job. Must honour `signal` (stop, leaving state resumable). */
export type RunBundle = (job: BundleJob, signal: AbortSignal) => Promise<BundleResult>;

/** A thrown error as a `BundleError`: its code, and a hint when it has one. */
export function bundleErrorFrom(error: unknown): BundleError {
  if (error instanceof TalkError) return { code: error.code, message: error.message, ...(error.hint === undefined ? {} : { hint: error.hint }) };
  const environment = environmentErrorFrom(error);
  if (environment !== undefined) return { code: environment.code, message: environment.message, ...(environment.hint === undefined ? {} : { hint: environment.hint }) };
  if (error instanceof Error) return { code: 'internal', message: error.message };
  return { code: 'internal', message: String(error) };
}
