import { describe, expect, it } from 'vitest';
import {
  filePartsOf,
  parseExpression,
  parseTemplate,
  referencesOf,
  resolveExpression,
  resolveTemplate,
  type ExpressionScope,
} from '../../../src/workflow/index.js';

const scope: ExpressionScope = {
  workflow: { name: 'demo', file: '/w/demo.yaml', dir: '/w' },
  vars: { who: 'Ada', empty: '', 'with-dash': 'dash' },
  env: { HOME_TOWN: 'Lyon', BLANK: '' },
  inputs: { portrait: filePartsOf('/w/assets/face.front.jpg'), clip: filePartsOf('https://cdn.example.com/v/intro%20clip.mp4?x=1') },
  item: { portrait: filePartsOf('/w/faces/bob.png') },
};

function resolve(text: string, s: ExpressionScope = scope): string {
  const { template, errors } = parseTemplate(text);
  expect(errors).toEqual([]);
  const result = resolveTemplate(template, s);
  if (!result.ok) throw new Error(result.errors.map((e) => e.message).join('; '));
  return result.value;
}

function errorsOf(text: string, s: ExpressionScope = scope): string[] {
  const { template, errors } = parseTemplate(text);
  if (errors.length > 0) return errors.map((e) => e.message);
  const result = resolveTemplate(template, s);
  return result.ok ? [] : result.errors.map((e) => e.message);
}

describe('parseExpression', () => {
  it('parses references with dots and quoted brackets', () => {
    expect(parseExpression(' inputs.portrait.stem ')).toEqual({ expr: { kind: 'ref', path: ['inputs', 'portrait', 'stem'] } });
    expect(parseExpression("vars['with-dash']")).toEqual({ expr: { kind: 'ref', path: ['vars', 'with-dash'] } });
  });

  it('parses fallbacks and literals', () => {
    expect(parseExpression("env.X || vars.y || 'none'")).toEqual({
      expr: {
        kind: 'or',
        operands: [
          { kind: 'ref', path: ['env', 'X'] },
          { kind: 'ref', path: ['vars', 'y'] },
          { kind: 'literal', value: 'none' },
        ],
      },
    });
  });

  it.each([
    ['', 'empty expression `${{ }}`'],
    ['vars.', 'expression `vars.` ends too early'],
    ['vars.a b', 'unexpected `b` in expression `vars.a b`'],
    ["'open", 'unterminated string in expression `\'open`'],
    ['vars[1]', 'unterminated string in expression `vars[1]`'],
    ['a + b', 'unexpected `+ b` in expression `a + b`'],
    ['process.exit()', 'unexpected `()` in expression `process.exit()`'],
  ])('rejects %j', (text, message) => {
    expect(parseExpression(text)).toEqual({ error: message });
  });
});

describe('parseTemplate', () => {
  it('keeps text and records where each expression is', () => {
    const { template } = parseTemplate('a ${{ vars.who }} b ${{workflow.name}}');
    expect(template.parts.map((p) => (p.kind === 'text' ? p.text : [p.offset, p.length, p.source]))).toEqual([
      'a ',
      [2, 15, '${{ vars.who }}'],
      ' b ',
      [20, 18, '${{workflow.name}}'],
    ]);
  });

  it('reports an unterminated expression at its start', () => {
    const { errors } = parseTemplate('x ${{ vars.who');
    expect(errors).toEqual([expect.objectContaining({ offset: 2, length: 12, message: 'unterminated expression: `${{` has no closing `}}`' })]);
  });

  it('leaves text without expressions alone, including lone braces and dollars', () => {
    expect(resolve('cost: $5 {not} ${ x } }}')).toBe('cost: $5 {not} ${ x } }}');
  });
});

describe('resolveTemplate', () => {
  it('reads workflow, vars, env, inputs and item', () => {
    expect(resolve('${{ workflow.name }}/${{ workflow.dir }}/${{ workflow.file }}')).toBe('demo//w//w/demo.yaml');
    expect(resolve('hi ${{ vars.who }} from ${{ env.HOME_TOWN }}')).toBe('hi Ada from Lyon');
    expect(resolve('${{ inputs.portrait.path }}|${{ inputs.portrait.name }}|${{ inputs.portrait.stem }}|${{ inputs.portrait.ext }}')).toBe(
      '/w/assets/face.front.jpg|face.front.jpg|face.front|jpg',
    );
    expect(resolve('${{ item.portrait.stem }}.${{ item.portrait.ext }}')).toBe('bob.png');
    expect(resolve("${{ vars['with-dash'] }}")).toBe('dash');
  });

  it('names URL inputs by their last path segment', () => {
    expect(resolve('${{ inputs.clip.name }} ${{ inputs.clip.stem }} ${{ inputs.clip.ext }}')).toBe('intro clip.mp4 intro clip mp4');
  });

  it('falls back over unset or empty vars and env, but not over other errors', () => {
    expect(resolve("${{ env.NOPE || vars.who }}")).toBe('Ada');
    expect(resolve("${{ env.BLANK || 'x' }}")).toBe('x');
    expect(resolve("${{ vars.empty || vars.missing || 'last' }}")).toBe('last');
    expect(resolve("${{ vars.missing || '' }}")).toBe('');
    expect(errorsOf("${{ foo.bar || 'x' }}")).toEqual(['unknown reference `foo.bar`']);
    expect(errorsOf('${{ env.NOPE || env.ALSO_NOPE }}')).toEqual(['environment variable `NOPE` is not set']);
  });

  it('reports unknown references instead of producing empty strings, all of them', () => {
    expect(errorsOf('${{ vars.nope }} ${{ env.NOPE }} ${{ inputs.voice.path }} ${{ item.voice.stem }} ${{ workflow.title }} ${{ secrets.X }}')).toEqual([
      'unknown variable `vars.nope`',
      'environment variable `NOPE` is not set',
      'unknown input `inputs.voice`',
      'unknown item key `item.voice`',
      'unknown reference `workflow.title`',
      'unknown reference `secrets.X`',
    ]);
  });

  it('asks for a field when a file is used as text', () => {
    expect(errorsOf('${{ inputs.portrait }}')).toEqual(['`inputs.portrait` is a file, not text']);
    expect(errorsOf('${{ item.portrait.size }}')).toEqual(['unknown reference `item.portrait.size`']);
    expect(errorsOf('${{ inputs }}')).toEqual(['`inputs` needs a name']);
  });

  it('says when a root is not available in this place', () => {
    const narrow: ExpressionScope = { workflow: scope.workflow, vars: {}, env: {}, where: 'inputs.* cannot be used inside inputs:' };
    const { template } = parseTemplate('${{ inputs.portrait.stem }} ${{ item.portrait.stem }}');
    const result = resolveTemplate(template, narrow);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.errors.map((e) => [e.message, e.hint])).toEqual([
        ['`inputs` cannot be used here', 'inputs.* cannot be used inside inputs:'],
        ['`item` cannot be used here', 'item.* exists only with foreach or watch'],
      ]);
    }
  });

  it('does not reach object prototypes', () => {
    expect(errorsOf('${{ vars.constructor }} ${{ vars.__proto__ }} ${{ env.toString }}')).toEqual([
      'unknown variable `vars.constructor`',
      'unknown variable `vars.__proto__`',
      'environment variable `toString` is not set',
    ]);
  });
});

describe('resolveExpression and referencesOf', () => {
  it('resolves a single expression', () => {
    expect(resolveExpression({ kind: 'ref', path: ['vars', 'who'] }, scope)).toEqual({ ok: true, value: 'Ada' });
  });

  it('lists the references of a template', () => {
    const { template } = parseTemplate("${{ env.A || vars.b }} and ${{ item.portrait.stem }} ${{ 'lit' }}");
    expect(referencesOf(template)).toEqual([
      ['env', 'A'],
      ['vars', 'b'],
      ['item', 'portrait', 'stem'],
    ]);
  });
});
