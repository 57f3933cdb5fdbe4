/**
 * The file system as validation sees it (CONVENTIONS §12: rules read files through a small
 * interface). The default is the real one; tests may wrap it.
 */
import { readFile, readdir, stat } from 'node:fs/promises';

/** What `stat` tells the rules about a path. */
export interface WorkflowFileInfo {
  isFile(): boolean;
  isDirectory(): boolean;
  size: number;
}

/** One folder entry, as `readdir(..., { withFileTypes: true })` gives it. */
export interface WorkflowDirEntry {
  name: string;
  isFile(): boolean;
  isDirectory(): boolean;
}

/** The few file operations loading a workflow needs. */
export interface WorkflowFs {
  stat(path: string): Promise<WorkflowFileInfo>;
  readFile(path: string, signal?: AbortSignal): Promise<Uint8Array>;
  readdir(path: string): Promise<WorkflowDirEntry[]>;
}

/** The real file system. */
export const nodeWorkflowFs: WorkflowFs = {
  stat: (path) => stat(path),
  readFile: (path, signal) => readFile(path, signal === undefined ? undefined : { signal }),
  readdir: (path) => readdir(path, { withFileTypes: true }),
};
