// The schema is the single source: it compiles in ajv's strict mode, every property says what
// it is for, the generated validator agrees with a fresh compile, and every example is valid.
import type { Ajv } from 'ajv';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadWorkflow, validateAgainstSchema, workflowSchemaText } from '../../../src/workflow/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const schema = JSON.parse(readFileSync(path.join(root, 'schemas/workflow.schema.json'), 'utf8')) as Record<string, unknown>;

// The build's own ajv set-up (options, formats, keywords), so the comparison is like for like.
const { createAjv } = (await import(path.join(root, 'scripts/ajv.mjs'))) as { createAjv: () => Ajv };
const strictAjv = createAjv;

/** Every schema under `properties` (and the maps' value schemas), with its JSON path. */
function propertySchemas(node: unknown, at: string, out: [string, Record<string, unknown>][]): void {
  if (typeof node !== 'object' || node === null) return;
  const obj = node as Record<string, unknown>;
  const props = obj['properties'];
  if (typeof props === 'object' && props !== null) {
    for (const [key, value] of Object.entries(props)) {
      out.push([`${at}.${key}`, value as Record<string, unknown>]);
      propertySchemas(value, `${at}.${key}`, out);
    }
  }
  for (const key of ['definitions', 'items', 'additionalProperties']) {
    const child = obj[key];
    if (key === 'definitions' && typeof child === 'object' && child !== null) {
      for (const [name, value] of Object.entries(child)) propertySchemas(value, `#${name}`, out);
    } else if (typeof child === 'object' && child !== null) {
      propertySchemas(child, `${at}[${key}]`, out);
    }
  }
}

describe('workflow schema', () => {
  it('compiles in strict mode', () => {
    expect(() => strictAjv().compile(schema)).not.toThrow();
  });

  it('describes every property, and allows no unknown keys in any object', () => {
    const props: [string, Record<string, unknown>][] = [];
    propertySchemas(schema, '', props);
    expect(props.length).toBeGreaterThan(40);
    for (const [where, s] of props) {
      const described = typeof s['description'] === 'string' || typeof s['$ref'] === 'string';
      expect(described, `${where} has no description`).toBe(true);
      if (s['type'] === 'object' && s['properties'] !== undefined) {
        expect(s['additionalProperties'], `${where} allows unknown keys`).toBe(false);
      }
    }
    expect(schema['additionalProperties']).toBe(false);
  });

  it('is what `talk schema` prints', () => {
    expect(JSON.parse(workflowSchemaText())).toEqual(schema);
  });

  it('the generated validator agrees with a fresh strict compile', () => {
    const fresh = strictAjv().compile(schema);
    const samples: unknown[] = [
      { instructions: ['x'] },
      { steps: [{ id: 'a', upload: 'p' }], inputs: { p: 'a.jpg' } },
      { steps: [{ id: 'a' }] },
      { instructions: [] },
      { instructions: ['x'], concurrency: '4' },
      { instructions: ['x'], steps: [{ id: 'a', credits: { min: 1 } }] },
      { instructions: ['x'], inputs: { p: { url: 'https://example.com/a.jpg' } } },
      { instructions: ['x'], inputs: { p: { url: 'https://exa|mple.com/a b.jpg' } } },
      { instructions: ['x'], inputs: { p: { url: 'https://example.com/a^b.jpg' } } },
      { instructions: ['x'], defaults: { timeout: '10 minutes' } },
      [],
      'text',
    ];
    for (const sample of samples) expect(validateAgainstSchema(sample).valid).toBe(fresh(sample));
  });

  it('checks input URLs with ajv-formats, not only their scheme', () => {
    expect(validateAgainstSchema({ instructions: ['x'], inputs: { p: { url: 'https://example.com/a%20b.jpg' } } }).valid).toBe(true);
    expect(validateAgainstSchema({ instructions: ['x'], inputs: { p: { url: 'https://example.com/a^b.jpg' } } }).valid).toBe(false);
  });

  const examples = readdirSync(path.join(root, 'examples')).filter((f) => f.endsWith('.yaml')).sort();
  it('has the examples the README names', () => {
    expect(examples).toEqual(expect.arrayContaining(['hello.yaml', 'batch.yaml', 'graph.yaml', 'ci.yaml', 'watch.yaml']));
  });

  it.each(examples)('examples/%s is valid, with no warnings', async (file) => {
    const { workflow, diagnostics } = await loadWorkflow(path.join('examples', file), { cwd: root, env: {} });
    expect(diagnostics).toEqual([]);
    expect(workflow).toBeDefined();
  });
});
