/**
 * From a validated `Workflow` to the executable `Plan`: backend and limits settled, one job
 * per item, expressions resolved, paths absolute, steps in a topological order, each
 * instruction classified with the shared price list. Pure: no I/O.
 */
import path from 'node:path';
import { makeDiagnostic, type Diagnostic, type SourceSpan } from '../core/diagnostics.js';
import { UsageError, WorkflowInvalidError } from '../core/errors.js';
import { asJobId, asStepId } from '../core/ids.js';
import { classifyInstruction, type Classification } from '../contract/pricing.js';
import {
  filePartsOf,
  literalTemplate,
  parseBackend,
  resolveTemplate,
  type ExpressionScope,
  type FileParts,
  type Template,
  type Workflow,
  type WorkflowStep,
} from '../workflow/index.js';
import type { BackendChoice, Plan, PlanInput, PlanJob, PlanStep } from './types.js';
import { unreachable } from '../core/unreachable.js';

/** Options of `planRun`: the command line's overrides. */
export interface PlanRunOptions {
  /** `--backend`: cloud, local or a URL. */
  backend?: string | undefined;
  /** `--concurrency`. */
  concurrency?: number | undefined;
}

/** A watch-folder item (or any item made outside `foreach`) to plan one job for. */
export interface PlanItem {
  id: string;
  /** Role → absolute path, exposed as `item.<role>.*`. */
  files: Record<string, string>;
  /** Replace the workflow's instructions (short form only). */
  instructions?: string[] | undefined;
  /** Replace export.output (absolute, or relative to the workflow's folder); may lie outside it. */
  output?: string | undefined;
}

function fail(workflow: Workflow, problems: { message: string; hint?: string | undefined; at: SourceSpan | undefined }[]): never {
  const diagnostics: Diagnostic[] = problems.map((p) => makeDiagnostic(p.at ?? { file: workflow.displayFile, line: 1, col: 1 }, 'error', p.message, p.hint));
  throw new WorkflowInvalidError(diagnostics, `the workflow cannot be planned for this item: ${diagnostics.map((d) => d.message).join('; ')}`);
}

function resolveOrFail(workflow: Workflow, template: Template, scope: ExpressionScope): string {
  const result = resolveTemplate(template, scope);
  if (result.ok) return result.value;
  return fail(
    workflow,
    result.errors.map((e) => ({ message: e.message, hint: e.hint, at: e.location ?? template.location })),
  );
}

/**
 * Steps in a topological order: a step comes after everything it needs; among steps that are
 * ready together, the one written first goes first (so the order is stable run to run).
 */
export function orderSteps<T extends { id: string; needs: readonly string[] }>(steps: readonly T[]): T[] {
  const remaining = new Map(steps.map((s) => [s.id, new Set(s.needs)] as const));
  const ordered: T[] = [];
  const done = new Set<string>();
  while (ordered.length < steps.length) {
    const next = steps.find((s) => !done.has(s.id) && [...(remaining.get(s.id) ?? [])].every((n) => done.has(n)));
    // Validation rejects cycles and unknown needs; keep written order if one slipped through.
    const pick = next ?? steps.find((s) => !done.has(s.id));
    if (!pick) break;
    done.add(pick.id);
    ordered.push(pick);
  }
  return ordered;
}

function shortFormInstructions(workflow: Workflow, texts: readonly string[]): WorkflowStep[] {
  const uploads = workflow.steps.filter((s) => s.kind === 'upload').map((s) => s.id);
  const first = workflow.steps.find((s) => s.kind === 'instruction');
  const location = workflow.instructionsLocation ?? first?.location ?? { file: workflow.displayFile, line: 1, col: 1 };
  const steps: WorkflowStep[] = [];
  let previous: string | undefined;
  texts.forEach((text, index) => {
    const id = `instruction-${index + 1}`;
    steps.push({
      kind: 'instruction',
      id,
      needs: previous === undefined ? [...uploads] : [...uploads, previous],
      timeoutMs: first?.timeoutMs ?? workflow.defaults.timeoutMs,
      retries: first?.retries ?? workflow.defaults.retries,
      location,
      text: literalTemplate(text, location),
    });
    previous = id;
  });
  const rebuilt: WorkflowStep[] = [];
  for (const step of workflow.steps) {
    if (step.kind === 'instruction') continue;
    if (step.kind === 'export') {
      rebuilt.push(...steps, { ...step, needs: previous === undefined ? [...uploads] : [previous] });
    } else {
      rebuilt.push(step);
    }
  }
  return rebuilt;
}

/** The price list's verdict on an instruction's text; one per text for a whole plan (every job of a batch says the same). */
type Classify = (text: string) => Classification;

function classifier(): Classify {
  const known = new Map<string, Classification>();
  return (text) => {
    let found = known.get(text);
    if (found === undefined) {
      found = classifyInstruction(text);
      // Bounded: texts that differ per job are not all kept.
      if (known.size < 1000) known.set(text, found);
    }
    return found;
  };
}

function planJob(workflow: Workflow, jobId: string, itemFiles: Record<string, string> | undefined, override: Pick<PlanItem, 'instructions' | 'output'> = {}, classify: Classify = classifyInstruction): PlanJob {
  const item: Record<string, FileParts> | undefined = itemFiles
    ? Object.fromEntries(Object.entries(itemFiles).map(([k, v]) => [k, filePartsOf(v)]))
    : undefined;
  const base: ExpressionScope = {
    workflow: { name: workflow.name, file: workflow.file, dir: workflow.dir },
    vars: workflow.vars,
    env: workflow.env,
    ...(item ? { item } : {}),
  };

  const inputs = new Map<string, PlanInput>();
  const inputParts: Record<string, FileParts> = {};
  for (const input of workflow.inputs) {
    const value = resolveOrFail(workflow, input.template, { ...base, where: 'inputs.* cannot be used inside inputs:' });
    if (input.kind === 'url') {
      inputs.set(input.name, { name: input.name, url: value });
      inputParts[input.name] = filePartsOf(value);
    } else {
      const absolute = path.resolve(workflow.dir, value);
      inputs.set(input.name, { name: input.name, path: absolute });
      inputParts[input.name] = filePartsOf(absolute);
    }
  }
  const scope: ExpressionScope = { ...base, inputs: inputParts };

  let source = workflow.steps;
  if (override.instructions !== undefined) {
    if (workflow.form !== 'short') {
      throw new UsageError('instructions given with an item need a short-form workflow (one with `instructions:`)', {
        hint: 'write the workflow in the short form, or leave the instructions out of the item',
      });
    }
    source = shortFormInstructions(workflow, override.instructions);
  }

  // Object literals written out, not spread from a common part: a 100,000-item plan makes
  // 300,000 of them, and spreading was a third of planning's time.
  const steps: PlanStep[] = source.map((step): PlanStep => {
    const id = asStepId(step.id);
    const needs = step.needs.map(asStepId);
    switch (step.kind) {
      case 'upload':
        return {
          id,
          needs,
          timeoutMs: step.timeoutMs,
          retries: step.retries,
          location: step.location,
          kind: 'upload',
          inputs: step.inputs.map((name) => inputs.get(name) ?? fail(workflow, [{ message: `unknown input \`${name}\``, at: step.location }])),
        };
      case 'instruction': {
        const text = resolveOrFail(workflow, step.text, scope);
        const classification = classify(text);
        return { id, needs, timeoutMs: step.timeoutMs, retries: step.retries, location: step.location, kind: 'instruction', text, turnClass: classification.turnClass, estimatedCredits: classification.cost };
      }
      case 'export': {
        const output = override.output !== undefined ? path.resolve(workflow.dir, override.output) : path.resolve(workflow.dir, resolveOrFail(workflow, step.output, scope));
        return {
          id,
          needs,
          timeoutMs: step.timeoutMs,
          retries: step.retries,
          location: step.location,
          kind: 'export',
          format: step.format,
          quality: step.quality,
          resolution: step.resolution,
          ...(step.aspect === undefined ? {} : { aspect: step.aspect }),
          output,
        };
      }
      case 'credits':
        return { id, needs, timeoutMs: step.timeoutMs, retries: step.retries, location: step.location, kind: 'credits', min: step.min };
      default:
        return unreachable(step, 'step');
    }
  });

  return {
    id: asJobId(jobId),
    ...(itemFiles ? { item: { ...itemFiles } } : {}),
    steps: orderSteps(steps),
  };
}

/** `--backend` (or the file's `backend:`) as a choice; a usage error when it is neither. */
export function backendChoice(value: string | undefined, fallback: BackendChoice): BackendChoice {
  if (value === undefined) return fallback;
  const parsed = parseBackend(value);
  if (!parsed) throw new UsageError(`--backend must be cloud, local or an http(s) URL, not "${value}"`, { hint: 'e.g. --backend local or --backend http://127.0.0.1:8787' });
  return parsed;
}

/** Plan every job the workflow has. */
export function planRun(workflow: Workflow, options: PlanRunOptions = {}): Plan {
  const concurrency = options.concurrency ?? workflow.concurrency;
  const classify = classifier();
  return {
    workflowPath: workflow.file,
    workflowDir: workflow.dir,
    name: workflow.name,
    backend: backendChoice(options.backend, workflow.backend),
    language: workflow.language,
    concurrency,
    limits: { uploads: workflow.limits.uploads ?? concurrency, renders: workflow.limits.renders ?? concurrency },
    ...(workflow.budget ? { budget: { credits: workflow.budget.credits } } : {}),
    jobs: workflow.jobs.map((job) => planJob(workflow, job.id, job.item, {}, classify)),
  };
}

/**
 * Plan one job for an item found outside `foreach` (a watch-folder bundle). Throws
 * `WorkflowInvalidError` when the workflow's expressions do not fit the item.
 */
export function planJobForItem(workflow: Workflow, item: PlanItem): PlanJob {
  return planJob(workflow, item.id, item.files, { instructions: item.instructions, output: item.output });
}
