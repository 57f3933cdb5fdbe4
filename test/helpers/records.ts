// Reading a `<output>.talk.json` record the way a consumer of the published schema would: the
// schema compiled afresh from schemas/provenance.schema.json (not the validator the build
// generates for the writers), and the raw text searched for anything that looks like a secret.
// Every test that reads a record or sidecar reads it through here.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { expect } from 'vitest';
import { REPO_ROOT } from './cli.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv, formats?: string[]) => Ajv;
let compiled: Promise<ValidateFunction> | undefined;

/** The published schema, compiled once per test file. */
export function recordSchema(): Promise<ValidateFunction> {
  compiled ??= readFile(path.join(REPO_ROOT, 'schemas', 'provenance.schema.json'), 'utf8').then((text) => {
    const ajv = new Ajv({ strict: true, strictRequired: false, allErrors: true });
    addFormats(ajv);
    return ajv.compile(JSON.parse(text) as object);
  });
  return compiled;
}

/** Words a record must never hold: a token, a bearer header, credentials in a URL. */
const SECRET = /token|bearer|authorization|password|\/\/[^/\s"]+:[^/\s"]+@/i;

/** Read a record, expect it to match the schema and to carry no secret, and return it. */
export async function readRecord<T = Record<string, unknown>>(file: string): Promise<T> {
  const text = await readFile(file, 'utf8');
  const record = JSON.parse(text) as unknown;
  const validate = await recordSchema();
  expect(validate(record), `${path.basename(file)}: ${JSON.stringify(validate.errors)}`).toBe(true);
  expect(text, `${path.basename(file)} holds something that looks like a secret`).not.toMatch(SECRET);
  return record as T;
}
