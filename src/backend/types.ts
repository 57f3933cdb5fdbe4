/**
 * What the runner needs from the backend. `createBackendClient` (src/backend/client.ts)
 * implements it over undici for the cloud and the local backend alike: the runner never knows
 * which one it talks to.
 */
import type { RenderId, SessionId, TaskId } from '../core/ids.js';
import type { CreditsData, RenderOutput, SessionStateData, UploadedFile } from '../contract/bodies.js';

/** Options on every call: cancellation, and a hook the retry layer reports waits through. */
export interface CallOptions {
  signal?: AbortSignal | undefined;
  /** Called before each automatic retry (429 wait, 5xx backoff, token renewal). */
  onRetry?: ((info: RetryInfo) => void) | undefined;
}

export interface RetryInfo {
  attempt: number;
  reason: string;
  delayMs: number;
}

/** One request as `--verbose` shows it: never a header, a body or a token. */
export interface RequestInfo {
  method: string;
  route: string;
  /** HTTP status, or undefined when no response arrived. */
  status: number | undefined;
  durationMs: number;
}

/** Byte progress of a transfer. `total` is unknown for some downloads. */
export type TransferProgress = (bytes: number, total: number | undefined) => void;

export interface UploadResult {
  file: UploadedFile;
  bytes: number;
  /** SHA-256 of the bytes sent, computed while streaming. */
  sha256: string;
}

/** Compact facts about session state, compared before and after a turn (CONTRACT §3.8). */
export interface StateSnapshot {
  tracks: number;
  segmentsPerTrack: number[];
  durationMs: number;
  videoInfos: number;
  generatedMedia: number;
  /** A stable hash of the whole draft: any change to it changes this. */
  draftHash: string;
}

/** What the runner records before sending a turn, so recovery can judge it later. */
export interface TurnBaseline {
  snapshot: StateSnapshot;
  credits: CreditsData;
  /**
   * When the baseline was read (epoch ms): the start of recovery's window, against which other
   * turns of the account are weighed. Absent in states written before it was recorded.
   */
  at?: number;
}

/**
 * Other turns of the same account over one turn's recovery window, as the caller's own records
 * know them (every job of the run). Credits are per account, so only these say whether a credit
 * movement can be this turn's.
 */
export interface AccountActivity {
  /** True when no other turn of the account was in flight at any moment of the window. */
  alone: boolean;
  /** Other turns overlapping the window that are still being concluded (their charge will be known). */
  othersOpen: number;
  /** Other turns overlapping the window whose outcome stays unknown (failed mid-turn, ambiguous). */
  othersUnsettled: number;
  /** Credits booked for the other overlapping turns that have concluded. */
  othersCharged: number;
}

/** Live activity during a turn, for the reporters. */
export type TurnActivity =
  | { kind: 'tool-start'; name: string; label: string }
  | { kind: 'tool-end'; name: string }
  | { kind: 'partial-text'; text: string }
  | { kind: 'still-working'; waitedMs: number };

export interface TurnResult {
  /** The agent's final reply, GUI phrases translated; empty for a silent turn. */
  text: string;
  /** Tool names seen, in order. */
  tools: string[];
  /** True when the stream ended with no text (CONTRACT §3.8). */
  silent: boolean;
  /** For a silent turn: what changed in state, in words ("added 1 track"), or "nothing changed". */
  change?: string;
  /** An `ask_question` the agent ended the turn with. */
  question?: { prompt: string; options: string[] };
}

/**
 * Outcome of disconnect recovery (SPEC §3, CONTRACT §2.4; judged by `judgeRead`):
 * - `applied`: the session changed, or a charge attributable to this turn was made; `credits` is
 *   that charge when it could be attributed, else undefined (the caller books the price list's).
 * - `running`: this turn alone holds frozen credits past the window: it still runs.
 * - `not-applied`: repeated reads with nothing changed and nothing unexplained: only then may
 *   the caller re-send.
 * - `unknown`: other turns of the account kept the evidence ambiguous to the window's end; the
 *   caller must not send again (`why` says what stayed unexplained).
 */
export type RecoveryOutcome =
  | { outcome: 'applied'; credits: number | undefined }
  | { outcome: 'running' }
  | { outcome: 'not-applied' }
  | { outcome: 'unknown'; why: string };

export interface RenderResult {
  /** Where the finished file is, when the status said so. */
  outputUrl: string | undefined;
}

export interface DownloadResult {
  bytes: number;
  sha256: string;
}

export interface BackendClient {
  /** The base URL requests go to (for fingerprints and messages). */
  readonly baseUrl: string;

  createSession(input: { taskName: string; language: string }, options?: CallOptions): Promise<{ sessionId: SessionId; taskId: TaskId; userId: string | undefined }>;
  uploadFile(sessionId: SessionId, filePath: string, options?: CallOptions & { onProgress?: TransferProgress }): Promise<UploadResult>;
  uploadUrl(sessionId: SessionId, url: string, options?: CallOptions): Promise<UploadedFile[]>;

  getState(sessionId: SessionId, options?: CallOptions): Promise<SessionStateData>;
  getCredits(options?: CallOptions): Promise<CreditsData>;
  /** Snapshot of state + credits to store before a turn is sent. */
  captureBaseline(sessionId: SessionId, options?: CallOptions): Promise<TurnBaseline>;

  /** One `/run_sse` turn. Never re-sent automatically: it costs credits. */
  sendInstruction(sessionId: SessionId, text: string, options?: CallOptions & { onActivity?: (a: TurnActivity) => void; baseline?: TurnBaseline }): Promise<TurnResult>;
  /** Disconnect recovery for a turn that was in flight: read state and credits at widening intervals. */
  recoverTurn(sessionId: SessionId, baseline: TurnBaseline, options?: CallOptions & { activity?: () => AccountActivity }): Promise<RecoveryOutcome>;

  /** A fresh client-chosen render id, `render_<ms>_<random>`. */
  newRenderId(): RenderId;
  submitRender(input: { renderId: RenderId; sessionId: SessionId; draft: unknown; output: RenderOutput }, options?: CallOptions): Promise<void>;
  /** Poll until completed (resolve) or failed (reject with a BackendError). */
  waitForRender(renderId: RenderId, options?: CallOptions & { onProgress?: (percent: number) => void }): Promise<RenderResult>;
  /** Stream the file to `dest` atomically (temp beside it, fsync, rename); falls back to the download route. */
  downloadRender(renderId: RenderId, outputUrl: string | undefined, dest: string, options?: CallOptions & { onProgress?: TransferProgress }): Promise<DownloadResult>;

  /** The browser link for a project (`<web>/workspace/claim?ct=…`). */
  claimLink(taskId: TaskId, sessionId: SessionId, options?: CallOptions): Promise<string>;
  /** What a user out of credits should do next (the registration link for an anonymous account). */
  outOfCreditsHint(): string;

  close(): Promise<void>;
}
