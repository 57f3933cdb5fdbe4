/**
 * Bundling: which files of the watched folder form one job, per pairing mode, and whether a
 * group of files is a complete bundle yet. Pure: it looks at names only; the watcher says which
 * files have settled.
 */
import path from 'node:path';
import { INSTRUCTION_EXTENSIONS, type WatchConfig } from './config.js';
import { unreachable } from '../core/unreachable.js';

/** A complete set of files for one job. */
export interface Bundle {
  /** The grouping key: the stem (stem mode) or the subfolder name (folder, manifest). */
  key: string;
  /** Name used for outputs, sidecars and moved sources. */
  name: string;
  /** Role (workflow item key) → absolute path. */
  files: Record<string, string>;
  /** `<stem>.txt` / `<stem>.yaml`, or the instructions file of a folder bundle. */
  instructionsFile?: string;
  /** The manifest of a `manifest` bundle. */
  manifestFile?: string;
  /** Every file that belongs to the bundle (moved or deleted together). */
  members: string[];
  /** The subfolder holding the bundle (folder and manifest modes). */
  folder?: string;
}

/** What a group of files amounts to so far. */
export type GroupStatus =
  /** Every role is present and every file has settled. */
  | { kind: 'ready'; bundle: Bundle }
  /** Some file of the group is still being written. */
  | { kind: 'settling' }
  /** Settled, but something is missing or ambiguous; `problems` say what, in words. */
  | { kind: 'incomplete'; name: string; missing: string[]; problems: string[] };

/** A file of a group and whether it has settled. */
export interface GroupFile {
  absPath: string;
  settled: boolean;
}

function extOf(name: string): string {
  return path.extname(name).replace(/^\./, '').toLowerCase();
}

function stemOf(name: string): string {
  const ext = path.extname(name);
  return ext ? name.slice(0, -ext.length) : name;
}

/** The role a file name plays by its extension, `instructions`, or undefined (not ours). */
export function roleOf(name: string, config: WatchConfig): string | undefined {
  const ext = extOf(name);
  for (const [role, exts] of Object.entries(config.roles)) if (exts.includes(ext)) return role;
  if (INSTRUCTION_EXTENSIONS.includes(ext)) return 'instructions';
  return undefined;
}

/**
 * The group a file belongs to, or undefined when the file is not input for this pairing mode
 * (a stray file at the wrong depth or of an unknown type).
 */
export function groupKeyFor(root: string, absPath: string, config: WatchConfig): string | undefined {
  const rel = path.relative(root, absPath);
  const parts = rel.split(path.sep);
  switch (config.pairing) {
    case 'stem': {
      if (parts.length !== 1) return undefined;
      const name = parts[0] ?? '';
      return roleOf(name, config) === undefined ? undefined : stemOf(name);
    }
    case 'folder':
    case 'manifest': {
      if (parts.length !== 2) return undefined;
      const name = parts[1] ?? '';
      if (config.pairing === 'manifest' && name === config.manifest) return parts[0];
      return roleOf(name, config) === undefined ? undefined : parts[0];
    }
    default:
      return unreachable(config.pairing, 'pairing');
  }
}

/** Decide what a group of files amounts to. `files` are the group's files, in any order. */
export function assembleGroup(root: string, key: string, files: readonly GroupFile[], config: WatchConfig): GroupStatus {
  if (files.some((f) => !f.settled)) return { kind: 'settling' };
  const sorted = [...files].sort((a, b) => a.absPath.localeCompare(b.absPath));
  const byRole = new Map<string, string[]>();
  let manifestFile: string | undefined;
  for (const file of sorted) {
    const name = path.basename(file.absPath);
    if (config.pairing === 'manifest' && name === config.manifest) {
      manifestFile = file.absPath;
      continue;
    }
    const role = roleOf(name, config);
    if (role === undefined) continue;
    byRole.set(role, [...(byRole.get(role) ?? []), file.absPath]);
  }
  const missing: string[] = [];
  const problems: string[] = [];
  const roleFiles: Record<string, string> = {};
  for (const [role, exts] of Object.entries(config.roles)) {
    const found = byRole.get(role) ?? [];
    const first = found[0];
    if (first === undefined) {
      missing.push(role);
      problems.push(`no ${role} file (expected ${describeExpected(key, exts, config)})`);
    } else if (found.length > 1) {
      problems.push(`more than one ${role} file (${found.map((f) => path.basename(f)).join(', ')}); remove all but one`);
    } else {
      roleFiles[role] = first;
    }
  }
  const instructions = byRole.get('instructions') ?? [];
  if (instructions.length > 1) {
    problems.push(`more than one instructions file (${instructions.map((f) => path.basename(f)).join(', ')}); keep one`);
  }
  if (config.pairing === 'manifest' && manifestFile === undefined) {
    missing.push(config.manifest);
    problems.push(`no ${config.manifest} yet (it is written last and marks the bundle complete)`);
  }
  if (problems.length > 0) return { kind: 'incomplete', name: key, missing, problems };

  const bundle: Bundle = { key, name: key, files: roleFiles, members: sorted.map((f) => f.absPath) };
  const instructionsFile = instructions[0];
  if (instructionsFile !== undefined) bundle.instructionsFile = instructionsFile;
  if (manifestFile !== undefined) bundle.manifestFile = manifestFile;
  if (config.pairing !== 'stem') bundle.folder = path.join(root, key);
  return { kind: 'ready', bundle };
}

function describeExpected(key: string, exts: readonly string[], config: WatchConfig): string {
  const list = exts.map((e) => `.${e}`).join(', ');
  return config.pairing === 'stem' ? `${key} with one of ${list}` : `a file in ${key}/ with one of ${list}`;
}
