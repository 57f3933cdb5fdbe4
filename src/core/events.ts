/**
 * The one channel out of the engine. Each member is exactly one NDJSON line of
 * `--reporter json` (SPEC §1); reporters only format these.
 */

/** Kinds of step a plan contains. */
export type StepKind = 'upload' | 'instruction' | 'export' | 'credits';

/** Fields every `step:*` event carries. */
export interface StepRef {
  /** The job id (`main` without `foreach`, else derived from the item). */
  job: string;
  /** The step id as written, or as generated for the short form. */
  step: string;
}

/** A run begins: after validation and planning, before any network request. */
export interface RunStartEvent {
  type: 'run:start';
  ts: string;
  workflow: string;
  name: string;
  backend: string;
  jobs: number;
  /** True when an unfinished earlier run is being continued. */
  resumed: boolean;
  /** `--shard i/n`: this run is the i-th of n slices of the workflow's `of` jobs (`jobs` are its own). */
  shard?: { index: number; count: number; of: number };
  /**
   * Optional: the jobs and their step ids in plan order. Reporters use it to draw every step
   * before it starts and to know when a job has finished (all its steps settled).
   */
  plan?: { job: string; steps: string[] }[];
}

/** A step begins its first attempt. */
export interface StepStartEvent extends StepRef {
  type: 'step:start';
  ts: string;
  kind: StepKind;
}

/**
 * Progress on a long step: bytes for transfers, percent for renders, a label for the agent's
 * tool activity ("generating video") and heartbeat-only waits ("still working").
 */
export interface StepProgressEvent extends StepRef {
  type: 'step:progress';
  ts: string;
  bytes?: number;
  total?: number;
  percent?: number;
  label?: string;
}

/** A step's attempt failed transiently and will be tried again after `delayMs`. */
export interface StepRetryEvent extends StepRef {
  type: 'step:retry';
  ts: string;
  attempt: number;
  reason: string;
  delayMs: number;
}

/** A step finished. `output` is set for exports (the written file). */
export interface StepDoneEvent extends StepRef {
  type: 'step:done';
  ts: string;
  durationMs: number;
  output?: string;
  /** The agent's reply to an instruction, GUI phrases translated. */
  reply?: string;
  creditsUsed?: number;
  /**
   * Optional, on a job's last step: the browser link to open the job's project in the editor
   * (cloud: `<web>/workspace/claim?ct=<claim token>`). Never carries the API token.
   */
  link?: string;
}

/** A step was not run. `reason` says why: `resumed`, `upstream-failed`, `interrupted`, … */
export interface StepSkippedEvent extends StepRef {
  type: 'step:skipped';
  ts: string;
  reason: string;
}

/** A step failed for good. */
export interface StepFailedEvent extends StepRef {
  type: 'step:failed';
  ts: string;
  error: { code: string; message: string; hint?: string };
}

/** Something the user should know that is not a step transition. */
export interface NoticeEvent {
  type: 'notice';
  ts: string;
  level: 'info' | 'warn' | 'error' | 'debug';
  message: string;
  job?: string;
  step?: string;
}

/** Outcome of a whole run. */
export type RunStatus = 'success' | 'failed' | 'interrupted' | 'credits';

/** A run ends. `outputs` lists every file written, per job. */
export interface RunDoneEvent {
  type: 'run:done';
  ts: string;
  status: RunStatus;
  outputs: { job: string; step: string; path: string; sha256?: string; bytes?: number }[];
  creditsUsed: number;
  durationMs: number;
}

export type TalkEvent =
  | RunStartEvent
  | StepStartEvent
  | StepProgressEvent
  | StepRetryEvent
  | StepDoneEvent
  | StepSkippedEvent
  | StepFailedEvent
  | NoticeEvent
  | RunDoneEvent;

export type TalkEventType = TalkEvent['type'];

/** Distributes Omit over the union so callers can build events without `ts`. */
export type TalkEventInit = TalkEvent extends infer E ? (E extends TalkEvent ? Omit<E, 'ts'> : never) : never;

/** Receives events; reporters and tests implement it. */
export type EventSink = (event: TalkEvent) => void;

/** Stamps an event with the current time. */
export function stamp(init: TalkEventInit, now: () => Date = () => new Date()): TalkEvent {
  return { ts: now().toISOString(), ...init };
}
