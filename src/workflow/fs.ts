/**
 * The file system as validation sees it (CONVENTIONS §12: rules read files through a small
 * interface). The default is the real one; tests may wrap it.
 */
import { statSync } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { setImmediate } from 'node:timers/promises';
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
  /**
   * Stat many paths at once (a foreach batch's inputs); undefined for one that cannot be
   * stat'ed. Optional: without it they are stat'ed one by one, 64 at a time.
   */
  statMany?(paths: readonly string[]): Promise<(WorkflowFileInfo | undefined)[]>;
  readFile(path: string, signal?: AbortSignal): Promise<Uint8Array>;
  readdir(path: string): Promise<WorkflowDirEntry[]>;
}

/** What the rules keep of a stat: 200,000 full `Stats` of a big batch were ≈ 60 MB of dates and numbers. */
class FileInfo implements WorkflowFileInfo {
  constructor(
    private readonly file: boolean,
    private readonly directory: boolean,
    readonly size: number,
  ) {}

  isFile(): boolean {
    return this.file;
  }

  isDirectory(): boolean {
    return this.directory;
  }
}

const fileInfo = (s: { isFile(): boolean; isDirectory(): boolean; size: number }): WorkflowFileInfo => new FileInfo(s.isFile(), s.isDirectory(), s.size);

/** Paths stat'ed between two turns of the event loop in `statMany`. */
const STAT_BATCH = 512;

/** The real file system. */
export const nodeWorkflowFs: WorkflowFs = {
  stat: async (path) => fileInfo(await stat(path)),
  // Synchronous stats, in batches that yield to the event loop between them (a signal or a
  // timer is never kept waiting for long): a stat of a cached entry is a microsecond, while a
  // promise per path costs the main thread 10–15 µs, 3 s of a 100,000-item plan's 200,000.
  async statMany(paths) {
    const infos: (WorkflowFileInfo | undefined)[] = [];
    for (let i = 0; i < paths.length; i += 1) {
      if (i > 0 && i % STAT_BATCH === 0) await setImmediate();
      let info;
      try {
        info = statSync(paths[i] ?? '', { throwIfNoEntry: false });
      } catch {
        info = undefined;
      }
      infos.push(info === undefined ? undefined : fileInfo(info));
    }
    return infos;
  },
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
      const wanted = [...new Set(paths)].filter((p) => !stats.has(p));
      if (fs.statMany) {
        const infos = await fs.statMany(wanted);
        wanted.forEach((p, i) => {
          const info = infos[i];
          const s = info ? Promise.resolve(info) : fs.stat(p);
          // A path that cannot be stat'ed is asked again one by one, for its own error.
          s.catch(() => undefined);
          stats.set(p, s);
        });
        return;
      }
      const limit = pLimit(64);
      await Promise.all(wanted.map((p) => limit(() => statOnce(p).then(() => undefined, () => undefined))));
    },
  };
}
