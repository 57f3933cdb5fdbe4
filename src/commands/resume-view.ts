/**
 * The resume column of `talk plan` (and `talk run --dry-run`): for each step, what `talk run`
 * would do now with the recorded state — skip, download only, re-attach, check, or run — and
 * which fingerprint field changed. No network: fingerprints and output checks are local.
 */
import { resolveBackendUrl } from '../backend/index.js';
import type { Plan } from '../plan/types.js';
import { previewResume } from '../runner/index.js';
import { readRunState, runDirFor, stateDirFor } from '../state/index.js';
import type { CommandContext } from './context.js';

/** The fingerprint identity `talk run` would use for this plan's backend. */
export function backendIdFor(plan: Plan, env: CommandContext['env']): string {
  switch (plan.backend.kind) {
    case 'local':
      return 'local';
    case 'cloud':
      return resolveBackendUrl('cloud', env);
    case 'url':
      return resolveBackendUrl(plan.backend.url, env);
    default: {
      const unreachable: never = plan.backend;
      return unreachable;
    }
  }
}

/**
 * An `annotate` function for `formatPlan`, or undefined when there is no earlier run (or
 * `--fresh` ignores it): then every step simply runs.
 */
export async function resumeAnnotator(
  plan: Plan,
  options: { stateDir: string | undefined; fresh: boolean },
  ctx: CommandContext,
): Promise<((jobId: string, stepId: string) => string | undefined) | undefined> {
  if (options.fresh) return undefined;
  const runDir = runDirFor(stateDirFor(plan.workflowPath, options.stateDir, ctx.cwd), plan.workflowPath);
  const previous = await readRunState(runDir, { signal: ctx.signal });
  if (!previous) return undefined;
  const preview = await previewResume(plan, previous.state, { backendId: backendIdFor(plan, ctx.env), signal: ctx.signal });
  return (jobId, stepId) => preview.jobs.get(jobId)?.steps.get(stepId);
}
