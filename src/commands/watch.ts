/**
 * `talk watch <dir> --workflow <file>`: load and check the workflow, start the backend the
 * workflow names, and hand each settled bundle to the runner as its own job. The folder logic
 * is src/watch; this file only composes it with the workflow, the runner and the reporters.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { watch as watchFiles } from 'chokidar';
import { formatDuration } from '../core/abort.js';
import { formatDiagnosticLine } from '../core/diagnostics.js';
import { ExitCode, InterruptedError, UsageError, WorkflowInvalidError } from '../core/errors.js';
import { stamp, type NoticeEvent, type TalkEvent, type TalkEventInit } from '../core/events.js';
import { createReporter, type Reporter } from '../reporters/index.js';
import { stateDirFor } from '../state/index.js';
import { loadWorkflow, type Workflow } from '../workflow/index.js';
import { previewInbox, readBundleInstructions, resolveWatchConfig, watchFolder, type RunBundle, type WatchConfig, type WatchEvent } from '../watch/index.js';
import { planJobForItem } from '../plan/plan-run.js';
import type { CommandContext, SharedOptions } from './context.js';
import { createWatchJobRunner } from './watch-jobs.js';
import { resumeCommand } from './resume-command.js';

export interface WatchOptions extends SharedOptions {
  workflow: string | undefined;
  once: boolean;
  poll: boolean;
  onSuccess: 'keep' | 'move' | 'delete';
}

/** The workflow in force: replaced when an edited file validates, kept when it does not. */
interface CurrentWorkflow {
  workflow: Workflow;
  /** Bumped on every successful reload, for messages. */
  revision: number;
}

/** How often a bundle waiting for credits reads the balance again (it also looks when a bundle ends). */
const CREDITS_POLL_MS = 30_000;

/** `talk watch`. Returns the exit code: 0, or 1 when a bundle failed (with `--once`). */
export async function watchCommand(args: string[], options: WatchOptions, ctx: CommandContext): Promise<number> {
  const dirArg = args[0];
  if (dirArg === undefined) throw new UsageError('talk watch needs the folder to watch', { hint: 'run `talk watch inbox/ --workflow watch.yaml`' });
  if (options.workflow === undefined) throw new UsageError('talk watch needs --workflow <file>', { hint: 'run `talk watch inbox/ --workflow watch.yaml`' });
  const dir = path.resolve(ctx.cwd, dirArg);
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) throw new UsageError(`${dirArg} is not a folder`, { hint: 'create it first, or name the folder to watch' });

  const workflowFile = path.resolve(ctx.cwd, options.workflow);
  const again = resumeCommand(['watch', dirArg, '--workflow', options.workflow], options);
  const loaded = await load(workflowFile, options, ctx);
  if (!loaded.workflow) {
    for (const d of loaded.diagnostics) ctx.stderr.write(`${formatDiagnosticLine(d)}\n`);
    throw new WorkflowInvalidError(loaded.diagnostics);
  }
  if (loaded.workflow.inputs.length === 0) {
    // Without inputs no bundle file is ever uploaded: every job would pay for a turn that has
    // nothing to work on, then fail at export.
    throw new UsageError(`${options.workflow} uploads nothing, so the bundles' files would never reach the backend`, {
      hint: 'add a `watch:` key (e.g. `watch: { settle: 2s }`) so each bundle\'s portrait and voice are uploaded, or inputs from `${item.portrait}`',
    });
  }
  const current: CurrentWorkflow = { workflow: loaded.workflow, revision: 1 };
  const config = resolveWatchConfig(current.workflow.watch);
  const stateDir = stateDirFor(workflowFile, options.stateDir, ctx.cwd);
  if (options.dryRun) return previewWatch(dir, dirArg, current.workflow, config, [stateDir, workflowFile], options, ctx);

  const reporter: Reporter = createReporter({
    // A watcher is a long-lived log, not one run's progress view: `auto` means plain lines.
    name: options.reporter === 'auto' ? 'plain' : options.reporter,
    stdout: ctx.stdout,
    stderr: ctx.stderr,
    quiet: options.quiet,
    verbose: options.verbose,
    color: options.color,
    env: ctx.env,
    workflowFile: options.workflow,
    resumeCommand: again,
  });
  const emit = (init: TalkEventInit): void => reporter.emit(stamp(init));
  const notice = (level: NoticeEvent['level'], message: string, job?: string): void =>
    emit({ type: 'notice', level, message, ...(job === undefined ? {} : { job }) });

  const startedAt = Date.now();
  const outputs: Extract<TalkEvent, { type: 'run:done' }>['outputs'] = [];
  let creditsUsed = 0;

  const jobs = await createWatchJobRunner({
    workflow: () => current.workflow,
    options,
    ctx,
    stateDir,
    dir,
    emit: (event) => reporter.emit(event),
    // A watch folder keeps a bundle that does not fit waiting for credits; `--once` reports it.
    waitForCredits: options.once ? undefined : { pollMs: CREDITS_POLL_MS },
  });

  // The workflow file is watched too: a valid edit applies to new bundles, an invalid one is
  // reported and the version in force stays.
  const workflowWatcher = watchFiles(workflowFile, { ignoreInitial: true, usePolling: options.poll });
  let reloading = Promise.resolve();
  workflowWatcher.on('change', () => {
    reloading = reloading.then(async () => {
      const next = await load(workflowFile, options, ctx);
      if (!next.workflow) {
        const lines = next.diagnostics.map(formatDiagnosticLine).join('\n  ');
        notice('error', `the edited workflow is invalid; still using the previous version:\n  ${lines}`);
        return;
      }
      current.workflow = next.workflow;
      current.revision += 1;
      notice('info', `workflow reloaded (revision ${current.revision}); it applies to bundles that start from now on`);
    });
  });

  emit({ type: 'run:start', workflow: options.workflow, name: current.workflow.name, backend: jobs.backendLabel, jobs: 0, resumed: false });
  const runBundle: RunBundle = (job, signal) => jobs.runBundle(job, signal);
  let summary;
  try {
    summary = await watchFolder({
      dir,
      config,
      stateDir,
      runBundle,
      once: options.once,
      poll: options.poll,
      onSuccess: options.onSuccess,
      concurrency: options.concurrency ?? current.workflow.concurrency,
      signal: ctx.signal,
      exclude: [workflowFile],
      onEvent: (event) => {
        if (event.type === 'bundle:done' && event.output !== undefined) outputs.push({ job: event.name, step: 'export', path: event.output });
        describe(event, dir, notice);
      },
    });
  } finally {
    await workflowWatcher.close();
    await reloading;
    creditsUsed = jobs.creditsUsed();
    await jobs.close();
  }
  const status = summary.interrupted ? 'interrupted' : summary.failed > 0 ? 'failed' : 'success';
  emit({ type: 'run:done', status, outputs, creditsUsed, durationMs: Date.now() - startedAt });
  await reporter.close();
  if (summary.interrupted) {
    throw new InterruptedError('stopped watching: running bundles saved their state', { hint: `run \`${again}\` again to resume` });
  }
  return summary.failed > 0 ? 1 : 0;
}

async function load(file: string, options: WatchOptions, ctx: CommandContext): ReturnType<typeof loadWorkflow> {
  return loadWorkflow(file, { vars: options.vars, env: ctx.env, cwd: ctx.cwd, signal: ctx.signal });
}

/** One line per watcher event, as notices (the only channel out besides the runner's events). */
function describe(event: WatchEvent, dir: string, notice: (level: NoticeEvent['level'], message: string, job?: string) => void): void {
  const rel = (p: string): string => path.relative(dir, p) || p;
  switch (event.type) {
    case 'watch:ready':
      notice('info', `watching ${dir} (${event.files} file${event.files === 1 ? '' : 's'} found)`);
      return;
    case 'bundle:queued':
      notice('debug', `ready and queued (bundle ${event.id.slice(0, 12)})`, event.name);
      return;
    case 'bundle:start':
      notice('info', `started${event.attempt > 1 ? ` (attempt ${event.attempt})` : ''}${event.resumed ? ', resuming where it stopped' : ''}`, event.name);
      return;
    case 'bundle:done':
      notice('info', `done in ${formatDuration(event.durationMs)}${event.output === undefined ? '' : ` → ${rel(event.output)}`}`, event.name);
      return;
    case 'bundle:failed':
      notice(event.willRetry ? 'warn' : 'error', `attempt ${event.attempt} failed: ${event.error.message}${event.willRetry ? '; trying again' : '; moved to failed/'}`, event.name);
      return;
    case 'bundle:skipped':
      notice('info', `skipped: ${event.reason}`, event.name);
      return;
    case 'bundle:held':
      notice('debug', 'another watcher is processing this bundle', event.name);
      return;
    case 'bundle:interrupted':
      notice('warn', 'stopped; the next start resumes it', event.name);
      return;
    case 'bundle:incomplete':
      notice('warn', `incomplete: ${event.problems.join('; ')}`, event.name);
      return;
    case 'watch:error':
      notice('error', event.message);
      return;
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
}

/**
 * `--dry-run`: the bundles the folder holds now and what each would cost, from the same
 * grouping the watcher uses; nothing is sent, moved or recorded.
 */
async function previewWatch(dir: string, shownDir: string, workflow: Workflow, config: WatchConfig, exclude: string[], options: WatchOptions, ctx: CommandContext): Promise<number> {
  const resolve = (p: string): string => path.resolve(dir, p);
  const preview = await previewInbox(dir, config, [resolve(config.outputDir), resolve(config.processedDir), resolve(config.failedDir), ...exclude]);
  const bundles = [];
  for (const bundle of preview.ready) {
    const instructions = await readBundleInstructions(bundle, ctx.signal);
    const job = planJobForItem(workflow, { id: bundle.name, files: bundle.files, ...(instructions ? { instructions } : {}), output: path.join(resolve(config.outputDir), `${bundle.name}.mp4`) });
    const credits = job.steps.reduce((sum, step) => sum + (step.kind === 'instruction' ? step.estimatedCredits : 0), 0);
    bundles.push({ name: bundle.name, files: Object.fromEntries(Object.entries(bundle.files).map(([role, p]) => [role, path.relative(dir, p)])), credits });
  }
  const total = bundles.reduce((sum, b) => sum + b.credits, 0);
  if (options.reporter === 'json') {
    ctx.stdout.write(`${JSON.stringify({ dryRun: true, folder: dir, bundles, incomplete: preview.incomplete, credits: total })}\n`);
    return ExitCode.ok;
  }
  const lines = [`${shownDir}: ${bundles.length} ${bundles.length === 1 ? 'bundle' : 'bundles'} would be taken now (dry run: nothing is sent, moved or recorded)`];
  for (const b of bundles) lines.push(`  ${b.name}  ${Object.entries(b.files).map(([role, p]) => `${role} ${p}`).join(', ')}  about ${b.credits} credits`);
  for (const i of preview.incomplete) lines.push(`  ${i.name}  incomplete: ${[...i.missing.map((m) => `no ${m} file`), ...i.problems].join('; ')}`);
  lines.push(`credits: about ${total} for the bundles above; a generation costs about 100, an edit about 50`);
  ctx.stdout.write(`${lines.join('\n')}\n`);
  return ExitCode.ok;
}
