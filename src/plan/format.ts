/**
 * `talk plan`'s text: the run's settings, then each job's steps in order with their needs,
 * what each does, its estimated credits and (for the runner's resume view) an extra column
 * from `annotate`, then the credit estimate.
 */
import path from 'node:path';
import { estimateCredits } from './estimate.js';
import { shardSummary } from './shard.js';
import type { BackendChoice, Plan, PlanStep } from './types.js';
import { unreachable } from '../core/unreachable.js';

/** Options of `formatPlan`. */
export interface FormatPlanOptions {
  /** An extra last column per step, e.g. `skip (done)` for a resume; undefined leaves it blank. */
  annotate?: (jobId: string, stepId: string) => string | undefined;
  /** Paths are shown relative to this folder (default: the workflow's folder). */
  cwd?: string;
  /** Longest instruction text shown before it is cut with `…`. */
  maxTextWidth?: number;
  /**
   * What the jobs would spend now, resume honoured, and how many fit in what the budget leaves
   * (`talk plan` is offline: the balance is checked by `talk run`).
   */
  creditsNow?: { now: number; fitting: number; budgetLeft: number | undefined } | undefined;
}

function backendLabel(backend: BackendChoice): string {
  return backend.kind === 'url' ? backend.url : backend.kind;
}

function shorten(text: string, width: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= width ? flat : `${flat.slice(0, Math.max(1, width - 1))}…`;
}

function describe(step: PlanStep, shown: (p: string) => string, width: number): string {
  switch (step.kind) {
    case 'upload':
      return step.inputs.map((i) => `${i.name} ← ${i.url ?? (i.path === undefined ? '?' : shown(i.path))}`).join(', ');
    case 'instruction':
      return `"${shorten(step.text, width)}" (${step.turnClass})`;
    case 'export':
      return `${step.format} ${step.quality} ${step.resolution}${step.aspect ? ` ${step.aspect}` : ''} → ${shown(step.output)}`;
    case 'credits':
      return `at least ${step.min} credits available`;
    default:
      return unreachable(step, 'step');
  }
}

/** Lay out rows as columns separated by two spaces; trailing blanks trimmed. */
function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd());
}

/** Pieces of `formatPlan`'s text are about this long: a big plan's text is never one string. */
const PIECE_CHARS = 64 * 1024;

/** The plan as text, ending in a newline. */
export function formatPlan(plan: Plan, options: FormatPlanOptions = {}): string {
  return [...formatPlanPieces(plan, options)].join('');
}

/**
 * `formatPlan`'s text in pieces of about 64 KB, for writing as it is made: the text of a
 * 100,000-item plan is 37 MB, and its lines and then its one string were the largest things a
 * `talk plan` held.
 */
export function* formatPlanPieces(plan: Plan, options: FormatPlanOptions = {}): Generator<string> {
  const base = options.cwd ?? plan.workflowDir;
  const inside = base.endsWith(path.sep) ? base : `${base}${path.sep}`;
  const shown = (p: string): string => {
    // Plan paths are resolved (normalised, absolute): one below the folder is the rest of it,
    // without path.relative's work, 300,000 times in a 100,000-item plan.
    const rel = p.startsWith(inside) ? p.slice(inside.length) : path.relative(base, p);
    return rel === '' || rel.startsWith('..') || path.isAbsolute(rel) ? p : rel.split(path.sep).join('/');
  };
  const width = options.maxTextWidth ?? 60;
  let piece = '';
  const line = (text: string): string | undefined => {
    piece += `${text}\n`;
    if (piece.length < PIECE_CHARS) return undefined;
    const full = piece;
    piece = '';
    return full;
  };
  let full: string | undefined;
  line(`plan ${plan.name} (${shown(plan.workflowPath)})`);
  const settings = [
    `backend ${backendLabel(plan.backend)}`,
    `language ${plan.language}`,
    `concurrency ${plan.concurrency}`,
    `uploads ${plan.limits.uploads}`,
    `renders ${plan.limits.renders}`,
  ];
  if (plan.budget) settings.push(`budget ${plan.budget.credits} credits`);
  line(settings.join(' · '));
  const sharded = shardSummary(plan);
  if (sharded !== undefined) line(sharded);
  if (plan.jobs.length === 0 && plan.shard === undefined) {
    line('');
    line('no jobs: foreach matched nothing, or the items come from a watch folder (`talk watch`)');
  }
  // The estimate, job by job as the jobs are written (estimateCredits' table of 100,000 ids is
  // needed only for a short list).
  let total = 0;
  let least = Infinity;
  let most = 0;
  for (const job of plan.jobs) {
    let credits = 0;
    for (const step of job.steps) if (step.kind === 'instruction') credits += step.estimatedCredits;
    total += credits;
    least = Math.min(least, credits);
    most = Math.max(most, credits);
    line('');
    full = line(`job ${job.id}${job.item ? ` (${Object.entries(job.item).map(([k, v]) => `${k}: ${shown(v)}`).join(', ')})` : ''}`);
    if (full !== undefined) yield full;
    const rows: string[][] = [['#', 'step', 'needs', 'does', 'credits']];
    const annotated = options.annotate !== undefined;
    if (annotated) rows[0]?.push('');
    job.steps.forEach((step, i) => {
      const row = [
        String(i + 1),
        step.id,
        step.needs.length === 0 ? '-' : step.needs.join(', '),
        describe(step, shown, width),
        step.kind === 'instruction' ? `~${step.estimatedCredits}` : '',
      ];
      if (annotated) row.push(options.annotate?.(job.id, step.id) ?? '');
      rows.push(row);
    });
    for (const l of table(rows)) {
      full = line(`  ${l}`);
      if (full !== undefined) yield full;
    }
  }
  line('');
  const jobs = plan.jobs.length;
  // Per job while it reads as a list; a big batch says how many jobs and the range instead.
  const breakdown =
    jobs <= 1
      ? ''
      : jobs <= 10
        ? ` (${Object.entries(estimateCredits(plan).perJob)
            .map(([id, n]) => `${id} ${n}`)
            .join(', ')})`
        : ` (${jobs} jobs, ${least === most ? `about ${most} each` : `${least}–${most} each`})`;
  const now = options.creditsNow;
  if (now) {
    line(`credits now: about ${now.now}, the whole workflow about ${total}${breakdown}; a generation costs about 100, an edit about 50, an export nothing`);
    if (now.budgetLeft !== undefined && now.fitting < plan.jobs.length) {
      line(`budget: ${now.fitting} of ${plan.jobs.length} jobs fit in the ${now.budgetLeft} credits the budget leaves; talk run stops before anything is paid unless --partial`);
    }
    if (now.now > 0) line('balance: checked by talk run before anything is paid');
  } else {
    line(`credits: about ${total}${breakdown}; a generation costs about 100, an edit about 50, an export nothing`);
    if (plan.budget && total > plan.budget.credits) {
      line(`budget: the estimate exceeds the budget of ${plan.budget.credits}; the run will stop before the step that would cross it`);
    }
  }
  if (piece !== '') yield piece;
}
