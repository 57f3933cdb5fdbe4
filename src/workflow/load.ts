/**
 * `loadWorkflow`: the named stages, each stopping the line when it found errors.
 *   read + YAML (source.ts) → schema (schema-check.ts) → normalise (normalise.ts) → rules (rules.ts)
 *   → preflight (preflight.ts, only when asked: it writes a temp file in each output folder and
 *     runs ffprobe)
 * Every problem comes back as a located diagnostic, sorted; nothing a file contains makes it
 * throw (only an abort does, or a machine without ffprobe when preflight is asked for).
 */
import path from 'node:path';
import { compareDiagnostics, type Diagnostic } from '../core/diagnostics.js';
import { displayPath } from '../core/paths.js';
import { nodeWorkflowFs, type WorkflowFs } from './fs.js';
import { normaliseWorkflow } from './normalise.js';
import { preflightWorkflow, type PreflightOptions } from './preflight.js';
import { applyRules } from './rules.js';
import { checkSchema } from './schema-check.js';
import { readWorkflowSource } from './source.js';
import type { LoadResult } from './types.js';

/** Options of `loadWorkflow`. */
export interface LoadOptions {
  /** `--var key=value` overrides of the file's `vars`. */
  vars?: Record<string, string>;
  /** Environment for `${{ env.* }}` and the default language. */
  env?: Record<string, string | undefined>;
  /** Relative paths (the file, and paths shown in diagnostics) are relative to this. */
  cwd?: string;
  /** File access for the rules; the real file system by default. */
  fs?: WorkflowFs;
  /**
   * Also run preflight (`talk validate`, `talk run`): output folders created and proved
   * writable, every input decoded by ffprobe as its role needs. `true`, or its options.
   */
  preflight?: boolean | Pick<PreflightOptions, 'ffprobe' | 'probes' | 'probeCacheDir' | 'hasher' | 'rememberHashes' | 'concurrency' | 'onStats'>;
  signal?: AbortSignal;
}

function finish(diagnostics: Diagnostic[], workflow: LoadResult['workflow']): LoadResult {
  const sorted = [...diagnostics].sort(compareDiagnostics);
  const failed = sorted.some((d) => d.severity === 'error');
  return { workflow: failed ? undefined : workflow, diagnostics: sorted };
}

/** Load, validate and normalise one workflow file. */
export async function loadWorkflow(file: string, options: LoadOptions = {}): Promise<LoadResult> {
  const cwd = options.cwd ?? path.resolve('.');
  const env = options.env ?? {};
  const fs = options.fs ?? nodeWorkflowFs;
  const absolute = path.resolve(cwd, file);
  const displayFile = displayPath(absolute, cwd);

  const read = await readWorkflowSource(absolute, displayFile, fs, options.signal);
  if (!read.parsed) return finish(read.diagnostics, undefined);
  const { source, data } = read.parsed;
  const diagnostics = [...read.diagnostics];

  const schema = checkSchema(data, source);
  diagnostics.push(...schema.diagnostics);
  if (!schema.value) return finish(diagnostics, undefined);

  const normalised = normaliseWorkflow(schema.value, source, { file: absolute, displayFile, vars: options.vars ?? {}, env });
  diagnostics.push(...normalised.diagnostics);
  if (normalised.diagnostics.some((d) => d.severity === 'error')) return finish(diagnostics, undefined);

  const ruled = await applyRules(normalised.workflow, source, { env, fs, signal: options.signal });
  diagnostics.push(...ruled.diagnostics);
  if (!ruled.workflow || !options.preflight) return finish(diagnostics, ruled.workflow);

  const extra = options.preflight === true ? {} : options.preflight;
  const checked = await preflightWorkflow(ruled.targets, ruled.workflow.dir, { ...extra, env, signal: options.signal });
  diagnostics.push(...checked.diagnostics);
  return finish(diagnostics, ruled.workflow);
}
