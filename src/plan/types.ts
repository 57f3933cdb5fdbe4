/**
 * An executable plan: what `talk run` executes and `talk plan` prints. Produced only from a
 * validated `Workflow` (src/workflow), so everything here is already checked: paths are
 * absolute and exist, expressions are resolved, the step graph is acyclic.
 */
import type { SourceSpan } from '../core/diagnostics.js';
import type { JobId, StepId } from '../core/ids.js';
import type { StepKind } from '../core/events.js';
import type { Aspect, TurnClass } from '../contract/pricing.js';

/** Where a run's backend is: the real service, an in-process local one, or a URL. */
export type BackendChoice = { kind: 'cloud' } | { kind: 'local' } | { kind: 'url'; url: string };

export interface Plan {
  /** Absolute path of the workflow file. */
  workflowPath: string;
  /** Its folder: relative inputs and outputs resolve against it; outputs may not escape it. */
  workflowDir: string;
  name: string;
  backend: BackendChoice;
  /** Language code sent when creating sessions (e.g. `en`, `zh-CN`). */
  language: string;
  /** Jobs (and steps) in flight at once. */
  concurrency: number;
  limits: { uploads: number; renders: number };
  budget?: { credits: number };
  jobs: PlanJob[];
  /** `--shard i/n`: this plan holds the i-th of n slices of the workflow's `of` jobs. */
  shard?: { index: number; count: number; of: number };
}

/** One unit of work with its own backend session: the whole workflow, or one `foreach` item. */
export interface PlanJob {
  id: JobId;
  /** The `foreach` item this job came from, by key (e.g. `portrait`, `voice`) → absolute path. */
  item?: Record<string, string>;
  /** Steps in a topological order (needs before dependants; ties in written order). */
  steps: PlanStep[];
}

interface PlanStepBase {
  id: StepId;
  kind: StepKind;
  needs: StepId[];
  timeoutMs: number;
  /** Extra attempts for transient failures (default 2). */
  retries: number;
  /** Where the step is defined in the workflow file (the step, or the short-form key). */
  location?: SourceSpan;
}

/** A local file or a URL to add to the session. */
export interface PlanInput {
  /** The input's name in `inputs:` (or the `foreach` key). */
  name: string;
  /** Absolute path of a local file. */
  path?: string;
  /** Remote media, uploaded with the URL form. */
  url?: string;
}

export interface UploadStep extends PlanStepBase {
  kind: 'upload';
  inputs: PlanInput[];
}

export interface InstructionStep extends PlanStepBase {
  kind: 'instruction';
  /** The text sent to the agent, expressions resolved. */
  text: string;
  /** From the shared classifier: what the turn is expected to cost. */
  turnClass: TurnClass;
  estimatedCredits: number;
}

export interface ExportStep extends PlanStepBase {
  kind: 'export';
  format: 'mp4';
  quality: 'high' | 'medium' | 'low';
  resolution: '720p' | '1080p';
  aspect?: Aspect;
  /** Absolute output path, inside the workflow's folder. */
  output: string;
}

export interface CreditsStep extends PlanStepBase {
  kind: 'credits';
  /** Fail (exit 3) unless at least this many credits are available. */
  min: number;
}

export type PlanStep = UploadStep | InstructionStep | ExportStep | CreditsStep;

// The format's defaults live with the loader that applies them; re-exported under these names.
export { DEFAULT_CONCURRENCY, DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS } from '../workflow/defaults.js';

/** Jobs and their step ids in plan order: what `run:start.plan` carries for reporters. */
export function planListing(plan: Plan): { job: string; steps: string[] }[] {
  return plan.jobs.map((job) => ({ job: job.id, steps: job.steps.map((step) => step.id) }));
}
