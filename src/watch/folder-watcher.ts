/**
 * The watch folder: `watchFolder` composes detection (folder-detector.ts: chokidar, the top
 * folder's own events, reconciliation scans; `--poll` for network shares), settle tracking
 * (settle-tracker.ts), grouping (bundle-groups.ts: bundles, incomplete timers), processing
 * (bundle-processor.ts: the exactly-once ledger with leases, the job, publishing) and its own
 * lifecycle (watcher-state.ts, one transition function). The job itself is injected
 * (`runBundle`), so this module never knows about runners or backends.
 *
 * Imports run one way: this file → detector, groups, processor → tracker, ledger, leases,
 * publisher, bundler; the parts reach each other only through the small host interfaces this
 * file wires up.
 */
import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { systemClock, type Clock } from '../core/clock.js';
import { systemTimers, type Timers } from '../core/timers.js';
import type { WatchConfig } from './config.js';
import { createIgnoreMatcher } from './ignore.js';
import { SettleTracker } from './settle-tracker.js';
import { groupKeyFor } from './bundler.js';
import { Ledger } from './ledger.js';
import { LeaseStore, currentLeaseOwner, type LeaseOwner } from './lease.js';
import type { OnSuccess, PublishTargets } from './publisher.js';
import type { RunBundle } from './bundle-job.js';
import type { WatchEvent } from './watch-event.js';
import { FolderDetector } from './folder-detector.js';
import { BundleGroups } from './bundle-groups.js';
import { BundleProcessor } from './bundle-processor.js';
import { isShuttingDown, nextWatcherState, type WatcherState, type WatcherTransition } from './watcher-state.js';

/** Counts of one watcher's session. */
export interface WatchSummary {
  done: number;
  failed: number;
  skipped: number;
  incomplete: number;
  interrupted: boolean;
}

/** Options of `watchFolder`. */
export interface WatchFolderOptions {
  /** The watched folder (absolute). */
  dir: string;
  config: WatchConfig;
  /** The ledger and leases live under `<stateDir>/watch/`. */
  stateDir: string;
  runBundle: RunBundle;
  /** Process what is there (and what settles meanwhile), then return. */
  once: boolean;
  /** Poll instead of file system events (network shares). */
  poll: boolean;
  onSuccess: OnSuccess;
  /** Bundles in flight at once (the runner may limit further). */
  concurrency: number;
  signal: AbortSignal;
  onEvent?: (event: WatchEvent) => void;
  /** Lease heartbeat TTL; a lease older than this is taken over. Default 30 s. */
  leaseTtlMs?: number;
  /** First delay before retrying a failed attempt (doubles per attempt, jittered; backend/retry.ts). Default 2 s. */
  retryDelayMs?: number;
  /** Polling interval with `poll`. Default 1 s. */
  pollIntervalMs?: number;
  /** Absolute paths never taken as input (e.g. the workflow file, the state dir). */
  exclude?: string[];
  /** Lease identity; tests give two watchers in one process their own. */
  owner?: LeaseOwner;
  /** Every time the watcher reads (settle window, start times, ledger and sidecar dates). Default: the system's. */
  clock?: Clock;
  /**
   * Every timer the watcher sets (settle window, `bundle_timeout`, scans, lease heartbeats).
   * Default: Node's. A test hands in a clock and timers it moves on by hand, so a check that
   * depends on elapsed time does not race the machine. (A retry's backoff is an abortable sleep.)
   */
  timers?: Timers;
}

/** Where a watched folder's ledger and leases live inside a state dir. */
export function watchStateDir(stateDir: string, dir: string): string {
  const key = createHash('sha256').update(path.resolve(dir)).digest('hex').slice(0, 12);
  return path.join(stateDir, 'watch', `${path.basename(path.resolve(dir)) || 'root'}-${key}`);
}

/**
 * Watch a folder until `signal` aborts (or, with `once`, until it is idle). Resolves with the
 * session's counts; `interrupted` is true when the signal stopped it.
 */
export async function watchFolder(options: WatchFolderOptions): Promise<WatchSummary> {
  const watcher = new FolderWatcher(options);
  return watcher.run();
}

class FolderWatcher {
  readonly #o: WatchFolderOptions;
  readonly #root: string;
  readonly #targets: PublishTargets;
  readonly #tracker: SettleTracker;
  readonly #detector: FolderDetector;
  readonly #groups: BundleGroups;
  readonly #processor: BundleProcessor;
  readonly #emit: (e: WatchEvent) => void;
  /** Aborts running jobs (and hashing) when the watcher stops. */
  readonly #jobController = new AbortController();
  #state: WatcherState = 'starting';
  #idle: (() => void) | undefined;

  constructor(options: WatchFolderOptions) {
    this.#o = options;
    const root = path.resolve(options.dir);
    this.#root = root;
    const clock = options.clock ?? systemClock;
    const timers = options.timers ?? systemTimers;
    const resolve = (p: string): string => path.resolve(root, p);
    this.#targets = {
      root,
      outputDir: resolve(options.config.outputDir),
      processedDir: resolve(options.config.processedDir),
      failedDir: resolve(options.config.failedDir),
      onSuccess: options.onSuccess,
      clock,
    };
    const base = watchStateDir(options.stateDir, root);
    const isIgnored = createIgnoreMatcher(root, [
      this.#targets.outputDir,
      this.#targets.processedDir,
      this.#targets.failedDir,
      path.resolve(options.stateDir),
      ...(options.exclude ?? []),
    ]);
    const leaseTtlMs = options.leaseTtlMs ?? 30_000;
    // Every running job and every hash in flight listens on this one signal.
    setMaxListeners(0, this.#jobController.signal);
    this.#emit = (event) => {
      try {
        options.onEvent?.(event);
      } catch {
        // A listener's failure must not break the state machine.
      }
    };
    const acceptsWork = (): boolean => !isShuttingDown(this.#state);

    this.#processor = new BundleProcessor({
      root,
      targets: this.#targets,
      ledger: new Ledger(path.join(base, 'items'), clock),
      leases: new LeaseStore({ dir: path.join(base, 'leases'), owner: options.owner ?? currentLeaseOwner(), ttlMs: leaseTtlMs, clock }),
      runBundle: options.runBundle,
      maxAttempts: options.config.maxAttempts,
      concurrency: options.concurrency,
      retryDelayMs: options.retryDelayMs ?? 2000,
      leaseTtlMs,
      signal: this.#jobController.signal,
      clock,
      timers,
      emit: this.#emit,
      host: {
        acceptsWork,
        held: (key) => this.#groups.defer(key),
        ended: (id, key) => {
          this.#groups.jobEnded(id, key);
          this.#checkIdle();
        },
      },
    });
    this.#tracker = new SettleTracker({
      settleMs: options.config.settleMs,
      clock,
      timers,
      listener: {
        changed: (p) => this.#groups.fileChanged(p),
        settled: (p) => this.#groups.fileSettled(p),
        removed: (p) => this.#groups.fileRemoved(p),
        vanished: () => this.#checkIdle(),
      },
    });
    this.#groups = new BundleGroups({
      root,
      config: options.config,
      tracker: this.#tracker,
      targets: this.#targets,
      queue: this.#processor,
      signal: this.#jobController.signal,
      clock,
      timers,
      emit: this.#emit,
      host: { acceptsWork, evaluated: () => this.#checkIdle() },
    });
    this.#detector = new FolderDetector({
      root,
      isIgnored,
      isCandidate: (p) => groupKeyFor(root, p, options.config) !== undefined,
      tracker: this.#tracker,
      poll: options.poll,
      pollIntervalMs: options.pollIntervalMs ?? 1000,
      scanIntervalMs: options.config.scanIntervalMs,
      timers,
      emit: this.#emit,
      host: {
        acceptsFiles: acceptsWork,
        keepsScanning: () => this.#state === 'watching',
        scanned: () => this.#groups.retryDeferred(),
        scanEnded: () => this.#checkIdle(),
      },
    });
  }

  async run(): Promise<WatchSummary> {
    const { signal } = this.#o;
    if (signal.aborted) return { ...this.#summary(), interrupted: true };
    const stopped = new Promise<void>((resolve) => {
      this.#idle = resolve;
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
    let interrupted = false;
    try {
      await mkdir(this.#targets.outputDir, { recursive: true });
      await this.#detector.start();
      const files = await this.#detector.scan();
      this.#emit({ type: 'watch:ready', dir: this.#root, files });
      this.#transition('ready');
      this.#detector.startScans();
      this.#checkIdle();
      await stopped;
    } finally {
      interrupted = await this.#shutdown();
    }
    return { ...this.#summary(), interrupted };
  }

  #transition(transition: WatcherTransition): void {
    this.#state = nextWatcherState(this.#state, transition);
  }

  #summary(): WatchSummary {
    return { ...this.#processor.counts, incomplete: this.#groups.incompleteReported, interrupted: false };
  }

  #checkIdle(): void {
    if (!this.#o.once || this.#state !== 'watching') return;
    if (this.#tracker.unsettledCount > 0 || this.#groups.evaluatingCount > 0 || this.#processor.inFlight > 0 || this.#detector.scanning) return;
    this.#transition('idle');
    void (async () => {
      await this.#groups.drain();
      this.#idle?.();
    })();
  }

  /** Stop intake, close the watchers, end the jobs; resolves with whether the signal stopped it. */
  async #shutdown(): Promise<boolean> {
    const interrupted = this.#o.signal.aborted;
    this.#transition('stop');
    this.#groups.clearIncomplete();
    this.#tracker.close();
    await this.#detector.close();
    if (interrupted) this.#jobController.abort(this.#o.signal.reason);
    await this.#processor.settled();
    await this.#groups.settled();
    // Nothing may keep the process alive after `--once`: clear timers set while we waited.
    this.#groups.clearIncomplete();
    this.#transition('closed');
    return interrupted;
  }
}
