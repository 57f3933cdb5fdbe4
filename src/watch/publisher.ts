/**
 * Publishing a bundle's outcome: the sidecar `<name>.talk.json` beside the output, the sources
 * moved to `processed/` (or kept, or deleted) after success or to `failed/` with
 * `<name>.error.txt` after the last failed attempt, and the status file of a bundle whose
 * partner never arrived. Every file is written atomically; a source is only moved or deleted
 * when it is still the version that was hashed (a newer copy is a new item, left in place).
 */
import { copyFile, mkdir, readFile, rename, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { createAtomicTarget, writeFileAtomic } from '../core/atomic-write.js';
import { sanitizeFileName } from '../core/paths.js';
import { writeRecordFile } from '../core/provenance-file.js';
import type { IdentifiedBundle } from './bundle-content.js';
import type { LedgerItem } from './ledger.js';
import { sameStamp, statStamp } from './settle-tracker.js';
import { unreachable } from '../core/unreachable.js';
import type { Clock } from '../core/clock.js';

/** What to do with sources after success (`--on-success`). */
export type OnSuccess = 'keep' | 'move' | 'delete';

/** Absolute folders the publisher writes to. */
export interface PublishTargets {
  root: string;
  outputDir: string;
  processedDir: string;
  failedDir: string;
  onSuccess: OnSuccess;
  /** Dates the sidecars. */
  clock: Clock;
}

/** The sidecar `<bundle>.talk.json`: what happened to one bundle. */
export interface Sidecar {
  status: 'done' | 'failed' | 'incomplete' | 'waiting-credits';
  bundle: string;
  /** Bundle id (content hash); absent for an incomplete bundle. */
  id?: string;
  output?: string;
  sessionIds?: string[];
  renderIds?: string[];
  attempts?: number;
  creditsUsed?: number;
  error?: { code: string; message: string; hint?: string } | null;
  /** For `incomplete`: the roles or files still missing, and what is wrong, in words. */
  missing?: string[];
  problems?: string[];
  /** Source files, relative to the watched folder. */
  sources?: string[];
  /** For `waiting-credits`: what the bundle needs, and what the budget or balance leaves it. */
  needs?: number;
  available?: number;
  updatedAt: string;
}

/** The sidecar path for a bundle name. */
export function sidecarPath(targets: PublishTargets, name: string): string {
  return path.join(targets.outputDir, `${sanitizeFileName(name)}.talk.json`);
}

/** The output path a bundle's render is written to. */
export function outputPathFor(targets: PublishTargets, name: string): string {
  return path.join(targets.outputDir, `${sanitizeFileName(name)}.mp4`);
}

function isoNow(clock: Clock): string {
  return new Date(clock.now()).toISOString();
}

function relativeSources(targets: PublishTargets, identified: IdentifiedBundle): string[] {
  return identified.members.map((m) => path.relative(targets.root, m.path));
}

/** Success: sidecar, then sources kept, moved to `processed/` or deleted. */
export async function publishSuccess(targets: PublishTargets, identified: IdentifiedBundle, item: LedgerItem): Promise<void> {
  const sidecar: Sidecar = {
    status: 'done',
    bundle: identified.bundle.name,
    id: identified.id,
    ...(item.output === undefined ? {} : { output: path.relative(targets.outputDir, item.output) }),
    sessionIds: item.sessionIds ?? [],
    renderIds: item.renderIds ?? [],
    attempts: item.attempts + 1,
    creditsUsed: item.creditsUsed ?? 0,
    error: null,
    sources: relativeSources(targets, identified),
    updatedAt: isoNow(targets.clock),
  };
  // The runner wrote the output's provenance record at this same path: the sidecar is that
  // record with the watch fields added.
  const file = sidecarPath(targets, identified.bundle.name);
  const record = await readFile(file, 'utf8').then(
    (text) => JSON.parse(text) as Record<string, unknown>,
    () => ({}),
  );
  await writeRecordFile(file, { ...record, ...sidecar });
  await disposeSources(targets, identified);
}

/** Keep, move to `processed/` or delete a done bundle's sources, per `--on-success`. */
export async function disposeSources(targets: PublishTargets, identified: IdentifiedBundle): Promise<void> {
  switch (targets.onSuccess) {
    case 'keep':
      return;
    case 'move':
      await moveSources(targets, identified, targets.processedDir);
      return;
    case 'delete':
      await deleteSources(identified);
      return;
    default:
      return unreachable(targets.onSuccess, 'on success');
  }
}

/** Last attempt failed: sidecar, sources to `failed/`, and `<name>.error.txt` there. */
export async function publishFailure(targets: PublishTargets, identified: IdentifiedBundle, item: LedgerItem): Promise<void> {
  const error = item.error ?? { code: 'internal', message: 'the job failed without a message' };
  const sidecar: Sidecar = {
    status: 'failed',
    bundle: identified.bundle.name,
    id: identified.id,
    sessionIds: item.sessionIds ?? [],
    renderIds: item.renderIds ?? [],
    attempts: item.attempts,
    creditsUsed: item.creditsUsed ?? 0,
    error,
    sources: relativeSources(targets, identified),
    updatedAt: isoNow(targets.clock),
  };
  await writeRecordFile(sidecarPath(targets, identified.bundle.name), sidecar);
  await moveSources(targets, identified, targets.failedDir);
  const text =
    `${identified.bundle.name} failed after ${item.attempts} attempt${item.attempts === 1 ? '' : 's'}.\n` +
    `error (${error.code}): ${error.message}\n` +
    (error.hint === undefined ? '' : `next: ${error.hint}\n`) +
    `sources: ${relativeSources(targets, identified).join(', ')}\n` +
    (error.code === 'credits'
      ? `Out of credits: top up (or bind the account, see \`talk credits\`), then drop the same files into the ` +
        `watched folder again; they run again without a change.\n`
      : `To try again, fix the cause and drop the files into the watched folder again; identical files are ` +
        `skipped once attempts are used up, so change them (or remove this bundle's ledger entry).\n`);
  await writeFileAtomic(path.join(targets.failedDir, `${sanitizeFileName(identified.bundle.name)}.error.txt`), text, { durable: false });
}

/**
 * A bundle that does not fit in the credits waits for them (nothing of it was sent): its sidecar
 * says so until it is admitted and its outcome replaces it.
 */
export async function publishWaitingCredits(sidecar: string, name: string, needs: number, available: number, clock: Clock): Promise<void> {
  const record: Sidecar = { status: 'waiting-credits', bundle: name, needs, available, updatedAt: isoNow(clock) };
  await writeRecordFile(sidecar, record);
}

/** A bundle is still missing a partner after `bundle_timeout`: say what is missing. */
export async function publishIncomplete(targets: PublishTargets, name: string, missing: string[], problems: string[], sources: string[]): Promise<void> {
  const sidecar: Sidecar = {
    status: 'incomplete',
    bundle: name,
    missing,
    problems,
    sources: sources.map((s) => path.relative(targets.root, s)),
    updatedAt: isoNow(targets.clock),
  };
  await writeRecordFile(sidecarPath(targets, name), sidecar);
}

/**
 * The members, when every one is still the version that was hashed; none otherwise. A bundle
 * whose files changed meanwhile is a newer item that still needs its unchanged partners, so
 * the sources stay for it to publish.
 */
async function unchangedMembers(identified: IdentifiedBundle): Promise<string[]> {
  for (const member of identified.members) {
    const now = await statStamp(member.path);
    if (!now || !sameStamp(now, member.stamp)) return [];
  }
  return identified.members.map((m) => m.path);
}

async function moveSources(targets: PublishTargets, identified: IdentifiedBundle, destRoot: string): Promise<void> {
  const folder = identified.bundle.folder;
  for (const source of await unchangedMembers(identified)) {
    const dest = path.join(destRoot, path.relative(targets.root, source));
    await mkdir(path.dirname(dest), { recursive: true });
    await moveFile(source, dest);
  }
  // Leave the folder if anything else is in it (a newer copy, a file of another role).
  if (folder !== undefined) await rmdir(folder).catch(() => undefined);
}

async function deleteSources(identified: IdentifiedBundle): Promise<void> {
  for (const source of await unchangedMembers(identified)) await unlink(source).catch(() => undefined);
  if (identified.bundle.folder !== undefined) await rmdir(identified.bundle.folder).catch(() => undefined);
}

/**
 * A move of a finished source file, not an atomic write, so not `writeFileAtomic`: the rename
 * moves the file itself. Across file systems the copy goes to an atomic target beside the
 * destination; `writeFileAtomic` would need the whole file (up to 200 MB) in memory first.
 */
async function moveFile(source: string, dest: string): Promise<void> {
  try {
    await rename(source, dest);
  } catch (error) {
    // processed/ or failed/ on another file system: copy beside the destination, then swap in.
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    const target = createAtomicTarget(dest);
    try {
      await copyFile(source, target.tempPath);
      await target.commit();
    } catch (copyError) {
      await target.abort();
      throw copyError;
    }
    await unlink(source);
  }
}
