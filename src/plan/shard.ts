/**
 * CI shards (`talk run --shard i/n`): the i-th of n deterministic, balanced slices of a plan's
 * jobs, so a matrix of runners splits one batch with no coordination between them.
 *
 * Jobs are sorted by id (code-unit order, the same on every machine and locale) and dealt out
 * round-robin: job k of the sorted list goes to shard (k mod n) + 1. Every job lands in exactly
 * one shard, and the shards' sizes differ by at most one. Why by sorted id and not by a hash:
 * a hash spreads jobs unevenly on small batches (a 7-job batch could give one runner 5), and
 * the ids are what a user sees in the reports of every shard.
 */
import type { Plan } from './types.js';

/** One slice: `index` of `count`, both counted from 1. */
export interface Shard {
  index: number;
  count: number;
}

/**
 * Read `i/n` (whole numbers, 1 ≤ i ≤ n). Returns a reason when the text is not a shard, so the
 * CLI can say what it expects.
 */
export function parseShard(text: string): Shard | { error: string } {
  const match = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!match) return { error: `expected i/n with whole numbers (e.g. 2/3), got "${text}"` };
  const index = Number(match[1]);
  const count = Number(match[2]);
  if (count < 1) return { error: `the number of shards must be at least 1, got "${text}"` };
  if (index < 1 || index > count) return { error: `the shard must be between 1 and ${count}, got "${text}"` };
  return { index, count };
}

/** `2/3` → `shard-2-of-3`: a name for the slice's own state, safe in a path. */
export function shardName(shard: Shard): string {
  return `shard-${shard.index}-of-${shard.count}`;
}

/** The shard's jobs, in plan order (the slice is chosen by sorted id; the order stays as planned). */
export function shardPlan(plan: Plan, shard: Shard): Plan {
  const sorted = plan.jobs.map((job) => job.id as string).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const mine = new Set(sorted.filter((_, k) => k % shard.count === shard.index - 1));
  return { ...plan, jobs: plan.jobs.filter((job) => mine.has(job.id)), shard: { index: shard.index, count: shard.count, of: plan.jobs.length } };
}

/** What a sharded plan holds, in a line (`talk plan` and `--dry-run`; a run's `run:start` carries `plan.shard`). */
export function shardSummary(plan: Plan): string | undefined {
  if (!plan.shard) return undefined;
  const { index, count, of } = plan.shard;
  const jobs = plan.jobs.length;
  return `shard ${index}/${count}: ${jobs === 0 ? 'none' : jobs} of the workflow's ${of} ${of === 1 ? 'job' : 'jobs'} (dealt out by sorted job id)`;
}
