/** What the watcher reports: the command turns these into notices, tests and benches wait on them. */
import type { BundleError } from './bundle-job.js';

/** One thing the watcher did or saw; each member says when it occurs. */
export type WatchEvent =
  /** Watching began: chokidar is ready and the first scan ran. */
  | { type: 'watch:ready'; dir: string; files: number }
  /** A bundle's files are all settled and it is queued (after the ledger said it is new). */
  | { type: 'bundle:queued'; name: string; id: string; readyAt: number }
  /** A job starts. `readyAt` is when the bundle became ready (for ready-to-start latency). */
  | { type: 'bundle:start'; name: string; id: string; attempt: number; resumed: boolean; readyAt: number; startedAt: number }
  /** Rendered and published. */
  | { type: 'bundle:done'; name: string; id: string; output: string | undefined; durationMs: number }
  /** An attempt failed; `willRetry` says whether another attempt follows (if not, it is published). */
  | { type: 'bundle:failed'; name: string; id: string; attempt: number; willRetry: boolean; error: BundleError }
  /** Not run: identical content was done, or failed too often. `reason` is a sentence. */
  | { type: 'bundle:skipped'; name: string; id: string; reason: string }
  /** Another watcher holds the bundle's lease; it is left to that watcher. */
  | { type: 'bundle:held'; name: string; id: string }
  /** Stopped by a signal while running; the next start resumes it. */
  | { type: 'bundle:interrupted'; name: string; id: string }
  /** A bundle's partner is missing after `bundle_timeout` (or at the end of `--once`). */
  | { type: 'bundle:incomplete'; name: string; missing: string[]; problems: string[] }
  /** Something went wrong outside a job (file system, chokidar); watching goes on. */
  | { type: 'watch:error'; message: string };

/** Where the parts of the watcher send their events (a listener's failure is the sender's to contain). */
export type EmitWatchEvent = (event: WatchEvent) => void;
