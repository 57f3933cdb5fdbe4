/**
 * What one queue job carries: the plan job to run (steps resolved, paths absolute on storage
 * every worker sees), the run's settings, and the step fingerprints the enqueuer computed, so
 * a worker refuses a job whose inputs changed since. Its BullMQ id is the job's fingerprint:
 * enqueuing the same workflow twice adds nothing.
 */
import { createHash } from 'node:crypto';
import type { Plan, PlanJob } from '../plan/types.js';

/** Bumped when the job data changes incompatibly; a worker refuses other versions. */
export const JOB_DATA_VERSION = 1;

/** A plan without its jobs: what every job of a run shares. */
export type PlanSettings = Omit<Plan, 'jobs'>;

/** The data of one queue job. */
export interface QueueJobData {
  version: number;
  plan: PlanSettings;
  job: PlanJob;
  /** The backend identity the fingerprints were computed for. */
  backendId: string;
  /** Step id → fingerprint, as the enqueuer computed them. */
  fingerprints: Record<string, string>;
  /** Step id → field → hash, to say which field changed when a worker's differ. */
  fields: Record<string, Record<string, string>>;
  enqueuedAt: string;
  /**
   * The job's state in Redis as it was enqueued (its JSON, empty for none, and its revision):
   * taken for the first time, the job starts from it without reading Redis. (Taken again, it
   * comes with the state its last owner wrote; redis-state-store.ts.) Absent from jobs an
   * older talk enqueued.
   */
  state?: { text: string; revision: number };
}

/** What a finished queue job returns (its BullMQ return value). */
export interface QueueJobResult {
  job: string;
  status: 'done' | 'failed' | 'interrupted' | 'credits' | 'not-started';
  outputs: { job: string; step: string; path: string; sha256?: string; bytes?: number }[];
  creditsUsed: number;
  error?: { code: string; message: string; hint?: string };
  notStarted?: { needs: number; available: number; limitedBy: 'budget' | 'balance' };
  /**
   * Where the job's time on the worker went (ms since the epoch, the worker's clock): when the
   * worker took it, when the runner started it and when the runner was done. What lies outside
   * the runner's span is the queue's share (bench/queue.bench.ts reads it).
   */
  timing?: { takenAt: number; runFrom: number; runTo: number };
}

/** The job's fingerprint: its workflow, backend, id and every step's fingerprint. Hex, no `:`. */
export function queueJobId(workflowPath: string, backendId: string, jobId: string, fingerprints: Record<string, string>): string {
  const hash = createHash('sha256');
  hash.update(`talk queue job v${JOB_DATA_VERSION}\n${workflowPath}\n${backendId}\n${jobId}\n`);
  for (const [step, fp] of Object.entries(fingerprints).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) hash.update(`${step}=${fp}\n`);
  return hash.digest('hex');
}

/** The key of one workflow's run state on one backend (like a run dir). */
export function runKeyFor(workflowPath: string, backendId: string): string {
  return createHash('sha256').update(`${workflowPath}\n${backendId}`).digest('hex').slice(0, 24);
}
