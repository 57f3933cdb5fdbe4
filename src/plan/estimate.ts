/**
 * The credit estimate of a plan, from the per-instruction classification the plan already
 * holds (the shared price list in contract/pricing.ts: generation ≈ 100, edit ≈ 50, export 0).
 */
import type { Plan } from './types.js';

/** Credits per job id and in total. */
export interface CreditEstimate {
  perJob: Record<string, number>;
  total: number;
}

/** Sum what each job's instructions are expected to cost. */
export function estimateCredits(plan: Plan): CreditEstimate {
  const perJob: Record<string, number> = {};
  let total = 0;
  for (const job of plan.jobs) {
    let credits = 0;
    for (const step of job.steps) if (step.kind === 'instruction') credits += step.estimatedCredits;
    perJob[job.id] = credits;
    total += credits;
  }
  return { perJob, total };
}
