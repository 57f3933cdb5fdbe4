/**
 * Stage 2 of loading: check the plain value against schemas/workflow.schema.json with the
 * validator generated at build time (scripts/gen-validator.mjs), and turn ajv's errors into
 * located diagnostics a person can act on.
 */
import type { ErrorObject } from 'ajv';
import validateGenerated from './generated/workflow-validator.js';
import type { Diagnostic } from '../core/diagnostics.js';
import type { DocPath, YamlSource } from './source.js';
import type { WorkflowFile } from './types.js';

/** Run the generated validator. `errors` is empty when the value matches the schema. */
export function validateAgainstSchema(data: unknown): { valid: true; value: WorkflowFile } | { valid: false; errors: ErrorObject[] } {
  if (validateGenerated(data)) return { valid: true, value: data as WorkflowFile };
  return { valid: false, errors: [...(validateGenerated.errors ?? [])] };
}

function decodePointer(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/**
 * A key as it appears in a message: on one line and short. Keys are the user's text and need
 * not be simple: a YAML complex key (`? {...}`) arrives as the rendering of a whole mapping.
 */
function keyText(key: string): string {
  const flat = key.replace(/\s+/g, ' ').trim();
  return flat.length > 60 ? `${flat.slice(0, 57)}…` : flat;
}

/** `steps[2].needs`, `export.quality`, or `the workflow` for the root. */
function label(path: readonly string[]): string {
  if (path.length === 0) return 'the workflow';
  let out = '';
  for (const segment of path) {
    if (/^\d+$/.test(segment)) out += `[${segment}]`;
    else out += out === '' ? keyText(segment) : `.${keyText(segment)}`;
  }
  return `\`${out}\``;
}

const TYPE_WORDS: Record<string, string> = {
  string: 'text',
  number: 'a number',
  integer: 'a whole number',
  boolean: 'true/false',
  array: 'a list',
  object: 'a mapping (key: value)',
  null: 'empty',
};

function typeWords(type: unknown): string {
  const types = (Array.isArray(type) ? type : String(type).split(',')).map((t) => TYPE_WORDS[String(t)] ?? String(t));
  const last = types.pop() ?? '';
  return types.length === 0 ? last : `${types.join(', ')} or ${last}`;
}

function actualType(value: unknown): string {
  if (value === null || value === undefined) return 'empty';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `text "${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`;
  if (typeof value === 'number') return `the number ${value}`;
  return typeof value === 'boolean' ? String(value) : typeof value;
}

/** Edit distance, for "did you mean" on unknown keys. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i += 1) {
    let prev = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j += 1) {
      const tmp = row[j] ?? 0;
      row[j] = Math.min((row[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length] ?? 0;
}

function suggest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = distance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function schemaMessage(schema: unknown): string | undefined {
  if (typeof schema === 'object' && schema !== null && 'errorMessage' in schema && typeof schema.errorMessage === 'string') {
    return schema.errorMessage;
  }
  return undefined;
}

function propertiesOf(schema: unknown): string[] {
  if (typeof schema === 'object' && schema !== null && 'properties' in schema && typeof schema.properties === 'object' && schema.properties !== null) {
    return Object.keys(schema.properties);
  }
  return [];
}

/**
 * Keep the errors that say something: drop the branch-by-branch noise under a failed
 * `anyOf`/`oneOf` (its own message covers it) and exact repeats.
 */
function usefulErrors(errors: readonly ErrorObject[]): ErrorObject[] {
  const combinators = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf').map((e) => `${e.schemaPath}/`);
  // A oneOf/anyOf nested inside another's branch is noise too.
  // Errors about a key's spelling inside `propertyNames` are summed up by its own error.
  const kept = errors.filter((e) => !combinators.some((prefix) => e.schemaPath.startsWith(prefix)) && (e.keyword === 'propertyNames' || e.propertyName === undefined));
  // Inside a schema with its own errorMessage, one error per instance is enough.
  const seen = new Set<string>();
  return kept.filter((e) => {
    const custom = schemaMessage(e.parentSchema);
    const key = custom !== undefined && e.keyword !== 'additionalProperties' && e.keyword !== 'propertyNames' && e.keyword !== 'required'
      ? `${e.instancePath}\0${custom}`
      : `${e.instancePath}\0${e.keyword}\0${JSON.stringify(e.params)}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function toDiagnostic(error: ErrorObject, source: YamlSource): Diagnostic {
  const path = decodePointer(error.instancePath);
  const docPath: DocPath = path;
  const name = label(path);
  const custom = schemaMessage(error.parentSchema);
  const params = error.params as Record<string, unknown>;

  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(params['additionalProperty']);
      const known = propertiesOf(error.parentSchema);
      const guess = suggest(key, known);
      const where = path.length === 0 ? 'at the top level' : `in ${name}`;
      return source.diagnostic(
        source.spanOfKey(docPath, key),
        'error',
        `unknown key \`${keyText(key)}\` ${where}`,
        guess !== undefined ? `did you mean \`${guess}\`? (allowed: ${known.join(', ')})` : `allowed: ${known.join(', ')}`,
      );
    }
    case 'propertyNames': {
      const key = String(params['propertyName']);
      return source.diagnostic(source.spanOfKey(docPath, key), 'error', `\`${keyText(key)}\` is not a valid name in ${name}`, 'a name starts with a letter or _ and holds only letters, digits, _ and -');
    }
    case 'required': {
      const missing = String(params['missingProperty']);
      // Point at the key that holds the incomplete mapping (or the mapping itself).
      const span = path.length === 0 ? source.spanOfRange(0, 0) : source.spanAt(docPath, 'key');
      return source.diagnostic(span, 'error', path.length === 0 ? `missing \`${missing}\` at the top level` : `${name} is missing \`${missing}\``, `add ${missing}:`);
    }
    case 'not': {
      // The only `not` in the schema forbids short-form keys beside `steps`: point at `steps`.
      const span = path.length === 0 ? source.spanOfKey(docPath, 'steps') : source.spanAt(docPath, 'key');
      return source.diagnostic(span, 'error', custom ?? `${name} is not allowed in this form`, 'run `talk schema` to see the allowed forms');
    }
    case 'anyOf':
    case 'oneOf':
      return source.diagnostic(source.spanAt(docPath, 'key'), 'error', custom ?? `${name} does not match any allowed form`, 'run `talk schema` to see the allowed forms');
    default:
      break;
  }
  const span = source.spanAt(docPath);
  if (custom !== undefined) {
    // A misspelt word value (`backend: lcoal`) gets the word it was probably meant to be.
    const guess = typeof error.data === 'string' && /^[a-z]+$/i.test(error.data) && path.length === 1 && path[0] === 'backend' ? suggest(error.data, ['cloud', 'local']) : undefined;
    return source.diagnostic(span, 'error', custom, guess !== undefined ? `did you mean \`${guess}\`? (found "${error.data as string}")` : `found ${actualType(error.data)}`);
  }
  switch (error.keyword) {
    case 'type':
      if (path.length === 0) {
        return source.diagnostic(span, 'error', 'the workflow must be a mapping of keys (name:, inputs:, instructions:, …)', 'see examples/hello.yaml, or write a starter with `talk init`');
      }
      return source.diagnostic(span, 'error', `${name} must be ${typeWords(params['type'])}`, `found ${actualType(error.data)}`);
    case 'enum': {
      const allowed = (params['allowedValues'] as unknown[] | undefined) ?? [];
      return source.diagnostic(span, 'error', `${name} must be one of: ${allowed.map(String).join(', ')}`, `found ${actualType(error.data)}`);
    }
    case 'const':
      return source.diagnostic(span, 'error', `${name} must be ${JSON.stringify(params['allowedValue'])}`, `found ${actualType(error.data)}`);
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return source.diagnostic(span, 'error', `${name} ${error.message ?? 'is out of range'}`, `found ${actualType(error.data)}`);
    case 'minItems':
      return source.diagnostic(span, 'error', `${name} must not be an empty list`);
    case 'minProperties':
      return source.diagnostic(span, 'error', `${name} must not be empty`);
    case 'minLength':
      return source.diagnostic(span, 'error', `${name} must not be empty`);
    default:
      return source.diagnostic(span, 'error', `${name} ${error.message ?? 'is invalid'}`);
  }
}

/** Stage 2: schema diagnostics, located in the source. Empty when the value is valid. */
export function checkSchema(data: unknown, source: YamlSource): { value: WorkflowFile | undefined; diagnostics: Diagnostic[] } {
  const result = validateAgainstSchema(data);
  if (result.valid) return { value: result.value, diagnostics: [] };
  return { value: undefined, diagnostics: usefulErrors(result.errors).map((e) => toDiagnostic(e, source)) };
}
