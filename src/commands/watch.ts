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
import { displayPath } from '../core/paths.js';
import { InterruptedError, UsageError, WorkflowInvalidError } from '../core/errors.js';
import { stamp, type NoticeEvent, type TalkEvent, type TalkEventInit } from '../core/events.js';
import { createReporter, type Reporter } from '../reporters/index.js';
import { stateDirFor } from '../state/index.js';
import { loadWorkflow, type Workflow } from '../workflow/index.js';
import { previewFolder, resolveWatchConfig, watchFolder, type RunBundle, type WatchConfig, type WatchEvent } from '../watch/index.js';
import { estimateCredits } from '../plan/index.js';
import { backendChoice, planJobForItem, planRun } from '../plan/plan-run.js';
import { reporterOutput, type CommandContext, type SharedOptions } from './context.js';
import { createWatchJobRunner } from './watch-jobs.js';
import { findMediaTools } from './media-tools.js';
import { writeWatchIndex } from './report.js';
import { localBackendNotShared, queueAddressFrom } from './queue-knobs.js';
import type { QueueAddress } from '../queue/connection.js';
import { resumeCommand } from './resume-command.js';
import { unreachable } from '../core/unreachable.js';
import { systemClock, type Clock } from '../core/clock.js';

export interface WatchOptions extends SharedOptions {
  workflow: string | undefined;
  /** `--queue redis://…` (or `TALK_QUEUE`): bundles run on the queue's workers. */
  queue?: string | undefined;
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
  const again = resumeCommand(['watch', dirArg, '--workflow', options.workflow, ...(options.queue ? ['--queue', options.queue] : [])], options, ctx.program);
  const loaded = await load(workflowFile, options, ctx);
  // --strict: a warning (e.g. an undeclared --var) stops the watcher before it takes a bundle.
  const strictStop = options.strict === true && loaded.diagnostics.some((d) => d.severity === 'warning');
  if (!loaded.workflow || strictStop) {
    for (const d of loaded.diagnostics) ctx.stderr.write(`${formatDiagnosticLine(d)}\n`);
    throw new WorkflowInvalidError(loaded.diagnostics, strictStop ? `${options.workflow} has warnings (--strict)` : undefined);
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
  // One clock for the watch: the watcher's settle window, its dates, and this command's timings.
  const clock: Clock = systemClock;
  const address = queueAddressFrom(options.queue, ctx.env);
  // Workers cannot share an in-process backend: refused before anything, a dry run included.
  if (address && backendChoice(options.backend, current.workflow.backend).kind === 'local') throw localBackendNotShared('talk watch --queue');
  if (options.dryRun) return previewWatch(dir, current.workflow, config, stateDir, workflowFile, options, ctx, clock, address);

  const reporter: Reporter = createReporter({
    // A watcher is a long-lived log, not one run's progress view: `auto` means plain lines.
    name: options.reporter === 'auto' ? 'plain' : options.reporter,
    ...reporterOutput(options, ctx),
    workflowFile: options.workflow,
    resumeCommand: again,
  });
  const emit = (init: TalkEventInit): void => reporter.emit(stamp(init));
  const notice = (level: NoticeEvent['level'], message: string, job?: string): void =>
    emit({ type: 'notice', level, message, ...(job === undefined ? {} : { job }) });

  const startedAt = clock.now();
  const outputs: Extract<TalkEvent, { type: 'run:done' }>['outputs'] = [];
  let creditsUsed = 0;

  // watch-queue.js is imported only with --queue: bullmq and ioredis are for it alone.
  const jobs = address
    ? await (await import('./watch-queue.js')).createQueueBundleRunner({ address, workflow: () => current.workflow, options, ctx, emit: (event) => reporter.emit(event) })
    : await createWatchJobRunner({
    workflow: () => current.workflow,
    options,
    ctx,
    stateDir,
    dir,
    emit: (event) => reporter.emit(event),
    // A watch folder keeps a bundle that does not fit waiting for credits; `--once` reports it.
    waitForCredits: options.once ? undefined : { pollMs: CREDITS_POLL_MS },
    clock,
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

  // out/index.html follows the bundles: written again (once at a time, the latest state) after
  // each bundle's outcome is published. A view: one that cannot be written is a warning.
  const outputDir = path.resolve(dir, config.outputDir);
  const index = coalesced(async () => {
    try {
      await writeWatchIndex({ outputDir, name: current.workflow.name, workflow: displayPath(workflowFile, ctx.cwd), tools: findMediaTools(ctx.env), signal: ctx.signal });
    } catch (error) {
      if (!ctx.signal.aborted) notice('warn', `could not write ${displayPath(path.join(outputDir, 'index.html'), ctx.cwd)}: ${(error as Error).message}`);
    }
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
      clock,
      onEvent: (event) => {
        if (event.type === 'bundle:done' && event.output !== undefined) outputs.push({ job: event.name, step: 'export', path: event.output });
        if (event.type === 'bundle:done' || event.type === 'bundle:incomplete' || (event.type === 'bundle:failed' && !event.willRetry)) index.request();
        describe(event, dir, notice);
      },
    });
  } finally {
    await workflowWatcher.close();
    await reloading;
    await index.idle();
    creditsUsed = jobs.creditsUsed();
    await jobs.close();
  }
  const status = summary.interrupted ? 'interrupted' : summary.failed > 0 ? 'failed' : 'success';
  emit({ type: 'run:done', status, outputs, creditsUsed, durationMs: clock.now() - startedAt });
  await reporter.close();
  if (summary.interrupted) {
    throw new InterruptedError('stopped watching: running bundles saved their state', { hint: `run \`${again}\` again to resume` });
  }
  return summary.failed > 0 ? 1 : 0;
}

/**
 * `talk watch --dry-run`: the bundles a watcher would take now and what each would cost, by the
 * plan's price list; nothing is written, moved or sent (no backend is started).
 */
async function previewWatch(dir: string, workflow: Workflow, config: WatchConfig, stateDir: string, workflowFile: string, options: WatchOptions, ctx: CommandContext, clock: Clock, queue: QueueAddress | undefined): Promise<number> {
  const entries = await previewFolder({ dir, config, stateDir, exclude: [workflowFile], clock, signal: ctx.signal });
  const plan = planRun(workflow, { backend: options.backend, concurrency: options.concurrency });
  const rows = entries.map((entry) => {
    if (entry.kind !== 'take') return { ...entry, credits: 0 };
    const job = planJobForItem(workflow, { id: entry.name, files: entry.bundle.files, instructions: entry.instructions, output: entry.output });
    const credits = estimateCredits({ ...plan, jobs: [job] }).total;
    return { kind: entry.kind, name: entry.name, files: entry.bundle.files, output: entry.output, resumed: entry.resumed, credits };
  });
  const total = rows.reduce((sum, r) => sum + r.credits, 0);
  const taken = rows.filter((r) => r.kind === 'take').length;
  if (options.reporter === 'json') {
    ctx.stdout.write(`${JSON.stringify({ dryRun: true, bundles: rows, credits: total, ...(queue ? { queue: queue.shown } : {}) })}\n`);
    return 0;
  }
  const rel = (p: string): string => path.relative(ctx.cwd, p) || p;
  const width = Math.max(4, ...rows.map((r) => r.name.length));
  const lines = [`dry run: ${taken} ${taken === 1 ? 'bundle' : 'bundles'} would be taken now from ${rel(dir)}${queue ? ` and queued for the workers on ${queue.shown}` : ''} · about ${total} credits; nothing was changed`];
  for (const row of rows) {
    const name = row.name.padEnd(width);
    switch (row.kind) {
      case 'take':
        lines.push(`  take      ${name}  ≈ ${row.credits} credits → ${rel(row.output)}${row.resumed ? ' (resumes an earlier attempt)' : ''}`);
        break;
      case 'skip':
        lines.push(`  skip      ${name}  ${row.reason}`);
        break;
      case 'settling':
        lines.push(`  settling  ${name}  still being written; taken once it has not changed for ${formatDuration(config.settleMs)}`);
        break;
      case 'incomplete':
        lines.push(`  wait      ${name}  ${row.problems.join('; ')}`);
        break;
      default:
        return unreachable(row, 'row');
    }
  }
  ctx.stdout.write(`${lines.join('\n')}\n`);
  return 0;
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
    default:
      return unreachable(event, 'event');
  }
}

/**
 * A task run once at a time: a request while it runs asks for one more run after it (however
 * many requests came), so the last run sees the latest state. `idle` resolves when none is due.
 */
function coalesced(task: () => Promise<void>): { request(): void; idle(): Promise<void> } {
  let running: Promise<void> | undefined;
  let again = false;
  const loop = async (): Promise<void> => {
    do {
      again = false;
      await task();
    } while (again);
    running = undefined;
  };
  return {
    request() {
      if (running) again = true;
      else running = loop();
    },
    idle: () => running ?? Promise.resolve(),
  };
}
