/**
 * Where run state lives: `.talk/` beside the workflow (or `--state-dir`), one run dir per
 * workflow file inside it, named after the file so people can find it.
 */
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { sanitizeFileName } from '../core/paths.js';
import type { SignalOptions } from '../core/abort.js';

/** The default state dir name. */
export const STATE_DIR_NAME = '.talk';

/** The state dir for a workflow: the override (resolved against `cwd`) or `.talk/` beside it. */
export function stateDirFor(workflowPath: string, override: string | undefined, cwd: string): string {
  return override ? path.resolve(cwd, override) : path.join(path.dirname(path.resolve(workflowPath)), STATE_DIR_NAME);
}

/** The folder of one workflow's runs inside a state dir: `runs/<file name>`, one run dir per backend in it. */
export function workflowRunsDir(stateDir: string, workflowPath: string): string {
  return path.join(stateDir, 'runs', sanitizeFileName(path.basename(workflowPath)));
}

/**
 * The folder name of a backend identity: `local`, or the URL's host and port
 * (`127.0.0.1_8787`, `api.example.com`). Runs on different backends never share a state.
 */
export function backendDirName(backendId: string): string {
  if (backendId === 'local') return 'local';
  try {
    const url = new URL(backendId);
    return sanitizeFileName(`${url.hostname}${url.port ? `_${url.port}` : ''}${url.pathname === '/' ? '' : url.pathname.replaceAll('/', '_')}`);
  } catch {
    return sanitizeFileName(backendId);
  }
}

/**
 * The run dir of one workflow on one backend: `runs/<file name>/<backend>` (SPEC §3: state is
 * kept per backend identity, so a run on one backend never replaces what another recorded); a
 * shard of a CI matrix (`--shard i/n`) has a run dir of its own.
 */
export function runDirFor(stateDir: string, workflowPath: string, backendId: string, shard?: { index: number; count: number }): string {
  // A CI shard keeps its own state beside the whole run's (`local.shard-2-of-3`): shards that
  // share a state dir never share a lock or a journal, and `talk status` lists each.
  const suffix = shard ? `.shard-${shard.index}-of-${shard.count}` : '';
  return path.join(workflowRunsDir(stateDir, workflowPath), `${backendDirName(backendId)}${suffix}`);
}

/** The files a run dir holds: its snapshot and journals (the lock is the runner's own). */
const STATE_FILE = /^(state\.json|journal-\d+\.ndjson)$/;

/**
 * Move a run state written before states were kept per backend (directly in
 * `runs/<file name>/`) into the run dir of the backend it recorded, so an upgrade keeps its
 * resumable runs. Does nothing when there is none, or when the new place is already taken.
 */
export async function adoptLegacyRunState(stateDir: string, workflowPath: string, recordedBackend: (dir: string) => Promise<string | undefined>): Promise<void> {
  const legacy = workflowRunsDir(stateDir, workflowPath);
  let names: string[];
  try {
    names = (await readdir(legacy, { withFileTypes: true })).filter((e) => e.isFile() && STATE_FILE.test(e.name)).map((e) => e.name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return;
    throw error;
  }
  if (names.length === 0) return;
  const backend = (await recordedBackend(legacy)) ?? 'local';
  const target = runDirFor(stateDir, workflowPath, backend);
  try {
    await mkdir(target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw error;
  }
  for (const name of names) await rename(path.join(legacy, name), path.join(target, name));
  await rm(path.join(legacy, 'lock'), { force: true });
}

/** Every run dir in a state dir (for `talk status` without a workflow), or of one workflow. */
export async function listRunDirs(stateDir: string, options: SignalOptions & { workflowPath?: string } = {}): Promise<string[]> {
  const workflows = options.workflowPath ? [workflowRunsDir(stateDir, options.workflowPath)] : await subdirs(path.join(stateDir, 'runs'));
  const dirs: string[] = [];
  for (const dir of workflows) {
    options.signal?.throwIfAborted();
    dirs.push(...(await subdirs(dir)));
    // A state written before states were kept per backend, not yet adopted by a run.
    if ((await readdir(dir).catch(() => [] as string[])).some((name) => STATE_FILE.test(name))) dirs.push(dir);
  }
  return dirs.sort();
}

async function subdirs(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => path.join(dir, e.name));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw error;
  }
}
