/**
 * The runner: executes a `Plan` against a `BackendClient`, one job per `foreach` item, each job
 * with its own session, its steps as a graph by `needs` (plus the order a session imposes, see
 * `dependenciesOf`). It never knows which backend it talks to.
 *
 * Two entry points:
 * - `executePlan(plan, deps)` for `talk run`: all jobs, `run:start` … `run:done`, the outcome.
 * - `createRunner(deps)` for jobs that arrive over time (`talk watch`): `runJob(plan, job)` may be
 *   called whenever a job is ready; every call shares the same limiters, budget and stop switch.
 *   Emit `run:start`/`run:done` yourself if you want them.
 *
 * A step runs once per job however it is reached (its promise is memoised), its attempts are
 * bounded by `retries` for transient errors only, and it is cut at its `timeout`. A first
 * SIGINT/SIGTERM aborts `deps.signal`: no new step starts, in-flight requests are cancelled,
 * their recorded intent stays on disk (a render keeps running at the backend), and the job is
 * left resumable.
 *
 * Why one file of this size: job scheduling, the step lifecycle (intent, attempts, backoff,
 * timeouts, skip decisions) and the run's outcome share the same closures over limiters,
 * budget and stop switch; the step executors (steps.ts), resume decisions (resume.ts) and
 * credit books (budget.ts) are already their own modules.
 */
import { setMaxListeners } from 'node:events';
import { stat } from 'node:fs/promises';
import { formatDuration, sleep, withDeadline } from '../core/abort.js';
import { stamp, type EventSink, type RunStatus, type TalkEventInit } from '../core/events.js';
import { TalkError } from '../core/errors.js';
import type { SessionId } from '../core/ids.js';
import { asSessionId, asTaskId } from '../core/ids.js';
import { backoffDelay } from '../backend/index.js';
import type { BackendClient } from '../backend/types.js';
import { planListing, type Plan, type PlanJob, type PlanStep } from '../plan/types.js';
import { StateWriteError, type StateStore } from '../state/state-store.js';
import type { StepState } from '../state/types.js';
import { CreditBudget, type AdmissionRefusal, type SharedCredits } from './budget.js';
import { describeError, isCreditsError, isSessionLost, isTransient, runStatusOf, statusWhenStopped, StopSwitch, type StopReason } from './failure.js';
import { cachedHasher, dependenciesOf, fingerprintJob, hashFile, type FileHasher, type StepFingerprint } from './fingerprint.js';
import { createLimiters, type Limiters } from './limiters.js';
import { decideJob, remainingCredits, type JobDecision, type StepDecision } from './resume.js';
import { runCredits, runExport, runInstruction, runUpload, TurnReopenedError, type StepContext, type StepResultInfo } from './steps.js';
import { AccountTurns } from './account-turns.js';
import { writeProvenance, type ProvenanceDeps, type StepTiming } from './provenance.js';
import { unreachable } from '../core/unreachable.js';
import { systemClock, type Clock } from '../core/clock.js';

/** The longest wait between two attempts of a step. */
const STEP_BACKOFF_CAP_MS = 30_000;
/** While a refusal by balance waits for this run's turns in flight to settle, the balance is read again at least this often. */
const SETTLE_RECHECK_MS = 5_000;
/** …and this often while only turns elsewhere (other workers of a queue) are open: their settling is seen when read. */
const ELSEWHERE_RECHECK_MS = 250;

/** What the runner needs. Everything with an edge to the outside world is passed in. */
export interface RunnerDeps {
  client: BackendClient;
  store: StateStore;
  /** Receives every event (the NDJSON of SPEC §1). */
  emit: EventSink;
  /** Aborts on the first SIGINT/SIGTERM. */
  signal: AbortSignal;
  /**
   * Stable identity of the backend for fingerprints: `local` for the in-process backend (its
   * port changes run to run, its data does not), else the base URL.
   */
  backendId: string;
  /** Jobs in flight, uploads in flight, renders in flight. */
  limits: { concurrency: number; uploads: number; renders: number };
  budget?: { credits: number } | undefined;
  /** Stop starting new work after the first failure. */
  failFast?: boolean | undefined;
  /** Language sent when creating sessions. */
  language: string;
  /**
   * The credit books jobs are admitted against; share one between runners whose jobs spend
   * from the same account and budget (`talk watch`). Created from `budget` when absent.
   */
  credits?: CreditBudget | undefined;
  /**
   * Let a job that does not fit wait instead of ending `not-started`: it looks again when
   * another job ends and every `pollMs` (the balance may be topped up), until admitted or
   * stopped (`talk watch`: a bundle is never half-paid, and never dropped for credits).
   */
  waitForCredits?: { pollMs: number; onWait?: (jobId: string, refusal: AdmissionRefusal) => Promise<void> } | undefined;
  /**
   * Reservations shared with other processes on the same account (a queue's workers): a job is
   * admitted only when these admit it too, and its hold there goes back when it ends.
   */
  sharedCredits?: SharedCredits | undefined;
  /** The account's turns, for disconnect recovery; share like `credits`. Seeded from `store`. */
  turns?: AccountTurns | undefined;
  /** Shared limiters (created from `limits` when absent). */
  limiters?: Limiters | undefined;
  /** Content hasher for inputs and outputs (a per-run cache by default). */
  hasher?: FileHasher | undefined;
  /**
   * Checks a job's fingerprints as soon as they are computed, before anything of the job is
   * sent (a queue worker: the inputs it sees must be the ones the job was enqueued with). An
   * error returned fails every step of the job with it. Part of the runner's own fingerprinting,
   * so the inputs are read once for both.
   */
  checkFingerprints?: ((job: PlanJob, fingerprints: ReadonlyMap<string, StepFingerprint>) => Error | undefined) | undefined;
  /** First delay between step attempts (default 1 s; doubles, with jitter). */
  retryBaseMs?: number | undefined;
  /** Least time between two `step:progress` events of one step (default 250 ms). */
  progressIntervalMs?: number | undefined;
  /**
   * Put the browser link of each job's project (the claim link, CONTRACT §2.3) on the
   * `step:done` of its last step. On for the cloud, where the link opens the NemoVideo editor.
   */
  projectLinks?: boolean | undefined;
  /** Write `<output>.talk.json` beside every verified output (see provenance.ts). */
  provenance?: ProvenanceDeps | undefined;
  /** Durations, timestamps and progress pacing (default: the system clock). */
  clock?: Clock | undefined;
}

/** One written output. */
export interface OutputInfo {
  job: string;
  step: string;
  path: string;
  sha256?: string;
  bytes?: number;
}

/**
 * How a job ended. `not-started`: admission found its remaining cost does not fit in what the
 * budget and the balance leave (nothing was uploaded, no session made); `credits`: a paid step
 * was refused for credits after the job started.
 */
export interface JobOutcome {
  job: string;
  status: 'done' | 'failed' | 'interrupted' | 'credits' | 'not-started';
  /** For a `not-started` job: what it needed and what was left for it. */
  notStarted?: AdmissionRefusal;
  outputs: OutputInfo[];
  /** The first failure, when the job failed. */
  error?: { code: string; message: string; hint?: string };
}

/** How a run ended. */
export interface RunOutcome {
  status: RunStatus;
  jobs: JobOutcome[];
  outputs: OutputInfo[];
  creditsUsed: number;
  durationMs: number;
}

/** A runner whose jobs share limiters, budget and the stop switch. */
export interface Runner {
  runJob(plan: Plan, job: PlanJob): Promise<JobOutcome>;
  /** Credits charged by this runner's jobs so far. */
  readonly creditsUsed: number;
  /** Why new work is no longer started, if it is not. */
  readonly stopped: StopReason | undefined;
  /** A fatal error (a failed state write) that must end the run. */
  readonly fatal: TalkError | undefined;
}

/**
 * How a step ended. `session-lost`: the backend no longer knows the job's session, and the job
 * starts over in a new one; such a step has no terminal event yet (runJob gives it one if the
 * job cannot start over).
 */
type StepEnd = 'done' | 'failed' | 'skipped' | 'interrupted' | 'credits' | 'session-lost' | 'recheck';

/**
 * Which pass over a job this is: the first; one in a new session after the backend lost the
 * job's session; or one that checks instructions an export reopened (`TurnReopenedError`).
 * Each later pass happens at most once.
 */
type JobPass = 'first' | 'new-session' | 'recheck';

/** Why a pass ended early, and the steps that wait for the next pass without a terminal event. */
interface PassAgain {
  why: 'session-lost' | 'recheck';
  steps: string[];
}

/** Create a runner. */
export function createRunner(deps: RunnerDeps): Runner {
  const limiters = deps.limiters ?? createLimiters(deps.limits);
  const hasher = deps.hasher ?? cachedHasher(hashFile);
  const budget = deps.credits ?? new CreditBudget(deps.budget?.credits, deps.store.state.creditsUsed);
  const clock = deps.clock ?? systemClock;
  const at = (): Date => new Date(clock.now());
  const turns = deps.turns ?? new AccountTurns(() => clock.now());
  turns.seed(deps.store.state);
  const stop = new StopSwitch();
  // A failed state write aborts everything: paying for work we cannot record is worse than stopping.
  const fatalController = new AbortController();
  const signal = AbortSignal.any([deps.signal, fatalController.signal]);
  // Every step in flight listens on the run's signal (its deadline composes with it); a batch
  // legitimately has hundreds at once, which is not the leak Node's default warning is about.
  setMaxListeners(0, signal);
  let fatal: TalkError | undefined;
  const emit = (init: TalkEventInit): void => deps.emit(stamp(init, at));

  const onFatal = (error: unknown): void => {
    if (error instanceof StateWriteError && !fatal) {
      fatal = error;
      stop.stop('interrupted');
      fatalController.abort(error);
    }
  };

  async function runJob(plan: Plan, job: PlanJob): Promise<JobOutcome> {
    return limiters.jobs(async () => {
      try {
        return await runJobPasses(plan, job);
      } finally {
        budget.endJob(job.id);
        await deps.sharedCredits?.release().catch((error: unknown) => {
          emit({ type: 'notice', level: 'warn', job: job.id, message: `job ${job.id}: could not give back its credit hold: ${(error as Error).message}` });
        });
      }
    });
  }

  /** The passes of one job: the first, and at most one more (see `JobPass`). */
  async function runJobPasses(plan: Plan, job: PlanJob): Promise<JobOutcome> {
    const { again, ...outcome } = await runJobOnce(plan, job, 'first');
    if (again === undefined) return outcome;
    if (!signal.aborted && !stop.stopped) {
      if (again.why === 'recheck') {
        const { again: _never, ...checked } = await runJobOnce(plan, job, 'recheck');
        return checked;
      }
      const cost = job.steps.reduce((sum, s) => sum + (s.kind === 'instruction' ? s.estimatedCredits : 0), 0);
      emit({ type: 'notice', level: 'warn', job: job.id, message: `job ${job.id}: the backend no longer knows its session; starting a new session (its instructions are sent again, about ${cost} credits)` });
      await deps.store.resetJob(job.id).catch(onFatal);
      const { again: _never, ...restarted } = await runJobOnce(plan, job, 'new-session');
      return restarted;
    }
    // Stopped in between: the steps that were waiting for the next pass end here.
    const reason = signal.aborted ? 'interrupted' : (stop.stopped ?? 'interrupted');
    for (const step of again.steps) emit({ type: 'step:skipped', job: job.id, step, reason });
    return { ...outcome, status: statusWhenStopped(reason) };
  }

  async function outputIntact(record: StepState | undefined): Promise<boolean> {
    const out = record?.output;
    if (!out) return false;
    try {
      if ((await stat(out.path)).size !== out.bytes) return false;
      return (await hasher(out.path, { signal })) === out.sha256;
    } catch {
      return false;
    }
  }

  /**
   * Admission: hold the job's remaining estimate before it starts (no upload, no session until
   * then) against the budget and the live balance. A job whose paid steps are done costs
   * nothing and is always admitted, so what was paid for is delivered.
   */
  async function admit(job: PlanJob, decision: JobDecision): Promise<AdmissionRefusal | Error | 'interrupted' | undefined> {
    const cost = remainingCredits(job, decision);
    if (cost <= 0) return undefined;
    let noticed = false;
    for (;;) {
      let accountTotal = 0;
      const readTotal = async (): Promise<number> => {
        const balance = await deps.client.getCredits({ signal });
        accountTotal = balance.available + balance.frozen;
        return accountTotal;
      };
      let refusal: AdmissionRefusal | undefined;
      try {
        // Shared books (other processes' holds, checked atomically in the shared store) read the
        // balance themselves, after noting the account's charge sequence: a balance read before
        // that could miss a charge on another worker in between, whose hold is already drawn
        // down — the same credits counted free twice.
        if (deps.sharedCredits) refusal = await deps.sharedCredits.admit(cost, readTotal);
        else await readTotal();
      } catch (error) {
        return signal.aborted ? 'interrupted' : (error as Error);
      }
      if (!refusal) {
        // Synchronous: this run's check and hold cannot interleave with another job's.
        refusal = budget.admit(job.id, cost, accountTotal);
        // Refused by this run's own books after all: the shared hold goes back.
        if (refusal) await deps.sharedCredits?.release().catch(() => undefined);
      }
      const ownInFlight = budget.inFlight > 0;
      if (refusal?.limitedBy === 'balance' && (ownInFlight || turns.openElsewhere() > 0)) {
        // A turn of this run, or of another worker sharing the account's books, may be charged
        // on the balance just read and still held: counted twice. Decide again once it has
        // settled (one of this run's is heard at once; another worker's when its books are read).
        const settled = new AbortController();
        try {
          const recheck = sleep(ownInFlight ? SETTLE_RECHECK_MS : ELSEWHERE_RECHECK_MS, AbortSignal.any([signal, settled.signal]));
          await (ownInFlight ? Promise.race([budget.nextSettle(), recheck]) : recheck);
        } catch {
          if (signal.aborted) return 'interrupted';
        } finally {
          settled.abort();
        }
        continue;
      }
      if (!refusal || !deps.waitForCredits) return refusal;
      if (!noticed) {
        noticed = true;
        emit({ type: 'notice', level: 'warn', job: job.id, message: `job ${job.id} waits for credits: it needs about ${refusal.needs} and ${refusal.available} are left for it; it starts when ${refusal.limitedBy === 'budget' ? 'budget.credits' : 'the balance'} allows` });
        await deps.waitForCredits.onWait?.(job.id, refusal).catch((error: unknown) => {
          emit({ type: 'notice', level: 'warn', job: job.id, message: `could not record that job ${job.id} waits for credits: ${(error as Error).message}` });
        });
      }
      const released = budget.nextRelease();
      try {
        await Promise.race([sleep(deps.waitForCredits.pollMs, signal), released]);
      } catch {
        return 'interrupted';
      }
    }
  }

  /** One pass over a job; `again` when it must take another (see `JobPass`). */
  async function runJobOnce(plan: Plan, job: PlanJob, pass: JobPass): Promise<JobOutcome & { again?: PassAgain }> {
    const jobId = job.id as string;
    const outputs = (): OutputInfo[] => collectOutputs(deps.store, job);
    if (stop.stopped || signal.aborted) {
      for (const step of job.steps) emit({ type: 'step:skipped', job: jobId, step: step.id, reason: stop.stopped ?? 'interrupted' });
      return { job: jobId, status: statusWhenStopped(stop.stopped), outputs: outputs() };
    }

    let fingerprints: Map<string, StepFingerprint>;
    try {
      fingerprints = await fingerprintJob(job, { backendId: deps.backendId, hasher, signal });
      const mismatch = deps.checkFingerprints?.(job, fingerprints);
      if (mismatch) throw mismatch;
    } catch (error) {
      if (signal.aborted) return { job: jobId, status: 'interrupted', outputs: outputs() };
      const described = describeError(error);
      for (const step of job.steps) emit({ type: 'step:failed', job: jobId, step: step.id, error: described });
      return { job: jobId, status: 'failed', outputs: outputs(), error: described };
    }
    const recorded = pass === 'new-session' ? undefined : deps.store.job(jobId);
    const intact = new Map<string, boolean>();
    for (const step of job.steps) {
      const r = recorded?.steps[step.id];
      if (step.kind === 'export' && r?.status === 'done') intact.set(step.id, await outputIntact(r));
    }
    const decision = decideJob(job, recorded, fingerprints, (id) => intact.get(id) === true);
    const refusal = await admit(job, decision);
    if (refusal === 'interrupted') return { job: jobId, status: 'interrupted', outputs: outputs() };
    if (refusal instanceof Error) {
      const described = describeError(refusal);
      for (const step of job.steps) emit({ type: 'step:failed', job: jobId, step: step.id, error: described });
      return { job: jobId, status: 'failed', outputs: outputs(), error: described };
    }
    if (refusal) {
      // Recorded, so `talk status` says why; an earlier run's records of the job stay as they are.
      if (!recorded) await deps.store.updateJob(jobId, { status: 'not-started' }).catch(onFatal);
      for (const step of job.steps) emit({ type: 'step:skipped', job: jobId, step: step.id, reason: 'not-started' });
      return { job: jobId, status: 'not-started', outputs: outputs(), notStarted: refusal };
    }
    try {
      if (decision.newSession) {
        emit({ type: 'notice', level: 'info', job: jobId, message: `job ${jobId}: starting a new session because ${decision.newSessionReason ?? 'its inputs changed'}` });
        await deps.store.resetJob(jobId);
      }
      await deps.store.updateJob(jobId, { status: 'running' });
    } catch (error) {
      onFatal(error);
      return { job: jobId, status: 'interrupted', outputs: outputs() };
    }

    let sessionPromise: Promise<SessionId> | undefined;
    const session = (): Promise<SessionId> =>
      (sessionPromise ??= (async () => {
        const existing = deps.store.job(jobId)?.sessionId;
        if (existing) return asSessionId(existing);
        const created = await deps.client.createSession({ taskName: plan.jobs.length > 1 ? `${plan.name} ${jobId}` : plan.name, language: deps.language }, { signal });
        await deps.store.updateJob(jobId, { sessionId: created.sessionId, taskId: created.taskId, ...(created.userId ? { userId: created.userId } : {}) });
        return created.sessionId;
      })());

    /** The job's claim link, or nothing: a missing link never fails a finished job. */
    const projectLink = async (linkSignal: AbortSignal): Promise<string | undefined> => {
      const recorded = deps.store.job(jobId);
      if (!recorded?.sessionId || !recorded.taskId) return undefined;
      try {
        return await deps.client.claimLink(asTaskId(recorded.taskId), asSessionId(recorded.sessionId), { signal: linkSignal });
      } catch (error) {
        emit({ type: 'notice', level: 'debug', job: jobId, message: `no browser link for job ${jobId}: ${(error as Error).message}` });
        return undefined;
      }
    };

    const deps0 = dependenciesOf(job);
    const byId = new Map(job.steps.map((s) => [s.id as string, s]));
    const ends = new Map<string, Promise<StepEnd>>();
    let firstError: ReturnType<typeof describeError> | undefined;
    let sawCredits = false;
    const timings = new Map<string, StepTiming>();

    const reach = (step: PlanStep): Promise<StepEnd> => {
      let end = ends.get(step.id);
      if (!end) {
        end = (async (): Promise<StepEnd> => {
          const upstream = await Promise.all((deps0.get(step.id) ?? []).map((d) => reach(byId.get(d)!)));
          const ref = { job: jobId, step: step.id as string };
          if (upstream.includes('session-lost')) return 'session-lost';
          if (upstream.includes('recheck')) return 'recheck';
          if (upstream.some((u) => u !== 'done')) {
            const reason = upstream.includes('interrupted') || signal.aborted ? 'interrupted' : 'upstream-failed';
            emit({ type: 'step:skipped', ...ref, reason });
            return reason === 'interrupted' ? 'interrupted' : 'skipped';
          }
          const d = decision.steps.get(step.id) ?? { action: 'run', changed: [] };
          if (d.action === 'skip') {
            emit({ type: 'step:skipped', ...ref, reason: 'resumed' });
            return 'done';
          }
          if (stop.stopped || signal.aborted) {
            emit({ type: 'step:skipped', ...ref, reason: signal.aborted ? 'interrupted' : (stop.stopped ?? 'interrupted') });
            return signal.aborted ? 'interrupted' : 'skipped';
          }
          return runStep(step, d, fingerprints.get(step.id)!);
        })();
        ends.set(step.id, end);
      }
      return end;
    };

    const runStep = async (step: PlanStep, d: StepDecision, fp: StepFingerprint): Promise<StepEnd> => {
      const ref = { job: jobId, step: step.id as string };
      const label = job.steps.length > 0 && plan.jobs.length > 1 ? `step ${step.id} of job ${jobId}` : `step ${step.id}`;
      const started = clock.now();
      emit({ type: 'step:start', ...ref, kind: step.kind });
      let lastProgress = 0;
      const interval = deps.progressIntervalMs ?? 250;
      const ctxBase = {
        jobId,
        client: deps.client,
        store: deps.store,
        limiters,
        budget,
        turns,
        clock,
        session,
        progress: (p: { bytes?: number; total?: number; percent?: number; label?: string }) => {
          const now = clock.now();
          const final = p.total !== undefined && p.bytes === p.total;
          if (!final && p.label === undefined && now - lastProgress < interval) return;
          lastProgress = now;
          emit({ type: 'step:progress', ...ref, ...p });
        },
        retry: (info: { attempt: number; reason: string; delayMs: number }) => emit({ type: 'step:retry', ...ref, ...info }),
        notice: (level: 'info' | 'warn', message: string) => emit({ type: 'notice', level, message, ...ref }),
      };
      for (let attempt = 1; ; attempt += 1) {
        const prev = deps.store.step(jobId, step.id);
        const base: StepState =
          d.action === 'run' && attempt === 1
            ? { kind: step.kind, status: 'running', attempts: (prev?.attempts ?? 0) + 1 }
            : { ...(prev ?? { kind: step.kind, attempts: 0 }), status: 'running', attempts: (prev?.attempts ?? 0) + 1 };
        const deadline = withDeadline(signal, step.timeoutMs, `${label} (timeout ${formatDuration(step.timeoutMs)})`);
        const stepSignal = deadline.signal;
        try {
          // Intent first: a fresh run drops old render and turn records; a resume keeps them.
          await deps.store.putStep(jobId, step.id, { ...base, fingerprint: fp.fingerprint, fingerprintFields: fp.fields, error: undefined });
          const info = await execute({ ...ctxBase, signal: stepSignal }, step, label);
          const link = deps.projectLinks && step.id === job.steps.at(-1)?.id ? await projectLink(signal) : undefined;
          const durationMs = clock.now() - started;
          timings.set(step.id, { step: step.id, kind: step.kind, startedAt: new Date(started).toISOString(), durationMs });
          emit({ type: 'step:done', ...ref, durationMs, ...info, ...(link ? { link } : {}) });
          return 'done';
        } catch (error) {
          onFatal(error);
          if (signal.aborted) {
            emit({ type: 'step:skipped', ...ref, reason: 'interrupted' });
            return 'interrupted';
          }
          if (isTransient(error) && attempt <= step.retries) {
            // The one backoff policy (backend/retry.ts): base·2ⁿ⁻¹, capped, jittered.
            const delayMs = backoffDelay(attempt - 1, { backoffBaseMs: deps.retryBaseMs ?? 1000, backoffCapMs: STEP_BACKOFF_CAP_MS });
            emit({ type: 'step:retry', ...ref, attempt: attempt + 1, reason: (error as Error).message, delayMs });
            try {
              await sleep(delayMs, signal);
            } catch {
              emit({ type: 'step:skipped', ...ref, reason: 'interrupted' });
              return 'interrupted';
            }
            // Later attempts continue from what the failed one recorded.
            d = { action: 'check', changed: [] };
            continue;
          }
          if (error instanceof TurnReopenedError && pass === 'first') {
            emit({ type: 'step:retry', ...ref, attempt: attempt + 1, reason: `${error.message}; ${error.hint ?? ''}`.trim(), delayMs: 0 });
            return 'recheck';
          }
          if (isSessionLost(error) && pass === 'first') {
            // The job starts over in a new session (runJob): whoever reads the events sees this
            // step tried again, not failed, and the steps after it wait quietly.
            emit({ type: 'step:retry', ...ref, attempt: attempt + 1, reason: `${(error as Error).message}; the job starts over in a new session`, delayMs: 0 });
            return 'session-lost';
          }
          const described = describeError(error);
          firstError ??= described;
          const credits = isCreditsError(error);
          if (credits) sawCredits = true;
          else if (deps.failFast) {
            stop.stop('fail-fast');
          }
          await deps.store
            .putStep(jobId, step.id, { ...(deps.store.step(jobId, step.id) ?? base), status: 'failed', error: { code: described.code, message: described.message, ...(described.hint ? { hint: described.hint } : {}) } })
            .catch(onFatal);
          emit({ type: 'step:failed', ...ref, error: described });
          return credits ? 'credits' : 'failed';
        } finally {
          deadline.clear();
        }
      }
    };

    const execute = (ctx: StepContext, step: PlanStep, label: string): Promise<StepResultInfo> => {
      switch (step.kind) {
        case 'upload':
          return runUpload(ctx, step);
        case 'instruction':
          return runInstruction(ctx, step, label);
        case 'export':
          return runExport(ctx, step);
        case 'credits':
          return runCredits(ctx, step, label);
        default:
          return unreachable(step, 'step');
      }
    };

    const results = await Promise.all(job.steps.map((s) => reach(s)));
    for (const why of ['session-lost', 'recheck'] as const) {
      const steps = job.steps.filter((_, i) => results[i] === why).map((s) => s.id as string);
      if (steps.length > 0) return { job: jobId, status: 'failed', outputs: outputs(), again: { why, steps } };
    }
    const status: JobOutcome['status'] = results.includes('interrupted') || (signal.aborted && results.some((r) => r !== 'done'))
      ? 'interrupted'
      : sawCredits || results.includes('credits')
        ? 'credits'
        : results.every((r) => r === 'done')
          ? 'done'
          : 'failed';
    // An interrupted job stays `running`: unfinished, for the next run to continue. One stopped
    // by credits has a failed step, like any failed job.
    if (status !== 'interrupted') await deps.store.updateJob(jobId, { status: status === 'done' ? 'done' : 'failed' }).catch(onFatal);
    if (status === 'done' && deps.provenance) await recordProvenance(plan, job, timings, deps.provenance);
    return { job: jobId, status, outputs: outputs(), ...(firstError ? { error: firstError } : {}) };
  }

  /** Provenance is written last; a record that cannot be written is a warning, not a failed video. */
  async function recordProvenance(plan: Plan, job: PlanJob, timings: Map<string, StepTiming>, provenance: ProvenanceDeps): Promise<void> {
    try {
      await writeProvenance({ plan, job, store: deps.store, timings, backend: { id: deps.backendId, url: deps.client.baseUrl }, hasher, signal }, provenance);
    } catch (error) {
      emit({ type: 'notice', level: 'warn', job: job.id, message: `job ${job.id}: could not write its provenance record: ${(error as Error).message}` });
    }
  }

  return {
    runJob,
    get creditsUsed() {
      return budget.spentThisRun;
    },
    get stopped() {
      return stop.stopped;
    },
    get fatal() {
      return fatal;
    },
  };
}

/** Every verified output of a job's export steps, as recorded. */
function collectOutputs(store: StateStore, job: PlanJob): OutputInfo[] {
  const out: OutputInfo[] = [];
  for (const step of job.steps) {
    const rec = store.step(job.id, step.id);
    if (step.kind === 'export' && rec?.status === 'done' && rec.output) {
      out.push({ job: job.id, step: step.id, path: rec.output.path, sha256: rec.output.sha256, bytes: rec.output.bytes });
    }
  }
  return out;
}

/**
 * Run every job of a plan (`talk run`): `run:start`, the jobs side by side up to
 * `concurrency`, `run:done`. Throws only when state could not be written (the run stopped).
 */
export async function executePlan(plan: Plan, deps: RunnerDeps): Promise<RunOutcome> {
  const clock = deps.clock ?? systemClock;
  const at = (): Date => new Date(clock.now());
  const started = clock.now();
  const resumed = deps.store.hadPrevious && !deps.store.state.finished && Object.keys(deps.store.state.jobs).length > 0;
  deps.emit(stamp({ type: 'run:start', workflow: plan.workflowPath, name: plan.name, backend: deps.backendId, jobs: plan.jobs.length, resumed, ...(plan.shard ? { shard: plan.shard } : {}), plan: planListing(plan) }, at));
  if (deps.store.tookOverFrom) {
    const o = deps.store.tookOverFrom;
    deps.emit(stamp({ type: 'notice', level: 'warn', message: `took over the run lock of a runner that is gone (pid ${o.pid} on ${o.host}, started ${o.startedAt})` }, at));
  }
  await deps.store.updateRun({ status: 'running', finished: false, backendUrl: deps.client.baseUrl, backend: deps.backendId });
  const runner = createRunner(deps);
  const jobs = await Promise.all(plan.jobs.map((job) => runner.runJob(plan, job)));
  if (runner.fatal) throw runner.fatal;
  const status = runStatusOf({
    interrupted: deps.signal.aborted || jobs.some((j) => j.status === 'interrupted'),
    credits: jobs.some((j) => j.status === 'credits' || j.status === 'not-started'),
    failed: jobs.some((j) => j.status === 'failed'),
  });
  const notStarted = jobs.filter((j) => j.status === 'not-started');
  if (notStarted.length > 0) {
    const needs = notStarted.reduce((sum, j) => sum + (j.notStarted?.needs ?? 0), 0);
    const limitedBy = notStarted.some((j) => j.notStarted?.limitedBy === 'budget') ? 'budget.credits' : 'the balance';
    deps.emit(stamp({ type: 'notice', level: 'warn', message: `${notStarted.length} of ${jobs.length} jobs not started: they need about ${needs} credits, more than ${limitedBy} left for them (${notStarted.map((j) => j.job).join(', ')})` }, at));
  }
  await deps.store.updateRun({ status, finished: status === 'success' });
  const outputs = jobs.flatMap((j) => j.outputs);
  const outcome: RunOutcome = { status, jobs, outputs, creditsUsed: runner.creditsUsed, durationMs: clock.now() - started };
  deps.emit(stamp({ type: 'run:done', status, outputs, creditsUsed: outcome.creditsUsed, durationMs: outcome.durationMs }, at));
  return outcome;
}
