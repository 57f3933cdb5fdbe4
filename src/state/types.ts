/**
 * The on-disk run state (SPEC §3). One `RunState` per workflow in the state dir. It holds ids,
 * statuses and hashes only: never a token, never a credential.
 *
 * Step lifecycle (the runner moves a step along it and writes every transition first):
 *
 *   pending ──► running ──► done
 *                  │  ▲
 *                  ▼  │ (retry / resume)
 *                failed
 *
 * `running` on disk after a crash means "intent recorded, outcome unknown": the runner's resume
 * rules (src/runner/resume.ts) decide what to do with it, never a blind re-send.
 */

/** Bumped when the format changes incompatibly; it is part of every step's fingerprint. */
export const STATE_FORMAT_VERSION = 1;

/** Where a step stands. See the diagram above. */
export type StepStatus = 'pending' | 'running' | 'done' | 'failed';

/**
 * A job's overall standing, derived from its steps when the job ends. `not-started`: admission
 * found that its cost did not fit in the budget or balance left; nothing of it was sent.
 */
export type JobStatus = 'pending' | 'running' | 'done' | 'failed' | 'not-started';

/** One uploaded input as the backend described it, plus what we sent. */
export interface UploadRecord {
  /** The input's name in the workflow. */
  name: string;
  /** The backend's file object (`filename`, `cdn_url`, …) as returned. */
  file: unknown;
  bytes?: number;
  sha256?: string;
}

/**
 * An instruction turn. Written before the request (`sentAt`, `baseline`) so that a crash mid-turn
 * can be judged by disconnect recovery instead of being re-sent.
 */
export interface TurnRecord {
  /** The draft hash the turn was sent against (the "draft revision"). */
  draftRevision: string;
  /**
   * The backend client's `TurnBaseline` (state snapshot + credits), kept opaque here. Kept only
   * while the turn's outcome is unknown: disconnect recovery compares against it. A done turn
   * drops it.
   */
  baseline?: unknown;
  sentAt: string;
  /**
   * When the turn's outcome became known (ISO time). With `creditsUsed`, it lets a later
   * process's disconnect recovery account for this turn's charge on the shared account.
   */
  settledAt?: string;
  /**
   * True when disconnect recovery, not the turn's own answer, concluded it applied: such a
   * turn is checked again if the export then finds no timeline. (Older states mark it by
   * having no `reply`.)
   */
  recovered?: boolean;
  reply?: string;
  /** Tools the agent ran during the turn, as the stream named them (for the provenance record). */
  tools?: string[];
  silent?: boolean;
  /** What the backend charged, as far as it could be attributed; else the price list's figure. */
  creditsUsed?: number;
}

/**
 * A render. `submitting` is written before the submit request, `submitted` right after it,
 * `completed` when the status said so. A resume polls the same id in every phase.
 */
export interface RenderRecord {
  id: string;
  phase: 'submitting' | 'submitted' | 'completed';
  outputUrl?: string;
}

/** A verified output file. */
export interface OutputRecord {
  path: string;
  bytes: number;
  sha256: string;
}

/** Everything known about one step of one job. */
export interface StepState {
  kind: 'upload' | 'instruction' | 'export' | 'credits';
  status: StepStatus;
  /** Attempts started over all runs of this state. */
  attempts: number;
  /** Hash over `fingerprintFields`; a change means the step must run again. */
  fingerprint?: string;
  /** Per-field hashes, so `talk plan` can say which field changed. */
  fingerprintFields?: Record<string, string>;
  uploads?: UploadRecord[];
  turn?: TurnRecord;
  render?: RenderRecord;
  /** Every render id this step ever submitted, oldest first (for `talk status`). */
  renderIds?: string[];
  output?: OutputRecord;
  /** Why the step failed; `hint` says what to do next (shown by `talk report`). */
  error?: { code: string; message: string; hint?: string };
  updatedAt?: string;
}

/** One job: its session and its steps. */
export interface JobState {
  status: JobStatus;
  sessionId?: string;
  taskId?: string;
  /** The anonymous user id, for the registration link after 2001. */
  userId?: string;
  steps: Record<string, StepState>;
}

/** Facts about the run as a whole. */
export interface RunMeta {
  version: number;
  workflowPath: string;
  name: string;
  /** The backend's base URL during the last run. */
  backendUrl?: string;
  /** `local` for the in-process local backend (its URL changes run to run), else the URL. */
  backend?: string;
  startedAt: string;
  updatedAt: string;
  /** True once a run ended with every job done; a later `talk run` then starts clean steps only where fingerprints changed. */
  finished: boolean;
  status?: 'success' | 'failed' | 'interrupted' | 'credits' | 'running';
  /** Credits charged by instructions across every run of this state (the price list's figure). */
  creditsUsed: number;
  /** Set when this state is one slice of a CI matrix (`talk run --shard index/count`). */
  shard?: { index: number; count: number };
}

/** The whole state of one workflow's runs. */
export interface RunState extends RunMeta {
  jobs: Record<string, JobState>;
}
