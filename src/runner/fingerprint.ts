/**
 * Step fingerprints: what a step's result depends on, hashed per field so `talk plan` can say
 * which one changed. Fields:
 * - `definition`: the step after templating and defaults (kind, text, export options, output,
 *   input names and URLs). Timeouts and retry counts are left out on purpose: they change how
 *   a step is tried, not what it produces.
 * - `inputs`: SHA-256 of each local input file's content (upload steps).
 * - `backend`: which backend the session lives on (sessions do not move between backends).
 * - `version`: the state format version.
 * - `upstream`: the fingerprints of the steps it depends on (see `dependenciesOf`).
 */
import { createHash } from 'node:crypto';
import { hashFile, sharedFileHasher, type FileHasher, type SharedHasherOptions } from '../core/hash-file.js';
import { STATE_FORMAT_VERSION } from '../state/types.js';
import type { PlanJob, PlanStep } from '../plan/types.js';
import type { SignalOptions } from '../core/abort.js';
import { unreachable } from '../core/unreachable.js';

/** Names of the fingerprint fields, in the order they are reported. */
export const FINGERPRINT_FIELDS = ['definition', 'inputs', 'backend', 'version', 'upstream'] as const;
/** One fingerprint field. */
export type FingerprintField = (typeof FINGERPRINT_FIELDS)[number];

/** A step's fingerprint and its per-field hashes. */
export interface StepFingerprint {
  fingerprint: string;
  fields: Record<FingerprintField, string>;
}

export type { FileHasher } from '../core/hash-file.js';

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * A field hash: the first 64 bits of its SHA-256, in hex. Field hashes only answer "which field
 * changed?", so 64 bits is plenty; they are written with every step transition and kept for
 * every step of a batch. Encoded from the digest's first bytes rather than sliced from the full
 * hex, which would keep the whole 64-character string alive behind each one.
 */
const fieldHash = (text: string): string => createHash('sha256').update(text).digest().toString('hex', 0, 8);

// The one file hasher lives in core (preflight and the upload cache hash inputs too).
export { hashFile } from '../core/hash-file.js';

/**
 * A hasher that reads each file once per run while it stays the same (`sharedFileHasher`: a
 * shared voice-over is read once, not per job; an output written again is read again).
 */
export function cachedHasher(inner: (file: string, options?: SignalOptions) => Promise<string> = hashFile, options: SharedHasherOptions = {}): FileHasher {
  return sharedFileHasher(inner, options);
}

/**
 * The steps a step waits for: its `needs`, plus the order a session imposes — an instruction
 * waits for every upload and instruction written before it (one session takes one message at
 * a time, in order, and acts on the media it has), and an export waits for every instruction
 * written before it (it renders the draft they made).
 */
export function dependenciesOf(job: PlanJob): Map<string, string[]> {
  const deps = new Map<string, string[]>();
  const seen: PlanStep[] = [];
  for (const step of job.steps) {
    const set = new Set<string>(step.needs);
    for (const earlier of seen) {
      if (step.kind === 'instruction' && (earlier.kind === 'instruction' || earlier.kind === 'upload')) set.add(earlier.id);
      if (step.kind === 'export' && earlier.kind === 'instruction') set.add(earlier.id);
    }
    deps.set(step.id, [...set]);
    seen.push(step);
  }
  return deps;
}

function definitionOf(step: PlanStep): unknown {
  switch (step.kind) {
    case 'upload':
      return { kind: step.kind, id: step.id, inputs: step.inputs.map((i) => ({ name: i.name, url: i.url ?? null, local: i.path !== undefined })) };
    case 'instruction':
      return { kind: step.kind, id: step.id, text: step.text };
    case 'export':
      return { kind: step.kind, id: step.id, format: step.format, quality: step.quality, resolution: step.resolution, aspect: step.aspect ?? null, output: step.output };
    case 'credits':
      return { kind: step.kind, id: step.id, min: step.min };
    default:
      return unreachable(step, 'step');
  }
}

/** Fingerprints of every step of a job, keyed by step id. */
export async function fingerprintJob(
  job: PlanJob,
  options: { backendId: string; hasher: FileHasher; signal?: AbortSignal | undefined },
): Promise<Map<string, StepFingerprint>> {
  const deps = dependenciesOf(job);
  const out = new Map<string, StepFingerprint>();
  const backend = fieldHash(options.backendId);
  const version = fieldHash(String(STATE_FORMAT_VERSION));
  // Every input file is read at once, not one upload step after another.
  const files = [...new Set(job.steps.flatMap((step) => (step.kind === 'upload' ? step.inputs.flatMap((i) => (i.path ? [i.path] : [])) : [])))];
  const hashed = await Promise.all(files.map((file) => options.hasher(file, { signal: options.signal })));
  const hashOf = new Map(files.map((file, k) => [file, hashed[k]]));
  // Steps are in topological order, so every dependency is fingerprinted first.
  for (const step of job.steps) {
    const inputs = step.kind === 'upload' ? step.inputs.map((i) => (i.path ? `${i.name}:${hashOf.get(i.path) ?? ''}` : `${i.name}:url`)) : [];
    const upstream = (deps.get(step.id) ?? []).map((d) => `${d}:${out.get(d)?.fingerprint ?? 'missing'}`).sort();
    const fields: Record<FingerprintField, string> = {
      definition: fieldHash(JSON.stringify(definitionOf(step))),
      inputs: fieldHash(JSON.stringify(inputs)),
      backend,
      version,
      upstream: fieldHash(JSON.stringify(upstream)),
    };
    out.set(step.id, { fingerprint: sha(JSON.stringify(FINGERPRINT_FIELDS.map((f) => fields[f]))), fields });
  }
  return out;
}

/** Which fields differ between a recorded fingerprint and a new one (all when none was recorded). */
export function changedFields(recorded: Record<string, string> | undefined, now: StepFingerprint): FingerprintField[] {
  if (!recorded) return [...FINGERPRINT_FIELDS];
  return FINGERPRINT_FIELDS.filter((f) => recorded[f] !== now.fields[f]);
}
