/**
 * Reporters turn the engine's events into output: `tty` (listr2), `plain` (one line per
 * event), `json` (SPEC §1 NDJSON); in GitHub Actions also groups, annotations and the step
 * summary. `createReporter` is the one entry point commands use.
 */
import { appendFile } from 'node:fs/promises';
import type { TalkEvent } from '../core/events.js';
import { planListing, type Plan } from '../plan/types.js';

/** The start of the notice that names the run report; the step summary links it. */
export const REPORT_NOTICE = 'report: ';

export { planListing };
import { createRedactor, type OutputSink } from '../core/redact.js';
import { createPaint } from './format.js';
import { formatAnnotation, isGitHubActions, runAnnotations } from './github.js';
import { JsonWriter } from './json.js';
import { PlainWriter } from './plain.js';
import { RunTally, formatStepSummaryMarkdown, formatSummary } from './summary.js';
import { TtyView, type TtyRendererName } from './tty.js';

/** Reporter names of `--reporter`. */
export type ReporterChoice = 'auto' | 'tty' | 'plain' | 'json';

/** Where a step is written in the workflow file (1-based), for annotations. */
export type StepLocator = (job: string, step: string) => { line: number; col: number } | undefined;

/** What `createReporter` needs; commands build it from their shared options and context. */
export interface ReporterOptions {
  name: ReporterChoice;
  stdout: OutputSink;
  stderr: OutputSink;
  /** Only errors and the final summary. */
  quiet: boolean;
  /** Also request-level lines (`notice` events of level `debug`). */
  verbose: boolean;
  /** False for `--no-color` or `NO_COLOR`; `plain` and `json` never colour anyway. */
  color: boolean;
  env: Readonly<Record<string, string | undefined>>;
  /** The workflow file as the user named it: annotations point at it. */
  workflowFile?: string | undefined;
  /** The command that continues this work, quoted in next actions (default `talk run <workflowFile>`). */
  resumeCommand?: string | undefined;
  /** Defaults to the locations in `plan`, when given. */
  stepLocations?: StepLocator | undefined;
  /**
   * The plan being run: lets the tty view draw every step before it starts and know when a
   * job is finished even if `run:start` carries no `plan` listing, and places annotations.
   */
  plan?: Plan | undefined;
  /** Output paths inside this folder are shown relative to it (usually the user's cwd). */
  cwd?: string | undefined;
  /** listr2 renderer for `tty` (tests use `test`). */
  ttyRenderer?: TtyRendererName | undefined;
  /** Least time between two tty frames (default 100 ms; tests use 0 to see every change). */
  ttyFrameMs?: number | undefined;
}

/** Receives every event of a run; `close` prints the end-of-run summary and waits for output to finish. */
export interface Reporter {
  emit(event: TalkEvent): void;
  close(): Promise<void>;
}

/** `auto` → `tty` on an interactive terminal, else `plain`. */
export function resolveReporterName(name: ReporterChoice, stdout: OutputSink): 'tty' | 'plain' | 'json' {
  if (name !== 'auto') return name;
  return stdout.isTTY ? 'tty' : 'plain';
}

/**
 * Wraps a sink so everything written through it is redacted (token patterns, Authorization
 * values, the literal `NEMO_TOKEN`). main.ts redacts too; doing it here as well keeps a
 * reporter safe when it is handed raw streams.
 */
export function redactingSink(sink: OutputSink, env: Readonly<Record<string, string | undefined>>): OutputSink {
  const redact = createRedactor([env['NEMO_TOKEN']]);
  return {
    write: (text: string) => sink.write(redact(text)),
    get isTTY() {
      return sink.isTTY;
    },
    get columns() {
      return sink.columns;
    },
  };
}

/** Where each step of a plan is written in its workflow file, for annotations. */
export function stepLocatorFor(plan: Plan): StepLocator {
  const index = new Map<string, { line: number; col: number }>();
  for (const job of plan.jobs) {
    for (const step of job.steps) if (step.location !== undefined) index.set(`${job.id}\u0000${step.id}`, { line: step.location.line, col: step.location.col });
  }
  return (job, step) => index.get(`${job}\u0000${step}`);
}

/** The `run:start.plan` listing of a plan: jobs and their step ids in plan order. */

/** Builds the reporter for a run. */
export function createReporter(options: ReporterOptions): Reporter {
  const stdout = redactingSink(options.stdout, options.env);
  const stderr = redactingSink(options.stderr, options.env);
  const redact = createRedactor([options.env['NEMO_TOKEN']]);
  const name = resolveReporterName(options.name, options.stdout);
  const github = isGitHubActions(options.env);
  const tally = new RunTally();
  const resumeCommand = options.resumeCommand ?? (options.workflowFile === undefined ? undefined : `talk run ${options.workflowFile}`);
  const stepLocations = options.stepLocations ?? (options.plan === undefined ? undefined : stepLocatorFor(options.plan));
  const paint = createPaint(name === 'tty' && options.color);

  let json: JsonWriter | undefined;
  let plain: PlainWriter | undefined;
  let tty: TtyView | undefined;
  if (name === 'json') json = new JsonWriter(stdout);
  // Quiet output is a few lines at most: no live view, just errors and the summary.
  else if (name === 'plain' || options.quiet) plain = new PlainWriter({ out: stdout, quiet: options.quiet, verbose: options.verbose, github: github && name === 'plain', tally, cwd: options.cwd });
  else tty = new TtyView({ out: stdout, tally, verbose: options.verbose, cwd: options.cwd, ...(options.ttyRenderer === undefined ? {} : { renderer: options.ttyRenderer }), ...(options.ttyFrameMs === undefined ? {} : { frameMs: options.ttyFrameMs }) });

  let closed: Promise<void> | undefined;
  let reportFile: string | undefined;
  const finish = async (): Promise<void> => {
    plain?.flushAll();
    if (tty !== undefined) await tty.close();
    const ran = tally.jobs.size > 0 || tally.status !== undefined;
    if (!ran) return;
    if (json === undefined) stdout.write(`\n${formatSummary(tally, { paint, resumeCommand, cwd: options.cwd })}`);
    if (!github) return;
    // Annotations go where GitHub reads workflow commands; in json mode stdout is NDJSON only.
    const annotationSink = json === undefined ? stdout : stderr;
    for (const annotation of runAnnotations(tally, { workflowFile: options.workflowFile, resumeCommand, stepLocations })) {
      annotationSink.write(formatAnnotation(annotation));
    }
    const summaryFile = options.env['GITHUB_STEP_SUMMARY'];
    if (summaryFile !== undefined && summaryFile !== '') {
      try {
        await appendFile(summaryFile, redact(formatStepSummaryMarkdown(tally, options.workflowFile, resumeCommand, reportFile)), 'utf8');
      } catch (error) {
        stderr.write(`talk: could not write the GitHub step summary (${error instanceof Error ? error.message : String(error)}); the run itself is unaffected.\n`);
      }
    }
  };

  return {
    emit(event: TalkEvent): void {
      if (closed !== undefined) return;
      // `talk run` announces the report it wrote with this notice (see commands/run.ts).
      if (event.type === 'notice' && event.message.startsWith(REPORT_NOTICE)) reportFile = event.message.slice(REPORT_NOTICE.length);
      json?.emit(event);
      // The views (not the NDJSON) get the plan listing when the engine left it out.
      const seen = event.type === 'run:start' && event.plan === undefined && options.plan !== undefined ? { ...event, plan: planListing(options.plan) } : event;
      const finishedJob = tally.observe(seen);
      plain?.emit(seen, finishedJob);
      tty?.emit(seen, finishedJob);
    },
    close(): Promise<void> {
      closed ??= finish();
      return closed;
    },
  };
}

export { RunTally, formatStepSummaryMarkdown, formatSummary, nextAction } from './summary.js';
export { formatRequestLine } from './format.js';
export { diagnosticAnnotations, formatDiagnosticAnnotations, formatAnnotation, isGitHubActions } from './github.js';
export { formatJsonLine } from './json.js';
