/**
 * What a watch folder never takes as input: files that are still being written by a copy tool
 * or editor (by the names those tools give them), OS litter, and the folders talk writes to.
 */
import path from 'node:path';
import { isInside } from '../core/paths.js';

/**
 * Names of partial downloads, editor swap files and OS metadata. Dotfiles cover `.DS_Store`,
 * `._*` (AppleDouble), `.syncthing.*` and rsync's `.name.XXXXXX` temp files.
 */
const IGNORED_NAME_PATTERNS: readonly RegExp[] = [
  /^\./,
  /\.(tmp|part|partial|crdownload|download|swp)$/i,
  /~$/,
  /^~\$/,
  /^thumbs\.db$/i,
  /^desktop\.ini$/i,
];

/** True when a single file or folder name is never input (partial copy, litter, hidden). */
export function isIgnoredName(name: string): boolean {
  return IGNORED_NAME_PATTERNS.some((pattern) => pattern.test(name));
}

/**
 * Build the predicate chokidar and the reconciliation scan share. `excluded` are absolute
 * folders (output, processed, failed, the state dir) that are never input even when they lie
 * inside the watched folder. The watched folder itself is never ignored, even if its own name
 * starts with a dot.
 */
export function createIgnoreMatcher(root: string, excluded: readonly string[]): (absPath: string) => boolean {
  const resolvedRoot = path.resolve(root);
  const excludedResolved = excluded.map((p) => path.resolve(p)).filter((p) => p !== resolvedRoot);
  return (absPath: string): boolean => {
    const resolved = path.resolve(absPath);
    if (resolved === resolvedRoot) return false;
    if (!isInside(resolvedRoot, resolved)) return true;
    if (excludedResolved.some((dir) => isInside(dir, resolved))) return true;
    const segments = path.relative(resolvedRoot, resolved).split(path.sep);
    return segments.some(isIgnoredName);
  };
}
