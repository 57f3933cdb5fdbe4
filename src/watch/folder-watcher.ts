/**
 * The watch folder: detection (chokidar events + reconciliation scans, `--poll` for network
 * shares), settle tracking, bundling, the exactly-once ledger with leases, and publishing. The
 * job itself is injected (`runBundle`), so this module never knows about runners or backends.
 *
 * The watcher's own lifecycle:
 *
 *     starting ──(chokidar ready + first scan)──▶ watching ──(signal)──▶ stopping ──▶ stopped
 *                                                   │  ▲
 *                                   (--once, idle)  │  └─ events / scans / settles / jobs
 *                                                   ▼
 *                                                draining ──▶ stopped
 *
 * `stopping` stops intake (no new job starts), aborts running jobs through their signal (the
 * runner saves its state; a render keeps going at the backend and is re-attached on the next
 * start), waits for them, and leaves their ledger items resumable. `draining` (`--once`) writes
 * the status files of incomplete bundles and ends.
 */
import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { watch as fsWatch, type FSWatcher as NodeFsWatcher } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { watch as watchFiles, type FSWatcher } from 'chokidar';
import pLimit from 'p-limit';
import { TalkError, environmentErrorFrom } from '../core/errors.js';
import { sleep } from '../core/abort.js';
import type { WatchConfig } from './config.js';
import { createIgnoreMatcher } from './ignore.js';
import { SettleTracker } from './settle-tracker.js';
import { assembleGroup, groupKeyFor } from './bundler.js';
import { HashCache, identifyBundle, readBundleInstructions, type IdentifiedBundle } from './bundle-content.js';
import { Ledger, decide, nextItemState, type LedgerItem } from './ledger.js';
import { LeaseStore, currentLeaseOwner, type Lease, type LeaseOwner } from './lease.js';
import { outputPathFor, publishIncomplete, publishSuccess, publishFailure, disposeSources, type OnSuccess, type PublishTargets } from './publisher.js';
import { unreachable } from '../core/unreachable.js';
import { backoffDelay } from '../backend/index.js';

/** The watcher's lifecycle; see the module diagram. */
export type WatcherState = 'starting' | 'watching' | 'draining' | 'stopping' | 'stopped';

/** One job for one bundle, handed to the injected runner. */
export interface BundleJob {
  /** Bundle id (content hash). Stable across restarts: key the job's run state by it. */
  id: string;
  /** Bundle name (stem or folder); also the job name users see. */
  name: string;
  /** Role → absolute path. */
  files: Record<string, string>;
  /** The bundle's own instructions, replacing the workflow's; undefined keeps the workflow's. */
  instructions?: string[];
  /** Absolute path the render must be written to (atomically). */
  output: string;
  /** 1-based attempt of this content. */
  attempt: number;
  /** True when an earlier watcher was running this bundle when it stopped or crashed. */
  resumed: boolean;
}

/** What a job reports. A thrown error counts as `failed` (or as interrupted when aborted). */
export type BundleResult =
  | { status: 'done'; output?: string; sessionIds?: string[]; renderIds?: string[]; creditsUsed?: number }
  | { status: 'failed'; error: BundleError; sessionIds?: string[]; renderIds?: string[]; creditsUsed?: number };

/** Why a job failed; `hint` is the next thing the user can do (it lands in `error.txt`). */
export interface BundleError {
  code: string;
  message: string;
  hint?: string;
}

/** Runs one bundle as a job. Must honour `signal` (stop, leaving state resumable). */
export type RunBundle = (job: BundleJob, signal: AbortSignal) => Promise<BundleResult>;

/** What the watcher reports; the command turns these into notices, tests and benches wait on them. */
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
}

/** Where a watched folder's ledger and leases live inside a state dir. */
export function watchStateDir(stateDir: string, dir: string): string {
  const key = createHash('sha256').update(path.resolve(dir)).digest('hex').slice(0, 12);
  return path.join(stateDir, 'watch', `${path.basename(path.resolve(dir)) || 'root'}-${key}`);
}

function errorInfo(error: unknown): BundleError {
  if (error instanceof TalkError) return { code: error.code, message: error.message, ...(error.hint === undefined ? {} : { hint: error.hint }) };
  const environment = environmentErrorFrom(error);
  if (environment !== undefined) return { code: environment.code, message: environment.message, ...(environment.hint === undefined ? {} : { hint: environment.hint }) };
  if (error instanceof Error) return { code: 'internal', message: error.message };
  return { code: 'internal', message: String(error) };
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
  readonly #isIgnored: (p: string) => boolean;
  readonly #tracker: SettleTracker;
  readonly #ledger: Ledger;
  readonly #leases: LeaseStore;
  readonly #cache = new HashCache();
  readonly #limit: ReturnType<typeof pLimit>;
  readonly #emit: (e: WatchEvent) => void;
  readonly #leaseTtlMs: number;

  #state: WatcherState = 'starting';
  readonly #groupFiles = new Map<string, Set<string>>();
  readonly #fileGroup = new Map<string, string>();
  readonly #evaluating = new Map<string, Promise<void>>();
  readonly #dirty = new Set<string>();
  /** Fingerprint (member paths + stamps) of the version of each group already handled. */
  readonly #decided = new Map<string, string>();
  /** Groups whose lease another watcher held: looked at again on each scan. */
  readonly #deferred = new Set<string>();
  readonly #incomplete = new Map<string, { timer: NodeJS.Timeout | undefined; missing: string[]; problems: string[] }>();
  readonly #activeIds = new Set<string>();
  /** The group key each active bundle id was queued under. */
  readonly #activeNames = new Map<string, string>();
  /** Groups with the same content as an active bundle id, looked at again when it ends. */
  readonly #waitingOnId = new Map<string, Set<string>>();
  readonly #nameChains = new Map<string, Promise<void>>();
  readonly #jobs = new Set<Promise<void>>();
  /** Aborts running jobs when the watcher stops. */
  readonly #jobController = new AbortController();
  #chokidar: FSWatcher | undefined;
  #topLevelNames: NodeFsWatcher | undefined;
  #scanTimer: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
  #idle: (() => void) | undefined;
  readonly #summary: WatchSummary = { done: 0, failed: 0, skipped: 0, incomplete: 0, interrupted: false };

  constructor(options: WatchFolderOptions) {
    this.#o = options;
    this.#root = path.resolve(options.dir);
    const resolve = (p: string): string => path.resolve(this.#root, p);
    this.#targets = {
      root: this.#root,
      outputDir: resolve(options.config.outputDir),
      processedDir: resolve(options.config.processedDir),
      failedDir: resolve(options.config.failedDir),
      onSuccess: options.onSuccess,
    };
    const base = watchStateDir(options.stateDir, this.#root);
    this.#isIgnored = createIgnoreMatcher(this.#root, [
      this.#targets.outputDir,
      this.#targets.processedDir,
      this.#targets.failedDir,
      path.resolve(options.stateDir),
      ...(options.exclude ?? []),
    ]);
    this.#ledger = new Ledger(path.join(base, 'items'));
    this.#leaseTtlMs = options.leaseTtlMs ?? 30_000;
    this.#leases = new LeaseStore({ dir: path.join(base, 'leases'), owner: options.owner ?? currentLeaseOwner(), ttlMs: this.#leaseTtlMs });
    this.#limit = pLimit(Math.max(1, options.concurrency));
    // Every running job and every hash in flight listens on this one signal.
    setMaxListeners(0, this.#jobController.signal);
    this.#emit = (event) => {
      try {
        options.onEvent?.(event);
      } catch {
        // A listener's failure must not break the state machine.
      }
    };
    this.#tracker = new SettleTracker({
      settleMs: options.config.settleMs,
      listener: {
        changed: (p) => this.#onChanged(p),
        settled: (p) => this.#evaluate(this.#fileGroup.get(p)),
        removed: (p) => this.#onRemoved(p),
        vanished: () => this.#checkIdle(),
      },
    });
  }

  async run(): Promise<WatchSummary> {
    const { signal } = this.#o;
    if (signal.aborted) return { ...this.#summary, interrupted: true };
    const stopped = new Promise<void>((resolve) => {
      this.#idle = resolve;
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
    try {
      await mkdir(this.#targets.outputDir, { recursive: true });
      await this.#startWatching();
      const files = await this.#scan();
      this.#emit({ type: 'watch:ready', dir: this.#root, files });
      if (this.#state === 'starting') this.#state = 'watching';
      this.#scheduleScan();
      this.#checkIdle();
      await stopped;
    } finally {
      await this.#shutdown();
    }
    return { ...this.#summary };
  }

  async #startWatching(): Promise<void> {
    // depth 1: stem bundles live at the top, folder and manifest bundles one level down.
    const watcher = watchFiles(this.#root, {
      ignored: (p: string) => this.#isIgnored(p),
      ignoreInitial: true,
      depth: 1,
      usePolling: this.#o.poll,
      interval: this.#o.pollIntervalMs ?? 1000,
      binaryInterval: this.#o.pollIntervalMs ?? 1000,
    });
    this.#chokidar = watcher;
    watcher.on('add', (p) => this.#observe(p));
    watcher.on('change', (p) => this.#observe(p));
    watcher.on('unlink', (p) => this.#tracker.observe(p));
    watcher.on('unlinkDir', () => void this.#scan().catch((e: unknown) => this.#emit({ type: 'watch:error', message: errorInfo(e).message })));
    watcher.on('error', (error) => this.#emit({ type: 'watch:error', message: errorInfo(error).message }));
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    if (!this.#o.poll) this.#watchTopLevelNames();
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
    try {
      const names = fsWatch(this.#root, { persistent: false }, (_event, name) => {
        if (typeof name === 'string' && name.length > 0) this.#observe(path.join(this.#root, name));
      });
      // Losing the shortcut costs latency only: chokidar and the scans still see every file.
      names.on('error', () => names.close());
      this.#topLevelNames = names;
    } catch {
      // Not available here (or out of watches): chokidar alone.
    }
  }

  #observe(absPath: string): void {
    if (this.#state === 'stopping' || this.#state === 'stopped') return;
    if (this.#isIgnored(absPath)) return;
    const key = groupKeyFor(this.#root, absPath, this.#o.config);
    if (key === undefined) return;
    this.#tracker.observe(absPath);
  }

  #onChanged(absPath: string): void {
    const key = groupKeyFor(this.#root, absPath, this.#o.config);
    if (key === undefined) return;
    this.#fileGroup.set(absPath, key);
    let set = this.#groupFiles.get(key);
    if (!set) {
      set = new Set();
      this.#groupFiles.set(key, set);
    }
    set.add(absPath);
  }

  #onRemoved(absPath: string): void {
    const key = this.#fileGroup.get(absPath);
    this.#fileGroup.delete(absPath);
    this.#cache.forget(absPath);
    if (key === undefined) return;
    const set = this.#groupFiles.get(key);
    set?.delete(absPath);
    if (set && set.size === 0) this.#groupFiles.delete(key);
    this.#evaluate(key);
  }

  /** Reconciliation: find files events missed, and files that vanished without an event. */
  async #scan(): Promise<number> {
    if (this.#scanning) {
      await this.#scanning;
      return this.#tracker.paths().length;
    }
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
          if (this.#isIgnored(abs)) continue;
          if (entry.isDirectory()) {
            if (depth < 1) await walk(abs, depth + 1);
          } else if (entry.isFile()) {
            seen.add(abs);
            this.#observe(abs);
          }
        }
      };
      await walk(this.#root, 0);
      for (const p of this.#tracker.paths()) if (!seen.has(p)) this.#tracker.observe(p);
      for (const key of [...this.#deferred]) {
        this.#deferred.delete(key);
        this.#decided.delete(key);
        this.#evaluate(key);
      }
      found = seen.size;
    };
    this.#scanning = run().finally(() => {
      this.#scanning = undefined;
      // A job or evaluation that ended while this scan ran saw `#scanning` set and left the
      // idle check to us: without it `--once` waits forever (e.g. the scan a moved bundle
      // folder's `unlinkDir` starts, after the last job already finished).
      this.#checkIdle();
    });
    await this.#scanning;
    return found;
  }

  #scheduleScan(): void {
    if (this.#state !== 'watching') return;
    this.#scanTimer = setTimeout(() => {
      void this.#scan()
        .catch((e: unknown) => this.#emit({ type: 'watch:error', message: errorInfo(e).message }))
        .finally(() => this.#scheduleScan());
    }, this.#o.config.scanIntervalMs);
  }

  /** Re-look at a group; runs one evaluation per group at a time, coalescing requests. */
  #evaluate(key: string | undefined): void {
    if (key === undefined) return;
    if (this.#state === 'stopping' || this.#state === 'stopped') return;
    if (this.#evaluating.has(key)) {
      this.#dirty.add(key);
      return;
    }
    const work = (async () => {
      do {
        this.#dirty.delete(key);
        await this.#evaluateOnce(key);
      } while (this.#dirty.has(key));
    })()
      .catch((e: unknown) => {
        if (this.#state !== 'stopping') this.#emit({ type: 'watch:error', message: `${key}: ${errorInfo(e).message}` });
      })
      .finally(() => {
        this.#evaluating.delete(key);
        this.#checkIdle();
      });
    this.#evaluating.set(key, work);
  }

  #fingerprint(paths: readonly string[]): string {
    return [...paths]
      .sort()
      .map((p) => {
        const s = this.#tracker.stampOf(p);
        return `${p}:${s?.size}:${s?.mtimeMs}:${s?.ino}`;
      })
      .join('|');
  }

  async #evaluateOnce(key: string): Promise<void> {
    const paths = [...(this.#groupFiles.get(key) ?? [])];
    if (paths.length === 0) {
      this.#clearIncomplete(key);
      this.#decided.delete(key);
      return;
    }
    const status = assembleGroup(
      this.#root,
      key,
      paths.map((p) => ({ absPath: p, settled: this.#tracker.isSettled(p) })),
      this.#o.config,
    );
    switch (status.kind) {
      case 'settling':
        return;
      case 'incomplete': {
        // No bundle_timeout timer once stopping: shutdown has cleared them and would not again.
        if (this.#state === 'stopping' || this.#state === 'stopped') return;
        const existing = this.#incomplete.get(key);
        if (existing) {
          existing.missing = status.missing;
          existing.problems = status.problems;
          return;
        }
        const entry: { timer: NodeJS.Timeout | undefined; missing: string[]; problems: string[] } = {
          timer: undefined,
          missing: status.missing,
          problems: status.problems,
        };
        entry.timer = setTimeout(() => {
          entry.timer = undefined;
          void this.#reportIncomplete(key);
        }, this.#o.config.bundleTimeoutMs);
        this.#incomplete.set(key, entry);
        return;
      }
      case 'ready': {
        this.#clearIncomplete(key);
        const fingerprint = this.#fingerprint(paths);
        if (this.#decided.get(key) === fingerprint) return;
        const readyAt = Date.now();
        const identified = await identifyBundle(status.bundle, this.#cache, this.#jobController.signal);
        if (!identified) {
          // A member changed or vanished while being read. Make the tracker look now rather than
          // wait for an event that may never come (polling, a missed event): otherwise `--once`
          // could see nothing unsettled and end without this bundle.
          const unchanged = await Promise.all(paths.map((p) => this.#tracker.recheck(p)));
          if (!unchanged.every(Boolean)) this.#dirty.add(key);
          return;
        }
        this.#decided.set(key, fingerprint);
        this.#enqueue(identified, readyAt);
        return;
      }
      default:
        return unreachable(status, 'status');
    }
  }

  #clearIncomplete(key: string): void {
    const entry = this.#incomplete.get(key);
    if (entry?.timer) clearTimeout(entry.timer);
    this.#incomplete.delete(key);
  }

  async #reportIncomplete(key: string): Promise<void> {
    const entry = this.#incomplete.get(key);
    if (!entry) return;
    const sources = [...(this.#groupFiles.get(key) ?? [])];
    try {
      await publishIncomplete(this.#targets, key, entry.missing, entry.problems, sources);
      this.#summary.incomplete += 1;
      this.#emit({ type: 'bundle:incomplete', name: key, missing: entry.missing, problems: entry.problems });
    } catch (error) {
      this.#emit({ type: 'watch:error', message: `${key}: could not write its status file: ${errorInfo(error).message}` });
    }
  }

  #enqueue(identified: IdentifiedBundle, readyAt: number): void {
    const { id, bundle } = identified;
    if (this.#activeIds.has(id)) {
      // Identical content under another name, while the first copy is queued or running: it
      // is looked at again when that one ends (then the ledger says "done" and it is skipped,
      // naming the earlier output). Until then it is not decided, and keeps `--once` waiting.
      if (this.#activeNames.get(id) !== bundle.key) {
        this.#decided.delete(bundle.key);
        const waiting = this.#waitingOnId.get(id) ?? new Set<string>();
        waiting.add(bundle.key);
        this.#waitingOnId.set(id, waiting);
      }
      return;
    }
    this.#activeNames.set(id, bundle.key);
    this.#activeIds.add(id);
    this.#emit({ type: 'bundle:queued', name: bundle.name, id, readyAt });
    // One version of a bundle name at a time: a changed copy dropped while the first renders
    // waits for it (a paid render is never killed) and then runs as its own item.
    const previous = this.#nameChains.get(bundle.name) ?? Promise.resolve();
    const job: Promise<void> = previous
      .then(() => this.#limit(() => this.#process(identified, readyAt)))
      .catch((e: unknown) => this.#emit({ type: 'watch:error', message: `${bundle.name}: ${errorInfo(e).message}` }))
      .finally(() => {
        this.#activeIds.delete(id);
        this.#activeNames.delete(id);
        const waiting = this.#waitingOnId.get(id);
        this.#waitingOnId.delete(id);
        for (const key of waiting ?? []) this.#evaluate(key);
        if (this.#nameChains.get(bundle.name) === job) this.#nameChains.delete(bundle.name);
        this.#jobs.delete(job);
        // A copy that arrived while this one ran (same name) is looked at now.
        this.#evaluate(bundle.key);
        this.#checkIdle();
      });
    this.#nameChains.set(bundle.name, job);
    this.#jobs.add(job);
  }

  async #process(identified: IdentifiedBundle, readyAt: number): Promise<void> {
    if (this.#state === 'stopping' || this.#state === 'stopped') return;
    const { id, bundle } = identified;
    const lease = await this.#leases.acquire(id);
    if (!lease) {
      this.#deferred.add(bundle.key);
      this.#emit({ type: 'bundle:held', name: bundle.name, id });
      return;
    }
    try {
      await this.#processLeased(identified, lease, readyAt);
    } finally {
      await lease.release();
    }
  }

  async #processLeased(identified: IdentifiedBundle, lease: Lease, readyAt: number): Promise<void> {
    const { id, bundle } = identified;
    const existing = await this.#ledger.read(id);
    const decision = decide(existing, this.#o.config.maxAttempts);
    switch (decision.action) {
      case 'skip-done': {
        const item = decision.item;
        if (!item.published) {
          await publishSuccess(this.#targets, identified, item);
          await this.#ledger.write({ ...item, published: true }, { durable: false });
        } else {
          await disposeSources(this.#targets, identified);
        }
        this.#summary.skipped += 1;
        const where = item.output === undefined ? 'its earlier output' : path.relative(this.#root, item.output);
        this.#emit({ type: 'bundle:skipped', name: bundle.name, id, reason: `identical content was already rendered as ${where}` });
        return;
      }
      case 'skip-exhausted': {
        this.#summary.skipped += 1;
        this.#emit({
          type: 'bundle:skipped',
          name: bundle.name,
          id,
          reason: `identical content failed ${decision.item.attempts} times (${decision.item.error?.message ?? 'no message'}); change the files to try again`,
        });
        return;
      }
      case 'run':
        break;
      default:
        return unreachable(decision, 'decision');
    }

    let instructions: string[] | undefined;
    let readError: BundleError | undefined;
    try {
      instructions = await readBundleInstructions(bundle, this.#jobController.signal);
    } catch (error) {
      readError = errorInfo(error);
    }

    const now = new Date().toISOString();
    let item: LedgerItem = existing ?? {
      version: 1,
      id,
      name: bundle.name,
      state: 'queued',
      attempts: 0,
      members: identified.members.map((m) => ({ role: m.role, path: path.relative(this.#root, m.path), sha256: m.sha256 })),
      published: false,
      createdAt: now,
      updatedAt: now,
    };
    if (item.state === 'failed') item = { ...item, state: nextItemState('failed', 'retry') };
    let resumed = decision.resumed;
    const output = outputPathFor(this.#targets, bundle.name);

    for (;;) {
      if (this.#state === 'stopping' || this.#state === 'stopped') return;
      const attempt = item.attempts + 1;
      item = { ...item, state: item.state === 'running' ? 'running' : nextItemState(item.state, 'start') };
      await this.#ledger.write(item);
      const startedAt = Date.now();
      this.#emit({ type: 'bundle:start', name: bundle.name, id, attempt, resumed, readyAt, startedAt });

      const result: BundleResult | 'interrupted' = readError ? { status: 'failed', error: readError } : await this.#runWithLease(identified, lease, { instructions, output, attempt, resumed });
      resumed = false;
      if (result === 'interrupted') {
        item = { ...item, state: nextItemState('running', 'interrupted') };
        await this.#ledger.write(item);
        this.#emit({ type: 'bundle:interrupted', name: bundle.name, id });
        return;
      }
      const facts = {
        ...(result.sessionIds === undefined ? {} : { sessionIds: result.sessionIds }),
        ...(result.renderIds === undefined ? {} : { renderIds: result.renderIds }),
        creditsUsed: (item.creditsUsed ?? 0) + (result.creditsUsed ?? 0),
      };
      if (result.status === 'done') {
        item = { ...item, ...facts, state: nextItemState('running', 'succeeded'), output: result.output ?? output };
        delete item.error;
        await this.#ledger.write(item);
        await publishSuccess(this.#targets, identified, item);
        item = { ...item, published: true };
        await this.#ledger.write(item, { durable: false });
        this.#summary.done += 1;
        this.#emit({ type: 'bundle:done', name: bundle.name, id, output: item.output, durationMs: Date.now() - startedAt });
        return;
      }
      item = { ...item, ...facts, state: nextItemState('running', 'failed'), attempts: attempt, error: result.error };
      // Out of credits is not transient: another attempt would only fail the same way (and a
      // real backend might charge for the turn), so the bundle fails now with what to do next.
      const outOfCredits = result.error.code === 'credits';
      const willRetry = attempt < this.#o.config.maxAttempts && readError === undefined && !outOfCredits;
      await this.#ledger.write(item);
      if (!willRetry) {
        // After a top-up the same files must run again, so credits failures keep their attempts.
        if (!outOfCredits) item = { ...item, attempts: Math.max(attempt, this.#o.config.maxAttempts) };
        await publishFailure(this.#targets, identified, item);
        item = { ...item, published: true };
        await this.#ledger.write(item);
        this.#summary.failed += 1;
        // The last failure is told once its sidecar and `failed/` are in place, as done is.
        this.#emit({ type: 'bundle:failed', name: bundle.name, id, attempt, willRetry, error: result.error });
        return;
      }
      this.#emit({ type: 'bundle:failed', name: bundle.name, id, attempt, willRetry, error: result.error });
      try {
        await sleep(backoffDelay(attempt - 1, { backoffBaseMs: this.#o.retryDelayMs ?? 2000, backoffCapMs: 60_000 }), this.#jobController.signal);
      } catch {
        // Stopped while waiting: the item stays `failed` with attempts left; the next start retries.
        return;
      }
      item = { ...item, state: nextItemState('failed', 'retry') };
    }
  }

  /** Run the job while heartbeating the lease; a lost lease aborts the job. */
  async #runWithLease(
    identified: IdentifiedBundle,
    lease: Lease,
    job: { instructions: string[] | undefined; output: string; attempt: number; resumed: boolean },
  ): Promise<BundleResult | 'interrupted'> {
    const controller = new AbortController();
    const signal = AbortSignal.any([this.#jobController.signal, controller.signal]);
    const beat = setInterval(
      () => {
        void lease.heartbeat().then((held) => {
          if (!held) controller.abort(new TalkError('internal', 'the bundle lease was lost to another watcher; it carries on there'));
        });
      },
      Math.max(50, Math.floor(this.#leaseTtlMs / 3)),
    );
    try {
      const bundleJob: BundleJob = {
        id: identified.id,
        name: identified.bundle.name,
        files: identified.bundle.files,
        output: job.output,
        attempt: job.attempt,
        resumed: job.resumed,
        ...(job.instructions === undefined ? {} : { instructions: job.instructions }),
      };
      return await this.#o.runBundle(bundleJob, signal);
    } catch (error) {
      if (this.#jobController.signal.aborted || controller.signal.aborted) return 'interrupted';
      return { status: 'failed', error: errorInfo(error) };
    } finally {
      clearInterval(beat);
    }
  }

  #checkIdle(): void {
    if (!this.#o.once || this.#state !== 'watching') return;
    if (this.#tracker.unsettledCount > 0 || this.#evaluating.size > 0 || this.#jobs.size > 0 || this.#scanning) return;
    this.#state = 'draining';
    void (async () => {
      // A finished bundle's sources are moved one by one, and the file events saying so may
      // not have arrived yet: its group then looks like it lacks a partner. Stat the members
      // of every incomplete group now, so a published bundle is never reported as incomplete
      // (its status file would overwrite the sidecar).
      for (const key of [...this.#incomplete.keys()]) {
        await Promise.all([...(this.#groupFiles.get(key) ?? [])].map((p) => this.#tracker.recheck(p)));
      }
      await Promise.allSettled([...this.#evaluating.values()]);
      for (const key of [...this.#incomplete.keys()]) await this.#reportIncomplete(key);
      this.#idle?.();
    })();
  }

  async #shutdown(): Promise<void> {
    const interrupted = this.#o.signal.aborted;
    this.#state = 'stopping';
    if (this.#scanTimer) clearTimeout(this.#scanTimer);
    for (const key of [...this.#incomplete.keys()]) this.#clearIncomplete(key);
    this.#tracker.close();
    this.#topLevelNames?.close();
    await this.#chokidar?.close();
    if (interrupted) this.#jobController.abort(this.#o.signal.reason);
    await Promise.allSettled([...this.#jobs]);
    await Promise.allSettled([...this.#evaluating.values()]);
    // Nothing may keep the process alive after `--once`: clear timers set while we waited.
    for (const key of [...this.#incomplete.keys()]) this.#clearIncomplete(key);
    this.#summary.interrupted = interrupted;
    this.#state = 'stopped';
  }
}
