/**
 * The end-of-run picture, folded from events: per job its status, outputs, duration, credits,
 * link and first failure; and the texts made from it (terminal summary, GitHub step summary).
 * Every reporter keeps one `RunTally`, so they all agree on what happened.
 */
import type { RunStatus, StepKind, TalkEvent } from '../core/events.js';
import { type Paint, displayOutput, formatCredits, formatElapsed } from './format.js';
import { unreachable } from '../core/unreachable.js';

/** Where a job stands, as far as the events tell (the run state's own is `state`'s `JobStatus`). */
export type JobProgress = 'waiting' | 'running' | 'success' | 'failed' | 'skipped' | 'interrupted';

/** A step's last known state, as far as the events tell. */
export type StepProgress = 'waiting' | 'running' | 'done' | 'skipped' | 'failed';

/** One failure, kept for the summary and for GitHub annotations. */
export interface JobFailure {
  step: string;
  code: string;
  message: string;
  hint: string | undefined;
}

/** Everything the summary says about one job. */
export interface JobTally {
  id: string;
  status: JobProgress;
  /** Declared steps (from `run:start.plan`), else the steps seen so far, in order. */
  steps: Map<string, { state: StepProgress; kind: StepKind | undefined; skipReason?: string }>;
  /** True when the step list came from the plan (so "all settled" means finished). */
  declared: boolean;
  outputs: string[];
  /** True when the job has an export step (so "done" without an output is not a success). */
  expectsOutput: boolean;
  creditsUsed: number;
  firstTs: number | undefined;
  lastTs: number | undefined;
  link: string | undefined;
  failure: JobFailure | undefined;
}

/** Folded state of a whole run. */
export class RunTally {
  readonly jobs = new Map<string, JobTally>();
  name: string | undefined;
  workflow: string | undefined;
  backend: string | undefined;
  resumed = false;
  expectedJobs = 0;
  status: RunStatus | undefined;
  creditsUsed: number | undefined;
  durationMs: number | undefined;
  warnings: { message: string; job: string | undefined; step: string | undefined }[] = [];
  errors: { message: string; job: string | undefined; step: string | undefined }[] = [];

  /** The job record, created on first mention. */
  job(id: string): JobTally {
    let job = this.jobs.get(id);
    if (job === undefined) {
      job = {
        id,
        status: 'waiting',
        steps: new Map(),
        declared: false,
        outputs: [],
        expectsOutput: false,
        creditsUsed: 0,
        firstTs: undefined,
        lastTs: undefined,
        link: undefined,
        failure: undefined,
      };
      this.jobs.set(id, job);
    }
    return job;
  }

  /**
   * Folds one event in. Returns the id of a job that became finished with this event (every
   * declared step settled), so reporters can close its group or collapse its row.
   */
  observe(event: TalkEvent): string | undefined {
    switch (event.type) {
      case 'run:start': {
        this.name = event.name;
        this.workflow = event.workflow;
        this.backend = event.backend;
        this.resumed = event.resumed;
        this.expectedJobs += event.jobs;
        for (const declared of event.plan ?? []) {
          const job = this.job(declared.job);
          job.declared = true;
          for (const step of declared.steps) {
            if (!job.steps.has(step)) job.steps.set(step, { state: 'waiting', kind: undefined });
          }
        }
        return undefined;
      }
      case 'step:start':
        if (event.kind === 'export') this.job(event.job).expectsOutput = true;
        return this.touch(event.job, event.step, event.ts, 'running', event.kind);
      case 'step:progress':
      case 'step:retry':
        return this.touch(event.job, event.step, event.ts, 'running', undefined);
      case 'step:done': {
        const job = this.job(event.job);
        if (event.output !== undefined) job.outputs.push(event.output);
        if (event.creditsUsed !== undefined) job.creditsUsed += event.creditsUsed;
        if (event.link !== undefined) job.link = event.link;
        return this.touch(event.job, event.step, event.ts, 'done', undefined, event.durationMs);
      }
      case 'step:skipped': {
        const job = this.job(event.job);
        job.steps.set(event.step, { ...(job.steps.get(event.step) ?? { state: 'waiting', kind: undefined }), skipReason: event.reason });
        return this.touch(event.job, event.step, event.ts, 'skipped', undefined);
      }
      case 'step:failed': {
        const job = this.job(event.job);
        job.failure ??= { step: event.step, code: event.error.code, message: event.error.message, hint: event.error.hint };
        return this.touch(event.job, event.step, event.ts, 'failed', undefined);
      }
      case 'notice': {
        const entry = { message: event.message, job: event.job, step: event.step };
        if (event.level === 'warn') this.warnings.push(entry);
        if (event.level === 'error') this.errors.push(entry);
        return undefined;
      }
      case 'run:done': {
        this.status = event.status;
        this.creditsUsed = event.creditsUsed;
        this.durationMs = event.durationMs;
        for (const output of event.outputs) {
          const job = this.job(output.job);
          if (!job.outputs.includes(output.path)) job.outputs.push(output.path);
        }
        for (const job of this.jobs.values()) {
          if (job.status !== 'running' && job.status !== 'waiting') continue;
          if (job.failure !== undefined) job.status = 'failed';
          else if (event.status === 'interrupted') job.status = 'interrupted';
          else job.status = settledStatus(job) ?? (job.status === 'waiting' ? 'skipped' : 'interrupted');
        }
        return undefined;
      }
      default:
        return unreachable(event, 'event');
    }
  }

  private touch(
    jobId: string,
    stepId: string,
    ts: string,
    state: StepProgress,
    kind: StepKind | undefined,
    durationMs?: number,
  ): string | undefined {
    const job = this.job(jobId);
    const at = Date.parse(ts);
    // A step's own duration reaches back before its first event when it was resumed.
    const startedAt = durationMs !== undefined ? at - durationMs : at;
    job.firstTs = job.firstTs === undefined ? startedAt : Math.min(job.firstTs, startedAt);
    job.lastTs = job.lastTs === undefined ? at : Math.max(job.lastTs, at);
    const step = job.steps.get(stepId) ?? { state: 'waiting', kind: undefined };
    if (kind !== undefined) step.kind = kind;
    // A progress or retry after a settled state never reopens a step.
    if (state !== 'running' || step.state === 'waiting') step.state = state;
    job.steps.set(stepId, step);
    const wasFinished = isFinished(job.status);
    if (!wasFinished) {
      const settled = job.declared ? settledStatus(job) : undefined;
      job.status = settled ?? 'running';
      if (settled !== undefined) return jobId;
    }
    return undefined;
  }

  /** Jobs by status, for counts in headers and summaries. */
  counts(): Record<JobProgress, number> {
    const counts: Record<JobProgress, number> = { waiting: 0, running: 0, success: 0, failed: 0, skipped: 0, interrupted: 0 };
    for (const job of this.jobs.values()) counts[job.status] += 1;
    // Jobs announced by `run:start.jobs` but never mentioned are still waiting.
    counts.waiting += Math.max(0, this.expectedJobs - this.jobs.size);
    return counts;
  }

  /** Total credits: the run's own figure when it ended, else the sum over jobs. */
  totalCredits(): number {
    if (this.creditsUsed !== undefined) return this.creditsUsed;
    let sum = 0;
    for (const job of this.jobs.values()) sum += job.creditsUsed;
    return sum;
  }
}

/** True for a job status that will not change again. */
export function isFinished(status: JobProgress): boolean {
  return status === 'success' || status === 'failed' || status === 'skipped' || status === 'interrupted';
}

/** The job's final status when every step has settled, else undefined. */
function settledStatus(job: JobTally): JobProgress | undefined {
  if (job.steps.size === 0) return undefined;
  let anyFailed = false;
  let anyInterrupted = false;
  for (const step of job.steps.values()) {
    if (step.state === 'waiting' || step.state === 'running') return undefined;
    if (step.state === 'failed') anyFailed = true;
    if (step.state === 'skipped' && step.skipReason === 'interrupted') anyInterrupted = true;
  }
  if (anyFailed) return 'failed';
  if (anyInterrupted) return 'interrupted';
  // Every step skipped as `resumed` still means the job's result is there: success.
  return 'success';
}

/** Milliseconds a job took, from its first to its last event (resumed steps count their own time). */
export function jobDuration(job: JobTally): number | undefined {
  if (job.firstTs === undefined || job.lastTs === undefined) return undefined;
  return job.lastTs - job.firstTs;
}

/**
 * The next thing to do after a failure, in one sentence. The error's own hint wins; otherwise
 * it follows from the code: credits → top up, token problems → replace NEMO_TOKEN, anything
 * else → resume (finished steps are kept).
 */
export function nextAction(failure: { code: string; message: string; hint?: string | undefined }, resumeCommand: string | undefined): string {
  if (failure.hint !== undefined && failure.hint.trim() !== '') return failure.hint;
  const resume = resumeCommand === undefined ? 'resume with `talk run` on the same workflow' : `resume with \`${resumeCommand}\``;
  if (failure.code === 'credits') return 'top up credits (or register to keep anonymous work), then ' + resume;
  if (failure.code === 'workflow-invalid' || failure.code === 'usage') return 'fix the workflow, then run `talk validate` again';
  if (failure.code === 'backend' && /\b(token|unauthori[sz]ed|401|1001)\b/i.test(failure.message)) {
    return 'replace NEMO_TOKEN with a valid token (or unset it to use an anonymous one), then ' + resume;
  }
  return resume;
}

/**
 * Mark and word of a job in the summary. ✔ only for a job that is done with its outputs; each
 * other outcome has its own mark and word, so no row reads as success when it is not.
 */
function markOf(job: JobTally, paint: Paint): { mark: string; word: string | undefined } {
  switch (job.status) {
    case 'success':
      return job.outputs.length > 0 || !job.expectsOutput ? { mark: paint('green', '✔'), word: undefined } : { mark: paint('yellow', '!'), word: 'done, but no output' };
    case 'failed':
      return { mark: paint('red', '✖'), word: 'failed' };
    case 'skipped':
      return { mark: paint('dim', '↷'), word: 'not run' };
    case 'interrupted':
      return { mark: paint('yellow', '■'), word: 'interrupted' };
    case 'waiting':
      return { mark: paint('dim', '◻'), word: 'not started' };
    case 'running':
      return { mark: paint('yellow', '⧗'), word: 'not finished' };
    default:
      return unreachable(job.status, 'status');
  }
}

/** The headline's word for a run status: `credits` reads as what it means. */
function statusWord(status: RunStatus): string {
  return status === 'credits' ? 'out of credits' : status;
}

/** How many job rows the terminal summary lists before it only counts the rest. */
const SUMMARY_ROWS = 20;

/**
 * The terminal summary: a headline, then per job its status, output, duration, credits and
 * link; each failure with its error in one sentence and the next action. Big batches list the
 * failures and the first rows, then count the rest.
 */
export function formatSummary(
  tally: RunTally,
  options: { paint: Paint; resumeCommand?: string | undefined; errorsOnly?: boolean; cwd?: string | undefined },
): string {
  const { paint } = options;
  const lines: string[] = [];
  const counts = tally.counts();
  const status = tally.status ?? (counts.failed > 0 ? 'failed' : 'interrupted');
  const statusText = status === 'success' ? paint('green', status) : paint('red', statusWord(status));
  const head = [`${tally.jobs.size} ${tally.jobs.size === 1 ? 'job' : 'jobs'}`];
  if (counts.failed > 0) head.push(`${counts.failed} failed`);
  if (tally.durationMs !== undefined) head.push(formatElapsed(tally.durationMs));
  head.push(formatCredits(tally.totalCredits()));
  lines.push(`${paint('bold', 'Summary')}: ${statusText} · ${head.join(' · ')}`);

  const jobs = [...tally.jobs.values()];
  const failed = jobs.filter((j) => j.status === 'failed');
  const others = jobs.filter((j) => j.status !== 'failed');
  const listed = [...failed, ...(options.errorsOnly === true ? [] : others)];
  const shown = listed.slice(0, Math.max(SUMMARY_ROWS, failed.length > SUMMARY_ROWS ? SUMMARY_ROWS : failed.length));
  // Columns line up: every row's cells are padded to the widest cell of their column.
  const rows = shown.map((job) => {
    const duration = jobDuration(job);
    const { mark, word } = markOf(job, paint);
    const what = job.outputs.length > 0 ? job.outputs.map((o) => displayOutput(o, options.cwd)).join(', ') : (word ?? '');
    return { job, mark, cells: [job.id, what, duration === undefined ? '' : formatElapsed(duration), job.creditsUsed > 0 ? formatCredits(job.creditsUsed) : ''] };
  });
  const widths = [0, 1, 2, 3].map((c) => Math.max(0, ...rows.map((r) => (r.cells[c] ?? '').length)));
  widths[0] = Math.min(24, Math.max(3, widths[0] ?? 0));
  for (const { job, mark, cells } of rows) {
    const padded = cells.map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(widths[c] ?? 0)));
    lines.push(`  ${mark} ${padded.join('  ').trimEnd()}`);
    if (job.link !== undefined) lines.push(`      open in the editor: ${job.link}`);
    if (job.failure !== undefined) {
      lines.push(`      ${paint('red', `step ${job.failure.step}: ${job.failure.message}`)} (${job.failure.code})`);
      lines.push(`      → ${nextAction(job.failure, options.resumeCommand)}`);
    }
  }
  const hidden = listed.length - shown.length;
  if (hidden > 0) lines.push(paint('dim', `  … and ${hidden} more ${hidden === 1 ? 'job' : 'jobs'} (${describeCounts(counts)})`));
  for (const error of tally.errors) lines.push(`  ${paint('red', 'error')}: ${error.message}`);
  if (status === 'interrupted') lines.push(`  → ${nextAction({ code: 'interrupted', message: '' }, options.resumeCommand)}`);
  return lines.join('\n') + '\n';
}

/** `812 done · 3 failed · 8 running · 177 waiting`. */
export function describeCounts(counts: Record<JobProgress, number>): string {
  const parts = [`${counts.success} done`];
  if (counts.failed > 0) parts.push(`${counts.failed} failed`);
  if (counts.running > 0) parts.push(`${counts.running} running`);
  if (counts.waiting > 0) parts.push(`${counts.waiting} waiting`);
  if (counts.skipped > 0) parts.push(`${counts.skipped} not run`);
  if (counts.interrupted > 0) parts.push(`${counts.interrupted} interrupted`);
  return parts.join(' · ');
}

/** A Markdown table cell: pipes escaped, newlines folded. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** Rows the step summary lists before it only counts the rest (GitHub caps the page at 1 MiB). */
const STEP_SUMMARY_ROWS = 200;

/** The Markdown written to `$GITHUB_STEP_SUMMARY`: headline, a table of jobs, then failures. */
export function formatStepSummaryMarkdown(tally: RunTally, workflowFile: string | undefined, resumeCommand: string | undefined, report?: string): string {
  const status = tally.status ?? 'interrupted';
  const icon = status === 'success' ? '✅' : status === 'interrupted' ? '⏹️' : '❌';
  const lines: string[] = [];
  lines.push(`### ${icon} talk: ${cell(tally.name ?? workflowFile ?? 'run')} — ${status}`);
  lines.push('');
  const facts = [`**Jobs:** ${tally.jobs.size}`, `**Credits:** ${tally.totalCredits()}`];
  if (tally.durationMs !== undefined) facts.push(`**Duration:** ${formatElapsed(tally.durationMs)}`);
  if (tally.backend !== undefined) facts.push(`**Backend:** ${cell(tally.backend)}`);
  lines.push(facts.join(' · '));
  lines.push('');
  // The report is a file of the workspace: the step summary names it (upload it as an artifact).
  if (report !== undefined) lines.push(`**Report:** [\`${cell(report)}\`](${encodeURI(report)}) (in the uploaded artifact)`, '');
  lines.push('| job | status | output | duration | credits |');
  lines.push('|---|---|---|---|---|');
  const jobs = [...tally.jobs.values()].sort((a, b) => Number(b.status === 'failed') - Number(a.status === 'failed'));
  for (const job of jobs.slice(0, STEP_SUMMARY_ROWS)) {
    const duration = jobDuration(job);
    const output = job.outputs.map((o) => `\`${cell(o)}\``).join('<br>');
    const link = job.link === undefined ? '' : ` ([open](${job.link}))`;
    lines.push(`| ${cell(job.id)}${link} | ${job.status} | ${output} | ${duration === undefined ? '' : formatElapsed(duration)} | ${job.creditsUsed} |`);
  }
  if (jobs.length > STEP_SUMMARY_ROWS) lines.push(`\n… and ${jobs.length - STEP_SUMMARY_ROWS} more jobs.`);
  const failures = jobs.filter((j) => j.failure !== undefined);
  if (failures.length > 0) {
    lines.push('');
    lines.push('#### Failures');
    lines.push('');
    for (const job of failures.slice(0, STEP_SUMMARY_ROWS)) {
      const failure = job.failure;
      if (failure === undefined) continue;
      lines.push(`- **${cell(job.id)}** / \`${cell(failure.step)}\`: ${cell(failure.message)} (\`${failure.code}\`) — ${cell(nextAction(failure, resumeCommand))}`);
    }
  }
  return lines.join('\n') + '\n\n';
}
