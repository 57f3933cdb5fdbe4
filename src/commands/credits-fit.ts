/**
 * The whole-batch fit check before anything is spent (SPEC §1 money rules): what the jobs would
 * spend now — resume honoured, so done instructions cost nothing — against what the budget and
 * the live balance leave. `talk run` checks its run over the run state on disk; `talk run
 * --queue` checks the jobs it is about to enqueue over their state in Redis, with the same
 * words and exit code.
 */
import { CreditsError } from '../core/errors.js';
import type { Plan } from '../plan/types.js';
import { fitCredits, previewResume, type FileHasher } from '../runner/index.js';
import type { RunState } from '../state/types.js';
import type { Connection } from './connect.js';

/**
 * When not every job fits, stop (a `CreditsError`, exit 3) saying how many fit and what is
 * missing, unless `partial` runs the ones that do. `recorded` is what earlier runs recorded
 * (its `creditsUsed` counts against the budget); the backend is reached only when the jobs
 * would spend anything.
 */
export async function checkCreditsFit(
  plan: Plan,
  recorded: Pick<RunState, 'jobs' | 'creditsUsed'> | undefined,
  backend: { backendId: string; connect: () => Promise<Connection> },
  o: { partial: boolean; hasher: FileHasher; signal: AbortSignal; again: string },
): Promise<void> {
  const preview = await previewResume(plan, recorded, { backendId: backend.backendId, hasher: o.hasher, signal: o.signal });
  const decisions = new Map([...preview.jobs].map(([id, j]) => [id, j.decision]));
  const budgetLeft = plan.budget ? Math.max(0, plan.budget.credits - (recorded?.creditsUsed ?? 0)) : undefined;
  if (fitCredits(plan, decisions, { budgetLeft }).needsNow === 0) return;
  const connection = await backend.connect();
  const balance = await connection.client.getCredits({ signal: o.signal });
  const fit = fitCredits(plan, decisions, { budgetLeft, balance: balance.available });
  if (fit.fitting === fit.jobs || o.partial) return;
  const where = fit.limitedBy === 'budget' ? `the ${fit.available ?? 0} credits left of the budget of ${plan.budget?.credits ?? 0}` : `${fit.available ?? 0} credits`;
  const what = plan.jobs.length === 1 ? 'the job' : 'the batch';
  const fixes = fit.limitedBy === 'budget' ? 'raise budget.credits in the workflow' : connection.client.outOfCreditsHint();
  const partly = fit.fitting > 0 ? `; or run the ${fit.fitting} that ${fit.fitting === 1 ? 'fits' : 'fit'} now with: ${o.again} --partial` : '';
  throw new CreditsError(`${fit.fitting} of ${fit.jobs} ${fit.jobs === 1 ? 'job fits' : 'jobs fit'} in ${where}; ${what} needs about ${fit.needsNow}. Nothing was sent.`, {
    hint: `${fixes}, then run again${partly}`,
  });
}
