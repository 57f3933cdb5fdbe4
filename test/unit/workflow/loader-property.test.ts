// Property: whatever bytes a workflow file holds, loadWorkflow answers with diagnostics and
// never throws; an invalid answer always carries an error, and diagnostics are located and
// sorted.
import fc from 'fast-check';
import { cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareDiagnostics } from '../../../src/core/diagnostics.js';
import { loadWorkflow } from '../../../src/workflow/index.js';

const examplesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../examples');
let dir: string;
let seeds: string[];
let counter = 0;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'talk-prop-'));
  // Same layout as examples/, so mutated examples still find their media sometimes.
  await cp(path.join(examplesDir, 'assets'), path.join(dir, 'assets'), { recursive: true });
  const names = (await readdir(examplesDir)).filter((f) => f.endsWith('.yaml')).sort();
  seeds = await Promise.all(names.map((f) => readFile(path.join(examplesDir, f), 'utf8')));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function check(content: string | Uint8Array): Promise<void> {
  counter += 1;
  const file = path.join(dir, `w${counter}.yaml`);
  await writeFile(file, content);
  const result = await loadWorkflow(file, { cwd: dir, env: {}, vars: { release: '1.0' } });
  const hasError = result.diagnostics.some((d) => d.severity === 'error');
  expect(result.workflow === undefined).toBe(hasError);
  for (const d of result.diagnostics) {
    expect(d.line).toBeGreaterThanOrEqual(1);
    expect(d.col).toBeGreaterThanOrEqual(1);
    expect(d.message.length).toBeGreaterThan(0);
    expect(d.message).not.toMatch(/\n|at .+\.ts:\d+/);
  }
  expect([...result.diagnostics].sort(compareDiagnostics)).toEqual(result.diagnostics);
  await rm(file, { force: true });
}

/** A mutation of a text: delete, insert, duplicate or swap a slice. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.string(), fc.constantFrom(': ', '- ', '\n  ', '${{ ', ' }}', '&a ', '*a', '---\n', '\t', '"', '[', '{', '!!binary ', '? ')) }),
  fc.record({ kind: fc.constant('duplicateLine' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('swapLines' as const), a: fc.nat(), b: fc.nat() }),
);

type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function apply(text: string, m: Mutation): string {
  switch (m.kind) {
    case 'delete': {
      const at = m.at % (text.length + 1);
      return text.slice(0, at) + text.slice(at + m.length);
    }
    case 'insert': {
      const at = m.at % (text.length + 1);
      return text.slice(0, at) + m.text + text.slice(at);
    }
    case 'duplicateLine': {
      const lines = text.split('\n');
      const at = m.at % lines.length;
      lines.splice(at, 0, lines[at] ?? '');
      return lines.join('\n');
    }
    case 'swapLines': {
      const lines = text.split('\n');
      const a = m.a % lines.length;
      const b = m.b % lines.length;
      [lines[a], lines[b]] = [lines[b] ?? '', lines[a] ?? ''];
      return lines.join('\n');
    }
  }
}

describe('loadWorkflow on arbitrary input', () => {
  it('never throws on random text', async () => {
    await fc.assert(fc.asyncProperty(fc.string({ unit: 'grapheme', maxLength: 400 }), check), { numRuns: 150 });
  });

  it('never throws on random bytes', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), check), { numRuns: 100 });
  });

  it('never throws on mutated examples', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.array(mutation, { minLength: 1, maxLength: 6 }), async (which, mutations) => {
        const seed = seeds[which % seeds.length] ?? '';
        await check(mutations.reduce(apply, seed));
      }),
      { numRuns: 300 },
    );
  });

  it('keeps messages on one line for a complex (mapping) key — a case the mutations found', async () => {
    const text = ['version: 1', '? export:', '    quality: high', '    resolution: 1080p', ': 1', 'instructions: [Make this photo talk]', ''].join('\n');
    await check(text);
    const file = path.join(dir, 'complex-key.yaml');
    await writeFile(file, text);
    const { diagnostics } = await loadWorkflow(file, { cwd: dir, env: {} });
    expect(diagnostics.map((d) => d.message)).toContainEqual(expect.stringMatching(/^unknown key `\{ export: \{ quality: high, resolution: 1080p \} \}` at the top level$/));
  });

  it('keeps messages on one line when expressions, needs and upload names span lines', async () => {
    const text = [
      'version: 1',
      'inputs: { p: a.jpg }',
      'steps:',
      '  - { id: up, upload: "p\\nq" }',
      '  - { id: talk, needs: "up\\nx", instruction: "Hi ${{ vars.\\n nope }}" }',
      '',
    ].join('\n');
    await check(text);
  });

  it('never throws on random YAML-shaped values', async () => {
    const key = fc.constantFrom('version', 'name', 'inputs', 'instructions', 'steps', 'export', 'foreach', 'watch', 'vars', 'needs', 'id', 'upload', 'x');
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(tie('node'), { maxLength: 3 }), fc.dictionary(key, tie('node'), { maxKeys: 4 })),
    })).node;
    await fc.assert(
      fc.asyncProperty(fc.dictionary(key, value, { maxKeys: 6 }), async (doc) => {
        await check(JSON.stringify(doc));
      }),
      { numRuns: 150 },
    );
  });
});
