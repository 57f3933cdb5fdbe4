/**
 * Stage 3 of loading: turn the schema-valid file into one shape. The short form becomes
 * steps (`upload-<input>`, `instruction-N`, `export`), defaults are applied, durations become
 * milliseconds and every string that may hold `${{ }}` is parsed into a template.
 */
import path from 'node:path';
import type { Diagnostic, SourceSpan } from '../core/diagnostics.js';
import { parseDuration } from '../core/abort.js';
import { DEFAULT_CONCURRENCY, DEFAULT_LANGUAGE, DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS, DEFAULT_WATCH } from './defaults.js';
import { parseTemplate, referencesOf, type Template } from './expressions.js';
import type { DocPath, YamlSource } from './source.js';
import type {
  DurationText,
  ExportFile,
  WatchSettings,
  Workflow,
  WorkflowBackend,
  WorkflowExportStep,
  WorkflowFile,
  WorkflowInput,
  WorkflowStep,
} from './types.js';

/** A `foreach` key with its parsed template. */
export interface ForeachEntry {
  key: string;
  template: Template;
  location: SourceSpan;
}

/** The workflow after normalisation, before the rules: jobs and env are not known yet. */
export interface NormalisedWorkflow extends Omit<Workflow, 'jobs' | 'env'> {
  foreach: ForeachEntry[] | undefined;
}

/** What the loader knows besides the file. */
export interface NormaliseContext {
  file: string;
  displayFile: string;
  vars: Record<string, string>;
  env: Readonly<Record<string, string | undefined>>;
}

/** `cloud` | `local` | http(s) URL → backend choice; undefined for anything else. */
export function parseBackend(value: string): WorkflowBackend | undefined {
  if (value === 'cloud') return { kind: 'cloud' };
  if (value === 'local') return { kind: 'local' };
  if (/^https?:\/\/\S+$/i.test(value)) return { kind: 'url', url: value.replace(/\/+$/, '') };
  return undefined;
}

/**
 * The user's language from the POSIX locale (`LC_ALL`, `LC_MESSAGES`, `LANG`): `de_DE.UTF-8`
 * → `de`, `zh_CN.UTF-8` → `zh-CN` (Chinese keeps its region: it picks the script).
 */
export function languageFromEnv(env: Readonly<Record<string, string | undefined>>): string {
  const raw = [env['LC_ALL'], env['LC_MESSAGES'], env['LANG']].find((v) => v !== undefined && v !== '');
  const match = raw === undefined ? null : /^([A-Za-z]{2,3})(?:[_-]([A-Za-z]{2}))?/.exec(raw);
  if (!match || raw === 'C' || raw === 'POSIX') return DEFAULT_LANGUAGE;
  const lang = (match[1] ?? DEFAULT_LANGUAGE).toLowerCase();
  return lang === 'zh' && match[2] ? `zh-${match[2].toUpperCase()}` : lang;
}

function durationMs(value: DurationText | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  return parseDuration(value) ?? fallback;
}

/** Parse a template written at `docPath`, locating its expressions in the file. */
export function templateAt(source: YamlSource, docPath: DocPath, text: string, diagnostics: Diagnostic[]): Template {
  const { template, errors } = parseTemplate(text);
  const location = source.spanAt(docPath);
  template.location = location;
  const seen = new Map<string, number>();
  for (const part of template.parts) {
    if (part.kind !== 'expr') continue;
    const n = seen.get(part.source) ?? 0;
    seen.set(part.source, n + 1);
    part.location = source.spanInString(docPath, part.source, n);
  }
  for (const error of errors) {
    const needle = text.slice(error.offset, error.offset + error.length);
    diagnostics.push(source.diagnostic(source.spanInString(docPath, needle, 0), 'error', error.message, error.hint));
  }
  return template;
}

/** A template talk writes itself (defaults), located at `location`. */
function generatedTemplate(text: string, location: SourceSpan): Template {
  const { template } = parseTemplate(text);
  template.location = location;
  for (const part of template.parts) if (part.kind === 'expr') part.location = location;
  return template;
}

function watchSettings(file: WorkflowFile): WatchSettings | undefined {
  const w = file.watch;
  if (w === undefined) return undefined;
  const roles: Record<string, string[]> = {};
  const written: Record<string, readonly string[]> = w.roles ?? DEFAULT_WATCH.roles;
  for (const [role, exts] of Object.entries(written)) {
    roles[role] = exts.map((e) => e.toLowerCase());
  }
  return {
    pairing: w.pairing ?? DEFAULT_WATCH.pairing,
    roles,
    manifest: w.manifest ?? DEFAULT_WATCH.manifest,
    settleMs: durationMs(w.settle, DEFAULT_WATCH.settleMs),
    bundleTimeoutMs: durationMs(w.bundle_timeout, DEFAULT_WATCH.bundleTimeoutMs),
    scanIntervalMs: durationMs(w.scan_interval, DEFAULT_WATCH.scanIntervalMs),
    maxAttempts: w.max_attempts ?? DEFAULT_WATCH.maxAttempts,
    outputDir: w.output_dir ?? DEFAULT_WATCH.outputDir,
    processedDir: w.processed_dir ?? DEFAULT_WATCH.processedDir,
    failedDir: w.failed_dir ?? DEFAULT_WATCH.failedDir,
  };
}

/** Stage 3: one shape for both forms. Expression syntax errors are reported here. */
export function normaliseWorkflow(file: WorkflowFile, source: YamlSource, ctx: NormaliseContext): { workflow: NormalisedWorkflow; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const dir = path.dirname(ctx.file);
  const name = file.name ?? path.basename(ctx.file).replace(/\.[^.]*$/, '');
  const defaults = {
    timeoutMs: durationMs(file.defaults?.timeout, DEFAULT_TIMEOUT_MS),
    retries: file.defaults?.retries ?? DEFAULT_RETRIES,
  };
  const vars: Record<string, string> = {};
  for (const [key, value] of Object.entries(file.vars ?? {})) vars[key] = String(value);
  Object.assign(vars, ctx.vars);
  // A `--var` the file does not declare is most often a typo (`relase` for `release`): it
  // would change nothing, silently. Said as a warning (an error under --strict).
  const declared = Object.keys(file.vars ?? {});
  for (const key of Object.keys(ctx.vars)) {
    if (declared.includes(key)) continue;
    const span = file.vars === undefined ? source.spanOfRange(0, 0) : source.spanAt(['vars'], 'key');
    const known = declared.length === 0 ? 'it declares no `vars:`' : `it declares: ${declared.join(', ')}`;
    diagnostics.push(source.diagnostic(span, 'warning', `--var ${key} is not a variable of this workflow (${known})`, 'check the spelling, or declare it under `vars:`'));
  }

  const watch = watchSettings(file);
  const foreach: ForeachEntry[] | undefined = file.foreach
    ? Object.entries(file.foreach).map(([key, text]) => ({
        key,
        template: templateAt(source, ['foreach', key], text, diagnostics),
        location: source.spanAt(['foreach', key]),
      }))
    : undefined;
  const itemKeys = foreach?.map((f) => f.key) ?? (watch ? Object.keys(watch.roles) : undefined);

  // Inputs: as written, or (with foreach/watch and no inputs) one per item key.
  const inputs: WorkflowInput[] = [];
  if (file.inputs) {
    for (const [inputName, value] of Object.entries(file.inputs)) {
      const isUrl = typeof value === 'object';
      const docPath = isUrl ? ['inputs', inputName, 'url'] : ['inputs', inputName];
      const template = templateAt(source, docPath, isUrl ? value.url : value, diagnostics);
      inputs.push({
        name: inputName,
        kind: isUrl ? 'url' : 'path',
        template,
        usesItem: referencesOf(template).some((r) => r[0] === 'item'),
        location: source.spanAt(['inputs', inputName], 'key'),
      });
    }
  } else if (itemKeys) {
    const base: DocPath = foreach ? ['foreach'] : ['watch'];
    for (const key of itemKeys) {
      const location = foreach ? source.spanAt([...base, key], 'key') : source.spanAt(base, 'key');
      inputs.push({ name: key, kind: 'path', template: generatedTemplate(`\${{ item.${key}.path }}`, location), usesItem: true, location });
    }
  }

  const firstItemKey = itemKeys?.[0];
  const defaultOutput = firstItemKey !== undefined ? `out/\${{ item.${firstItemKey}.stem }}.mp4` : 'out/${{ workflow.name }}.mp4';
  const exportStep = (id: string, needs: string[], options: ExportFile, docPath: DocPath, location: SourceSpan, timeoutMs: number, retries: number): WorkflowExportStep => ({
    kind: 'export',
    id,
    needs,
    timeoutMs,
    retries,
    location,
    format: options.format ?? 'mp4',
    quality: options.quality ?? 'high',
    resolution: options.resolution ?? '1080p',
    ...(options.aspect === undefined ? {} : { aspect: options.aspect }),
    output: options.output !== undefined ? templateAt(source, [...docPath, 'output'], options.output, diagnostics) : generatedTemplate(defaultOutput, location),
  });

  const steps: WorkflowStep[] = [];
  let form: Workflow['form'];
  let instructionsLocation: SourceSpan | undefined;
  if (file.steps) {
    form = 'long';
    file.steps.forEach((step, index) => {
      const at: DocPath = ['steps', index];
      const location = source.spanAt([...at, 'id']);
      const base = {
        id: step.id,
        needs: step.needs === undefined ? [] : typeof step.needs === 'string' ? [step.needs] : step.needs,
        timeoutMs: durationMs(step.timeout, defaults.timeoutMs),
        retries: step.retries ?? defaults.retries,
        location,
      };
      if (step.upload !== undefined) {
        steps.push({ ...base, kind: 'upload', inputs: typeof step.upload === 'string' ? [step.upload] : step.upload });
      } else if (step.instruction !== undefined) {
        steps.push({ ...base, kind: 'instruction', text: templateAt(source, [...at, 'instruction'], step.instruction, diagnostics) });
      } else if (step.export !== undefined) {
        steps.push(exportStep(base.id, base.needs, step.export, [...at, 'export'], location, base.timeoutMs, base.retries));
      } else if (step.credits !== undefined) {
        steps.push({ ...base, kind: 'credits', min: step.credits.min });
      }
    });
  } else {
    form = 'short';
    instructionsLocation = source.spanAt(['instructions'], 'key');
    const common = { timeoutMs: defaults.timeoutMs, retries: defaults.retries };
    const uploadIds = inputs.map((input) => `upload-${input.name}`);
    inputs.forEach((input, i) => {
      steps.push({ ...common, kind: 'upload', id: uploadIds[i] ?? `upload-${input.name}`, needs: [], inputs: [input.name], location: input.location });
    });
    let previous: string | undefined;
    (file.instructions ?? []).forEach((text, index) => {
      const id = `instruction-${index + 1}`;
      steps.push({
        ...common,
        kind: 'instruction',
        id,
        needs: previous === undefined ? [...uploadIds] : [...uploadIds, previous],
        location: source.spanAt(['instructions', index]),
        text: templateAt(source, ['instructions', index], text, diagnostics),
      });
      previous = id;
    });
    const exportLocation = file.export ? source.spanAt(['export'], 'key') : instructionsLocation;
    steps.push(exportStep('export', previous === undefined ? [...uploadIds] : [previous], file.export ?? {}, ['export'], exportLocation, common.timeoutMs, common.retries));
  }

  const workflow: NormalisedWorkflow = {
    file: ctx.file,
    dir,
    displayFile: ctx.displayFile,
    name,
    description: file.description,
    form,
    backend: parseBackend(file.backend ?? 'cloud') ?? { kind: 'cloud' },
    language: file.language ?? languageFromEnv(ctx.env),
    concurrency: file.concurrency ?? DEFAULT_CONCURRENCY,
    limits: { uploads: file.limits?.uploads, renders: file.limits?.renders },
    budget: file.budget,
    defaults,
    vars,
    inputs,
    steps,
    foreachKeys: foreach?.map((f) => f.key),
    foreach,
    watch,
    instructionsLocation,
  };
  return { workflow, diagnostics };
}
