/**
 * The pretty printer for workflow diagnostics (`talk validate`, and `talk run`/`talk plan`
 * when a workflow is invalid):
 *
 *   examples/bad.yaml:7:13 error unknown step id `animat` in needs of `export`
 *      7 |     needs: [animat]
 *        |             ^^^^^^
 *     hint: known steps: upload, animate, export
 */
import { formatDiagnosticLine, type Diagnostic } from '../core/diagnostics.js';

/** Options of the printer. */
export interface DiagnosticPrintOptions {
  /** ANSI colours (severity, caret). */
  color?: boolean;
}

const ANSI = {
  red: '\u001b[31m',
  yellow: '\u001b[33m',
  cyan: '\u001b[36m',
  dim: '\u001b[2m',
  bold: '\u001b[1m',
  reset: '\u001b[0m',
};

/** Longest source line shown whole, and how much of it to keep before the span otherwise. */
const MAX_SHOWN = 120;
const CONTEXT = 40;

/** Tabs would shift the caret; show them as one space each so columns stay aligned. */
function visible(line: string): string {
  return line.replace(/\t/g, ' ');
}

/** One diagnostic: the located line, the source line with its span underlined, the hint. */
export function formatDiagnostic(d: Diagnostic, options: DiagnosticPrintOptions = {}): string {
  const paint = (code: string, text: string): string => (options.color ? `${code}${text}${ANSI.reset}` : text);
  const head = formatDiagnosticLine(d);
  const severityColor = d.severity === 'error' ? ANSI.red : ANSI.yellow;
  const lines = [options.color ? head.replace(` ${d.severity} `, ` ${paint(ANSI.bold + severityColor, d.severity)} `) : head];
  if (d.sourceLine !== undefined) {
    const gutter = String(d.line);
    const pad = ' '.repeat(gutter.length);
    let source = visible(d.sourceLine);
    let start = Math.max(1, d.col);
    let end = d.endLine === d.line && d.endCol !== undefined && d.endCol > start ? d.endCol : start + 1;
    // A very long line (minified JSON, a runaway value) is shown as a window around the span.
    if (source.length > MAX_SHOWN) {
      const from = Math.max(0, start - 1 - CONTEXT);
      const shown = source.slice(from, from + MAX_SHOWN);
      const prefix = from > 0 ? '…' : '';
      source = `${prefix}${shown}${from + MAX_SHOWN < source.length ? '…' : ''}`;
      start = start - from + prefix.length;
      end = Math.min(end - from + prefix.length, prefix.length + shown.length + 1);
    }
    const width = Math.max(1, Math.min(end, source.length + 1) - start);
    lines.push(`  ${paint(ANSI.dim, `${gutter} |`)} ${source}`);
    lines.push(`  ${paint(ANSI.dim, `${pad} |`)} ${' '.repeat(start - 1)}${paint(severityColor, '^'.repeat(width))}`);
  }
  if (d.hint !== undefined) lines.push(`  ${paint(ANSI.cyan, 'hint:')} ${d.hint}`);
  return `${lines.join('\n')}\n`;
}

/** Every diagnostic, in the given order, separated by blank lines. */
export function formatDiagnostics(diagnostics: readonly Diagnostic[], options: DiagnosticPrintOptions = {}): string {
  return diagnostics.map((d) => formatDiagnostic(d, options)).join('\n');
}

/** `2 errors, 1 warning` */
export function summarizeDiagnostics(diagnostics: readonly Diagnostic[]): string {
  const errors = diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = diagnostics.length - errors;
  const part = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  return `${part(errors, 'error')}, ${part(warnings, 'warning')}`;
}
