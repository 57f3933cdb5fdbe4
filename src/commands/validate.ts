import { ExitCode } from '../core/errors.js';
import type { Diagnostic } from '../core/diagnostics.js';
import type { MediaInfo } from '../core/media-tools.js';
import { defaultProbeCacheDir, loadWorkflow } from '../workflow/index.js';
import { formatDiagnostics, summarizeDiagnostics } from '../reporters/diagnostics.js';
// From github.js, not the reporters' index: that pulls in listr2, which validate never draws.
import { diagnosticAnnotations } from '../reporters/github.js';
import type { CommandContext, SharedOptions } from './context.js';

export interface ValidateOptions extends SharedOptions {
  /** Print diagnostics as JSON. */
  json: boolean;
}

/** One file's verdict, as `--json` prints it. */
export interface ValidateFileResult {
  file: string;
  valid: boolean;
  diagnostics: Omit<Diagnostic, 'sourceLine'>[];
}

/**
 * `talk validate <files...>`: schema, rules and preflight, no network. Prints every diagnostic of every
 * file (sorted), or `{"files":[…]}` with --json. Exit 0 when all are valid, 2 otherwise.
 */
export async function validateCommand(files: string[], options: ValidateOptions, ctx: CommandContext): Promise<number> {
  const loaded: { shown: string; result: Awaited<ReturnType<typeof loadWorkflow>> }[] = [];
  const probes = new Map<string, Promise<MediaInfo>>();
  const probeCacheDir = defaultProbeCacheDir(ctx.env);
  for (const file of files) {
    ctx.signal.throwIfAborted();
    // Preflight too (output folders writable, media decoded), shared probes across the files.
    const result = await loadWorkflow(file, { vars: options.vars, env: { ...ctx.env }, cwd: ctx.cwd, signal: ctx.signal, preflight: { probes, probeCacheDir, rememberHashes: true } });
    loaded.push({ shown: result.diagnostics[0]?.file ?? result.workflow?.displayFile ?? file, result });
  }
  // `--json` lists the files in the order they were named, so a tool can pair them with its
  // arguments; the text sorts every diagnostic (by file, then position) for reading.
  const named = [...loaded];
  loaded.sort((a, b) => (a.shown < b.shown ? -1 : a.shown > b.shown ? 1 : 0));

  const results: ValidateFileResult[] = [];
  const text: string[] = [];
  for (const { shown, result } of loaded) {
    const { workflow, diagnostics } = result;
    results.push({
      file: shown,
      // --strict: a warning (e.g. an undeclared --var) makes the file invalid.
      valid: workflow !== undefined && !(options.strict === true && diagnostics.some((d) => d.severity === 'warning')),
      diagnostics: diagnostics.map(({ sourceLine: _sourceLine, ...rest }) => rest),
    });
    if (diagnostics.length > 0) text.push(`${formatDiagnostics(diagnostics, { color: options.color && ctx.stdout.isTTY })}\n`);
    const verdict = results.at(-1)?.valid === true ? 'valid' : 'invalid';
    text.push(`${shown}: ${verdict}${diagnostics.length > 0 ? ` (${summarizeDiagnostics(diagnostics)})` : ''}\n`);
  }
  const allValid = results.every((r) => r.valid);
  const annotations = diagnosticAnnotations(
    loaded.flatMap(({ result }) => result.diagnostics),
    ctx.env,
  );
  if (options.json || options.reporter === 'json') {
    const byShown = new Map(results.map((r) => [r.file, r]));
    ctx.stdout.write(`${JSON.stringify({ files: named.map(({ shown }) => byShown.get(shown)) })}\n`);
    // stdout stays pure JSON; GitHub reads workflow commands from stderr as well.
    ctx.stderr.write(annotations);
  } else {
    ctx.stdout.write(text.join('') + annotations);
  }
  return allValid ? ExitCode.ok : ExitCode.invalid;
}
