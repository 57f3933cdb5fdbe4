/**
 * The resume column of `talk plan` (and `talk run --dry-run`): for each step, what `talk run`
 * would do now with the recorded state — skip, download only, re-attach, check, or run — and
 * which fingerprint field changed. No network: fingerprints and output checks are local.
 */
import { resolveBackendUrl } from '../backend/index.js';
import type { Plan } from '../plan/types.js';
import { fitCredits, previewResume, type FileHasher, type JobDecision } from '../runner/index.js';
import { formatPlanPieces } from '../plan/index.js';
import { readRunState, runDirFor, stateDirFor } from '../state/index.js';
import type { CommandContext } from './context.js';
import { unreachable } from '../core/unreachable.js';

/** The fingerprint identity `talk run` would use for this plan's backend. */
export function backendIdFor(plan: Plan, env: CommandContext['env']): string {
  switch (plan.backend.kind) {
    case 'local':
      return 'local';
    case 'cloud':
      return resolveBackendUrl('cloud', env);
    case 'url':
      return resolveBackendUrl(plan.backend.url, env);
    default:
      return unreachable(plan.backend, 'backend');
  }
}

/** What an earlier run of this plan on its backend means for a run now. */
export interface ResumeView {
  /** The resume column of `formatPlan`; undefined when nothing was recorded (every step runs). */
  annotate: ((jobId: string, stepId: string) => string | undefined) | undefined;
  /** The decisions per job, for the credits a run would spend now. */
  decisions: Map<string, JobDecision> | undefined;
  /** Credits the recorded runs already spent (they count against `budget.credits`). */
  creditsUsed: number;
}

/**
 * The resume view of a plan from the state recorded for its backend (nothing when `--fresh`
 * ignores it). No network: fingerprints and output checks are local.
 */
export async function resumeView(
  plan: Plan,
  options: { stateDir: string | undefined; fresh: boolean; shard?: { index: number; count: number } | undefined },
  ctx: CommandContext,
  hasher?: FileHasher,
): Promise<ResumeView> {
  const none: ResumeView = { annotate: undefined, decisions: undefined, creditsUsed: 0 };
  if (options.fresh) return none;
  const backendId = backendIdFor(plan, ctx.env);
  const stateDir = stateDirFor(plan.workflowPath, options.stateDir, ctx.cwd);
  const previous = await readRunState(runDirFor(stateDir, plan.workflowPath, backendId, options.shard), { signal: ctx.signal });
  if (!previous) return none;
  const preview = await previewResume(plan, previous.state, { backendId, signal: ctx.signal, ...(hasher ? { hasher } : {}) });
  return {
    annotate: (jobId, stepId) => preview.jobs.get(jobId)?.steps.get(stepId),
    decisions: new Map([...preview.jobs].map(([id, j]) => [id, j.decision])),
    creditsUsed: previous.state.creditsUsed,
  };
}

/** Where the state of an earlier run is looked for. */
export interface PlanViewOptions {
  stateDir: string | undefined;
  fresh: boolean;
  shard?: { index: number; count: number } | undefined;
}

/**
 * `talk plan`'s text (and `talk run --dry-run`'s): the plan with its resume column and what it
 * would spend now, in pieces for writing as they are made (a big plan's text is tens of MB).
 */
export async function planViewPieces(plan: Plan, options: PlanViewOptions, ctx: CommandContext): Promise<Iterable<string>> {
  const view = await resumeView(plan, options, ctx);
  const budgetLeft = plan.budget ? Math.max(0, plan.budget.credits - view.creditsUsed) : undefined;
  const fit = fitCredits(plan, view.decisions, { budgetLeft });
  return formatPlanPieces(plan, {
    cwd: ctx.cwd,
    ...(view.annotate ? { annotate: view.annotate } : {}),
    creditsNow: { now: fit.needsNow, fitting: fit.fitting, budgetLeft },
  });
}
