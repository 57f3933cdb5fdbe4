import { ExitCode, UsageError, WorkflowInvalidError } from '../core/errors.js';
import { displayPath } from '../core/paths.js';
import { loadWorkflow } from '../workflow/index.js';
import { formatPlan, planRun, type Plan } from '../plan/index.js';
import { formatDiagnostics } from '../reporters/diagnostics.js';
import { createReporter, diagnosticAnnotations, formatRequestLine, REPORT_NOTICE } from '../reporters/index.js';
import { stamp } from '../core/events.js';
import { executePlan } from '../runner/index.js';
import { openStateStore, runDirFor, stateDirFor } from '../state/index.js';
import { connectBackend } from './connect.js';
import type { RequestInfo } from '../backend/types.js';
import { resumeAnnotator } from './resume-view.js';
import type { CommandContext, SharedOptions } from './context.js';
import { resumeCommand } from './resume-command.js';
import { findMediaTools, provenanceDeps } from './media-tools.js';
import { writeRunReport } from './report.js';

/** `talk run`'s options: the shared flags, and `--no-report`. */
export type RunOptions = SharedOptions & {
  /** Write `report.html` at the end of a `foreach` run (`--no-report` turns it off). */
  report?: boolean;
};

/** Exit code for a run status (SPEC §1). */
function exitFor(status: 'success' | 'failed' | 'interrupted' | 'credits'): number {
  switch (status) {
    case 'success':
      return ExitCode.ok;
    case 'failed':
      return ExitCode.failed;
    case 'credits':
      return ExitCode.credits;
    case 'interrupted':
      return ExitCode.interrupted;
    default: {
      const unreachable: never = status;
      return unreachable;
    }
  }
}

/**
 * `talk run <workflow>...`: validate, plan, execute; an unfinished run of the same workflow is
 * continued (SPEC §3). Workflows run one after another; the first interrupt stops the rest.
 * Returns the most severe exit code (130 > 3 > 2 > 1 > 0).
 */
export async function runCommand(args: string[], options: RunOptions, ctx: CommandContext): Promise<number> {
  if (args.length === 0) throw new UsageError('talk run needs a workflow file', { hint: 'e.g. talk run examples/hello.yaml' });
  const rank = [ExitCode.ok, ExitCode.failed, ExitCode.invalid, ExitCode.credits, ExitCode.interrupted] as number[];
  let worst: number = ExitCode.ok;
  for (const file of args) {
    if (ctx.signal.aborted) break;
    const code = await runOne(file, options, ctx);
    if (rank.indexOf(code) > rank.indexOf(worst)) worst = code;
    if (code === ExitCode.interrupted) break;
  }
  return worst;
}

async function runOne(file: string, options: RunOptions, ctx: CommandContext): Promise<number> {
  const json = options.reporter === 'json';
  const { workflow, diagnostics } = await loadWorkflow(file, { vars: options.vars, env: { ...ctx.env }, cwd: ctx.cwd, signal: ctx.signal });
  // Diagnostics go to stderr: in json mode stdout carries events only.
  if (diagnostics.length > 0) {
    ctx.stderr.write(`${formatDiagnostics(diagnostics, { color: options.color && ctx.stderr.isTTY })}\n`);
    ctx.stderr.write(diagnosticAnnotations(diagnostics, ctx.env));
  }
  if (!workflow) throw new WorkflowInvalidError(diagnostics, `${file} is invalid`);
  // planRun applies `--backend` over the workflow's `backend:`.
  const plan: Plan = planRun(workflow, { backend: options.backend, concurrency: options.concurrency });
  const choice = plan.backend;
  const stateDir = stateDirFor(plan.workflowPath, options.stateDir, ctx.cwd);
  const runDir = runDirFor(stateDir, plan.workflowPath);
  const shown = displayPath(plan.workflowPath, ctx.cwd);
  const again = resumeCommand(['run', shown], options);

  if (options.dryRun) {
    if (json) ctx.stdout.write(`${JSON.stringify({ plan })}\n`);
    else {
      const annotate = await resumeAnnotator(plan, { stateDir: options.stateDir, fresh: options.fresh }, ctx);
      ctx.stdout.write(formatPlan(plan, { cwd: ctx.cwd, ...(annotate ? { annotate } : {}) }));
    }
    return ExitCode.ok;
  }

  const store = await openStateStore({ dir: runDir, workflowPath: plan.workflowPath, name: plan.name, fresh: options.fresh, signal: ctx.signal });
  const reporter = createReporter({
    name: options.reporter,
    stdout: ctx.stdout,
    stderr: ctx.stderr,
    quiet: options.quiet,
    verbose: options.verbose,
    color: options.color,
    env: ctx.env,
    workflowFile: shown,
    resumeCommand: again,
    plan,
    cwd: ctx.cwd,
  });
  let connection;
  try {
    // --verbose: one line per request (method, route, status, duration), as debug notices.
    const onRequest = options.verbose
      ? (info: RequestInfo) => reporter.emit(stamp({ type: 'notice', level: 'debug', message: formatRequestLine(info) }))
      : undefined;
    connection = await connectBackend(choice, stateDir, ctx, { onRequest });
    const provenance = await provenanceDeps(ctx.env, { talk: ctx.version, node: ctx.nodeVersion ?? 'unknown' }, choice.kind === 'local', ctx.signal);
    const outcome = await executePlan(plan, {
      client: connection.client,
      store,
      emit: (event) => reporter.emit(event),
      signal: ctx.signal,
      backendId: connection.backendId,
      limits: { concurrency: plan.concurrency, uploads: plan.limits.uploads, renders: plan.limits.renders },
      budget: plan.budget,
      failFast: options.failFast,
      language: plan.language,
      // The claim link opens the project in NemoVideo's web editor: only the cloud has one.
      projectLinks: choice.kind === 'cloud',
      provenance,
    });
    if (options.report !== false && plan.jobs.some((j) => j.item !== undefined) && outcome.status !== 'interrupted') {
      // The report is a view: one that cannot be written is a warning, never a failed run.
      try {
        const file = await writeRunReport({ plan, state: store.state, tools: findMediaTools(ctx.env), cwd: ctx.cwd, signal: ctx.signal, wallTimeMs: outcome.durationMs });
        reporter.emit(stamp({ type: 'notice', level: 'info', message: `${REPORT_NOTICE}${displayPath(file, ctx.cwd)}` }));
      } catch (error) {
        reporter.emit(stamp({ type: 'notice', level: 'warn', message: `could not write the run report: ${(error as Error).message}` }));
      }
    }
    await reporter.close();
    if (outcome.status === 'interrupted') {
      // Stated on stderr in every mode: the one thing to do next.
      ctx.stderr.write(`interrupted: state saved; renders already started keep running at the backend.\nresume with: ${again}\n`);
    }
    return exitFor(outcome.status);
  } finally {
    await reporter.close();
    await store.close().catch((error: unknown) => ctx.stderr.write(`talk: ${(error as Error).message}\n`));
    await connection?.close();
  }
}
