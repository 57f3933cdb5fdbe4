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
import type { StepState, UploadRecord } from '../state/types.js';
import type { Limiters } from './limiters.js';
import { notEnoughCredits, type CreditBudget } from './budget.js';

/** What a step executor gets from the runner. */
export interface StepContext {
  jobId: string;
  client: BackendClient;
  store: StateStore;
  limiters: Limiters;
  budget: CreditBudget;
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
async function update(ctx: StepContext, step: PlanStep, change: Partial<StepState>): Promise<StepState> {
  const current = ctx.store.step(ctx.jobId, step.id);
  const next: StepState = { kind: step.kind, status: 'running', attempts: 0, ...current, ...change };
  await ctx.store.putStep(ctx.jobId, step.id, next);
  return next;
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

/** Wait out disconnect recovery: `running` means "keep watching" until the step's deadline. */
async function recover(ctx: StepContext, sessionId: SessionId, baseline: TurnBaseline): Promise<'applied' | 'not-applied'> {
  for (;;) {
    const outcome = await ctx.client.recoverTurn(sessionId, baseline, callOptions(ctx));
    if (outcome !== 'running') return outcome;
    ctx.progress({ label: 'the instruction is still running at the backend' });
  }
}

/** True when the turn may have reached the agent: the request went out and no answer refused it. */
function mayHaveApplied(error: unknown): boolean {
  if (!(error instanceof BackendError)) return false;
  // An HTTP status means the backend answered before any stream: the turn was refused.
  return error.status === undefined || error.route !== 'sse' || error.name === 'TurnLostError';
}

/**
 * Send one instruction, or, when one was sent before and its outcome is unknown, let disconnect
 * recovery decide: applied → done; not applied → send (again); still running → keep waiting.
 */
export async function runInstruction(ctx: StepContext, step: InstructionStep, label: string): Promise<StepResultInfo> {
  const sessionId = await ctx.session();
  const cost = step.estimatedCredits;
  const recorded = ctx.store.step(ctx.jobId, step.id);
  if (recorded?.turn && recorded.status !== 'done') {
    ctx.progress({ label: 'checking whether the earlier attempt applied' });
    const outcome = await recover(ctx, sessionId, recorded.turn.baseline as TurnBaseline);
    if (outcome === 'applied') {
      ctx.budget.commit(0, cost);
      await ctx.store.updateRun({ creditsUsed: ctx.budget.spentTotal });
      const { baseline: _settled, ...turn } = recorded.turn;
      await update(ctx, step, { status: 'done', turn: { ...turn, creditsUsed: cost } });
      ctx.notice('info', `${label}: the instruction sent earlier was applied; it was not sent again`);
      return { reply: '', creditsUsed: cost };
    }
    ctx.notice('info', `${label}: the instruction sent earlier did not apply; sending it again`);
    await update(ctx, step, { turn: undefined });
  }

  ctx.budget.reserve(cost, label);
  let committed = false;
  try {
    // The baseline carries the live balance: checked before anything is sent.
    const baseline = await ctx.client.captureBaseline(sessionId, callOptions(ctx));
    if (cost > 0 && baseline.credits.available < cost) {
      throw notEnoughCredits(label, cost, baseline.credits.available, ctx.client.outOfCreditsHint());
    }
    // Write-ahead: the turn is on disk before it is sent, with what it was sent against.
    const sentAt = new Date().toISOString();
    await update(ctx, step, { turn: { draftRevision: baseline.snapshot.draftHash, baseline, sentAt } });
    let reply: string;
    let silent = false;
    let tools: string[] = [];
    try {
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
        await update(ctx, step, { turn: undefined });
        throw error;
      }
      ctx.retry({ attempt: 1, reason: `${(error as Error).message}; checking the session before deciding to re-send`, delayMs: 0 });
      const outcome = await recover(ctx, sessionId, baseline);
      if (outcome === 'not-applied') {
        await update(ctx, step, { turn: undefined });
        // Transient by construction: the runner's retry sends it again (within `retries`).
        throw new BackendError({ message: `the instruction did not reach the agent (${(error as Error).message})`, route: 'sse', retryable: true });
      }
      reply = '';
    }
    ctx.budget.commit(cost);
    committed = true;
    await ctx.store.updateRun({ creditsUsed: ctx.budget.spentTotal });
    await update(ctx, step, { status: 'done', turn: { draftRevision: baseline.snapshot.draftHash, sentAt, reply, silent, tools, creditsUsed: cost } });
    return { reply, creditsUsed: cost };
  } finally {
    if (!committed) ctx.budget.release(cost);
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
    default: {
      const unreachable: never = a;
      return unreachable;
    }
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
      const failedRender = error instanceof BackendError && error.name === 'RenderFailedError';
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
