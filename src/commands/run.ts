import { CreditsError, ExitCode, UsageError, WorkflowInvalidError, exitCodeForStatus } from '../core/errors.js';
import { localBackendNotShared, queueAddressFrom } from './queue-knobs.js';
import { displayPath } from '../core/paths.js';
import { defaultProbeCacheDir, loadWorkflow } from '../workflow/index.js';
import { planRun, shardPlan, type Plan, type Shard } from '../plan/index.js';
import { formatDiagnostics } from '../reporters/diagnostics.js';
import { createReporter, diagnosticAnnotations, formatRequestLine, REPORT_NOTICE } from '../reporters/index.js';
import { stamp } from '../core/events.js';
import { executePlan } from '../runner/index.js';
import { sharedFileHasher } from '../core/hash-file.js';
import { adoptLegacyRunState, openStateStore, readRunState, runDirFor, stateDirFor } from '../state/index.js';
import { connectBackend } from './connect.js';
import { checkCreditsFit } from './credits-fit.js';
import type { RequestInfo } from '../backend/types.js';
import { backendIdFor, planViewPieces } from './resume-view.js';
import { reporterOutput, type CommandContext, type SharedOptions } from './context.js';
import { resumeCommand } from './resume-command.js';
import { findMediaTools, provenanceDeps } from './media-tools.js';
import { writeRunReport } from './report.js';

export interface RunOptions extends SharedOptions {
  /** Run the jobs the credits cover, in plan order, when not all fit (exit 3 for the rest). */
  partial: boolean;
  /** Write `report.html` at the end of a `foreach` run (`--no-report` turns it off). */
  report?: boolean;
  /** `--shard i/n`: run only this slice of the jobs, in a state of its own (CI matrices). */
  shard?: Shard | undefined;
  /** `--queue redis://…` (or `TALK_QUEUE`): enqueue the jobs for `talk worker`s instead of running them here. */
  queue?: string | undefined;
  /** With a queue: enqueue and return. */
  detach?: boolean;
}

/** Exit code for a run status (SPEC §1). */
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
  // One hasher for the whole run — preflight, the fit check, fingerprints, the upload cache:
  // every input is read once.
  const hasher = sharedFileHasher();
  // Preflight before any request (SPEC §1): outputs writable, inputs decoded; not for a dry run.
  const { workflow, diagnostics } = await loadWorkflow(file, { vars: options.vars, env: { ...ctx.env }, cwd: ctx.cwd, signal: ctx.signal, preflight: !options.dryRun && { probeCacheDir: defaultProbeCacheDir(ctx.env), hasher } });
  // Diagnostics go to stderr: in json mode stdout carries events only.
  if (diagnostics.length > 0) {
    ctx.stderr.write(`${formatDiagnostics(diagnostics, { color: options.color && ctx.stderr.isTTY })}\n`);
    ctx.stderr.write(diagnosticAnnotations(diagnostics, ctx.env));
  }
  if (!workflow) throw new WorkflowInvalidError(diagnostics, `${file} is invalid`);
  // --strict: a warning (e.g. an undeclared --var) stops the run before anything is spent.
  if (options.strict === true && diagnostics.some((d) => d.severity === 'warning')) throw new WorkflowInvalidError(diagnostics, `${file} has warnings (--strict)`);
  // planRun applies `--backend` over the workflow's `backend:`.
  const whole: Plan = planRun(workflow, { backend: options.backend, concurrency: options.concurrency });
  const shard = options.shard;
  const plan: Plan = shard ? shardPlan(whole, shard) : whole;
  const choice = plan.backend;
  const stateDir = stateDirFor(plan.workflowPath, options.stateDir, ctx.cwd);
  const backendId = backendIdFor(plan, ctx.env);
  const shown = displayPath(plan.workflowPath, ctx.cwd);
  const again = resumeCommand(['run', shown, ...(shard ? ['--shard', `${shard.index}/${shard.count}`] : [])], options, ctx.program);

  const address = queueAddressFrom(options.queue, ctx.env);
  if (options.detach === true && !address) throw new UsageError('--detach needs a queue', { hint: 'pass --queue redis://host:port[/db] (or set TALK_QUEUE), or leave --detach out' });
  // Workers cannot share an in-process backend: refused before anything, a dry run included.
  if (address && plan.backend.kind === 'local') throw localBackendNotShared('talk run --queue');
  if (address && !options.dryRun) {
    const followCommand = resumeCommand(['run', shown, ...(shard ? ['--shard', `${shard.index}/${shard.count}`] : []), '--queue', address.shown], options, ctx.program);
    // Imported here: bullmq and ioredis (1.6 MB of bundle) are for --queue alone.
    const { enqueueAndFollow } = await import('./run-queue.js');
    return enqueueAndFollow(plan, { address, backendId, shown, followCommand }, { ...options, detach: options.detach === true }, ctx);
  }

  if (options.dryRun) {
    // With --queue the jobs would go to the workers: the dry run says so (and enqueues nothing).
    if (json) ctx.stdout.write(`${JSON.stringify({ plan, ...(address ? { queue: address.shown } : {}) })}\n`);
    else {
      for (const piece of await planViewPieces(plan, { stateDir: options.stateDir, fresh: options.fresh, shard }, ctx)) ctx.stdout.write(piece);
      if (address) ctx.stdout.write(`with --queue: ${plan.jobs.length === 1 ? 'this job' : `these ${plan.jobs.length} jobs`} would be enqueued on ${address.shown} for the workers (jobs already queued are not added again); nothing was enqueued\n`);
    }
    return ExitCode.ok;
  }

  await adoptLegacyRunState(stateDir, plan.workflowPath, async (dir) => (await readRunState(dir, { signal: ctx.signal }))?.state.backend);
  const store = await openStateStore({ dir: runDirFor(stateDir, plan.workflowPath, backendId, shard), workflowPath: plan.workflowPath, name: plan.name, fresh: options.fresh, signal: ctx.signal });
  // Which backend this state belongs to, also when the run ends before it reaches it.
  if (store.state.backend !== backendId) await store.updateRun({ backend: backendId });
  if (shard && (store.state.shard?.index !== shard.index || store.state.shard.count !== shard.count)) await store.updateRun({ shard });
  const reporter = createReporter({
    name: options.reporter,
    ...reporterOutput(options, ctx),
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
    connection = await connectBackend(choice, stateDir, ctx, { onRequest, hasher });
    const connected = connection;
    await checkCreditsFit(plan, store.state, { backendId: connected.backendId, connect: () => Promise.resolve(connected) }, { partial: options.partial, hasher, signal: ctx.signal, again }).catch(async (error: unknown) => {
      // Refused before anything was sent: the state says so, not "running".
      if (error instanceof CreditsError && !store.hadPrevious) await store.updateRun({ status: 'credits' });
      throw error;
    });
    const provenance = await provenanceDeps(ctx.env, { talk: ctx.version, node: ctx.nodeVersion ?? 'unknown' }, choice.kind === 'local', ctx.signal);
    const outcome = await executePlan(plan, {
      hasher,
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
      // Stated on stderr in every mode; the command that resumes is said once: by the
      // summary where there is one, here when stdout carries NDJSON only.
      ctx.stderr.write(`interrupted: state saved; renders already started keep running at the backend.\n${json ? `resume with: ${again}\n` : ''}`);
    }
    return exitCodeForStatus(outcome.status);
  } finally {
    await reporter.close();
    await store.close().catch((error: unknown) => ctx.stderr.write(`talk: ${(error as Error).message}\n`));
    await connection?.close();
  }
}
