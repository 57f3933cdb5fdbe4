/**
 * Settle tracking: a file is ready when its size and mtime have not changed for `settleMs`,
 * counted from the last change this tracker saw. Files found by a scan are treated like files
 * that just changed, so a copy that was in progress when the watcher started is not taken.
 *
 * Why not chokidar's `awaitWriteFinish`: it only applies to files chokidar itself reports, looks
 * at size alone, and forgets a file once it fired. Here the same rule must hold for files found
 * by reconciliation scans and by `--poll`, and a settled file that changes again must become
 * unsettled again (a re-copy while a bundle is waiting for its partner).
 *
 * Per file:
 *
 *     observe ──▶ settling ──(stat unchanged for settleMs)──▶ settled
 *                    ▲  │ stat changed: restart the count          │
 *                    │  ▼                                          │
 *                    └──┘◀──────────── observe with a change ──────┘
 *     (gone on any stat) ──▶ removed
 */
import { stat } from 'node:fs/promises';
import { systemClock, type Clock } from '../core/clock.js';
import { systemTimers, type CancelTimer, type Timers } from '../core/timers.js';

/** What identifies one version of a file without reading it. */
export interface FileStamp {
  size: number;
  mtimeMs: number;
  ino: number;
}

/** Callbacks of the tracker; called outside of any lock, never concurrently for one path. */
export interface SettleListener {
  /** The file has not changed for `settleMs`. */
  settled(absPath: string, stamp: FileStamp): void;
  /** A settled file changed again (or a new file appeared): it is settling. */
  changed(absPath: string, stamp: FileStamp): void;
  /** The file is gone. */
  removed(absPath: string): void;
  /** A path observed for the first time was already gone (nothing else will be said of it). */
  vanished?(absPath: string): void;
}

interface Entry {
  stamp: FileStamp;
  changedAt: number;
  settled: boolean;
  timer: CancelTimer | undefined;
  checking: boolean;
  /** Another observation came in while a stat was running: look again when it ends. */
  recheck: boolean;
}

/** Stat a file; undefined when it is gone or not a regular file. */
export async function statStamp(absPath: string): Promise<FileStamp | undefined> {
  try {
    const s = await stat(absPath);
    if (!s.isFile()) return undefined;
    return { size: s.size, mtimeMs: s.mtimeMs, ino: s.ino };
  } catch {
    return undefined;
  }
}

/** True when two stamps describe the same version of a file. */
export function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino;
}

/** Tracks files until they settle; see the module comment for the lifecycle. */
export class SettleTracker {
  readonly #settleMs: number;
  readonly #listener: SettleListener;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #entries = new Map<string, Entry>();
  /** Stats in flight for paths not yet tracked (so a burst of events stats once). */
  readonly #pendingFirst = new Set<string>();
  #closed = false;

  /** `clock` and `timers` measure the settle window (a test hands in time it moves by hand). */
  constructor(options: { settleMs: number; listener: SettleListener; clock?: Clock; timers?: Timers }) {
    this.#settleMs = options.settleMs;
    this.#listener = options.listener;
    this.#clock = options.clock ?? systemClock;
    this.#timers = options.timers ?? systemTimers;
  }

  /** Files seen but not yet settled (including first stats in flight). */
  get unsettledCount(): number {
    let n = this.#pendingFirst.size;
    for (const entry of this.#entries.values()) if (!entry.settled) n += 1;
    return n;
  }

  /** True when the path is known and settled. */
  isSettled(absPath: string): boolean {
    return this.#entries.get(absPath)?.settled === true;
  }

  /** The version last seen of a tracked path. */
  stampOf(absPath: string): FileStamp | undefined {
    return this.#entries.get(absPath)?.stamp;
  }

  /** Paths currently tracked. */
  paths(): string[] {
    return [...this.#entries.keys()];
  }

  /** A file event or a scan saw this path: stat it and (re)start its settle count if it changed. */
  observe(absPath: string): void {
    if (this.#closed) return;
    const entry = this.#entries.get(absPath);
    if (entry) {
      if (entry.checking) {
        entry.recheck = true;
        return;
      }
      void this.#check(absPath, entry);
      return;
    }
    if (this.#pendingFirst.has(absPath)) return;
    this.#pendingFirst.add(absPath);
    void statStamp(absPath).then((stamp) => {
      this.#pendingFirst.delete(absPath);
      if (this.#closed || this.#entries.has(absPath)) return;
      if (!stamp) {
        this.#listener.vanished?.(absPath);
        return;
      }
      const created: Entry = { stamp, changedAt: this.#clock.now(), settled: false, timer: undefined, checking: false, recheck: false };
      this.#entries.set(absPath, created);
      this.#listener.changed(absPath, stamp);
      this.#schedule(absPath, created, this.#settleMs);
    });
  }

  /**
   * Stat a tracked file now (not on the next event). Resolves true when it is still settled at
   * the same version; false when it changed (it is settling again) or is gone (removed).
   */
  async recheck(absPath: string): Promise<boolean> {
    const entry = this.#entries.get(absPath);
    if (!entry || this.#closed) return false;
    if (entry.checking) {
      entry.recheck = true;
      return false;
    }
    const before = entry.stamp;
    await this.#check(absPath, entry);
    return this.#entries.get(absPath) === entry && entry.settled && sameStamp(before, entry.stamp);
  }

  /** The file is gone (an unlink event, or a scan no longer finds it). */
  forget(absPath: string): void {
    const entry = this.#entries.get(absPath);
    if (!entry) return;
    entry.timer?.();
    this.#entries.delete(absPath);
    this.#listener.removed(absPath);
  }

  /** Stop every timer; no callback fires afterwards. */
  close(): void {
    this.#closed = true;
    for (const entry of this.#entries.values()) entry.timer?.();
    this.#entries.clear();
  }

  #schedule(absPath: string, entry: Entry, ms: number): void {
    entry.timer?.();
    entry.timer = this.#timers.setTimeout(() => {
      entry.timer = undefined;
      void this.#check(absPath, entry);
    }, Math.max(0, ms));
  }

  async #check(absPath: string, entry: Entry): Promise<void> {
    entry.checking = true;
    const stamp = await statStamp(absPath);
    entry.checking = false;
    if (this.#closed || this.#entries.get(absPath) !== entry) return;
    if (!stamp) {
      this.forget(absPath);
      return;
    }
    const now = this.#clock.now();
    if (!sameStamp(stamp, entry.stamp)) {
      entry.stamp = stamp;
      entry.changedAt = now;
      entry.settled = false;
      this.#listener.changed(absPath, stamp);
      this.#schedule(absPath, entry, this.#settleMs);
    } else if (!entry.settled) {
      const waited = now - entry.changedAt;
      if (waited >= this.#settleMs) {
        entry.settled = true;
        this.#listener.settled(absPath, stamp);
      } else if (!entry.timer) {
        this.#schedule(absPath, entry, this.#settleMs - waited);
      }
    }
    if (entry.recheck && this.#entries.get(absPath) === entry) {
      entry.recheck = false;
      void this.#check(absPath, entry);
    }
  }
}
