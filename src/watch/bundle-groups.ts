/**
 * Grouping: which tracked files belong to which group (a stem, or a bundle folder), looking at
 * a group again whenever one of its files settles, changes or goes, and what the group amounts
 * to: still settling, incomplete (its `bundle_timeout` timer runs, then a status file says what
 * is missing), or ready (hashed into an identified bundle and handed to the processor once per
 * version). Groups whose lease another watcher held, or whose content is already queued under
 * another name, are looked at again later.
 */
import type { WatchConfig } from './config.js';
import type { SettleTracker } from './settle-tracker.js';
import { assembleGroup, groupKeyFor } from './bundler.js';
import { HashCache, identifyBundle, type IdentifiedBundle } from './bundle-content.js';
import { publishIncomplete, type PublishTargets } from './publisher.js';
import { bundleErrorFrom } from './bundle-job.js';
import type { EmitWatchEvent } from './watch-event.js';
import { unreachable } from '../core/unreachable.js';
import type { Clock } from '../core/clock.js';
import type { CancelTimer, Timers } from '../core/timers.js';

/** The processor as grouping sees it: which ids are in flight, and where ready bundles go. */
export interface BundleQueue {
  /** The group key the bundle `id` is queued or running under; undefined when it is not. */
  activeKey(id: string): string | undefined;
  /** Queue a ready bundle whose id is not active. `readyAt` is when it became ready. */
  enqueue(identified: IdentifiedBundle, readyAt: number): void;
}

/** What grouping asks of the watcher. */
export interface GroupsHost {
  /** False once the watcher is shutting down: no group is looked at, no timer set. */
  acceptsWork(): boolean;
  /** An evaluation ended (the idle check of `--once`). */
  evaluated(): void;
}

/** Options of `BundleGroups`. */
export interface BundleGroupsOptions {
  root: string;
  config: WatchConfig;
  tracker: SettleTracker;
  targets: PublishTargets;
  queue: BundleQueue;
  /** Aborts hashing when the watcher stops. */
  signal: AbortSignal;
  /** When a bundle became ready. */
  clock: Clock;
  /** The `bundle_timeout` timers. */
  timers: Timers;
  emit: EmitWatchEvent;
  host: GroupsHost;
}

/** A group that settled without being a complete bundle, and its `bundle_timeout` timer. */
interface IncompleteGroup {
  timer: CancelTimer | undefined;
  missing: string[];
  problems: string[];
}

/** The groups of one watched folder; see the module comment. */
export class BundleGroups {
  readonly #o: BundleGroupsOptions;
  readonly #cache = new HashCache();
  readonly #groupFiles = new Map<string, Set<string>>();
  readonly #fileGroup = new Map<string, string>();
  readonly #evaluating = new Map<string, Promise<void>>();
  readonly #dirty = new Set<string>();
  /** Fingerprint (member paths + stamps) of the version of each group already handled. */
  readonly #decided = new Map<string, string>();
  /** Groups whose lease another watcher held: looked at again on each scan. */
  readonly #deferred = new Set<string>();
  readonly #incomplete = new Map<string, IncompleteGroup>();
  /** Groups with the same content as an active bundle id, looked at again when it ends. */
  readonly #waitingOnId = new Map<string, Set<string>>();
  #reported = 0;

  constructor(options: BundleGroupsOptions) {
    this.#o = options;
  }

  /** Evaluations in flight (one per group at most). */
  get evaluatingCount(): number {
    return this.#evaluating.size;
  }

  /** Status files written for incomplete bundles so far. */
  get incompleteReported(): number {
    return this.#reported;
  }

  /** The tracker saw a new file, or a settled one changed: it belongs to its group. */
  fileChanged(absPath: string): void {
    const key = groupKeyFor(this.#o.root, absPath, this.#o.config);
    if (key === undefined) return;
    this.#fileGroup.set(absPath, key);
    let set = this.#groupFiles.get(key);
    if (!set) {
      set = new Set();
      this.#groupFiles.set(key, set);
    }
    set.add(absPath);
  }

  /** A file settled: look at its group. */
  fileSettled(absPath: string): void {
    this.evaluate(this.#fileGroup.get(absPath));
  }

  /** A file is gone: it leaves its group, which is looked at again. */
  fileRemoved(absPath: string): void {
    const key = this.#fileGroup.get(absPath);
    this.#fileGroup.delete(absPath);
    this.#cache.forget(absPath);
    if (key === undefined) return;
    const set = this.#groupFiles.get(key);
    set?.delete(absPath);
    if (set && set.size === 0) this.#groupFiles.delete(key);
    this.evaluate(key);
  }

  /** Another watcher holds the lease of the bundle queued under `key`: try it again on a scan. */
  defer(key: string): void {
    this.#deferred.add(key);
  }

  /** A scan ran: look again at groups left to other watchers (their lease may be free now). */
  retryDeferred(): void {
    for (const key of [...this.#deferred]) {
      this.#deferred.delete(key);
      this.#decided.delete(key);
      this.evaluate(key);
    }
  }

  /** The job of bundle `id`, queued under `key`, ended: look at what waited for it. */
  jobEnded(id: string, key: string): void {
    const waiting = this.#waitingOnId.get(id);
    this.#waitingOnId.delete(id);
    for (const other of waiting ?? []) this.evaluate(other);
    // A copy that arrived while this one ran (same name) is looked at now.
    this.evaluate(key);
  }

  /** Re-look at a group; runs one evaluation per group at a time, coalescing requests. */
  evaluate(key: string | undefined): void {
    if (key === undefined) return;
    if (!this.#o.host.acceptsWork()) return;
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
        if (this.#o.host.acceptsWork()) this.#o.emit({ type: 'watch:error', message: `${key}: ${bundleErrorFrom(e).message}` });
      })
      .finally(() => {
        this.#evaluating.delete(key);
        this.#o.host.evaluated();
      });
    this.#evaluating.set(key, work);
  }

  /**
   * The end of `--once`: write the status file of every group still incomplete. A finished
   * bundle's sources are moved one by one, and the file events saying so may not have arrived
   * yet: its group then looks like it lacks a partner. So the members of every incomplete group
   * are stat'ed first, and a published bundle is never reported as incomplete (its status file
   * would overwrite the sidecar).
   */
  async drain(): Promise<void> {
    for (const key of [...this.#incomplete.keys()]) {
      await Promise.all([...(this.#groupFiles.get(key) ?? [])].map((p) => this.#o.tracker.recheck(p)));
    }
    await this.settled();
    for (const key of [...this.#incomplete.keys()]) await this.#reportIncomplete(key);
  }

  /** Resolves when every evaluation in flight has ended. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#evaluating.values()]);
  }

  /** Stop every `bundle_timeout` timer (shutdown; nothing may keep the process alive). */
  clearIncomplete(): void {
    for (const key of [...this.#incomplete.keys()]) this.#clearIncomplete(key);
  }

  #fingerprint(paths: readonly string[]): string {
    return [...paths]
      .sort()
      .map((p) => {
        const s = this.#o.tracker.stampOf(p);
        return `${p}:${s?.size}:${s?.mtimeMs}:${s?.ino}`;
      })
      .join('|');
  }

  async #evaluateOnce(key: string): Promise<void> {
    const { root, config, tracker } = this.#o;
    const paths = [...(this.#groupFiles.get(key) ?? [])];
    if (paths.length === 0) {
      this.#clearIncomplete(key);
      this.#decided.delete(key);
      return;
    }
    const status = assembleGroup(
      root,
      key,
      paths.map((p) => ({ absPath: p, settled: tracker.isSettled(p) })),
      config,
    );
    switch (status.kind) {
      case 'settling':
        return;
      case 'incomplete': {
        // No bundle_timeout timer once stopping: shutdown has cleared them and would not again.
        if (!this.#o.host.acceptsWork()) return;
        const existing = this.#incomplete.get(key);
        if (existing) {
          existing.missing = status.missing;
          existing.problems = status.problems;
          return;
        }
        const entry: IncompleteGroup = { timer: undefined, missing: status.missing, problems: status.problems };
        entry.timer = this.#o.timers.setTimeout(() => {
          entry.timer = undefined;
          void this.#reportIncomplete(key);
        }, config.bundleTimeoutMs);
        this.#incomplete.set(key, entry);
        return;
      }
      case 'ready': {
        this.#clearIncomplete(key);
        const fingerprint = this.#fingerprint(paths);
        if (this.#decided.get(key) === fingerprint) return;
        const readyAt = this.#o.clock.now();
        const identified = await identifyBundle(status.bundle, this.#cache, this.#o.signal);
        if (!identified) {
          // A member changed or vanished while being read. Make the tracker look now rather than
          // wait for an event that may never come (polling, a missed event): otherwise `--once`
          // could see nothing unsettled and end without this bundle.
          const unchanged = await Promise.all(paths.map((p) => tracker.recheck(p)));
          if (!unchanged.every(Boolean)) this.#dirty.add(key);
          return;
        }
        this.#hand(key, fingerprint, identified, readyAt);
        return;
      }
      default:
        return unreachable(status, 'status');
    }
  }

  /** Hand a ready version of a group to the processor, unless its content is already in flight. */
  #hand(key: string, fingerprint: string, identified: IdentifiedBundle, readyAt: number): void {
    const activeKey = this.#o.queue.activeKey(identified.id);
    if (activeKey === undefined) {
      this.#decided.set(key, fingerprint);
      this.#o.queue.enqueue(identified, readyAt);
      return;
    }
    if (activeKey === key) {
      // This very group is queued or running: when it ends it is looked at again.
      this.#decided.set(key, fingerprint);
      return;
    }
    // Identical content under another name, while the first copy is queued or running: it
    // is looked at again when that one ends (then the ledger says "done" and it is skipped,
    // naming the earlier output). Until then it is not decided, and keeps `--once` waiting.
    this.#decided.delete(key);
    const waiting = this.#waitingOnId.get(identified.id) ?? new Set<string>();
    waiting.add(key);
    this.#waitingOnId.set(identified.id, waiting);
  }

  #clearIncomplete(key: string): void {
    const entry = this.#incomplete.get(key);
    entry?.timer?.();
    this.#incomplete.delete(key);
  }

  async #reportIncomplete(key: string): Promise<void> {
    const entry = this.#incomplete.get(key);
    if (!entry) return;
    const sources = [...(this.#groupFiles.get(key) ?? [])];
    try {
      await publishIncomplete(this.#o.targets, key, entry.missing, entry.problems, sources);
      this.#reported += 1;
      this.#o.emit({ type: 'bundle:incomplete', name: key, missing: entry.missing, problems: entry.problems });
    } catch (error) {
      this.#o.emit({ type: 'watch:error', message: `${key}: could not write its status file: ${bundleErrorFrom(error).message}` });
    }
  }
}
