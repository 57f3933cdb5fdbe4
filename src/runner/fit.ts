/**
 * The fit check before the first paid request (SPEC §1 money rules): what the jobs would still
 * spend now — honouring resume, so done instructions cost nothing — against what the budget
 * and the balance leave, in plan order, as admission will take them.
 */
import type { Plan } from '../plan/types.js';
import { remainingCredits, type JobDecision } from './resume.js';

/** What fits. */
export interface CreditFit {
  /** Credits the jobs would spend now (resume honoured). */
  needsNow: number;
  /** Credits the whole workflow costs from scratch. */
  wholeWorkflow: number;
  jobs: number;
  /** Jobs that fit, in plan order (a job that costs nothing always fits). */
  fitting: number;
  /** The smaller of budget left and balance, when either is known. */
  available: number | undefined;
  limitedBy: 'budget' | 'balance' | undefined;
}

/**
 * Fit a plan's jobs into `budgetLeft` and `balance` (either may be unknown). `decisions` are the
 * resume decisions per job id; a job without one runs in full.
 */
export function fitCredits(plan: Plan, decisions: ReadonlyMap<string, JobDecision> | undefined, limits: { budgetLeft?: number | undefined; balance?: number | undefined }): CreditFit {
  const { budgetLeft, balance } = limits;
  const available = budgetLeft === undefined ? balance : balance === undefined ? budgetLeft : Math.min(budgetLeft, balance);
  const limitedBy = available === undefined ? undefined : available === budgetLeft ? 'budget' : 'balance';
  let left = available ?? Infinity;
  let needsNow = 0;
  let wholeWorkflow = 0;
  let fitting = 0;
  for (const job of plan.jobs) {
    const all = remainingCredits(job, { newSession: true, steps: new Map() });
    const decision = decisions?.get(job.id);
    const now = decision ? remainingCredits(job, decision) : all;
    wholeWorkflow += all;
    needsNow += now;
    if (now <= left) {
      fitting += 1;
      left -= now;
    }
  }
  return { needsNow, wholeWorkflow, jobs: plan.jobs.length, fitting, available, limitedBy };
}
