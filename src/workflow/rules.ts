/**
 * Stage 4 of loading: the semantic rules, each a located diagnostic. Step graph (unknown,
 * duplicate and self `needs`, cycles), `foreach` expansion into jobs, expressions, input files
 * (missing, folders, extensions the backend refuses, over 200 MB), outputs that escape the
 * workflow's folder or collide between jobs.
 */
import path from 'node:path';
import { isSeq } from 'yaml';
import { makeDiagnostic, type Diagnostic, type SourceSpan } from '../core/diagnostics.js';
import { isInside } from '../core/paths.js';
import { ACCEPTED_EXTENSIONS, MAX_UPLOAD_BYTES, isAcceptedExtension } from '../contract/media.js';
import { filePartsOf, referencesOf, resolveTemplate, type ExpressionError, type ExpressionScope, type FileParts, type Template } from './expressions.js';
import { statCaching, type WorkflowFs } from './fs.js';
import { globFiles, hasGlobMagic } from './glob.js';
import type { NormalisedWorkflow } from './normalise.js';
import type { DocPath, YamlSource } from './source.js';
import type { PreflightTargets } from './preflight.js';
import type { Workflow, WorkflowInput, WorkflowJob, WorkflowStep } from './types.js';

/** What the rules need besides the workflow. */
export interface RulesContext {
  env: Readonly<Record<string, string | undefined>>;
  fs: WorkflowFs;
  signal?: AbortSignal | undefined;
}

type Located = SourceSpan & { sourceLine?: string };

/** Collects diagnostics once each (several jobs often hit the same problem). */
class DiagnosticSet {
  readonly list: Diagnostic[] = [];
  private readonly keys = new Set<string>();

  add(at: Located | undefined, fallback: Located, severity: Diagnostic['severity'], message: string, hint?: string): void {
    const span = at ?? fallback;
    const key = `${span.line}:${span.col}:${severity}:${message}`;
    if (this.keys.has(key)) return;
    this.keys.add(key);
    this.list.push(makeDiagnostic(span, severity, message, hint));
  }

  addExpressionErrors(errors: readonly ExpressionError[], template: Template, fallback: Located): void {
    for (const e of errors) this.add(e.location ?? template.location, fallback, 'error', e.message, e.hint);
  }
}

/** A job id from an item's first file: its stem, made safe for file names and state keys. */
export function jobIdFromStem(stem: string): string {
  const cleaned = stem.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+/, '').replace(/-+$/, '');
  return cleaned === '' ? 'item' : cleaned;
}

/** Make ids unique in order: `bob`, `bob-2`, `bob-3`. */
export function uniqueIds(ids: readonly string[]): string[] {
  const used = new Set<string>();
  return ids.map((id) => {
    let candidate = id;
    for (let n = 2; used.has(candidate); n += 1) candidate = `${id}-${n}`;
    used.add(candidate);
    return candidate;
  });
}

function needsSpan(source: YamlSource, stepIndex: number, needIndex: number): Located {
  const needsPath: DocPath = ['steps', stepIndex, 'needs'];
  const { node } = source.nodeAt(needsPath);
  return isSeq(node) ? source.spanAt([...needsPath, needIndex]) : source.spanAt(needsPath);
}

function uploadSpan(source: YamlSource, stepIndex: number, inputIndex: number): Located {
  const at: DocPath = ['steps', stepIndex, 'upload'];
  const { node } = source.nodeAt(at);
  return isSeq(node) ? source.spanAt([...at, inputIndex]) : source.spanAt(at);
}

/** Step graph rules (long form; the short form's graph is generated correct). */
function checkGraph(steps: readonly WorkflowStep[], inputs: readonly WorkflowInput[], source: YamlSource, out: DiagnosticSet): void {
  const firstIndex = new Map<string, number>();
  steps.forEach((step, i) => {
    const earlier = firstIndex.get(step.id);
    if (earlier !== undefined) {
      const first = steps[earlier];
      out.add(step.location, step.location, 'error', `duplicate step id \`${step.id}\``, `the first \`${step.id}\` is on line ${first?.location.line ?? '?'}; step ids must be unique`);
    } else {
      firstIndex.set(step.id, i);
    }
  });
  const known = [...firstIndex.keys()];
  const inputNames = inputs.map((input) => input.name);
  steps.forEach((step, i) => {
    step.needs.forEach((need, j) => {
      const at = needsSpan(source, i, j);
      if (need === step.id) {
        out.add(at, step.location, 'error', `step \`${step.id}\` needs itself`, 'remove it from its own needs');
      } else if (!firstIndex.has(need)) {
        out.add(at, step.location, 'error', `unknown step id \`${need}\` in needs of \`${step.id}\``, `known steps: ${known.join(', ')}`);
      }
    });
    if (step.kind === 'upload') {
      step.inputs.forEach((name, j) => {
        if (!inputNames.includes(name)) {
          out.add(uploadSpan(source, i, j), step.location, 'error', `unknown input \`${name}\` in upload of \`${step.id}\``, inputNames.length === 0 ? 'declare it under inputs:' : `inputs are: ${inputNames.join(', ')}`);
        }
      });
    }
  });

  // Cycles: depth-first in written order, so the same file always reports the same trail.
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const reported = new Set<string>();
  const byId = new Map<string, { step: WorkflowStep; index: number }>();
  steps.forEach((step, index) => {
    // A duplicate id is reported above; the graph follows the first step of that name.
    if (!byId.has(step.id)) byId.set(step.id, { step, index });
  });
  const visit = (id: string): void => {
    state.set(id, 'visiting');
    stack.push(id);
    const entry = byId.get(id);
    for (const need of entry?.step.needs ?? []) {
      if (need === id || !byId.has(need)) continue;
      const seen = state.get(need);
      if (seen === 'visiting') {
        const cycle = stack.slice(stack.indexOf(need));
        const key = [...cycle].sort().join('\0');
        if (!reported.has(key)) {
          reported.add(key);
          // Start the trail at the step written first, so the message does not depend on
          // where the search happened to enter the cycle.
          const start = cycle.reduce((best, s) => ((byId.get(s)?.index ?? 0) < (byId.get(best)?.index ?? 0) ? s : best), cycle[0] ?? need);
          const rotated = [...cycle.slice(cycle.indexOf(start)), ...cycle.slice(0, cycle.indexOf(start))];
          const trail = [...rotated, start].map((s) => `\`${s}\``).join(' → ');
          const startEntry = byId.get(start);
          const next = rotated[1] ?? start;
          const needIndex = startEntry?.step.needs.indexOf(next) ?? 0;
          const at = startEntry ? needsSpan(source, startEntry.index, needIndex) : undefined;
          out.add(at, steps[0]?.location ?? source.spanOfRange(0), 'error', `steps form a cycle: ${trail} (each needs the next)`, 'a step cannot wait for itself; remove one of these needs');
        }
      } else if (seen === undefined) {
        visit(need);
      }
    }
    stack.pop();
    state.set(id, 'done');
  };
  for (const step of steps) if (!state.has(step.id)) visit(step.id);
}

function describeBytes(n: number): string {
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

/** The files a foreach item would pair with `match` (for warming their stats; no diagnostics). */
function pairedCandidates(match: string, firstKey: string, rest: NonNullable<NormalisedWorkflow['foreach']>, scope: ExpressionScope, dir: string): string[] {
  const files: Record<string, string> = { [firstKey]: match };
  const paths = [match];
  for (const entry of rest) {
    const resolved = resolveTemplate(entry.template, { ...scope, item: partsOfItem(files), where: '' });
    if (!resolved.ok || hasGlobMagic(resolved.value)) break;
    files[entry.key] = path.resolve(dir, resolved.value);
    paths.push(files[entry.key] ?? '');
  }
  return paths;
}

/** Check one local input file; returns true when it can be uploaded. */
async function checkInputFile(absolute: string, shown: string, label: string, at: Located, ctx: RulesContext, out: DiagnosticSet): Promise<boolean> {
  ctx.signal?.throwIfAborted();
  const ext = path.extname(absolute).replace(/^\./, '');
  let info;
  try {
    info = await ctx.fs.stat(absolute);
  } catch {
    out.add(at, at, 'error', `${label}: file not found: ${shown}`, 'check the path; relative paths are resolved against the workflow file\'s folder');
    return false;
  }
  if (info.isDirectory()) {
    out.add(at, at, 'error', `${label}: ${shown} is a folder, not a file`, 'name a file inside it, or use foreach to run one job per file');
    return false;
  }
  if (!isAcceptedExtension(ext)) {
    out.add(at, at, 'error', `${label}: the backend does not accept .${ext === '' ? '(no extension)' : ext} files (${shown})`, `accepted: ${ACCEPTED_EXTENSIONS.join(', ')}`);
    return false;
  }
  if (info.size > MAX_UPLOAD_BYTES) {
    out.add(at, at, 'error', `${label}: ${shown} is ${describeBytes(info.size)}; the backend accepts at most 200 MB`, 'compress or trim it first (e.g. with ffmpeg)');
    return false;
  }
  return true;
}

/** Where a foreach item came from, and what it holds. */
interface ItemContext {
  files: Record<string, string>;
  /** A stand-in item used to check templates when the real items are not known (watch). */
  placeholder: boolean;
}

function partsOfItem(files: Record<string, string>): Record<string, FileParts> {
  const parts: Record<string, FileParts> = {};
  for (const [key, file] of Object.entries(files)) parts[key] = filePartsOf(file);
  return parts;
}

/** Stage 4: every semantic rule. Returns the finished `Workflow` when nothing is an error. */
export async function applyRules(
  nw: NormalisedWorkflow,
  source: YamlSource,
  given: RulesContext,
): Promise<{ workflow: Workflow | undefined; diagnostics: Diagnostic[]; targets: PreflightTargets }> {
  const fs = statCaching(given.fs);
  const ctx: RulesContext = { ...given, fs };
  const out = new DiagnosticSet();
  // What preflight checks on the machine: every local input and output of every job.
  const targets: PreflightTargets = { media: [], outputs: [] };
  const top = source.spanOfRange(0);
  const baseScope: ExpressionScope = {
    workflow: { name: nw.name, file: nw.file, dir: nw.dir },
    vars: nw.vars,
    env: ctx.env,
  };

  if (nw.form === 'long') checkGraph(nw.steps, nw.inputs, source, out);
  if (nw.foreach && nw.watch) {
    const at = source.spanAt(['watch'], 'key');
    out.add(at, top, 'error', '`watch` and `foreach` cannot be combined', 'a watch folder makes its own items; remove foreach (or watch)');
  }

  // Jobs: foreach items, a stand-in item for watch folders, or the single `main` job.
  const items: ItemContext[] = [];
  let jobs: WorkflowJob[] = [];
  if (nw.foreach && nw.foreach.length > 0) {
    const [first, ...rest] = nw.foreach;
    if (first) {
      /**
       * An item's files: `firstFile`, then each later key resolved from the ones before it and
       * placed by `place` (undefined when it cannot be, having said why). Undefined when any fails.
       */
      const pairItem = async (firstFile: string, place: (entry: (typeof rest)[number], value: string) => Promise<string | undefined>): Promise<Record<string, string> | undefined> => {
        const files: Record<string, string> = { [first.key]: firstFile };
        for (const entry of rest) {
          const resolved = resolveTemplate(entry.template, { ...baseScope, item: partsOfItem(files), where: 'foreach can use workflow, vars, env and earlier item keys' });
          if (!resolved.ok) {
            out.addExpressionErrors(resolved.errors, entry.template, entry.location);
            return undefined;
          }
          const file = await place(entry, resolved.value);
          if (file === undefined) return undefined;
          files[entry.key] = file;
        }
        return files;
      };
      const pattern = resolveTemplate(first.template, { ...baseScope, where: 'foreach can use workflow, vars and env' });
      if (!pattern.ok) {
        out.addExpressionErrors(pattern.errors, first.template, first.location);
      } else {
        const matches = await globFiles(pattern.value, nw.dir, ctx.fs, ctx.signal);
        if (matches.length === 0) {
          out.add(first.location, top, 'warning', `\`foreach.${first.key}\`: ${pattern.value} matches no files`, 'the batch has no jobs; check the pattern (it is relative to the workflow file)');
          // The item's keys are known without a match: check every `item.*` reference against
          // a stand-in item, as for watch folders, so a typo is found before files arrive.
          const files = await pairItem(path.join(nw.dir, `${first.key}.placeholder`), async (_entry, value) => path.resolve(nw.dir, value));
          if (files) items.push({ files, placeholder: true });
        }
        // Every item's files are stat'ed below, in order; ask for all of them at once first.
        await fs.prefetch(matches.flatMap((match) => pairedCandidates(match, first.key, rest, baseScope, nw.dir)));
        for (const match of matches) {
          ctx.signal?.throwIfAborted();
          const files = await pairItem(match, async (entry, value) => {
            const target = path.resolve(nw.dir, value);
            const found = hasGlobMagic(value) ? (await globFiles(value, nw.dir, ctx.fs, ctx.signal))[0] : target;
            let exists = false;
            if (found !== undefined) {
              try {
                exists = (await ctx.fs.stat(found)).isFile();
              } catch {
                exists = false;
              }
            }
            if (!exists || found === undefined) {
              const stem = filePartsOf(match).stem;
              out.add(entry.location, top, 'error', `\`foreach.${entry.key}\`: no ${value} for item \`${stem}\``, `add the file, or move ${path.relative(nw.dir, match)} out of the batch`);
              return undefined;
            }
            return found;
          });
          if (files) items.push({ files, placeholder: false });
        }
      }
    }
    const ids = uniqueIds(items.map((item) => jobIdFromStem(filePartsOf(item.files[first?.key ?? ''] ?? '').stem)));
    jobs = items.flatMap((item, i) => (item.placeholder ? [] : [{ id: ids[i] ?? `item-${i + 1}`, item: item.files }]));
  } else if (nw.watch) {
    const files: Record<string, string> = {};
    for (const [role, exts] of Object.entries(nw.watch.roles)) files[role] = path.join(nw.dir, `${role}.${exts[0] ?? 'bin'}`);
    items.push({ files, placeholder: true });
  } else {
    jobs = [{ id: 'main' }];
    items.push({ files: {}, placeholder: false });
  }
  // Templates that use `item` are checked against a stand-in when no item exists.
  if (nw.foreach && items.length === 0) {
    const files: Record<string, string> = {};
    for (const entry of nw.foreach) files[entry.key] = path.join(nw.dir, `${entry.key}.jpg`);
    items.push({ files, placeholder: true });
  }

  const hasItems = nw.foreach !== undefined || nw.watch !== undefined;
  const outputs = new Map<string, string>();
  for (const [index, item] of items.entries()) {
    const jobId = item.placeholder ? undefined : (jobs[index]?.id ?? 'main');
    const itemParts = hasItems ? partsOfItem(item.files) : undefined;
    const inputScope: ExpressionScope = {
      ...baseScope,
      ...(itemParts ? { item: itemParts } : {}),
      where: 'inputs.* cannot be used inside inputs:',
    };
    const inputParts: Record<string, FileParts> = {};
    for (const input of nw.inputs) {
      const resolved = resolveTemplate(input.template, inputScope);
      if (!resolved.ok) {
        out.addExpressionErrors(resolved.errors, input.template, input.location);
        continue;
      }
      const at = input.template.location ?? input.location;
      if (input.kind === 'url') {
        if (!/^https?:\/\/\S+$/i.test(resolved.value)) {
          out.add(at, top, 'error', `input \`${input.name}\`: \`${resolved.value}\` is not an http(s) URL`, 'write url: https://…');
          continue;
        }
        inputParts[input.name] = filePartsOf(resolved.value);
        continue;
      }
      const absolute = path.resolve(nw.dir, resolved.value);
      inputParts[input.name] = filePartsOf(absolute);
      if (item.placeholder && input.usesItem) continue;
      const shown = path.isAbsolute(resolved.value) ? resolved.value : path.relative(nw.dir, absolute);
      if (await checkInputFile(absolute, shown, `input \`${input.name}\``, at, ctx, out)) targets.media.push({ input: input.name, absolute, shown, at });
    }

    const fullScope: ExpressionScope = { ...baseScope, inputs: inputParts, ...(itemParts ? { item: itemParts } : {}) };
    for (const step of nw.steps) {
      if (step.kind === 'instruction') {
        const resolved = resolveTemplate(step.text, fullScope);
        if (!resolved.ok) out.addExpressionErrors(resolved.errors, step.text, step.location);
      } else if (step.kind === 'export') {
        const resolved = resolveTemplate(step.output, fullScope);
        if (!resolved.ok) {
          out.addExpressionErrors(resolved.errors, step.output, step.location);
          continue;
        }
        if (item.placeholder) continue;
        const at = step.output.location ?? step.location;
        const absolute = path.resolve(nw.dir, resolved.value);
        if (absolute === nw.dir) {
          out.add(at, step.location, 'error', `output ${resolved.value} is the workflow's folder itself, not a file`, 'name the video file, e.g. out/video.mp4');
          continue;
        }
        if (!isInside(nw.dir, absolute)) {
          out.add(at, step.location, 'error', `output ${resolved.value} is outside the workflow's folder`, 'write outputs below the workflow file\'s folder, e.g. out/video.mp4');
          continue;
        }
        const owner = outputs.get(absolute);
        const who = jobId === 'main' || jobId === undefined ? `step \`${step.id}\`` : `job \`${jobId}\``;
        if (owner !== undefined) {
          out.add(at, step.location, 'error', `${owner} and ${who} would both write ${path.relative(nw.dir, absolute)}`, nw.foreachKeys ? `make the output depend on the item, e.g. out/\${{ item.${nw.foreachKeys[0] ?? 'portrait'}.stem }}.mp4` : 'give each export its own output');
        } else {
          outputs.set(absolute, who);
          targets.outputs.push({ absolute, shown: path.relative(nw.dir, absolute), at });
        }
      }
    }
  }

  const diagnostics = out.list;
  if (diagnostics.some((d) => d.severity === 'error')) return { workflow: undefined, diagnostics, targets };

  // Keep only the environment variables the expressions read: a Workflow may be logged or
  // kept in memory for long, and the rest of the environment may hold secrets.
  const env: Record<string, string> = {};
  const templates: Template[] = [
    ...nw.inputs.map((i) => i.template),
    ...(nw.foreach ?? []).map((f) => f.template),
    ...nw.steps.flatMap((s) => (s.kind === 'instruction' ? [s.text] : s.kind === 'export' ? [s.output] : [])),
  ];
  for (const ref of templates.flatMap(referencesOf)) {
    const name = ref[1];
    if (ref[0] === 'env' && name !== undefined) {
      const value = ctx.env[name];
      if (value !== undefined) env[name] = value;
    }
  }
  const { foreach: _foreach, ...rest } = nw;
  return { workflow: { ...rest, env, jobs }, diagnostics, targets };
}
