/** Where something is in a source file. Lines and columns are 1-based. */
export interface SourceSpan {
  file: string;
  line: number;
  col: number;
  endLine?: number;
  endCol?: number;
}

/** `error` makes a workflow invalid (exit 2); `warning` is reported and the run goes on. */
export type Severity = 'error' | 'warning';

/** One located problem found while loading or validating a workflow. */
export interface Diagnostic extends SourceSpan {
  severity: Severity;
  message: string;
  /** What the user can do about it, one sentence. */
  hint?: string;
  /** The offending source line, for underlining. */
  sourceLine?: string;
}

/**
 * A diagnostic, the one way every stage makes one. Its message and hint are one line each
 * (`file:line:col severity message`), but they quote the user's text — keys, step ids,
 * expressions — which may hold line breaks: those become spaces here.
 */
export function makeDiagnostic(span: SourceSpan & { sourceLine?: string }, severity: Severity, message: string, hint?: string): Diagnostic {
  return { ...span, severity, message: flatten(message), ...(hint === undefined ? {} : { hint: flatten(hint) }) };
}

function flatten(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ');
}

/** Sort by file, then position, so output is stable run to run. */
export function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  if (a.line !== b.line) return a.line - b.line;
  if (a.col !== b.col) return a.col - b.col;
  return a.message < b.message ? -1 : a.message > b.message ? 1 : 0;
}

/** `file:line:col severity message` — the one-line form used by validate and GitHub annotations. */
export function formatDiagnosticLine(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.col} ${d.severity} ${d.message}`;
}
