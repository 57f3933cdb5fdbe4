/**
 * One executor per step kind. Each follows the write-ahead order for anything paid or remote:
 * record the intent, make the request, record the remote id, and record the verified result
 * last. Each reads its recorded state first, so a retry or a resume picks up where the last
 * attempt stopped (a render id is polled again, never submitted twice; a sent turn is checked,
 * never re-sent blindly).
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { BackendError, CreditsError, StepFailedError } from '../core/errors.js';
import { abortReason } from '../core/abort.js';
import { asRenderId, type RenderId, type SessionId } from '../core/ids.js';
import { isExportReady } from '../contract/draft.js';
import type { RenderOutput } from '../contract/bodies.js';
import type { BackendClient, CallOptions, TurnActivity, TurnBaseline } from '../backend/types.js';
import type { CreditsStep, ExportStep, InstructionStep, PlanStep, UploadStep } from '../plan/types.js';
import type { StateStore } from '../state/state-store.js';
import type { RunMeta, StepState, UploadRecord } from '../state/types.js';
import type { Limiters } from './limiters.js';
import { notEnoughCredits, type CreditBudget } from './budget.js';
import { turnKey, type AccountTurns } from './account-turns.js';
import { unreachable } from '../core/unreachable.js';
import type { Clock } from '../core/clock.js';
import { TurnLostError } from '../backend/errors.js';

/** What a step executor gets from the runner. */
export interface StepContext {
  jobId: string;
  client: BackendClient;
  store: StateStore;
  limiters: Limiters;
  budget: CreditBudget;
  /** Every turn of the account in this run, for disconnect recovery's judgement. */
  turns: AccountTurns;
  /** What "now" is for the timestamps the step records. */
  clock: Clock;
  /** Cancels on interrupt and at the step's timeout. */
  signal: AbortSignal;
  /** The job's session, created on first use and recorded before it is used. */
  session(): Promise<SessionId>;
  /** Report progress (throttled by the runner). */
  progress(p: { bytes?: number; total?: number; percent?: number; label?: string }): void;
  /** A transparent retry inside the client or the executor. */
  retry(info: { attempt: number; reason: string; delayMs: number }): void;
  notice(level: 'info' | 'warn', message: string): void;
}

/** What a finished step reports in `step:done`. */
export interface StepResultInfo {
  output?: string;
  reply?: string;
  creditsUsed?: number;
}

/** Record a change to the step (merged over its recorded state). */
async function update(ctx: StepContext, step: PlanStep, change: Partial<StepState>, run?: Partial<RunMeta>): Promise<StepState> {
  const current = ctx.store.step(ctx.jobId, step.id);
  const next: StepState = { kind: step.kind, status: 'running', attempts: 0, ...current, ...change };
  await ctx.store.putStep(ctx.jobId, step.id, next, run);
  return next;
}

/** The run's books as they stand: written with the step that changed them, in one record. */
function books(ctx: StepContext): Partial<RunMeta> {
  return { creditsUsed: ctx.budget.spentTotal };
}

function callOptions(ctx: StepContext): CallOptions {
  return { signal: ctx.signal, onRetry: (info) => ctx.retry(info) };
}

/** Upload every input of the step, side by side (each under the shared uploads limiter). */
export async function runUpload(ctx: StepContext, step: UploadStep): Promise<StepResultInfo> {
  const sessionId = await ctx.session();
  const sent = new Map<string, { bytes: number; total: number | undefined }>();
  const report = (): void => {
    let bytes = 0;
    let total = 0;
    let known = true;
    for (const s of sent.values()) {
      bytes += s.bytes;
      if (s.total === undefined) known = false;
      else total += s.total;
    }
    ctx.progress(known ? { bytes, total } : { bytes });
  };
  const uploads = await Promise.all(
    step.inputs.map((input) =>
      ctx.limiters.uploads(async (): Promise<UploadRecord> => {
        ctx.signal.throwIfAborted();
        if (input.path !== undefined) {
          const result = await ctx.client.uploadFile(sessionId, input.path, {
            ...callOptions(ctx),
            onProgress: (bytes, total) => {
              sent.set(input.name, { bytes, total });
              report();
            },
          });
          return { name: input.name, file: result.file, bytes: result.bytes, sha256: result.sha256 };
        }
        const files = await ctx.client.uploadUrl(sessionId, input.url ?? '', callOptions(ctx));
        return { name: input.name, file: files[0] ?? null };
      }),
    ),
  );
  await update(ctx, step, { status: 'done', uploads });
  return {};
}

/** Disconnect recovery concluded nothing: the turn may or may not have run, so it is not sent again. */
export class TurnOutcomeUnknownError extends StepFailedError {
  constructor(jobId: string, stepId: string, sessionId: SessionId, why: string) {
    super(jobId, stepId, `outcome unknown: the instruction sent to session ${sessionId} may or may not have applied (${why}); it was not sent again`, {
      hint: `check the session's timeline with \`talk status\` (or the project in the web app); run again to check it once more — talk sends it again only when the session shows it did not apply`,
    });
  }
}

/**
 * Wait out disconnect recovery for the job's turn: `running` means "keep watching" until the
 * step's deadline; `unknown` fails the step without sending again. The account's other turns
 * (`ctx.turns`) decide whether credit movements can count as this turn's.
 */
async function recover(ctx: StepContext, step: InstructionStep, sessionId: SessionId, baseline: TurnBaseline, sentAt: string): Promise<{ applied: boolean; credits: number | undefined }> {
  const key = turnKey(ctx.jobId, step.id);
  const since = baseline.at ?? Date.parse(sentAt);
  for (;;) {
    const result = await ctx.client.recoverTurn(sessionId, baseline, { ...callOptions(ctx), activity: () => ctx.turns.activity(key, since) });
    switch (result.outcome) {
      case 'applied':
        return { applied: true, credits: result.credits };
      case 'not-applied':
        ctx.turns.settle(key, 0);
        return { applied: false, credits: 0 };
      case 'running':
        ctx.progress({ label: 'the instruction is still running at the backend' });
        break;
      case 'unknown':
        ctx.turns.abandon(key);
        throw new TurnOutcomeUnknownError(ctx.jobId, step.id, sessionId, result.why);
      default:
        unreachable(result);
    }
  }
}

/** True when the turn may have reached the agent: the request went out and no answer refused it. */
function mayHaveApplied(error: unknown): boolean {
  if (!(error instanceof BackendError)) return false;
  // An HTTP status means the backend answered before any stream: the turn was refused.
  return error.status === undefined || error.route !== 'sse' || error instanceof TurnLostError;
}

/**
 * Send one instruction, or, when one was sent before and its outcome is unknown, let disconnect
 * recovery decide: applied → done; not applied → send (again); still running → keep waiting.
 * What is booked is what the backend charged when recovery could attribute it, else the price
 * list's figure for a turn that provably ran.
 */
export async function runInstruction(ctx: StepContext, step: InstructionStep, label: string): Promise<StepResultInfo> {
  const sessionId = await ctx.session();
  const cost = step.estimatedCredits;
  const key = turnKey(ctx.jobId, step.id);
  const recorded = ctx.store.step(ctx.jobId, step.id);
  if (recorded?.turn && recorded.status !== 'done') {
    ctx.progress({ label: 'checking whether the earlier attempt applied' });
    const { baseline, ...turn } = recorded.turn;
    const outcome = await recover(ctx, step, sessionId, baseline as TurnBaseline, turn.sentAt);
    if (outcome.applied) {
      const charged = outcome.credits ?? cost;
      // The charge booked before the turn is told settled: a worker elsewhere that waits for it
      // to settle then finds its hold drawn down.
      ctx.budget.commit(0, charged, ctx.jobId);
      ctx.turns.settle(key, charged);
      await update(ctx, step, { status: 'done', turn: { ...turn, creditsUsed: charged, recovered: true, settledAt: new Date(ctx.clock.now()).toISOString() } }, books(ctx));
      ctx.notice('info', `${label}: the instruction sent earlier was applied; it was not sent again`);
      return { reply: '', creditsUsed: charged };
    }
    ctx.notice('info', `${label}: the instruction sent earlier did not apply; sending it again`);
    await update(ctx, step, { turn: undefined });
  }

  ctx.budget.reserve(cost, label, ctx.jobId);
  let committed = false;
  let sent = false;
  try {
    // The span opens before the baseline is read, so every charge after that read is weighed.
    ctx.turns.open(key);
    // The baseline carries the live balance: checked before anything is sent.
    const baseline = await ctx.client.captureBaseline(sessionId, callOptions(ctx));
    if (cost > 0 && baseline.credits.available < cost) {
      throw notEnoughCredits(label, cost, baseline.credits.available, ctx.client.outOfCreditsHint());
    }
    // Write-ahead: the turn is on disk before it is sent, with what it was sent against.
    const sentAt = new Date(ctx.clock.now()).toISOString();
    await update(ctx, step, { turn: { draftRevision: baseline.snapshot.draftHash, baseline, sentAt } });
    let reply: string;
    let silent = false;
    let charged = cost;
    let recovered = false;
    let tools: string[] = [];
    try {
      sent = true;
      const result = await ctx.client.sendInstruction(sessionId, step.text, {
        ...callOptions(ctx),
        baseline,
        onActivity: (a: TurnActivity) => ctx.progress({ label: activityLabel(a) }),
      });
      silent = result.silent;
      tools = result.tools;
      reply = result.silent ? (result.change ?? '') : result.question ? `${result.text}\n${result.question.prompt}`.trim() : result.text;
    } catch (error) {
      if (ctx.signal.aborted) throw abortReason(ctx.signal, error);
      if (!mayHaveApplied(error)) {
        // Refused before the turn started (credits, session, token): nothing ran, nothing to check.
        ctx.turns.settle(key, 0);
        await update(ctx, step, { turn: undefined });
        throw error;
      }
      ctx.retry({ attempt: 1, reason: `${(error as Error).message}; checking the session before deciding to re-send`, delayMs: 0 });
      const outcome = await recover(ctx, step, sessionId, baseline, sentAt);
      if (!outcome.applied) {
        await update(ctx, step, { turn: undefined });
        // Transient by construction: the runner's retry sends it again (within `retries`).
        throw new BackendError({ message: `the instruction did not reach the agent (${(error as Error).message})`, route: 'sse', retryable: true });
      }
      charged = outcome.credits ?? cost;
      recovered = true;
      reply = '';
    }
    ctx.budget.commit(cost, charged, ctx.jobId);
    ctx.turns.settle(key, charged);
    committed = true;
    const settledAt = new Date(ctx.clock.now()).toISOString();
    await update(
      ctx,
      step,
      { status: 'done', turn: { draftRevision: baseline.snapshot.draftHash, sentAt, settledAt, reply, silent, tools, creditsUsed: charged, ...(recovered ? { recovered } : {}) } },
      books(ctx),
    );
    return { reply, creditsUsed: charged };
  } finally {
    if (!committed) ctx.budget.release(cost, ctx.jobId);
    // Never sent: nothing of the account's credits can be this turn's. Sent and ended without
    // an outcome (a failed stream): nobody concludes it now, so other turns stop waiting for it.
    if (!sent) ctx.turns.settle(key, 0);
    else if (!ctx.signal.aborted) ctx.turns.abandon(key);
  }
}

function activityLabel(a: TurnActivity): string {
  switch (a.kind) {
    case 'tool-start':
      return a.label;
    case 'tool-end':
      return `${a.name} finished`;
    case 'partial-text':
      return 'writing a reply';
    case 'still-working':
      return 'still working';
    default:
      return unreachable(a, 'a');
  }
}

/** True for "this render id does not exist at the backend". */
function isUnknownRender(error: unknown): boolean {
  return error instanceof BackendError && error.status === 404;
}

/**
 * Render the session's draft and download it to the step's `output`. A recorded render is
 * re-attached by id; a finished one is only downloaded; a failed render is tried once more
 * with a new id (CONTRACT §4.5).
 */
export async function runExport(ctx: StepContext, step: ExportStep): Promise<StepResultInfo> {
  const sessionId = await ctx.session();
  const output: RenderOutput = { format: step.format, quality: step.quality, resolution: step.resolution, ...(step.aspect ? { aspect: step.aspect } : {}) };
  let recorded = ctx.store.step(ctx.jobId, step.id)?.render;
  let outputUrl = recorded?.outputUrl;
  let renderId: RenderId | undefined = recorded ? asRenderId(recorded.id) : undefined;
  let freshRenders = 0;

  const submitNew = async (): Promise<RenderId> => {
    const state = await ctx.client.getState(sessionId, callOptions(ctx));
    const draft = state.state.draft;
    if (!isExportReady(draft)) {
      const reopened = await reopenRecoveredTurns(ctx, sessionId);
      if (reopened.length > 0) throw new TurnReopenedError(ctx.jobId, step.id, reopened);
      throw new StepFailedError(ctx.jobId, step.id, 'nothing to export yet: the session has no timeline', {
        hint: 'add an instruction that generates the video (e.g. "Make this photo talk using my voiceover") before the export',
      });
    }
    const id = ctx.client.newRenderId();
    const before = ctx.store.step(ctx.jobId, step.id)?.renderIds ?? [];
    // Write-ahead: the id is on disk before the submit, so a crash re-attaches instead of paying twice.
    await update(ctx, step, { render: { id, phase: 'submitting' }, renderIds: [...before, id] });
    await ctx.client.submitRender({ renderId: id, sessionId, draft, output }, callOptions(ctx));
    await update(ctx, step, { render: { id, phase: 'submitted' } });
    freshRenders += 1;
    return id;
  };

  while (recorded?.phase !== 'completed') {
    try {
      const done = await ctx.limiters.renders(async () => {
        if (renderId === undefined) renderId = await submitNew();
        const id = renderId;
        try {
          return await ctx.client.waitForRender(id, { ...callOptions(ctx), onProgress: (percent) => ctx.progress({ percent }) });
        } catch (error) {
          // A submit cut off before the backend answered may never have arrived: send it now,
          // with the same id (the backend does not know it, so this is the first submit).
          if (!isUnknownRender(error) || recorded?.phase !== 'submitting' || ctx.signal.aborted) throw error;
          const state = await ctx.client.getState(sessionId, callOptions(ctx));
          await ctx.client.submitRender({ renderId: id, sessionId, draft: state.state.draft, output }, callOptions(ctx));
          await update(ctx, step, { render: { id, phase: 'submitted' } });
          return ctx.client.waitForRender(id, { ...callOptions(ctx), onProgress: (percent) => ctx.progress({ percent }) });
        }
      });
      outputUrl = done.outputUrl;
      recorded = { id: renderId as RenderId, phase: 'completed', ...(outputUrl ? { outputUrl } : {}) };
      await update(ctx, step, { render: recorded });
    } catch (error) {
      if (ctx.signal.aborted) throw abortReason(ctx.signal, error);
      const failedRender = error instanceof BackendError && error.failure === 'render-failed';
      if ((!failedRender && !isUnknownRender(error)) || freshRenders >= 2) throw error;
      ctx.retry({ attempt: freshRenders + 1, reason: `${(error as Error).message}; rendering again with a new render id`, delayMs: 0 });
      renderId = undefined;
      recorded = undefined;
    }
  }

  const id = asRenderId(recorded.id);
  await mkdir(path.dirname(step.output), { recursive: true });
  let result;
  try {
    result = await ctx.client.downloadRender(id, outputUrl, step.output, { ...callOptions(ctx), onProgress: (bytes, total) => ctx.progress(total === undefined ? { bytes } : { bytes, total }) });
  } catch (error) {
    if (ctx.signal.aborted || !isUnknownRender(error) || freshRenders > 0) throw error;
    // The finished render from an earlier run is gone at the backend: render once more.
    ctx.retry({ attempt: 1, reason: `render ${id} is no longer available; rendering again`, delayMs: 0 });
    await update(ctx, step, { render: undefined });
    return runExport(ctx, step);
  }
  const size = (await stat(step.output)).size;
  if (size !== result.bytes) {
    throw new BackendError({ message: `the download of ${path.basename(step.output)} is incomplete (${size} of ${result.bytes} bytes)`, route: 'download', retryable: true });
  }
  await update(ctx, step, { status: 'done', output: { path: step.output, bytes: result.bytes, sha256: result.sha256 } });
  return { output: step.output };
}

/**
 * The export found no timeline, yet instructions of the job are recorded done: the ones that
 * disconnect recovery (not their own answer) concluded may not have applied after all. They are
 * opened again, with a fresh baseline and their booked credits refunded, so the job's next pass
 * checks each once more and sends it only if the session shows it did not apply. Returns their
 * step ids. (Older states mark a recovered turn by having no reply.)
 */
async function reopenRecoveredTurns(ctx: StepContext, sessionId: SessionId): Promise<string[]> {
  const steps = Object.entries(ctx.store.job(ctx.jobId)?.steps ?? {}).filter(
    ([, s]) => s.kind === 'instruction' && s.status === 'done' && s.turn !== undefined && (s.turn.recovered === true || s.turn.reply === undefined),
  );
  if (steps.length === 0) return [];
  for (const [id] of steps) ctx.turns.open(turnKey(ctx.jobId, id));
  const baseline = await ctx.client.captureBaseline(sessionId, callOptions(ctx));
  const sentAt = new Date(ctx.clock.now()).toISOString();
  for (const [id, s] of steps) {
    // Each refund is recorded with the reopened step it belongs to.
    ctx.budget.refund(s.turn?.creditsUsed ?? 0, ctx.jobId);
    await ctx.store.putStep(ctx.jobId, id, { ...s, status: 'running', turn: { draftRevision: baseline.snapshot.draftHash, baseline, sentAt } }, books(ctx));
  }
  return steps.map(([id]) => id);
}

/** An export reopened instructions concluded by recovery (see `reopenRecoveredTurns`): the job takes another pass. */
export class TurnReopenedError extends StepFailedError {
  readonly reopened: string[];
  constructor(jobId: string, stepId: string, reopened: string[]) {
    super(jobId, stepId, `nothing to export yet: the session has no timeline, though ${reopened.join(', ')} was concluded applied by disconnect recovery`, {
      hint: 'talk checks that instruction again and sends it only if the session shows it did not apply',
    });
    this.reopened = reopened;
  }
}

/** A guard: fail (exit 3) unless the balance holds at least `min` credits. */
export async function runCredits(ctx: StepContext, step: CreditsStep, label: string): Promise<StepResultInfo> {
  const credits = await ctx.client.getCredits(callOptions(ctx));
  if (credits.available < step.min) {
    const error = notEnoughCredits(label, step.min, credits.available, ctx.client.outOfCreditsHint());
    throw new CreditsError(`${label} needs at least ${step.min} credits; ${credits.available} are available`, error.hint ? { hint: error.hint } : undefined);
  }
  await update(ctx, step, { status: 'done' });
  return {};
}
