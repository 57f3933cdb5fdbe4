/**
 * What a watch folder never takes as input: files that are still being written by a copy tool
 * or editor (by the names those tools give them), OS litter, and the folders talk writes to.
 */
import path from 'node:path';

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

/** A path with `.` or `..` segments, doubled or trailing separators: not in canonical form. */
const NOT_CANONICAL = /[\\/]\.{1,2}(?:[\\/]|$)|[\\/]{2}|.[\\/]$/;

/**
 * Build the predicate chokidar and the reconciliation scan share. `excluded` are absolute
 * folders (output, processed, failed, the state dir) that are never input even when they lie
 * inside the watched folder. The watched folder itself is never ignored, even if its own name
 * starts with a dot.
 *
 * It runs for every entry each time chokidar re-reads a folder (thousands per second during a
 * burst), so it compares strings: paths arrive absolute and canonical from chokidar and the
 * scan, and only others are resolved first.
 */
export function createIgnoreMatcher(root: string, excluded: readonly string[]): (absPath: string) => boolean {
  const resolvedRoot = path.resolve(root);
  const rootPrefix = resolvedRoot.endsWith(path.sep) ? resolvedRoot : resolvedRoot + path.sep;
  const excludedDirs = excluded.map((p) => path.resolve(p)).filter((p) => p !== resolvedRoot);
  const excludedPrefixes = excludedDirs.map((dir) => dir + path.sep);
  return (absPath: string): boolean => {
    const resolved = path.isAbsolute(absPath) && !NOT_CANONICAL.test(absPath) ? absPath : path.resolve(absPath);
    if (resolved === resolvedRoot) return false;
    if (!resolved.startsWith(rootPrefix)) return true;
    for (let i = 0; i < excludedDirs.length; i += 1) {
      if (resolved === excludedDirs[i] || resolved.startsWith(excludedPrefixes[i]!)) return true;
    }
    return resolved.slice(rootPrefix.length).split(path.sep).some(isIgnoredName);
  };
}
