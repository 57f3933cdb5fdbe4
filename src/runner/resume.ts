/**
 * Resume decisions (SPEC §3), as pure functions over the recorded state and the new
 * fingerprints, so `talk run` and `talk plan` say the same thing.
 *
 * Per job first: the session is kept unless something already applied to it changed — an
 * upload or instruction that ran (or may have run) now has another fingerprint, or is gone
 * from the workflow. Then per step:
 *
 * | recorded                                   | fingerprint | decision   |
 * |--------------------------------------------|-------------|------------|
 * | nothing, pending, or a new session         | any         | `run`      |
 * | done (export: output file intact)          | same        | `skip`     |
 * | export, render completed, file missing     | same        | `download` |
 * | export, render submitted (or submitting)   | same        | `reattach` |
 * | instruction sent, outcome unknown          | same        | `check`    |
 * | anything                                   | changed     | `run`      |
 *
 * A paid turn or a render is therefore never repeated by a resume: `reattach` polls the same
 * render id, and `check` re-sends only when disconnect recovery says the turn did not apply.
 */
import type { JobState, StepState } from '../state/types.js';
import type { PlanJob } from '../plan/types.js';
import { changedFields, type FingerprintField, type StepFingerprint } from './fingerprint.js';
import { unreachable } from '../core/unreachable.js';

/** What a (re)run does with one step. */
export type ResumeAction = 'run' | 'skip' | 'download' | 'reattach' | 'check';

/** The decision for one step, with the fingerprint fields that changed (empty when none). */
export interface StepDecision {
  action: ResumeAction;
  changed: FingerprintField[];
}

/** The decision for one job. */
export interface JobDecision {
  /** True when the recorded session is dropped and a new one created. */
  newSession: boolean;
  /** Why a new session is needed, in words (for a notice). */
  newSessionReason?: string;
  steps: Map<string, StepDecision>;
}

/** True when a step may have changed the session at the backend. */
function touchedSession(step: StepState): boolean {
  if (step.kind === 'upload') return step.status !== 'pending';
  if (step.kind === 'instruction') return step.status === 'done' || step.turn !== undefined;
  return false;
}

/**
 * Decide a job. `outputIntact(stepId)` says whether a done export's file is still the one
 * recorded (size and SHA-256); it is only asked for done exports.
 */
export function decideJob(
  job: PlanJob,
  recorded: Readonly<JobState> | undefined,
  fingerprints: ReadonlyMap<string, StepFingerprint>,
  outputIntact: (stepId: string) => boolean,
): JobDecision {
  const steps = new Map<string, StepDecision>();
  const planned = new Set(job.steps.map((s) => s.id as string));
  let newSessionReason: string | undefined;
  if (recorded?.sessionId !== undefined) {
    for (const [id, step] of Object.entries(recorded.steps)) {
      if (!touchedSession(step)) continue;
      const fp = fingerprints.get(id);
      if (!fp || !planned.has(id)) {
        newSessionReason = `step ${id} was removed from the workflow`;
        break;
      }
      if (step.fingerprint !== fp.fingerprint) {
        newSessionReason = `step ${id} changed (${changedFields(step.fingerprintFields, fp).join(', ')})`;
        break;
      }
    }
  }
  const newSession = newSessionReason !== undefined;
  for (const step of job.steps) {
    const fp = fingerprints.get(step.id);
    const prev = newSession ? undefined : recorded?.steps[step.id];
    if (!fp || !prev) {
      steps.set(step.id, { action: 'run', changed: fp && recorded?.steps[step.id] ? changedFields(recorded.steps[step.id]?.fingerprintFields, fp) : [] });
      continue;
    }
    const changed = prev.fingerprint === fp.fingerprint ? [] : changedFields(prev.fingerprintFields, fp);
    steps.set(step.id, { action: changed.length > 0 ? 'run' : decideSameStep(step.id, prev, outputIntact), changed });
  }
  return { newSession, ...(newSessionReason ? { newSessionReason } : {}), steps };
}

function decideSameStep(stepId: string, prev: StepState, outputIntact: (stepId: string) => boolean): ResumeAction {
  switch (prev.kind) {
    case 'export':
      if (prev.status === 'done' && prev.output && outputIntact(stepId)) return 'skip';
      if (prev.render?.phase === 'completed') return 'download';
      if (prev.render) return 'reattach';
      return 'run';
    case 'instruction':
      if (prev.status === 'done') return 'skip';
      return prev.turn ? 'check' : 'run';
    case 'upload':
      return prev.status === 'done' ? 'skip' : 'run';
    case 'credits':
      // A balance check is cheap and the balance moves: always check again.
      return 'run';
    default:
      return unreachable(prev.kind, 'kind');
  }
}

/**
 * Credits a job would still spend under `decision`: the estimates of the instructions it will
 * send. A done one (`skip`) costs nothing, and neither does a `check`: the turn was sent (and
 * perhaps paid) by an earlier run, and the check itself is free; should it find that the turn
 * did not apply, the re-send is checked against the budget and the live balance on its own.
 */
export function remainingCredits(job: PlanJob, decision: JobDecision): number {
  let credits = 0;
  for (const step of job.steps) {
    if (step.kind !== 'instruction') continue;
    const action = decision.steps.get(step.id)?.action ?? 'run';
    if (action === 'skip' || action === 'check') continue;
    credits += step.estimatedCredits;
  }
  return credits;
}

/** Words for a decision, as `talk plan` prints them. */
export function describeDecision(decision: StepDecision, newSession: boolean): string {
  const why = decision.changed.length > 0 ? ` (changed: ${decision.changed.join(', ')})` : '';
  switch (decision.action) {
    case 'skip':
      return 'skip (done)';
    case 'download':
      return 'download only (render finished, file missing)';
    case 'reattach':
      return 'reattach to its render (no new render)';
    case 'check':
      return 'check whether the sent instruction applied; re-send only if not';
    case 'run':
      return `${newSession ? 'run in a new session' : 'run'}${why}`;
    default:
      return unreachable(decision.action, 'action');
  }
}
