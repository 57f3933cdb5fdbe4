/**
 * GitHub Actions workflow commands: `::group::`, `::error file=,line=,col=::` annotations and
 * their caps. GitHub shows at most 10 error and 10 warning annotations per step (50 per job)
 * and drops the rest silently, so talk picks the most useful ones itself and says how many
 * more there were, pointing at the step summary.
 */
import { compareDiagnostics, type Diagnostic } from '../core/diagnostics.js';
import { type RunTally, nextAction } from './summary.js';

/** True when running inside GitHub Actions. */
export function isGitHubActions(env: Readonly<Record<string, string | undefined>>): boolean {
  return env['GITHUB_ACTIONS'] === 'true';
}

/** Annotation levels GitHub knows (talk uses error and warning; notice is not capped the same way). */
export type AnnotationLevel = 'error' | 'warning' | 'notice';

/** One annotation; `file`/`line`/`col` place it on a line of the workflow YAML. */
export interface Annotation {
  level: AnnotationLevel;
  message: string;
  title?: string | undefined;
  file?: string | undefined;
  line?: number | undefined;
  col?: number | undefined;
}

/** GitHub's per-step caps (documented limits of the annotations API). */
export const ANNOTATION_CAPS: Readonly<Record<AnnotationLevel, number>> = { error: 10, warning: 10, notice: 10 };

/** Escapes a command's message (after `::`). */
export function escapeData(text: string): string {
  return text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/** Escapes a property value (`file=`, `title=`): also `:` and `,`, which end properties. */
export function escapeProperty(text: string): string {
  return escapeData(text).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

/** `::error file=a.yaml,line=3,col=5,title=…::message` plus a newline. */
export function formatAnnotation(annotation: Annotation): string {
  const props: string[] = [];
  if (annotation.file !== undefined) props.push(`file=${escapeProperty(annotation.file)}`);
  if (annotation.line !== undefined) props.push(`line=${annotation.line}`);
  if (annotation.col !== undefined) props.push(`col=${annotation.col}`);
  if (annotation.title !== undefined) props.push(`title=${escapeProperty(annotation.title)}`);
  const head = props.length > 0 ? `::${annotation.level} ${props.join(',')}` : `::${annotation.level}`;
  return `${head}::${escapeData(annotation.message)}\n`;
}

/** `::group::name` — GitHub folds the lines up to the next `::endgroup::`. */
export function groupStart(name: string): string {
  return `::group::${escapeData(name)}\n`;
}

/** Closes the open group. */
export function groupEnd(): string {
  return '::endgroup::\n';
}

/**
 * Keeps annotations within GitHub's caps, in the given order of importance: when a level has
 * more than its cap, the first `cap - 1` are kept and the last slot says how many more there
 * were and where to find them (so nothing vanishes without a word).
 */
export function capAnnotations(annotations: readonly Annotation[], where: string, caps: Readonly<Record<AnnotationLevel, number>> = ANNOTATION_CAPS): Annotation[] {
  const kept: Annotation[] = [];
  for (const level of ['error', 'warning', 'notice'] as const) {
    const ofLevel = annotations.filter((a) => a.level === level);
    const cap = caps[level];
    if (ofLevel.length <= cap) {
      kept.push(...ofLevel);
      continue;
    }
    const shown = ofLevel.slice(0, Math.max(0, cap - 1));
    const rest = ofLevel.length - shown.length;
    kept.push(...shown, {
      level,
      title: `talk: ${rest} more ${level === 'error' ? 'errors' : level === 'warning' ? 'warnings' : 'notices'}`,
      message: `${rest} more ${level}s are not annotated here (GitHub shows ${cap} per step); ${where}.`,
    });
  }
  return kept;
}

/** `a`, `a and b`, `a, b and 3 more`. */
function listJobs(ids: readonly string[]): string {
  if (ids.length <= 1) return ids.join('');
  if (ids.length <= 3) return `${ids.slice(0, -1).join(', ')} and ${ids.at(-1) ?? ''}`;
  return `${ids.slice(0, 2).join(', ')} and ${ids.length - 2} more`;
}

/**
 * One error annotation per distinct failure (same step, code and message across jobs count
 * once, with the jobs listed), placed on the failed step's line; then one warning per
 * distinct warning notice. Most frequent failures come first: they matter most.
 */
export function runAnnotations(
  tally: RunTally,
  options: {
    workflowFile: string | undefined;
    resumeCommand: string | undefined;
    stepLocations?: ((job: string, step: string) => { line: number; col: number } | undefined) | undefined;
  },
): Annotation[] {
  const groups = new Map<string, { jobs: string[]; step: string; code: string; message: string; hint: string | undefined; at: { line: number; col: number } | undefined }>();
  for (const job of tally.jobs.values()) {
    const failure = job.failure;
    if (failure === undefined) continue;
    const at = options.stepLocations?.(job.id, failure.step);
    const key = JSON.stringify([failure.step, failure.code, failure.message, at?.line, at?.col]);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, { jobs: [job.id], step: failure.step, code: failure.code, message: failure.message, hint: failure.hint, at });
    else group.jobs.push(job.id);
  }
  const errors = [...groups.values()]
    .sort((a, b) => b.jobs.length - a.jobs.length)
    .map((g): Annotation => {
      const jobs = tally.jobs.size > 1 || g.jobs[0] !== 'main' ? ` (${g.jobs.length === 1 ? 'job' : `${g.jobs.length} jobs:`} ${listJobs(g.jobs)})` : '';
      const placed = g.at !== undefined && options.workflowFile !== undefined;
      return {
        level: 'error',
        title: `talk: step ${g.step} failed${jobs}`,
        message: `${g.message} (${g.code}). Next: ${nextAction({ code: g.code, message: g.message, hint: g.hint }, options.resumeCommand)}`,
        file: placed ? options.workflowFile : undefined,
        line: placed ? g.at?.line : undefined,
        col: placed ? g.at?.col : undefined,
      };
    });
  for (const error of tally.errors) errors.push({ level: 'error', title: 'talk', message: error.message });
  const seen = new Set<string>();
  const warnings: Annotation[] = [];
  for (const warning of tally.warnings) {
    if (seen.has(warning.message)) continue;
    seen.add(warning.message);
    warnings.push({ level: 'warning', title: 'talk', message: warning.message });
  }
  return capAnnotations([...errors, ...warnings], 'see the job summary and the log for all of them');
}

/**
 * GitHub annotations for validation diagnostics when running in GitHub Actions, else ''.
 * For `talk validate` and `talk run` on an invalid workflow: write it to stdout after the
 * pretty diagnostics (stderr in json mode).
 */
export function diagnosticAnnotations(diagnostics: readonly Diagnostic[], env: Readonly<Record<string, string | undefined>>): string {
  return isGitHubActions(env) ? formatDiagnosticAnnotations(diagnostics) : '';
}

/**
 * Validation diagnostics as annotations, for `talk validate` in GitHub Actions: each on its
 * own file, line and column, in source order, within the caps.
 */
export function formatDiagnosticAnnotations(diagnostics: readonly Diagnostic[]): string {
  const annotations = [...diagnostics].sort(compareDiagnostics).map(
    (d): Annotation => ({
      level: d.severity === 'error' ? 'error' : 'warning',
      title: 'talk validate',
      message: d.hint === undefined ? d.message : `${d.message}. ${d.hint}`,
      file: d.file,
      line: d.line,
      col: d.col,
    }),
  );
  return capAnnotations(annotations, 'run `talk validate` to see all of them').map(formatAnnotation).join('');
}
