/**
 * File globs for `foreach`: `*`, `?`, `[abc]`, `{a,b}` within a path segment and `**` across
 * segments, `/` as separator on every platform. Why our own: Node 20 has no `fs.glob`, and
 * none of the project's dependencies offers one; this covers what `foreach` documents. picomatch
 * (the usual matcher) was tried: it reads `(…)` as a regular-expression group, so
 * `photo (1).jpg`, the name file managers give a copy, would also match `photo 1.jpg`; and it
 * takes `[!…]` literally where shells negate. Here both mean what they mean in a shell.
 */
import path from 'node:path';
import type { WorkflowFs } from './fs.js';

/** True when the text holds glob syntax (otherwise it is a plain path). */
export function hasGlobMagic(text: string): boolean {
  return /[*?[{]/.test(text);
}

function escapeRegex(c: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(c) ? `\\${c}` : c;
}

/** One path segment of a glob as a regular expression. Dot files match only an explicit dot. */
export function segmentToRegex(segment: string): RegExp {
  let out = '';
  let depth = 0;
  for (let i = 0; i < segment.length; i += 1) {
    const c = segment[i] ?? '';
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const end = segment.indexOf(']', i + 1);
      if (end < 0) {
        out += '\\[';
      } else {
        const body = segment.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\');
        out += `[${body}]`;
        i = end;
      }
    } else if (c === '{') {
      depth += 1;
      out += '(?:';
    } else if (c === '}' && depth > 0) {
      depth -= 1;
      out += ')';
    } else if (c === ',' && depth > 0) out += '|';
    else out += escapeRegex(c);
  }
  if (depth > 0) return new RegExp(`^${escapeRegex(segment).replace(/\\\*/g, '[^/]*')}$`);
  const dotRule = segment.startsWith('.') ? '' : '(?!\\.)';
  return new RegExp(`^${dotRule}${out}$`);
}

/**
 * Files matching `pattern` (relative to `cwd`, or absolute), as absolute paths sorted by
 * code point so the order is the same on every machine. Unreadable folders are skipped.
 */
export async function globFiles(pattern: string, cwd: string, fs: WorkflowFs, signal?: AbortSignal): Promise<string[]> {
  const normalised = pattern.replace(/\\/g, '/');
  const absolute = path.posix.isAbsolute(normalised) || path.isAbsolute(pattern);
  const segments = normalised.split('/').filter((s) => s !== '' && s !== '.');
  // Walk the literal prefix directly.
  let base = absolute ? path.parse(path.resolve(pattern)).root : cwd;
  let index = 0;
  while (index < segments.length - 1 && !hasGlobMagic(segments[index] ?? '')) {
    base = path.join(base, segments[index] ?? '');
    index += 1;
  }
  const results = new Set<string>();
  await walk(base, segments.slice(index), fs, results, signal);
  return [...results].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

async function entriesOf(dir: string, fs: WorkflowFs): Promise<{ name: string; isFile: boolean; isDirectory: boolean }[]> {
  try {
    const entries = await fs.readdir(dir);
    return entries.map((e) => ({ name: e.name, isFile: e.isFile(), isDirectory: e.isDirectory() }));
  } catch {
    return [];
  }
}

async function walk(dir: string, segments: string[], fs: WorkflowFs, results: Set<string>, signal: AbortSignal | undefined): Promise<void> {
  signal?.throwIfAborted();
  const [segment, ...rest] = segments;
  if (segment === undefined) return;
  if (segment === '**') {
    // `**` matches zero or more folders.
    await walk(dir, rest, fs, results, signal);
    for (const entry of await entriesOf(dir, fs)) {
      if (entry.isDirectory && !entry.name.startsWith('.')) await walk(path.join(dir, entry.name), segments, fs, results, signal);
    }
    return;
  }
  if (segment === '..') {
    await walk(path.dirname(dir), rest, fs, results, signal);
    return;
  }
  if (!hasGlobMagic(segment)) {
    const target = path.join(dir, segment);
    if (rest.length === 0) {
      try {
        if ((await fs.stat(target)).isFile()) results.add(target);
      } catch {
        // Missing: no match.
      }
    } else {
      await walk(target, rest, fs, results, signal);
    }
    return;
  }
  const regex = segmentToRegex(segment);
  for (const entry of await entriesOf(dir, fs)) {
    if (!regex.test(entry.name)) continue;
    const full = path.join(dir, entry.name);
    if (rest.length === 0) {
      if (entry.isFile) results.add(full);
    } else if (entry.isDirectory) {
      await walk(full, rest, fs, results, signal);
    }
  }
}
