import { ExitCode, UsageError } from '../core/errors.js';
import { loadWorkflow } from '../workflow/index.js';
import { estimateCredits, planRun } from '../plan/index.js';
import { formatDiagnostics } from '../reporters/diagnostics.js';
import type { CommandContext, SharedOptions } from './context.js';
import { planViewPieces } from './resume-view.js';

export interface PlanOptions extends SharedOptions {
  json: boolean;
}

/**
 * `talk plan <file>`: the jobs, their steps in order with needs, and the credit estimate. No
 * network. An invalid workflow prints its diagnostics and exits 2.
 */
export async function planCommand(args: string[], options: PlanOptions, ctx: CommandContext): Promise<number> {
  const file = args[0];
  if (file === undefined) throw new UsageError('talk plan needs a workflow file', { hint: 'e.g. talk plan examples/hello.yaml' });
  const { workflow, diagnostics } = await loadWorkflow(file, { vars: options.vars, env: { ...ctx.env }, cwd: ctx.cwd, signal: ctx.signal });
  const json = options.json || options.reporter === 'json';
  if (!workflow) {
    if (json) ctx.stdout.write(`${JSON.stringify({ valid: false, diagnostics: diagnostics.map(({ sourceLine: _s, ...d }) => d) })}\n`);
    else ctx.stderr.write(formatDiagnostics(diagnostics, { color: options.color && ctx.stderr.isTTY }));
    return ExitCode.invalid;
  }
  if (options.strict === true && diagnostics.some((d) => d.severity === 'warning')) {
    ctx.stderr.write(formatDiagnostics(diagnostics, { color: options.color && ctx.stderr.isTTY }));
    return ExitCode.invalid;
  }
  // Warnings (e.g. a foreach that matches nothing) still deserve a look.
  if (diagnostics.length > 0 && !json) ctx.stderr.write(`${formatDiagnostics(diagnostics, { color: options.color && ctx.stderr.isTTY })}\n`);
  const plan = planRun(workflow, { backend: options.backend, concurrency: options.concurrency });
  if (json) {
    ctx.stdout.write(`${JSON.stringify({ valid: true, plan, estimate: estimateCredits(plan), diagnostics: diagnostics.map(({ sourceLine: _s, ...d }) => d) })}\n`);
  } else {
    for (const piece of await planViewPieces(plan, { stateDir: options.stateDir, fresh: options.fresh }, ctx)) ctx.stdout.write(piece);
  }
  return ExitCode.ok;
}
