/**
 * `talk watch --dry-run`: what a watcher would take from the folder right now, read-only. One
 * pass over the folder with the watcher's own rules (ignore names, pairing, settle, the
 * ledger's exactly-once decision); nothing is written, moved, leased or hashed into state.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { WatchConfig } from './config.js';
import { createIgnoreMatcher } from './ignore.js';
import { assembleGroup, groupKeyFor, type Bundle } from './bundler.js';
import { HashCache, identifyBundle, readBundleInstructions } from './bundle-content.js';
import { Ledger, decide } from './ledger.js';
import { watchStateDir } from './folder-watcher.js';
import { outputPathFor } from './publisher.js';
import { unreachable } from '../core/unreachable.js';
import { systemClock, type Clock } from '../core/clock.js';

/** What the watcher would do with one group of files now. */
export type PreviewEntry =
  /** Complete and settled, new (or with attempts left): it would be rendered. */
  | { kind: 'take'; name: string; bundle: Bundle; instructions: string[] | undefined; output: string; resumed: boolean }
  /** Identical content was rendered before: it would be skipped. */
  | { kind: 'skip'; name: string; reason: string }
  /** A file is still being written (changed within the settle time). */
  | { kind: 'settling'; name: string }
  /** Settled but missing a partner (or ambiguous). */
  | { kind: 'incomplete'; name: string; problems: string[] };

/** Options of `previewFolder`. */
export interface PreviewOptions {
  dir: string;
  config: WatchConfig;
  stateDir: string;
  exclude?: string[];
  /** The clock the settle rule compares mtimes with. */
  clock?: Clock;
  signal?: AbortSignal;
}

/** Every group of files in the folder and what a watcher would do with it now, by name. */
export async function previewFolder(o: PreviewOptions): Promise<PreviewEntry[]> {
  const root = path.resolve(o.dir);
  const at = (p: string): string => path.resolve(root, p);
  const isIgnored = createIgnoreMatcher(root, [at(o.config.outputDir), at(o.config.processedDir), at(o.config.failedDir), path.resolve(o.stateDir), ...(o.exclude ?? [])]);
  const clock = o.clock ?? systemClock;
  const now = clock.now();
  const groups = new Map<string, { absPath: string; settled: boolean }[]>();
  const walk = async (dir: string, depth: number): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const abs = path.join(dir, entry.name);
      if (isIgnored(abs)) continue;
      if (entry.isDirectory()) {
        if (depth < 1) await walk(abs, depth + 1);
        continue;
      }
      if (!entry.isFile()) continue;
      const key = groupKeyFor(root, abs, o.config);
      if (key === undefined) continue;
      const info = await stat(abs).catch(() => undefined);
      if (info === undefined) continue;
      const list = groups.get(key) ?? [];
      list.push({ absPath: abs, settled: now - info.mtimeMs >= o.config.settleMs });
      groups.set(key, list);
    }
  };
  await walk(root, 0);

  const ledger = new Ledger(path.join(watchStateDir(o.stateDir, root), 'items'));
  const targets = { root, outputDir: at(o.config.outputDir), processedDir: at(o.config.processedDir), failedDir: at(o.config.failedDir), onSuccess: 'keep' as const, clock };
  const cache = new HashCache();
  const entries: PreviewEntry[] = [];
  // Identical content under two names in one pass: the second is skipped, as the watcher does.
  const taken = new Map<string, string>();
  for (const key of [...groups.keys()].sort()) {
    const status = assembleGroup(root, key, groups.get(key) ?? [], o.config);
    if (status.kind === 'settling') {
      entries.push({ kind: 'settling', name: key });
      continue;
    }
    if (status.kind === 'incomplete') {
      entries.push({ kind: 'incomplete', name: key, problems: status.problems });
      continue;
    }
    const identified = await identifyBundle(status.bundle, cache, o.signal);
    if (identified === undefined) {
      entries.push({ kind: 'settling', name: key });
      continue;
    }
    const earlier = taken.get(identified.id);
    if (earlier !== undefined) {
      entries.push({ kind: 'skip', name: key, reason: `identical content to ${earlier}, which would be rendered first` });
      continue;
    }
    const decision = decide(await ledger.read(identified.id), o.config.maxAttempts);
    switch (decision.action) {
      case 'skip-done': {
        const where = decision.item.output === undefined ? 'its earlier output' : path.relative(root, decision.item.output);
        entries.push({ kind: 'skip', name: key, reason: `identical content was already rendered as ${where}` });
        break;
      }
      case 'skip-exhausted':
        entries.push({ kind: 'skip', name: key, reason: `identical content failed ${decision.item.attempts} times; change the files to try again` });
        break;
      case 'run': {
        taken.set(identified.id, key);
        const instructions = await readBundleInstructions(status.bundle, o.signal).catch(() => undefined);
        entries.push({ kind: 'take', name: key, bundle: status.bundle, instructions, output: outputPathFor(targets, status.bundle.name), resumed: decision.resumed });
        break;
      }
      default:
        return unreachable(decision, 'decision');
    }
  }
  return entries;
}
