/**
 * The job side of `talk watch`: the backend the workflow names (an in-process local backend for
 * `local`), one backend client and one set of limiters for the whole watch, and per bundle a
 * plan job run by the same runner `talk run` uses. Each bundle keeps its run state in its own
 * run dir (keyed by the bundle id) so that a restarted watcher resumes it — session, edits and
 * a render in flight — and so two watchers, each holding different bundles' leases, never
 * contend for one state lock.
 */
import { provenanceDeps } from './media-tools.js';
import path from 'node:path';
import { InterruptedError } from '../core/errors.js';
import type { EventSink } from '../core/events.js';
import { planJobForItem, planRun } from '../plan/plan-run.js';
import { AccountTurns, CreditBudget, createLimiters, createRunner, type JobOutcome } from '../runner/index.js';
import { openStateStore } from '../state/index.js';
import type { Workflow } from '../workflow/index.js';
import { provenancePath } from '../core/paths.js';
import { publishWaitingCredits, watchStateDir, type BundleError, type BundleResult, type RunBundle } from '../watch/index.js';
import { chooseBackend, connectBackend } from './connect.js';
import type { CommandContext, SharedOptions } from './context.js';
import { unreachable } from '../core/unreachable.js';
import { systemClock, type Clock } from '../core/clock.js';

/** What the watch command needs from the job side. */
export interface WatchJobRunner {
  /** `local`, or the base URL, for `run:start`. */
  backendLabel: string;
  runBundle: RunBundle;
  /** Credits charged by bundles of this watch so far. */
  creditsUsed(): number;
  /** Close the client and stop an in-process local backend. */
  close(): Promise<void>;
}

/** Options of `createWatchJobRunner`. */
export interface WatchJobOptions {
  /** The workflow in force now (it may be reloaded between bundles). */
  workflow: () => Workflow;
  options: SharedOptions;
  ctx: CommandContext;
  stateDir: string;
  /** The watched folder (absolute): bundles' run dirs live under its watch state. */
  dir: string;
  emit: EventSink;
  /** Let a bundle that does not fit in the credits wait for them (off with `--once`). */
  waitForCredits?: { pollMs: number } | undefined;
  /** Dates the waiting-credits sidecars; the watcher's clock. Default: the system's. */
  clock?: Clock;
}

/** Start the backend and return a `runBundle` for the watcher. */
export async function createWatchJobRunner(o: WatchJobOptions): Promise<WatchJobRunner> {
  const first = planRun(o.workflow(), { backend: o.options.backend, concurrency: o.options.concurrency });
  const clock = o.clock ?? systemClock;
  // The same connection `talk run` makes: an in-process local backend keeps its data beside the
  // state, so a restarted watcher re-attaches renders it left in flight.
  const connection = await connectBackend(chooseBackend(o.options.backend, first.backend), o.stateDir, o.ctx);
  const { client, backendId } = connection;
  // One set of limiters for every bundle: the workflow's concurrency and limits hold across
  // the whole watch, as they do across the jobs of one `talk run`.
  const limits = { concurrency: first.concurrency, uploads: first.limits.uploads, renders: first.limits.renders };
  const limiters = createLimiters(limits);
  // One set of credit books and one record of the account's turns for every bundle: bundles
  // that run side by side spend from one account, so they are admitted against one balance
  // (and `budget.credits` is what this watcher may spend), and disconnect recovery weighs each
  // bundle's turns against the others'.
  const credits = new CreditBudget(first.budget?.credits, 0);
  const turns = new AccountTurns();
  const runsDir = path.join(watchStateDir(o.stateDir, o.dir), 'runs');
  const provenance = await provenanceDeps(o.ctx.env, { talk: o.ctx.version, node: o.ctx.nodeVersion ?? 'unknown' }, connection.local !== undefined, o.ctx.signal);

  const runBundle: RunBundle = async (job, signal): Promise<BundleResult> => {
    const workflow = o.workflow();
    const plan = planRun(workflow, { backend: o.options.backend, concurrency: o.options.concurrency });
    const planJob = planJobForItem(workflow, { id: job.name, files: job.files, instructions: job.instructions, output: job.output });
    const store = await openStateStore({ dir: path.join(runsDir, job.id), workflowPath: workflow.file, name: `${workflow.name}:${job.name}`, signal });
    try {
      await store.updateRun({ status: 'running', finished: false, backendUrl: client.baseUrl });
      const runner = createRunner({
        client,
        store,
        emit: o.emit,
        signal,
        backendId,
        limits,
        limiters,
        credits,
        turns,
        // A bundle that waits for credits says so in its sidecar, where its outcome will be.
        waitForCredits: o.waitForCredits && {
          ...o.waitForCredits,
          onWait: (_jobId, refusal) => publishWaitingCredits(provenancePath(job.output), job.name, refusal.needs, refusal.available, clock),
        },
        language: plan.language,
        provenance,
      });
      const outcome = await runner.runJob({ ...plan, jobs: [planJob] }, planJob);
      if (runner.fatal) throw runner.fatal;
      const state = store.job(planJob.id);
      // The books are shared by every bundle: this bundle's share is what its own turns booked.
      const bundleCredits = Object.values(state?.steps ?? {}).reduce((sum, s) => sum + (s.turn?.creditsUsed ?? 0), 0);
      const renderIds = Object.values(state?.steps ?? {}).flatMap((s) => s.renderIds ?? (s.render ? [s.render.id] : []));
      const facts = {
        sessionIds: state?.sessionId === undefined ? [] : [state.sessionId],
        renderIds,
        creditsUsed: bundleCredits,
      };
      switch (outcome.status) {
        case 'done':
          await store.updateRun({ status: 'success', finished: true });
          return { status: 'done', ...facts, ...(outcome.outputs[0] ? { output: outcome.outputs[0].path } : {}) };
        case 'interrupted':
          await store.updateRun({ status: 'interrupted' });
          throw new InterruptedError(`${job.name} stopped; its state is saved`);
        case 'failed':
        case 'credits':
        case 'not-started':
          await store.updateRun({ status: outcome.status === 'not-started' ? 'credits' : outcome.status });
          return { status: 'failed', error: bundleError(outcome, job.name), ...facts };
        default:
          return unreachable(outcome.status, 'status');
      }
    } finally {
      await store.close();
    }
  };

  return {
    backendLabel: backendId,
    runBundle,
    creditsUsed: () => credits.spentThisRun,
    close: () => connection.close(),
  };
}

/** The job's first failure; a credits stop without a step error still says what to do. */
function bundleError(outcome: JobOutcome, name: string): BundleError {
  if (outcome.error) return outcome.error;
  if (outcome.status === 'not-started') {
    const n = outcome.notStarted;
    return { code: 'credits', message: `${name} was not started: it needs about ${n?.needs ?? 0} credits and ${n?.available ?? 0} are left for it`, hint: 'top up or bind the account (`talk credits` shows the balance), then drop the files again' };
  }
  if (outcome.status === 'credits') {
    return { code: 'credits', message: `${name} was not run: the account is out of credits`, hint: 'top up or bind the account (`talk credits` shows the balance), then drop the files again' };
  }
  return { code: outcome.status, message: `${name} failed` };
}
