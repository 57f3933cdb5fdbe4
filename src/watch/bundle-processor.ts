/**
 * Processing: a ready bundle is queued (one version of a bundle name at a time, `concurrency`
 * bundles at once), takes its lease, asks the ledger what to do (run, or skip what was done or
 * failed too often), runs the injected job while heartbeating the lease, retries a failure with
 * backoff, and publishes the outcome. Every ledger transition goes through `advanceItem`.
 */
import path from 'node:path';
import pLimit from 'p-limit';
import { InternalError, TalkError } from '../core/errors.js';
import { sleep } from '../core/abort.js';
import { unreachable } from '../core/unreachable.js';
import type { Clock } from '../core/clock.js';
import type { Timers } from '../core/timers.js';
import { backoffDelay } from '../backend/index.js';
import { readBundleInstructions, type IdentifiedBundle } from './bundle-content.js';
import { Ledger, advanceItem, decide, type LedgerItem } from './ledger.js';
import type { Lease, LeaseStore } from './lease.js';
import { outputPathFor, publishSuccess, publishFailure, disposeSources, type PublishTargets } from './publisher.js';
import { bundleErrorFrom, type BundleError, type BundleJob, type BundleResult, type RunBundle } from './bundle-job.js';
import type { EmitWatchEvent } from './watch-event.js';

/** What the processor asks of the watcher, and tells it. */
export interface ProcessorHost {
  /** False once the watcher is shutting down: no job starts, no further attempt either. */
  acceptsWork(): boolean;
  /** Another watcher holds the lease of the bundle queued under group `key`. */
  held(key: string): void;
  /** The job of bundle `id`, queued under group `key`, ended (however it ended). */
  ended(id: string, key: string): void;
}

/** Options of `BundleProcessor`. */
export interface BundleProcessorOptions {
  /** The watched folder (absolute). */
  root: string;
  targets: PublishTargets;
  ledger: Ledger;
  leases: LeaseStore;
  runBundle: RunBundle;
  maxAttempts: number;
  /** Bundles in flight at once. */
  concurrency: number;
  /** First delay before retrying a failed attempt. */
  retryDelayMs: number;
  /** The lease TTL: the heartbeat beats three times within it. */
  leaseTtlMs: number;
  /** Aborts running jobs (and reading instructions) when the watcher stops. */
  signal: AbortSignal;
  /** Start times, durations and the ledger's dates. */
  clock: Clock;
  /** The lease heartbeat. */
  timers: Timers;
  emit: EmitWatchEvent;
  host: ProcessorHost;
}

/** Counts of what the processor did with the bundles it was given. */
export interface ProcessorCounts {
  done: number;
  failed: number;
  skipped: number;
}

/** The job side of one watcher; see the module comment. */
export class BundleProcessor {
  readonly #o: BundleProcessorOptions;
  readonly #limit: ReturnType<typeof pLimit>;
  /** Each active (queued or running) bundle id, and the group key it was queued under. */
  readonly #active = new Map<string, string>();
  readonly #nameChains = new Map<string, Promise<void>>();
  readonly #jobs = new Set<Promise<void>>();
  readonly #counts: ProcessorCounts = { done: 0, failed: 0, skipped: 0 };

  constructor(options: BundleProcessorOptions) {
    this.#o = options;
    this.#limit = pLimit(Math.max(1, options.concurrency));
  }

  /** Bundles queued or running. */
  get inFlight(): number {
    return this.#jobs.size;
  }

  /** What was done so far. */
  get counts(): Readonly<ProcessorCounts> {
    return this.#counts;
  }

  /** The group key the bundle `id` is queued or running under; undefined when it is not. */
  activeKey(id: string): string | undefined {
    return this.#active.get(id);
  }

  /** Resolves when every queued or running job has ended. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#jobs]);
  }

  /** Queue a ready bundle whose id is not active. `readyAt` is when it became ready. */
  enqueue(identified: IdentifiedBundle, readyAt: number): void {
    const { id, bundle } = identified;
    if (this.#active.has(id)) throw new InternalError(`watch: bundle ${id} was queued while already active`);
    this.#active.set(id, bundle.key);
    this.#o.emit({ type: 'bundle:queued', name: bundle.name, id, readyAt });
    // One version of a bundle name at a time: a changed copy dropped while the first renders
    // waits for it (a paid render is never killed) and then runs as its own item.
    const previous = this.#nameChains.get(bundle.name) ?? Promise.resolve();
    const job: Promise<void> = previous
      .then(() => this.#limit(() => this.#process(identified, readyAt)))
      .catch((e: unknown) => this.#o.emit({ type: 'watch:error', message: `${bundle.name}: ${bundleErrorFrom(e).message}` }))
      .finally(() => {
        this.#active.delete(id);
        if (this.#nameChains.get(bundle.name) === job) this.#nameChains.delete(bundle.name);
        this.#jobs.delete(job);
        this.#o.host.ended(id, bundle.key);
      });
    this.#nameChains.set(bundle.name, job);
    this.#jobs.add(job);
  }

  async #process(identified: IdentifiedBundle, readyAt: number): Promise<void> {
    if (!this.#o.host.acceptsWork()) return;
    const { id, bundle } = identified;
    const lease = await this.#o.leases.acquire(id);
    if (!lease) {
      this.#o.host.held(bundle.key);
      this.#o.emit({ type: 'bundle:held', name: bundle.name, id });
      return;
    }
    try {
      await this.#processLeased(identified, lease, readyAt);
    } finally {
      await lease.release();
    }
  }

  async #processLeased(identified: IdentifiedBundle, lease: Lease, readyAt: number): Promise<void> {
    const { root, ledger, targets, maxAttempts, signal, emit } = this.#o;
    const { id, bundle } = identified;
    const existing = await ledger.read(id);
    const decision = decide(existing, maxAttempts);
    switch (decision.action) {
      case 'skip-done': {
        const item = decision.item;
        if (!item.published) {
          await publishSuccess(targets, identified, item);
          await ledger.write({ ...item, published: true }, { durable: false });
        } else {
          await disposeSources(targets, identified);
        }
        this.#counts.skipped += 1;
        const where = item.output === undefined ? 'its earlier output' : path.relative(root, item.output);
        emit({ type: 'bundle:skipped', name: bundle.name, id, reason: `identical content was already rendered as ${where}` });
        return;
      }
      case 'skip-exhausted': {
        this.#counts.skipped += 1;
        emit({
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
      instructions = await readBundleInstructions(bundle, signal);
    } catch (error) {
      readError = bundleErrorFrom(error);
    }

    const now = new Date(this.#o.clock.now()).toISOString();
    let item: LedgerItem = existing ? requeued(existing) : {
      version: 1,
      id,
      name: bundle.name,
      state: 'queued',
      attempts: 0,
      members: identified.members.map((m) => ({ role: m.role, path: path.relative(root, m.path), sha256: m.sha256 })),
      published: false,
      createdAt: now,
      updatedAt: now,
    };
    let resumed = decision.resumed;
    const output = outputPathFor(targets, bundle.name);

    for (;;) {
      if (!this.#o.host.acceptsWork()) return;
      const attempt = item.attempts + 1;
      item = advanceItem(item, 'start');
      await ledger.write(item);
      const startedAt = this.#o.clock.now();
      emit({ type: 'bundle:start', name: bundle.name, id, attempt, resumed, readyAt, startedAt });

      const result: BundleResult | 'interrupted' = readError ? { status: 'failed', error: readError } : await this.#runWithLease(identified, lease, { instructions, output, attempt, resumed });
      resumed = false;
      if (result === 'interrupted') {
        item = advanceItem(item, 'interrupted');
        await ledger.write(item);
        emit({ type: 'bundle:interrupted', name: bundle.name, id });
        return;
      }
      const facts = {
        ...(result.sessionIds === undefined ? {} : { sessionIds: result.sessionIds }),
        ...(result.renderIds === undefined ? {} : { renderIds: result.renderIds }),
        creditsUsed: (item.creditsUsed ?? 0) + (result.creditsUsed ?? 0),
      };
      if (result.status === 'done') {
        item = { ...advanceItem(item, 'succeeded'), ...facts, output: result.output ?? output };
        delete item.error;
        await ledger.write(item);
        await publishSuccess(targets, identified, item);
        item = { ...item, published: true };
        await ledger.write(item, { durable: false });
        this.#counts.done += 1;
        emit({ type: 'bundle:done', name: bundle.name, id, output: item.output, durationMs: this.#o.clock.now() - startedAt });
        return;
      }
      item = { ...advanceItem(item, 'failed'), ...facts, attempts: attempt, error: result.error };
      // Out of credits is not transient: another attempt would only fail the same way (and a
      // real backend might charge for the turn), so the bundle fails now with what to do next.
      const outOfCredits = result.error.code === 'credits';
      const willRetry = attempt < maxAttempts && readError === undefined && !outOfCredits;
      await ledger.write(item);
      if (!willRetry) {
        // After a top-up the same files must run again, so credits failures keep their attempts.
        if (!outOfCredits) item = { ...item, attempts: Math.max(attempt, maxAttempts) };
        await publishFailure(targets, identified, item);
        item = { ...item, published: true };
        await ledger.write(item);
        this.#counts.failed += 1;
        // The last failure is told once its sidecar and `failed/` are in place, as done is.
        emit({ type: 'bundle:failed', name: bundle.name, id, attempt, willRetry, error: result.error });
        return;
      }
      emit({ type: 'bundle:failed', name: bundle.name, id, attempt, willRetry, error: result.error });
      try {
        await sleep(backoffDelay(attempt - 1, { backoffBaseMs: this.#o.retryDelayMs, backoffCapMs: 60_000 }), signal);
      } catch {
        // Stopped while waiting: the item stays `failed` with attempts left; the next start retries.
        return;
      }
      item = advanceItem(item, 'retry');
    }
  }

  /** Run the job while heartbeating the lease; a lost lease aborts the job. */
  async #runWithLease(
    identified: IdentifiedBundle,
    lease: Lease,
    job: { instructions: string[] | undefined; output: string; attempt: number; resumed: boolean },
  ): Promise<BundleResult | 'interrupted'> {
    const controller = new AbortController();
    const signal = AbortSignal.any([this.#o.signal, controller.signal]);
    const stopBeating = this.#o.timers.setInterval(
      () => {
        void lease.heartbeat().then((held) => {
          if (!held) controller.abort(new TalkError('internal', 'the bundle lease was lost to another watcher; it carries on there'));
        });
      },
      Math.max(50, Math.floor(this.#o.leaseTtlMs / 3)),
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
      if (this.#o.signal.aborted || controller.signal.aborted) return 'interrupted';
      return { status: 'failed', error: bundleErrorFrom(error) };
    } finally {
      stopBeating();
    }
  }
}

/**
 * An item read from disk, brought back to `queued` before its next attempt: a failure with
 * attempts left is retried, and an item a stopped or crashed watcher left `running` was
 * interrupted (its runner state resumes it).
 */
function requeued(item: LedgerItem): LedgerItem {
  switch (item.state) {
    case 'failed':
      return advanceItem(item, 'retry');
    case 'running':
      return advanceItem(item, 'interrupted');
    case 'queued':
    case 'seen':
    case 'settling':
    case 'ready':
    case 'done':
      // `queued` is ready to start; the others are never on disk before a start (`done` is
      // skipped by the decision), so `start` reports them as the impossible transition.
      return item;
    default:
      return unreachable(item.state, 'state');
  }
}
