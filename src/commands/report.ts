/**
 * `talk report [workflow.yaml]`: write the run's self-contained `report.html` next to its
 * outputs (the folder that holds them all), with a poster frame and a strip of frames per
 * video in `report-frames/` beside it. `talk run` calls `writeRunReport` at the end of a
 * `foreach` run (unless `--no-report`); `talk watch` calls `writeWatchIndex` as bundles finish
 * (`index.html` in its output folder, from the sidecars there).
 */
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';
import { writeFileAtomic } from '../core/atomic-write.js';
import { ExitCode, UsageError, WorkflowInvalidError } from '../core/errors.js';
import { displayPath, provenancePath, sanitizeFileName } from '../core/paths.js';
import type { FfmpegTools } from '../local-backend/ffmpeg.js';
import { planRun, type ExportStep, type Plan, type PlanJob } from '../plan/index.js';
import { renderReportHtml, type ReportJob, type ReportJobStatus } from '../reporters/html-report.js';
import { formatDiagnostics } from '../reporters/diagnostics.js';
import type { MediaFacts, ProvenanceRecord } from '../runner/index.js';
import { listRunDirs, readRunState, runDirFor, stateDirFor, type JobState, type RunState } from '../state/index.js';
import { loadWorkflow } from '../workflow/index.js';
import { backendIdFor } from './resume-view.js';
import type { CommandContext, SharedOptions } from './context.js';
import { findMediaTools, makeFrames, probeFacts } from './media-tools.js';
import { unreachable } from '../core/unreachable.js';

export interface ReportOptions extends SharedOptions {
  /** Print `{"report": path}` (or `{"reports": [...]}`) instead of text. */
  json: boolean;
}

/** The folder every export output of the plan lies in (the deepest common one). */
export function reportDirFor(plan: Plan): string {
  const dirs = plan.jobs.flatMap((j) => j.steps.filter((s): s is ExportStep => s.kind === 'export').map((s) => path.dirname(s.output)));
  if (dirs.length === 0) return plan.workflowDir;
  let common = dirs[0]!.split(path.sep);
  for (const d of dirs) {
    const parts = d.split(path.sep);
    let i = 0;
    while (i < common.length && i < parts.length && common[i] === parts[i]) i += 1;
    common = common.slice(0, i);
  }
  return common.join(path.sep) || path.sep;
}

function statusOf(job: JobState | undefined): ReportJobStatus {
  switch (job?.status) {
    case undefined:
    case 'pending':
    case 'not-started':
      return 'not-started';
    case 'running':
      return 'unfinished';
    case 'done':
      return 'done';
    case 'failed':
      return 'failed';
    default:
      return unreachable(job!.status, 'status');
  }
}

async function readRecord<T = Partial<ProvenanceRecord>>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

const rel = (from: string, to: string): string => path.relative(from, to).split(path.sep).join('/');

/** One card: state for status, credits and errors; the record (or ffprobe) for media facts. */
async function jobCard(plan: Plan, job: PlanJob, state: RunState | undefined, dir: string, tools: FfmpegTools | undefined, signal: AbortSignal | undefined): Promise<ReportJob> {
  const recorded = state?.jobs[job.id];
  const status = statusOf(recorded);
  const instructions = job.steps.flatMap((s) => (s.kind === 'instruction' ? [{ text: s.text, ...(recorded?.steps[s.id]?.turn?.reply ? { reply: recorded.steps[s.id]!.turn!.reply! } : {}) }] : []));
  const credits = Object.values(recorded?.steps ?? {}).reduce((sum, s) => sum + (s.turn?.creditsUsed ?? 0), 0);
  const card: ReportJob = { id: job.id, status, credits, instructions };
  for (const s of job.steps) {
    const e = recorded?.steps[s.id]?.error;
    if (recorded?.steps[s.id]?.status === 'failed' && e) {
      card.error = { ...e, step: s.id };
      break;
    }
  }
  if (status === 'failed' && !card.error) card.error = { code: 'failed', message: 'a step failed; see `talk status` for its steps' };
  const exp = job.steps.find((s): s is ExportStep => s.kind === 'export');
  const out = exp ? recorded?.steps[exp.id]?.output : undefined;
  if (!exp || !out) return card;
  const stem = plan.jobs.length > 1 ? job.id : path.basename(out.path, path.extname(out.path));
  await addVideo(card, { dir, video: out.path, stem, tools, signal });
  return card;
}

/**
 * A card's video, record and frames, when the video exists (thumbnails only for outputs that
 * exist). Media facts come from the record beside the video, else from ffprobe; the poster and
 * the strip of frames go to `report-frames/` (made again only when the video is newer).
 */
async function addVideo(
  card: ReportJob,
  input: { dir: string; video: string; stem: string; tools: FfmpegTools | undefined; signal: AbortSignal | undefined },
): Promise<void> {
  const { dir, video, tools, signal } = input;
  const exists = await stat(video).then(
    (st) => st.isFile(),
    () => false,
  );
  if (!exists) return;
  card.video = rel(dir, video);
  const recordFile = provenancePath(video);
  const record = await readRecord(recordFile);
  if (record) card.record = rel(dir, recordFile);
  let facts: MediaFacts | undefined = record?.video;
  if (facts?.duration === undefined && tools) facts = await probeFacts(tools.ffprobe, video, signal).catch(() => undefined);
  if (facts?.duration !== undefined) card.duration = facts.duration;
  if (facts?.width && facts.height) {
    card.width = facts.width;
    card.height = facts.height;
  }
  if (tools && card.duration !== undefined) {
    const stem = sanitizeFileName(input.stem);
    const frames = { poster: path.join(dir, 'report-frames', `${stem}.poster.jpg`), strip: path.join(dir, 'report-frames', `${stem}.strip.jpg`) };
    try {
      await makeFrames(tools.ffmpeg, video, card.duration, frames, signal ? { signal } : {});
      card.poster = rel(dir, frames.poster);
      card.strip = rel(dir, frames.strip);
    } catch {
      // A video ffmpeg cannot decode still gets its card, without frames.
    }
  }
}

/**
 * Write `<dir>/<fileName>` (default `report.html` in `reportDirFor(plan)`) for a plan and its
 * recorded state. Returns the file written.
 */
export async function writeRunReport(input: {
  plan: Plan;
  state: RunState | undefined;
  tools: FfmpegTools | undefined;
  cwd: string;
  signal?: AbortSignal | undefined;
  dir?: string;
  fileName?: string;
  wallTimeMs?: number;
  now?: Date;
}): Promise<string> {
  const { plan, state } = input;
  const dir = input.dir ?? reportDirFor(plan);
  await mkdir(path.join(dir, 'report-frames'), { recursive: true });
  // ffmpeg runs two at a time; reading records and stat-ing outputs is cheap.
  const limit = pLimit(2);
  const jobs = await Promise.all(plan.jobs.map((job) => limit(() => jobCard(plan, job, state, dir, input.tools, input.signal))));
  const started = state ? Date.parse(state.startedAt) : NaN;
  const ended = state ? Date.parse(state.updatedAt) : NaN;
  const wallTimeMs = input.wallTimeMs ?? (Number.isFinite(started) && Number.isFinite(ended) ? ended - started : undefined);
  const html = renderReportHtml({
    name: plan.name,
    workflow: displayPath(plan.workflowPath, input.cwd),
    generatedAt: (input.now ?? new Date()).toISOString(),
    ...(state ? { startedAt: state.startedAt } : {}),
    ...(wallTimeMs !== undefined ? { wallTimeMs } : {}),
    credits: jobs.reduce((sum, j) => sum + j.credits, 0),
    jobs,
  });
  const file = path.join(dir, input.fileName ?? 'report.html');
  await writeFileAtomic(file, html, { durable: false });
  return file;
}

/** A watch folder's sidecar as the index reads it (see schemas/provenance.schema.json). */
type SidecarRecord = Partial<ProvenanceRecord> & {
  status?: 'done' | 'failed' | 'incomplete' | 'waiting-credits';
  bundle?: string;
  output?: string;
  creditsUsed?: number;
  error?: { code: string; message: string; hint?: string } | null;
  missing?: string[];
  problems?: string[];
  needs?: number;
  available?: number;
};

/** One bundle's card from its sidecar. */
async function bundleCard(outputDir: string, name: string, sidecar: SidecarRecord, tools: FfmpegTools | undefined, signal: AbortSignal | undefined): Promise<ReportJob> {
  const id = sidecar.bundle ?? name;
  const instructions = (sidecar.instructions ?? []).map((i) => ({ text: i.text, ...(i.reply ? { reply: i.reply } : {}) }));
  const card: ReportJob = { id, status: 'done', credits: sidecar.creditsUsed ?? 0, instructions };
  switch (sidecar.status) {
    case undefined:
    case 'done':
      break;
    case 'failed':
      card.status = 'failed';
      if (sidecar.error) card.error = sidecar.error;
      break;
    case 'incomplete':
      card.status = 'not-started';
      card.error = { code: 'incomplete', message: `still missing: ${(sidecar.missing ?? []).join(', ') || 'a partner file'}`, ...(sidecar.problems?.length ? { hint: sidecar.problems.join('; ') } : {}) };
      break;
    case 'waiting-credits':
      card.status = 'not-started';
      card.error = { code: 'credits', message: `waiting for credits: needs about ${sidecar.needs ?? 0}, ${sidecar.available ?? 0} available` };
      break;
    default:
      return unreachable(sidecar.status, 'status');
  }
  if (card.status === 'done' && sidecar.output) await addVideo(card, { dir: outputDir, video: path.resolve(outputDir, sidecar.output), stem: id, tools, signal });
  else card.record = `${name}.talk.json`;
  return card;
}

/**
 * A watch folder's `index.html` in its output folder: one card per bundle that has a sidecar
 * there (done, failed, incomplete or waiting for credits), written again as bundles finish.
 * Returns the file written.
 */
export async function writeWatchIndex(input: { outputDir: string; name: string; workflow: string; tools: FfmpegTools | undefined; signal?: AbortSignal | undefined; now?: Date }): Promise<string> {
  const { outputDir } = input;
  await mkdir(path.join(outputDir, 'report-frames'), { recursive: true });
  const names = (await readdir(outputDir)).filter((f) => f.endsWith('.talk.json')).sort().map((f) => f.slice(0, -'.talk.json'.length));
  const limit = pLimit(2);
  const jobs = (
    await Promise.all(
      names.map((name) =>
        limit(async () => {
          const sidecar = await readRecord<SidecarRecord>(path.join(outputDir, `${name}.talk.json`));
          return sidecar ? bundleCard(outputDir, name, sidecar, input.tools, input.signal) : undefined;
        }),
      ),
    )
  ).filter((j): j is ReportJob => j !== undefined);
  const html = renderReportHtml({
    name: input.name,
    workflow: input.workflow,
    generatedAt: (input.now ?? new Date()).toISOString(),
    credits: jobs.reduce((sum, j) => sum + j.credits, 0),
    jobs,
  });
  const file = path.join(outputDir, 'index.html');
  await writeFileAtomic(file, html, { durable: false });
  return file;
}

/**
 * `talk report [workflow]`: prints the path of each report written. Without a workflow, one
 * report per workflow with a run recorded in the state dir (`./.talk` or `--state-dir`).
 */
export async function reportCommand(args: string[], options: ReportOptions, ctx: CommandContext): Promise<number> {
  const file = args[0];
  const workflows = file === undefined ? await recordedWorkflows(options, ctx) : [file];
  const written: { report: string; recorded: boolean }[] = [];
  for (const workflow of workflows) written.push(await reportFor(workflow, options, ctx));
  if (options.json) {
    ctx.stdout.write(`${JSON.stringify(file === undefined ? { reports: written.map((w) => w.report) } : { report: written[0]!.report })}\n`);
  } else {
    for (const w of written) ctx.stdout.write(`${w.recorded ? '' : 'no run recorded yet: every job is "not started"\n'}report: ${w.report}\n`);
  }
  return ExitCode.ok;
}

/** The workflows the state dir holds runs of, in the order `talk status` lists them. */
async function recordedWorkflows(options: ReportOptions, ctx: CommandContext): Promise<string[]> {
  const stateDir = path.resolve(ctx.cwd, options.stateDir ?? '.talk');
  const workflows = new Set<string>();
  for (const runDir of await listRunDirs(stateDir, { signal: ctx.signal })) {
    const loaded = await readRunState(runDir, { signal: ctx.signal });
    if (loaded) workflows.add(loaded.state.workflowPath);
  }
  if (workflows.size === 0) {
    throw new UsageError(`no runs recorded in ${displayPath(stateDir, ctx.cwd)}: name the workflow to report on`, {
      hint: 'e.g. `talk report examples/batch.yaml` (run state lives in .talk/ beside each workflow, or in --state-dir)',
    });
  }
  return [...workflows];
}

async function reportFor(file: string, options: ReportOptions, ctx: CommandContext): Promise<{ report: string; recorded: boolean }> {
  const { workflow, diagnostics } = await loadWorkflow(file, { vars: options.vars, env: { ...ctx.env }, cwd: ctx.cwd, signal: ctx.signal });
  if (!workflow) {
    ctx.stderr.write(`${formatDiagnostics(diagnostics, { color: options.color && ctx.stderr.isTTY })}\n`);
    throw new WorkflowInvalidError(diagnostics, `${displayPath(path.resolve(ctx.cwd, file), ctx.cwd)} is invalid`);
  }
  const plan = planRun(workflow, { backend: options.backend, concurrency: options.concurrency });
  const stateDir = stateDirFor(plan.workflowPath, options.stateDir, ctx.cwd);
  const loaded = await readRunState(runDirFor(stateDir, plan.workflowPath, backendIdFor(plan, ctx.env)), { signal: ctx.signal });
  const written = await writeRunReport({ plan, state: loaded?.state, tools: findMediaTools(ctx.env), cwd: ctx.cwd, signal: ctx.signal });
  return { report: displayPath(written, ctx.cwd), recorded: loaded !== undefined };
}
