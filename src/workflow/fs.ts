/**
 * The file system as validation sees it (CONVENTIONS §12: rules read files through a small
 * interface). The default is the real one; tests may wrap it.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import pLimit from 'p-limit';

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

/**
 * A view of `fs` whose `stat` answers each path once per load, and can be warmed for many paths
 * at once: a 100,000-item batch would otherwise wait for 200,000 stats one after another
 * (each a round trip to the thread pool), with the rules asking about the same files twice.
 */
export function statCaching(fs: WorkflowFs): WorkflowFs & { prefetch(paths: Iterable<string>): Promise<void> } {
  const stats = new Map<string, Promise<WorkflowFileInfo>>();
  const statOnce = (p: string): Promise<WorkflowFileInfo> => {
    let s = stats.get(p);
    if (!s) {
      s = fs.stat(p);
      // Failures are the caller's to handle when it asks; a warm-up must not leave them unhandled.
      s.catch(() => undefined);
      stats.set(p, s);
    }
    return s;
  };
  return {
    stat: statOnce,
    readFile: (p, signal) => fs.readFile(p, signal),
    readdir: (p) => fs.readdir(p),
    async prefetch(paths) {
      const limit = pLimit(64);
      await Promise.all([...paths].map((p) => limit(() => statOnce(p).then(() => undefined, () => undefined))));
    },
  };
}
