/**
 * `talk watch --dry-run`: the bundles the folder holds now, as the watcher would group them,
 * read without touching anything — no ledger, no lease, no move, no backend.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { WatchConfig } from './config.js';
import { assembleGroup, groupKeyFor, type Bundle } from './bundler.js';
import { createIgnoreMatcher } from './ignore.js';

/** What the folder holds now. */
export interface InboxPreview {
  /** Complete bundles, by name. */
  ready: Bundle[];
  /** Groups that lack something, with what. */
  incomplete: { name: string; missing: string[]; problems: string[] }[];
}

/** Group the files below `root` (two levels: stem mode uses the top, folder modes one below). */
export async function previewInbox(root: string, config: WatchConfig, excluded: readonly string[]): Promise<InboxPreview> {
  const isIgnored = createIgnoreMatcher(root, excluded);
  const groups = new Map<string, string[]>();
  const visit = async (dir: string, depth: number): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const abs = path.join(dir, entry.name);
      if (isIgnored(abs)) continue;
      if (entry.isDirectory() && depth === 0) await visit(abs, 1);
      if (!entry.isFile()) continue;
      const key = groupKeyFor(root, abs, config);
      if (key !== undefined) groups.set(key, [...(groups.get(key) ?? []), abs]);
    }
  };
  await visit(root, 0);
  const preview: InboxPreview = { ready: [], incomplete: [] };
  for (const [key, files] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
    const status = assembleGroup(root, key, files.map((absPath) => ({ absPath, settled: true })), config);
    if (status.kind === 'ready') preview.ready.push(status.bundle);
    else if (status.kind === 'incomplete') preview.incomplete.push({ name: status.name, missing: status.missing, problems: status.problems });
  }
  return preview;
}
