/**
 * Detection: which files are in the watched folder and when they change, fed to the settle
 * tracker from three sources. Chokidar sees every level a bundle can live at (depth 1), removals
 * and errors, and polls with `--poll` (network shares). The top folder's own change events name
 * a new file at once (see `#watchTopLevelNames`). Reconciliation scans, at start, every
 * `scan_interval` and when a folder vanishes, find files the events missed and notice files
 * that vanished without an event.
 */
import { watch as fsWatch, type FSWatcher as NodeFsWatcher } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { watch as watchFiles, type FSWatcher } from 'chokidar';
import type { CancelTimer, Timers } from '../core/timers.js';
import type { SettleTracker } from './settle-tracker.js';
import { bundleErrorFrom } from './bundle-job.js';
import type { EmitWatchEvent } from './watch-event.js';

/** What the detector asks of the watcher, and tells it. */
export interface DetectorHost {
  /** False once the watcher is shutting down: files seen are no longer taken in. */
  acceptsFiles(): boolean;
  /** Whether periodic scans go on (only while watching). */
  keepsScanning(): boolean;
  /** A scan's walk ended and vanished files were looked at. */
  scanned(): void;
  /** A scan ended, whatever it found. */
  scanEnded(): void;
}

/** Options of `FolderDetector`. */
export interface FolderDetectorOptions {
  /** The watched folder (absolute). */
  root: string;
  isIgnored: (absPath: string) => boolean;
  /** Whether a file can belong to a bundle (it has a group key). */
  isCandidate: (absPath: string) => boolean;
  /** Every file seen is handed to it; it also says which files are tracked. */
  tracker: Pick<SettleTracker, 'observe' | 'paths'>;
  /** Poll instead of file system events. */
  poll: boolean;
  pollIntervalMs: number;
  scanIntervalMs: number;
  /** The `scan_interval` timer. */
  timers: Timers;
  emit: EmitWatchEvent;
  host: DetectorHost;
}

/** Chokidar, the top folder's own events and scans for one watched folder. */
export class FolderDetector {
  readonly #o: FolderDetectorOptions;
  #chokidar: FSWatcher | undefined;
  #topLevelNames: NodeFsWatcher | undefined;
  #scanTimer: CancelTimer | undefined;
  #scanning: Promise<void> | undefined;

  constructor(options: FolderDetectorOptions) {
    this.#o = options;
  }

  /** True while a scan runs. */
  get scanning(): boolean {
    return this.#scanning !== undefined;
  }

  /** Start chokidar (resolves once it is ready) and, without `--poll`, the top folder's events. */
  async start(): Promise<void> {
    const { root, poll, pollIntervalMs, tracker, emit } = this.#o;
    // depth 1: stem bundles live at the top, folder and manifest bundles one level down.
    const watcher = watchFiles(root, {
      ignored: (p: string) => this.#o.isIgnored(p),
      ignoreInitial: true,
      depth: 1,
      usePolling: poll,
      interval: pollIntervalMs,
      binaryInterval: pollIntervalMs,
    });
    this.#chokidar = watcher;
    watcher.on('add', (p) => this.#observe(p));
    watcher.on('change', (p) => this.#observe(p));
    watcher.on('unlink', (p) => tracker.observe(p));
    watcher.on('unlinkDir', () => void this.scan().catch((e: unknown) => emit({ type: 'watch:error', message: bundleErrorFrom(e).message })));
    watcher.on('error', (error) => emit({ type: 'watch:error', message: bundleErrorFrom(error).message }));
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    if (!poll) this.#watchTopLevelNames();
  }

  /** Scan every `scan_interval`, for as long as the host keeps scanning. */
  startScans(): void {
    if (!this.#o.host.keepsScanning()) return;
    this.#scanTimer = this.#o.timers.setTimeout(() => {
      void this.scan()
        .catch((e: unknown) => this.#o.emit({ type: 'watch:error', message: bundleErrorFrom(e).message }))
        .finally(() => this.startScans());
    }, this.#o.scanIntervalMs);
  }

  /** Stop scanning and close the file watchers. */
  async close(): Promise<void> {
    this.#scanTimer?.();
    this.#topLevelNames?.close();
    await this.#chokidar?.close();
  }

  /**
   * Reconciliation: find files events missed, and files that vanished without an event.
   * Resolves with the number of files found (a scan already running is waited for instead).
   */
  async scan(): Promise<number> {
    if (this.#scanning) {
      await this.#scanning;
      return this.#o.tracker.paths().length;
    }
    const { root, isIgnored, tracker, host } = this.#o;
    let found = 0;
    const run = async (): Promise<void> => {
      const seen = new Set<string>();
      const walk = async (dir: string, depth: number): Promise<void> => {
        let entries;
        try {
          entries = await readdir(dir, { withFileTypes: true });
        } catch {
          return;
        }
        for (const entry of entries) {
          const abs = path.join(dir, entry.name);
          if (isIgnored(abs)) continue;
          if (entry.isDirectory()) {
            if (depth < 1) await walk(abs, depth + 1);
          } else if (entry.isFile()) {
            seen.add(abs);
            this.#observe(abs);
          }
        }
      };
      await walk(root, 0);
      for (const p of tracker.paths()) if (!seen.has(p)) tracker.observe(p);
      host.scanned();
      found = seen.size;
    };
    this.#scanning = run().finally(() => {
      this.#scanning = undefined;
      // A job or evaluation that ended while this scan ran saw a scan running and left the
      // idle check to us: without it `--once` waits forever (e.g. the scan a moved bundle
      // folder's `unlinkDir` starts, after the last job already finished).
      host.scanEnded();
    });
    await this.#scanning;
    return found;
  }

  /**
   * Chokidar learns of a new file in a folder by re-reading the whole folder (an lstat per
   * entry), at most once a second; during a burst of thousands of files its `add` events come a
   * second or more after the file, and the settle window only starts then. The folder's own
   * change events name the file at once, so the top level — where stem bundles live — is also
   * watched directly and each named file is observed right away. Chokidar still does the
   * rest (sub-folders, removals, errors); observing a file twice is harmless.
   */
  #watchTopLevelNames(): void {
    const { root } = this.#o;
    try {
      const names = fsWatch(root, { persistent: false }, (_event, name) => {
        if (typeof name === 'string' && name.length > 0) this.#observe(path.join(root, name));
      });
      // Losing the shortcut costs latency only: chokidar and the scans still see every file.
      names.on('error', () => names.close());
      this.#topLevelNames = names;
    } catch {
      // Not available here (or out of watches): chokidar alone.
    }
  }

  #observe(absPath: string): void {
    if (!this.#o.host.acceptsFiles()) return;
    if (this.#o.isIgnored(absPath)) return;
    if (!this.#o.isCandidate(absPath)) return;
    this.#o.tracker.observe(absPath);
  }
}
