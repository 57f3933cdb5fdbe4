import path from 'node:path';

/** How a file is named in messages: relative to the cwd, with `/` separators. */
export function displayPath(absolute: string, cwd: string): string {
  const rel = path.relative(cwd, absolute);
  return rel === '' ? path.basename(absolute) : rel.split(path.sep).join('/');
}

/** True when `candidate` is `root` or lies inside it (after resolving `..`). */
export function isInside(root: string, candidate: string): boolean {
  const rel = path.relative(path.resolve(root), path.resolve(candidate));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * A file name safe to create in a folder we own: no separators, no `..`, no control
 * characters, bounded length. Empty results become `file`.
 */
export function sanitizeFileName(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  // eslint-disable-next-line no-control-regex
  const cleaned = base.replace(/[\u0000-\u001f\u007f<>:"|?*]/g, '_').replace(/^\.+/, '').slice(0, 200);
  return cleaned === '' ? 'file' : cleaned;
}

/** Parts of a path as expressions see them: `inputs.x.{path,name,stem,ext}`. */
export function fileParts(p: string): { path: string; name: string; stem: string; ext: string } {
  const name = path.basename(p);
  const ext = path.extname(name);
  return { path: p, name, stem: ext ? name.slice(0, -ext.length) : name, ext: ext.replace(/^\./, '') };
}

/**
 * Where the provenance record of an output lives: beside it, its extension replaced by
 * `.talk.json` (`out/hello.mp4` → `out/hello.talk.json`), the same name a watch folder's
 * sidecar has always had, so the two are one file.
 */
export function provenancePath(output: string): string {
  const ext = path.extname(output);
  return `${ext ? output.slice(0, -ext.length) : output}.talk.json`;
}
