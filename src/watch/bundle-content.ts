/**
 * A bundle's identity and its instructions: the content hash of each member (cached by file
 * stamp, so a rescan does not read unchanged files again), the bundle id derived from them, and
 * the per-bundle instructions from `<stem>.txt`, `<stem>.yaml` or the manifest.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parse as parseYaml } from 'yaml';
import { TalkError } from '../core/errors.js';
import type { Bundle } from './bundler.js';
import { sameStamp, statStamp, type FileStamp } from './settle-tracker.js';

/** A member file as hashed: its version and content hash. */
export interface HashedMember {
  /** Role, `instructions` or `manifest`. */
  role: string;
  path: string;
  stamp: FileStamp;
  sha256: string;
}

/** A bundle with its content identity. */
export interface IdentifiedBundle {
  bundle: Bundle;
  /** SHA-256 over the members' roles and content hashes: same content → same id. */
  id: string;
  members: HashedMember[];
}

/** SHA-256 of a file's bytes, streamed. */
export async function hashFile(absPath: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(absPath), hash, { signal });
  return hash.digest('hex');
}

/** Remembers content hashes by file version so rescans and re-evaluations do not re-read. */
export class HashCache {
  readonly #byPath = new Map<string, { stamp: FileStamp; sha256: string }>();

  /** Hash of the file's current version, plus the stamp it belongs to. Undefined when gone. */
  async hash(absPath: string, signal?: AbortSignal): Promise<{ stamp: FileStamp; sha256: string } | undefined> {
    const before = await statStamp(absPath);
    if (!before) return undefined;
    const cached = this.#byPath.get(absPath);
    if (cached && sameStamp(cached.stamp, before)) return cached;
    const sha256 = await hashFile(absPath, signal);
    const after = await statStamp(absPath);
    // Changed while reading: the hash describes no single version; the caller will see a change.
    if (!after || !sameStamp(before, after)) return undefined;
    const entry = { stamp: after, sha256 };
    this.#byPath.set(absPath, entry);
    return entry;
  }

  forget(absPath: string): void {
    this.#byPath.delete(absPath);
  }
}

/**
 * Hash every member and derive the bundle id. Undefined when a member vanished or changed
 * while being read (it will settle again and be looked at anew).
 */
export async function identifyBundle(bundle: Bundle, cache: HashCache, signal?: AbortSignal): Promise<IdentifiedBundle | undefined> {
  const roled: { role: string; path: string }[] = Object.entries(bundle.files).map(([role, p]) => ({ role, path: p }));
  if (bundle.instructionsFile !== undefined) roled.push({ role: 'instructions', path: bundle.instructionsFile });
  if (bundle.manifestFile !== undefined) roled.push({ role: 'manifest', path: bundle.manifestFile });
  const members: HashedMember[] = [];
  for (const { role, path: p } of roled) {
    const hashed = await cache.hash(p, signal);
    if (!hashed) return undefined;
    members.push({ role, path: p, stamp: hashed.stamp, sha256: hashed.sha256 });
  }
  const lines = members.map((m) => `${m.role}=${m.sha256}`).sort();
  const id = createHash('sha256').update(lines.join('\n')).digest('hex');
  return { bundle, id, members };
}

/** A bundle's own instructions file or manifest could not be read. */
export class BundleInstructionsError extends TalkError {
  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super('usage', message, options);
    this.name = 'BundleInstructionsError';
  }
}

/**
 * The instructions that replace the workflow's for this bundle, or undefined to keep the
 * workflow's. `.txt`: one instruction per non-empty line. `.yaml` and the manifest:
 * `instructions: [...]` (a single string is one instruction).
 */
export async function readBundleInstructions(bundle: Bundle, signal?: AbortSignal): Promise<string[] | undefined> {
  const sources = [bundle.manifestFile, bundle.instructionsFile].filter((p): p is string => p !== undefined);
  for (const file of sources) {
    const text = await readFile(file, { encoding: 'utf8', signal });
    if (file.toLowerCase().endsWith('.txt')) {
      const lines = text
        .split(/\r?\n/)
        .map((l) => l.trim())
        .filter((l) => l !== '');
      if (lines.length > 0) return lines;
      continue;
    }
    const fromYaml = instructionsFromYaml(text, path.basename(file));
    if (fromYaml !== undefined) return fromYaml;
  }
  return undefined;
}

function instructionsFromYaml(text: string, name: string): string[] | undefined {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (error) {
    throw new BundleInstructionsError(`${name} is not valid YAML: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
      hint: `write it as \`instructions: [first, second]\` and save it again`,
    });
  }
  if (doc === null || doc === undefined) return undefined;
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new BundleInstructionsError(`${name} must be a mapping with an \`instructions\` list`, {
      hint: 'write it as `instructions: [first, second]` and save it again',
    });
  }
  const value = (doc as Record<string, unknown>)['instructions'];
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value.trim() === '' ? undefined : [value.trim()];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) {
    const list = value.map((v) => v.trim()).filter((v) => v !== '');
    return list.length > 0 ? list : undefined;
  }
  throw new BundleInstructionsError(`${name}: \`instructions\` must be a list of strings`, {
    hint: 'write it as `instructions: [first, second]` and save it again',
  });
}
