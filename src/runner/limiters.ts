/**
 * The run's limiters, created once and passed down (CONVENTIONS §10): jobs in flight
 * (`concurrency`), uploads in flight (`limits.uploads`) and renders in flight
 * (`limits.renders`), each a p-limit queue shared by every job.
 */
import pLimit, { type LimitFunction } from 'p-limit';

/** The three queues a run shares. */
export interface Limiters {
  jobs: LimitFunction;
  uploads: LimitFunction;
  renders: LimitFunction;
}

/** Create the limiters for a plan's numbers (after `--concurrency`). */
export function createLimiters(limits: { concurrency: number; uploads: number; renders: number }): Limiters {
  return {
    jobs: pLimit(Math.max(1, limits.concurrency)),
    uploads: pLimit(Math.max(1, limits.uploads)),
    renders: pLimit(Math.max(1, limits.renders)),
  };
}
