/**
 * `${{ }}` expressions: a small parser and resolver, no `eval`.
 *
 * Grammar (inside `${{` … `}}`):
 *   expr    := operand ('||' operand)*
 *   operand := reference | 'text' | "text"
 *   reference := name ('.' name | '[' quoted ']')*      name := [A-Za-z_][A-Za-z0-9_-]*
 *
 * References read `workflow.{name,file,dir}`, `vars.<name>`, `env.<NAME>`,
 * `inputs.<name>.{path,name,stem,ext}` and `item.<key>.{path,name,stem,ext}`. An unknown
 * reference is an error, never an empty string; `a || b` falls back only when `a` is a
 * variable or environment variable that is unset or empty.
 */
import type { SourceSpan } from '../core/diagnostics.js';
import { unreachable } from '../core/unreachable.js';

/** A parsed expression. */
export type Expr =
  /** A dotted reference such as `inputs.portrait.stem`. */
  | { kind: 'ref'; path: string[] }
  /** A quoted string. */
  | { kind: 'literal'; value: string }
  /** `a || b || …`: the first operand that resolves to a non-empty value. */
  | { kind: 'or'; operands: Expr[] };

/** One piece of a template: literal text, or an expression with its place in the text. */
export type TemplatePart =
  /** Text outside `${{ }}`, copied as is. */
  | { kind: 'text'; text: string }
  /**
   * An expression. `offset`/`length` cover `${{ … }}` in the template's text; `location` is
   * that span in the workflow file when the loader could map it.
   */
  | { kind: 'expr'; expr: Expr; source: string; offset: number; length: number; location?: SourceSpan };

/** A string with zero or more expressions, parsed once at load time. */
export interface Template {
  source: string;
  parts: TemplatePart[];
  /** Where the string is written in the workflow file, when it is written there. */
  location?: SourceSpan;
}

/** A problem with an expression, relative to the template's text. */
export interface ExpressionError {
  offset: number;
  length: number;
  message: string;
  hint?: string;
  /** Set when a `TemplatePart` carried a location. */
  location?: SourceSpan;
}

/** File parts as `inputs.<name>.*` and `item.<key>.*` expose them. */
export interface FileParts {
  path: string;
  name: string;
  stem: string;
  ext: string;
}

/**
 * What expressions may read. A root left undefined is not available in that place (e.g.
 * `inputs` inside `inputs:`), which is reported as such.
 */
export interface ExpressionScope {
  workflow: { name: string; file: string; dir: string };
  vars: Readonly<Record<string, string>>;
  env: Readonly<Record<string, string | undefined>>;
  inputs?: Readonly<Record<string, FileParts>>;
  item?: Readonly<Record<string, FileParts>>;
  /** Says where `inputs`/`item` can be used, for the message when they cannot be used here. */
  where?: string;
}

/** The outcome of resolving one expression. `missing` marks an unset var/env (fallback-able). */
export type Resolution = { ok: true; value: string } | { ok: false; message: string; hint?: string; missing: boolean };

const ROOTS = ['workflow', 'vars', 'env', 'inputs', 'item'] as const;
const FILE_FIELDS = ['path', 'name', 'stem', 'ext'] as const;
const WORKFLOW_FIELDS = ['name', 'file', 'dir'] as const;
const OPEN = '${{';
const CLOSE = '}}';

/** Split a string into text and parsed expressions. Errors are collected, not thrown. */
export function parseTemplate(source: string): { template: Template; errors: ExpressionError[] } {
  const parts: TemplatePart[] = [];
  const errors: ExpressionError[] = [];
  let pos = 0;
  while (pos < source.length) {
    const open = source.indexOf(OPEN, pos);
    if (open < 0) {
      parts.push({ kind: 'text', text: source.slice(pos) });
      break;
    }
    if (open > pos) parts.push({ kind: 'text', text: source.slice(pos, open) });
    const close = source.indexOf(CLOSE, open + OPEN.length);
    if (close < 0) {
      errors.push({
        offset: open,
        length: source.length - open,
        message: 'unterminated expression: `${{` has no closing `}}`',
        hint: 'close it with }}, e.g. ${{ vars.name }}',
      });
      break;
    }
    const inner = source.slice(open + OPEN.length, close);
    const length = close + CLOSE.length - open;
    const parsed = parseExpression(inner);
    if ('error' in parsed) {
      errors.push({ offset: open, length, message: parsed.error, hint: 'expressions are references such as vars.name or inputs.portrait.stem, optionally `|| \'fallback\'`' });
    } else {
      parts.push({ kind: 'expr', expr: parsed.expr, source: source.slice(open, close + CLOSE.length), offset: open, length });
    }
    pos = close + CLOSE.length;
  }
  return { template: { source, parts }, errors };
}

/** Parse the inside of `${{ … }}`. */
export function parseExpression(text: string): { expr: Expr } | { error: string } {
  const parser = new ExpressionParser(text);
  return parser.parse();
}

class ExpressionParser {
  private pos = 0;
  constructor(private readonly text: string) {}

  parse(): { expr: Expr } | { error: string } {
    try {
      this.skipSpace();
      if (this.pos >= this.text.length) return { error: 'empty expression `${{ }}`' };
      const operands: Expr[] = [this.operand()];
      this.skipSpace();
      while (this.text.startsWith('||', this.pos)) {
        this.pos += 2;
        this.skipSpace();
        operands.push(this.operand());
        this.skipSpace();
      }
      if (this.pos < this.text.length) {
        throw new SyntaxError(`unexpected \`${this.text.slice(this.pos).trim()}\` in expression \`${this.text.trim()}\``);
      }
      const first = operands[0];
      if (operands.length === 1 && first) return { expr: first };
      return { expr: { kind: 'or', operands } };
    } catch (error) {
      // Only our own SyntaxError is thrown here; anything else would be a bug worth seeing.
      if (error instanceof SyntaxError) return { error: error.message };
      throw error;
    }
  }

  private operand(): Expr {
    const c = this.text[this.pos];
    if (c === "'" || c === '"') return { kind: 'literal', value: this.quoted() };
    return { kind: 'ref', path: this.reference() };
  }

  private reference(): string[] {
    const path = [this.name()];
    for (;;) {
      const c = this.text[this.pos];
      if (c === '.') {
        this.pos += 1;
        path.push(this.name());
      } else if (c === '[') {
        this.pos += 1;
        this.skipSpace();
        path.push(this.quoted());
        this.skipSpace();
        if (this.text[this.pos] !== ']') throw new SyntaxError(`expected \`]\` in expression \`${this.text.trim()}\``);
        this.pos += 1;
      } else {
        return path;
      }
    }
  }

  private name(): string {
    const match = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(this.text.slice(this.pos));
    if (!match) {
      const rest = this.text.slice(this.pos).trim();
      throw new SyntaxError(rest === '' ? `expression \`${this.text.trim()}\` ends too early` : `unexpected \`${rest}\` in expression \`${this.text.trim()}\``);
    }
    this.pos += match[0].length;
    return match[0];
  }

  private quoted(): string {
    const quote = this.text[this.pos];
    const end = this.text.indexOf(quote ?? '', this.pos + 1);
    if (quote === undefined || end < 0) throw new SyntaxError(`unterminated string in expression \`${this.text.trim()}\``);
    const value = this.text.slice(this.pos + 1, end);
    this.pos = end + 1;
    return value;
  }

  private skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos] ?? '')) this.pos += 1;
  }
}

function hasOwn<T extends object>(record: T, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(record, key);
}

function list(names: readonly string[]): string {
  return names.length === 0 ? '(none)' : names.join(', ');
}

function fileField(root: string, name: string, parts: FileParts, rest: string[]): Resolution {
  const field = rest[0];
  const dotted = `${root}.${name}`;
  if (field === undefined) {
    return { ok: false, missing: false, message: `\`${dotted}\` is a file, not text`, hint: `use ${dotted}.path, .name, .stem or .ext` };
  }
  if (rest.length > 1 || !(FILE_FIELDS as readonly string[]).includes(field)) {
    return { ok: false, missing: false, message: `unknown reference \`${dotted}.${rest.join('.')}\``, hint: `a file has ${FILE_FIELDS.join(', ')}` };
  }
  return { ok: true, value: parts[field as (typeof FILE_FIELDS)[number]] };
}

function resolveRef(path: readonly string[], scope: ExpressionScope): Resolution {
  const [root, key, ...rest] = path;
  const dotted = path.join('.');
  switch (root) {
    case 'workflow': {
      if (key === undefined || rest.length > 0 || !(WORKFLOW_FIELDS as readonly string[]).includes(key)) {
        return { ok: false, missing: false, message: `unknown reference \`${dotted}\``, hint: 'use workflow.name, workflow.file or workflow.dir' };
      }
      return { ok: true, value: scope.workflow[key as (typeof WORKFLOW_FIELDS)[number]] };
    }
    case 'vars': {
      if (key === undefined || rest.length > 0) {
        return { ok: false, missing: false, message: `unknown reference \`${dotted}\``, hint: 'write vars.<name>' };
      }
      if (!hasOwn(scope.vars, key)) {
        return {
          ok: false,
          missing: true,
          message: `unknown variable \`vars.${key}\``,
          hint: `define it under vars: or pass --var ${key}=value (known: ${list(Object.keys(scope.vars))})`,
        };
      }
      return { ok: true, value: scope.vars[key] ?? '' };
    }
    case 'env': {
      if (key === undefined || rest.length > 0) {
        return { ok: false, missing: false, message: `unknown reference \`${dotted}\``, hint: 'write env.<NAME>' };
      }
      const value = hasOwn(scope.env, key) ? scope.env[key] : undefined;
      if (value === undefined) {
        return { ok: false, missing: true, message: `environment variable \`${key}\` is not set`, hint: `set it, or give a fallback: \${{ env.${key} || 'default' }}` };
      }
      return { ok: true, value };
    }
    case 'inputs':
    case 'item': {
      const files = scope[root];
      if (files === undefined) {
        return {
          ok: false,
          missing: false,
          message: `\`${root}\` cannot be used here`,
          hint: root === 'item' ? 'item.* exists only with foreach or watch' : (scope.where ?? 'inputs.* can be used in instructions and export.output'),
        };
      }
      if (key === undefined) {
        return { ok: false, missing: false, message: `\`${root}\` needs a name`, hint: `known: ${list(Object.keys(files).map((k) => `${root}.${k}`))}` };
      }
      const parts = hasOwn(files, key) ? files[key] : undefined;
      if (parts === undefined) {
        return {
          ok: false,
          missing: false,
          message: `unknown ${root === 'item' ? 'item key' : 'input'} \`${root}.${key}\``,
          hint: `known: ${list(Object.keys(files).map((k) => `${root}.${k}`))}`,
        };
      }
      return fileField(root, key, parts, rest);
    }
    default:
      return {
        ok: false,
        missing: false,
        message: `unknown reference \`${dotted}\``,
        hint: `expressions can use ${ROOTS.join(', ')}`,
      };
  }
}

/** Resolve one expression against a scope. */
export function resolveExpression(expr: Expr, scope: ExpressionScope): Resolution {
  switch (expr.kind) {
    case 'literal':
      return { ok: true, value: expr.value };
    case 'ref':
      return resolveRef(expr.path, scope);
    case 'or': {
      let firstFailure: Resolution | undefined;
      for (const operand of expr.operands) {
        const result = resolveExpression(operand, scope);
        if (result.ok && result.value !== '') return result;
        if (!result.ok && !result.missing) return result;
        firstFailure ??= result;
      }
      // Every operand was unset or empty: an empty last literal is a deliberate empty value.
      const last = expr.operands[expr.operands.length - 1];
      if (last?.kind === 'literal') return { ok: true, value: last.value };
      return firstFailure ?? { ok: true, value: '' };
    }
    default:
      return unreachable(expr, 'expr');
  }
}

/** Resolve every expression of a template. All errors are collected. */
export function resolveTemplate(template: Template, scope: ExpressionScope): { ok: true; value: string } | { ok: false; errors: ExpressionError[] } {
  let value = '';
  const errors: ExpressionError[] = [];
  for (const part of template.parts) {
    if (part.kind === 'text') {
      value += part.text;
      continue;
    }
    const result = resolveExpression(part.expr, scope);
    if (result.ok) {
      value += result.value;
    } else {
      errors.push({
        offset: part.offset,
        length: part.length,
        message: result.message,
        ...(result.hint === undefined ? {} : { hint: result.hint }),
        ...(part.location === undefined ? {} : { location: part.location }),
      });
    }
  }
  return errors.length === 0 ? { ok: true, value } : { ok: false, errors };
}

/** Every reference path a template reads (for `usesItem`, and env capture). */
export function referencesOf(template: Template): string[][] {
  const refs: string[][] = [];
  const visit = (expr: Expr): void => {
    if (expr.kind === 'ref') refs.push(expr.path);
    else if (expr.kind === 'or') expr.operands.forEach(visit);
  };
  for (const part of template.parts) if (part.kind === 'expr') visit(part.expr);
  return refs;
}

/** A template holding only text (for values talk generates itself). */
export function literalTemplate(text: string, location?: SourceSpan): Template {
  return { source: text, parts: [{ kind: 'text', text }], ...(location === undefined ? {} : { location }) };
}

/** File parts of a local path or a URL (its last path segment). */
export function filePartsOf(pathOrUrl: string): FileParts {
  let base = pathOrUrl;
  if (/^https?:\/\//i.test(pathOrUrl)) {
    try {
      base = decodeURIComponent(new URL(pathOrUrl).pathname);
    } catch {
      base = pathOrUrl;
    }
  }
  // The last non-empty segment, found from the end (no array of every segment: a 100,000-item
  // batch takes this for each of its files several times).
  let end = base.length;
  while (end > 0 && (base[end - 1] === '/' || base[end - 1] === '\\')) end -= 1;
  let start = end;
  while (start > 0 && base[start - 1] !== '/' && base[start - 1] !== '\\') start -= 1;
  const name = base.slice(start, end);
  const dot = name.lastIndexOf('.');
  const hasExt = dot > 0;
  return { path: pathOrUrl, name, stem: hasExt ? name.slice(0, dot) : name, ext: hasExt ? name.slice(dot + 1) : '' };
}
