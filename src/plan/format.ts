/**
 * `talk plan`'s text: the run's settings, then each job's steps in order with their needs,
 * what each does, its estimated credits and (for the runner's resume view) an extra column
 * from `annotate`, then the credit estimate.
 */
import path from 'node:path';
import { estimateCredits } from './estimate.js';
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

/** The plan as text, ending in a newline. */
export function formatPlan(plan: Plan, options: FormatPlanOptions = {}): string {
  const base = options.cwd ?? plan.workflowDir;
  const shown = (p: string): string => {
    const rel = path.relative(base, p);
    return rel === '' || rel.startsWith('..') || path.isAbsolute(rel) ? p : rel.split(path.sep).join('/');
  };
  const width = options.maxTextWidth ?? 60;
  const estimate = estimateCredits(plan);
  const lines: string[] = [];
  lines.push(`plan ${plan.name} (${shown(plan.workflowPath)})`);
  const settings = [
    `backend ${backendLabel(plan.backend)}`,
    `language ${plan.language}`,
    `concurrency ${plan.concurrency}`,
    `uploads ${plan.limits.uploads}`,
    `renders ${plan.limits.renders}`,
  ];
  if (plan.budget) settings.push(`budget ${plan.budget.credits} credits`);
  lines.push(settings.join(' · '));
  if (plan.jobs.length === 0) {
    lines.push('', 'no jobs: foreach matched nothing, or the items come from a watch folder (`talk watch`)');
  }
  for (const job of plan.jobs) {
    lines.push('', `job ${job.id}${job.item ? ` (${Object.entries(job.item).map(([k, v]) => `${k}: ${shown(v)}`).join(', ')})` : ''}`);
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
    lines.push(...table(rows).map((l) => `  ${l}`));
  }
  lines.push('');
  const perJob = Object.entries(estimate.perJob);
  // Per job while it reads as a list; a big batch says how many jobs and the range instead.
  const least = perJob.reduce((m, [, n]) => Math.min(m, n), Infinity);
  const most = perJob.reduce((m, [, n]) => Math.max(m, n), 0);
  const breakdown =
    perJob.length <= 1
      ? ''
      : perJob.length <= 10
        ? ` (${perJob.map(([id, n]) => `${id} ${n}`).join(', ')})`
        : ` (${perJob.length} jobs, ${least === most ? `about ${most} each` : `${least}–${most} each`})`;
  const now = options.creditsNow;
  if (now) {
    lines.push(`credits now: about ${now.now}, the whole workflow about ${estimate.total}${breakdown}; a generation costs about 100, an edit about 50, an export nothing`);
    if (now.budgetLeft !== undefined && now.fitting < plan.jobs.length) {
      lines.push(`budget: ${now.fitting} of ${plan.jobs.length} jobs fit in the ${now.budgetLeft} credits the budget leaves; talk run stops before anything is paid unless --partial`);
    }
    if (now.now > 0) lines.push('balance: checked by talk run before anything is paid');
  } else {
    lines.push(`credits: about ${estimate.total}${breakdown}; a generation costs about 100, an edit about 50, an export nothing`);
    if (plan.budget && estimate.total > plan.budget.credits) {
      lines.push(`budget: the estimate exceeds the budget of ${plan.budget.credits}; the run will stop before the step that would cross it`);
    }
  }
  return `${lines.join('\n')}\n`;
}
