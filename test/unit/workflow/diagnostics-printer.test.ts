import { describe, expect, it } from 'vitest';
import { formatDiagnostic, formatDiagnostics, summarizeDiagnostics } from '../../../src/reporters/diagnostics.js';
import type { Diagnostic } from '../../../src/core/diagnostics.js';

const base: Diagnostic = { file: 'w.yaml', line: 7, col: 13, endLine: 7, endCol: 19, severity: 'error', message: 'unknown step id `animat`', hint: 'known steps: a, b', sourceLine: '    needs: [animat]' };

describe('diagnostic printer', () => {
  it('prints the located line, the source with the span underlined, and the hint', () => {
    expect(formatDiagnostic(base)).toBe('w.yaml:7:13 error unknown step id `animat`\n  7 |     needs: [animat]\n    |             ^^^^^^\n  hint: known steps: a, b\n');
  });

  it('underlines one character when the span has no end, and skips missing parts', () => {
    const d: Diagnostic = { file: 'w.yaml', line: 10, col: 3, severity: 'warning', message: 'm', sourceLine: 'abcdef' };
    expect(formatDiagnostic(d)).toBe('w.yaml:10:3 warning m\n  10 | abcdef\n     |   ^\n');
    expect(formatDiagnostic({ file: 'w.yaml', line: 1, col: 1, severity: 'error', message: 'empty' })).toBe('w.yaml:1:1 error empty\n');
  });

  it('shows a window of a very long line, caret still under the span', () => {
    const line = `${'x'.repeat(500)}BAD${'y'.repeat(500)}`;
    const out = formatDiagnostic({ file: 'w.yaml', line: 1, col: 501, endLine: 1, endCol: 504, severity: 'error', message: 'm', sourceLine: line });
    const [, src, caret] = out.split('\n');
    expect(src!.length).toBeLessThan(140);
    expect(src!.indexOf('BAD')).toBe(caret!.indexOf('^^^'));
  });

  it('colours only when asked, and summarises counts', () => {
    expect(formatDiagnostic(base, { color: true })).toContain('\u001b[31m');
    expect(formatDiagnostic(base)).not.toContain('\u001b[');
    expect(formatDiagnostics([base, { ...base, severity: 'warning' }]).split('\n\n')).toHaveLength(2);
    expect(summarizeDiagnostics([base, { ...base, severity: 'warning' }, base])).toBe('2 errors, 1 warning');
  });
});
