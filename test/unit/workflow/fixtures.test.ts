// Every invalid fixture is paired with its exact expected diagnostics (file:line:col severity
// message), so a change in wording or position is a visible, reviewed change.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadWorkflow } from '../../../src/workflow/index.js';
import { formatDiagnosticLine } from '../../../src/core/diagnostics.js';

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/workflows/invalid');
const fixtures = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();

describe('invalid workflow fixtures', () => {
  it('has at least 30 fixtures, each with an .expected file', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(30);
    for (const f of fixtures) expect(readdirSync(dir)).toContain(f.replace(/\.yaml$/, '.expected'));
  });

  it.each(fixtures)('%s', async (file) => {
    const expected = readFileSync(path.join(dir, file.replace(/\.yaml$/, '.expected')), 'utf8').trimEnd().split('\n');
    const { workflow, diagnostics } = await loadWorkflow(file, { cwd: dir, env: {} });
    expect(diagnostics.map(formatDiagnosticLine)).toEqual(expected);
    const hasError = diagnostics.some((d) => d.severity === 'error');
    // A workflow comes back exactly when nothing is an error.
    expect(workflow === undefined).toBe(hasError);
    // Every diagnostic can be underlined: it carries its source line unless it is file-level.
    for (const d of diagnostics) {
      expect(d.line).toBeGreaterThanOrEqual(1);
      expect(d.col).toBeGreaterThanOrEqual(1);
    }
  });
});
