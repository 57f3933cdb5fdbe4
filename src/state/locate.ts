/**
 * Where run state lives: `.talk/` beside the workflow (or `--state-dir`), one run dir per
 * workflow file inside it, named after the file so people can find it.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { sanitizeFileName } from '../core/paths.js';
import type { SignalOptions } from '../core/abort.js';

/** The default state dir name. */
export const STATE_DIR_NAME = '.talk';

/** The state dir for a workflow: the override (resolved against `cwd`) or `.talk/` beside it. */
export function stateDirFor(workflowPath: string, override: string | undefined, cwd: string): string {
  return override ? path.resolve(cwd, override) : path.join(path.dirname(path.resolve(workflowPath)), STATE_DIR_NAME);
}

/** The run dir of one workflow inside a state dir: `runs/<file name>`. */
export function runDirFor(stateDir: string, workflowPath: string): string {
  return path.join(stateDir, 'runs', sanitizeFileName(path.basename(workflowPath)));
}

/** Every run dir in a state dir (for `talk status` without a workflow). */
export async function listRunDirs(stateDir: string, options: SignalOptions = {}): Promise<string[]> {
  try {
    const entries = await readdir(path.join(stateDir, 'runs'), { withFileTypes: true });
    options.signal?.throwIfAborted();
    return entries.filter((e) => e.isDirectory()).map((e) => path.join(stateDir, 'runs', e.name)).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}
