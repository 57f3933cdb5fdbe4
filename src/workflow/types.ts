/**
 * The workflow in its validation stages (CONVENTIONS §6):
 * `WorkflowFile` (as written, after the schema check) → `Workflow` (normalised, every rule
 * passed). Only `Workflow` leaves this folder; planning accepts nothing else.
 */
import type { Diagnostic, SourceSpan } from '../core/diagnostics.js';
import type { Template } from './expressions.js';

/** A duration as written: `30s`, `15m`, `1h`, `500ms` or a number of seconds. */
export type DurationText = string | number;

/** Export options as written (short-form `export:` or a long-form export step). */
export interface ExportFile {
  format?: 'mp4';
  quality?: 'high' | 'medium' | 'low';
  resolution?: '720p' | '1080p';
  aspect?: '16:9' | '9:16' | '1:1';
  output?: string;
}

/** A long-form step as written. The schema guarantees exactly one action key. */
export interface StepFile {
  id: string;
  needs?: string | string[];
  timeout?: DurationText;
  retries?: number;
  upload?: string | string[];
  instruction?: string;
  export?: ExportFile;
  credits?: { min: number };
}

/** `watch:` as written (used by `talk watch`). */
export interface WatchFile {
  pairing?: 'stem' | 'folder' | 'manifest';
  roles?: Record<string, string[]>;
  manifest?: string;
  settle?: DurationText;
  bundle_timeout?: DurationText;
  scan_interval?: DurationText;
  max_attempts?: number;
  output_dir?: string;
  processed_dir?: string;
  failed_dir?: string;
}

/** The file as written, once it matches schemas/workflow.schema.json. */
export interface WorkflowFile {
  version?: 1;
  name?: string;
  description?: string;
  backend?: string;
  language?: string;
  concurrency?: number;
  limits?: { uploads?: number; renders?: number };
  budget?: { credits: number };
  defaults?: { timeout?: DurationText; retries?: number };
  vars?: Record<string, string | number | boolean>;
  inputs?: Record<string, string | { url: string }>;
  instructions?: string[];
  export?: ExportFile;
  steps?: StepFile[];
  foreach?: Record<string, string>;
  watch?: WatchFile;
}

/** Where a run's backend is (same shape as the plan's `BackendChoice`). */
export type WorkflowBackend = { kind: 'cloud' } | { kind: 'local' } | { kind: 'url'; url: string };

/** A named input: a local path template (relative to the workflow) or a remote URL template. */
export interface WorkflowInput {
  name: string;
  /** `path` for local files, `url` for remote media uploaded by URL. */
  kind: 'path' | 'url';
  template: Template;
  /** True when the template uses `item.*`: resolved per job, not at load time. */
  usesItem: boolean;
  location: SourceSpan;
}

interface WorkflowStepBase {
  id: string;
  needs: string[];
  timeoutMs: number;
  retries: number;
  /** Where the step is written (the step, or the short-form key it was generated from). */
  location: SourceSpan;
}

/** Upload the named inputs. */
export interface WorkflowUploadStep extends WorkflowStepBase {
  kind: 'upload';
  inputs: string[];
}

/** Send an instruction; its text may hold expressions, resolved per job. */
export interface WorkflowInstructionStep extends WorkflowStepBase {
  kind: 'instruction';
  text: Template;
}

/** Render and download. `output` is a template relative to the workflow's folder. */
export interface WorkflowExportStep extends WorkflowStepBase {
  kind: 'export';
  format: 'mp4';
  quality: 'high' | 'medium' | 'low';
  resolution: '720p' | '1080p';
  aspect?: '16:9' | '9:16' | '1:1';
  output: Template;
}

/** Fail unless at least `min` credits are available. */
export interface WorkflowCreditsStep extends WorkflowStepBase {
  kind: 'credits';
  min: number;
}

/** A normalised step: ids generated for the short form, defaults applied. */
export type WorkflowStep = WorkflowUploadStep | WorkflowInstructionStep | WorkflowExportStep | WorkflowCreditsStep;

/** One job found at load time: the single `main` job, or one `foreach` item. */
export interface WorkflowJob {
  id: string;
  /** The `foreach` item: key → absolute path of an existing file. */
  item?: Record<string, string>;
}

/** Parsed `watch:` settings with defaults applied and durations in milliseconds. */
export interface WatchSettings {
  /**
   * How files are grouped into one job: `stem` (`anna.jpg` + `anna.mp3`, optional
   * `anna.txt`/`anna.yaml`), `folder` (one subfolder per job), or `manifest` (one subfolder per
   * job, complete once its manifest file, written last, has settled).
   */
  pairing: 'stem' | 'folder' | 'manifest';
  /** Role → accepted extensions (lower case, no dot), in written order. */
  roles: Record<string, string[]>;
  /** The manifest's file name, for `pairing: manifest`. */
  manifest: string;
  /** A file is ready when its size and mtime have not changed for this long. */
  settleMs: number;
  /** An incomplete bundle older than this gets a status file saying what is missing. */
  bundleTimeoutMs: number;
  /** Full reconciliation scan interval; events can be lost (network shares, overflow). */
  scanIntervalMs: number;
  /** Attempts per bundle content; after that it runs again only when its content changes. */
  maxAttempts: number;
  /** Relative to the watched folder (or absolute). Never watched as input. */
  outputDir: string;
  processedDir: string;
  failedDir: string;
}

/** What `${{ workflow.* }}` exposes. */
export interface WorkflowInfo {
  name: string;
  /** Absolute path of the workflow file. */
  file: string;
  /** Absolute path of its folder. */
  dir: string;
}

/**
 * A valid, normalised workflow: every rule passed for every job known at load time. Paths in
 * `jobs` are absolute; templates are parsed and known to resolve for those jobs.
 */
export interface Workflow {
  /** Absolute path of the workflow file. */
  file: string;
  /** Its folder: inputs and outputs are relative to it. */
  dir: string;
  /** The file as shown in diagnostics (relative to the cwd). */
  displayFile: string;
  name: string;
  description: string | undefined;
  /** `short` when written with `instructions`, `long` with `steps`. */
  form: 'short' | 'long';
  backend: WorkflowBackend;
  language: string;
  concurrency: number;
  /** As written; the plan defaults each to the run's concurrency. */
  limits: { uploads: number | undefined; renders: number | undefined };
  budget: { credits: number } | undefined;
  defaults: { timeoutMs: number; retries: number };
  /** `vars` with `--var` overrides applied, as text. */
  vars: Record<string, string>;
  /** The environment variables the workflow's expressions read (only those). */
  env: Record<string, string>;
  inputs: WorkflowInput[];
  /** Steps in written order (a topological order is the plan's business). */
  steps: WorkflowStep[];
  /** `foreach` keys in written order; the first names the job. Undefined without foreach. */
  foreachKeys: string[] | undefined;
  /** Jobs known now: `main`, one per `foreach` item, or none for a watch-folder workflow. */
  jobs: WorkflowJob[];
  /** Present when the file has `watch:`. */
  watch: WatchSettings | undefined;
  /** Key → the short-form instruction list's location (for generated steps and overrides). */
  instructionsLocation: SourceSpan | undefined;
}

/** What `loadWorkflow` returns: the workflow when there is no error, and every diagnostic. */
export interface LoadResult {
  workflow: Workflow | undefined;
  diagnostics: Diagnostic[];
}
