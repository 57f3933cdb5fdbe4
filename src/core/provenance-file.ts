/**
 * Writing a `<output>.talk.json` record (schemas/provenance.schema.json): the runner's
 * provenance record and the watch folder's sidecar (the same record with its watch fields) go
 * through here, so a record on disk always matches its published schema. The schema check is
 * the validator generated at build time (scripts/gen-validator.mjs): nothing compiles at run time.
 */
import validateRecord from './generated/provenance-validator.js';
import { writeJsonAtomic } from './atomic-write.js';
import { InternalError } from './errors.js';

/** Why a record does not match the schema, one line per problem; empty when it does. */
export function recordProblems(record: unknown): string[] {
  if (validateRecord(record)) return [];
  return (validateRecord.errors ?? []).map((e) => `${e.instancePath || '(the record)'} ${e.message ?? 'is invalid'}`);
}

/**
 * Check `record` against the schema, then write it atomically. A record that does not match is
 * a bug in talk (its writers build every field): refused with the problems, never written.
 */
export async function writeRecordFile(file: string, record: object): Promise<void> {
  const problems = recordProblems(record);
  if (problems.length > 0) throw new InternalError(`the record for ${file} does not match schemas/provenance.schema.json: ${problems.join('; ')}`);
  await writeJsonAtomic(file, record, { durable: false });
}
