/**
 * The exactly-once ledger: one small JSON file per bundle id in the state dir, written
 * atomically (temp file, fsync, rename) and only by the watcher holding that bundle's lease.
 * One file per item, rather than one file for all, so two watchers never contend for a lock
 * on unrelated bundles and a crash can only ever lose the transition being written.
 *
 * Item lifecycle (`seen`, `settling` and `ready` live in memory: the id is only known once the
 * settled files are hashed; from `queued` on the state is on disk):
 *
 *     seen ──▶ settling ──▶ ready ──▶ queued ──▶ running ──▶ done
 *                 ▲            │         ▲          │
 *                 └─ changed ──┘         │          ├──▶ failed ──(attempts < max)──┐
 *                                        │          │                              │
 *                                        └──────────┴── interrupted / retry ◀──────┘
 *
 * `done` is final for that content: the same content dropped again is skipped. `failed` with
 * `attempts >= max` is final too until the content changes (a new id).
 */
import { writeJsonAtomic } from '../core/atomic-write.js';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { InternalError } from '../core/errors.js';
import { unreachable } from '../core/unreachable.js';
import { systemClock, type Clock } from '../core/clock.js';

/** Where a bundle is in its life; see the module diagram. */
export type ItemState =
  /** A file of the bundle was noticed. */
  | 'seen'
  /** Files are present but some changed less than `settle` ago. */
  | 'settling'
  /** Every file settled and every role is present; about to be hashed and looked up. */
  | 'ready'
  /** Waiting for a slot (or for an earlier version of the same bundle to finish). */
  | 'queued'
  /** The job runs; a restarted watcher resumes it through the runner's state. */
  | 'running'
  /** Rendered and published. Final for this content. */
  | 'done'
  /** The last attempt failed. Retried while `attempts < maxAttempts`. */
  | 'failed';

/** What moves an item from one state to the next. */
export type ItemEvent = 'changed' | 'settled' | 'enqueue' | 'start' | 'succeeded' | 'failed' | 'retry' | 'interrupted';

/** The next state, or an InternalError for a transition the diagram does not have. */
export function nextItemState(state: ItemState, event: ItemEvent): ItemState {
  const bad = (): never => {
    throw new InternalError(`watch ledger: no transition from ${state} on ${event}`);
  };
  switch (state) {
    case 'seen':
      return event === 'changed' ? 'settling' : bad();
    case 'settling':
      if (event === 'changed') return 'settling';
      return event === 'settled' ? 'ready' : bad();
    case 'ready':
      if (event === 'changed') return 'settling';
      return event === 'enqueue' ? 'queued' : bad();
    case 'queued':
      if (event === 'interrupted') return 'queued';
      return event === 'start' ? 'running' : bad();
    case 'running':
      if (event === 'succeeded') return 'done';
      if (event === 'failed') return 'failed';
      if (event === 'interrupted') return 'queued';
      return bad();
    case 'done':
      return bad();
    case 'failed':
      return event === 'retry' ? 'queued' : bad();
    default:
      return unreachable(state, 'state');
  }
}

/**
 * The item moved on by `event`: the one way a ledger item changes state (the caller writes it).
 * Throws, as `nextItemState` does, for a transition the diagram does not have.
 */
export function advanceItem(item: LedgerItem, event: ItemEvent): LedgerItem {
  return { ...item, state: nextItemState(item.state, event) };
}

/** One member of a bundle as recorded. */
export interface LedgerMember {
  role: string;
  /** Relative to the watched folder, as it was when hashed. */
  path: string;
  sha256: string;
}

/** A bundle's record in the ledger. Never holds a token. */
export interface LedgerItem {
  version: 1;
  /** Bundle id: hash of its members' content hashes. */
  id: string;
  name: string;
  state: ItemState;
  /** Failed attempts so far (an interrupted attempt does not count). */
  attempts: number;
  members: LedgerMember[];
  /** Absolute path of the published output, once done. */
  output?: string;
  sessionIds?: string[];
  renderIds?: string[];
  creditsUsed?: number;
  /** The last failure; `hint` says what to do next. */
  error?: { code: string; message: string; hint?: string };
  /** Sidecar written and sources moved (a crash between done and publishing leaves it false). */
  published: boolean;
  createdAt: string;
  updatedAt: string;
}

/** What to do with a ready bundle, given its ledger record. */
export type LedgerDecision =
  /** Never seen, interrupted, or failed with attempts left: run it. */
  | { action: 'run'; attempts: number; resumed: boolean }
  /** Identical content was rendered before. */
  | { action: 'skip-done'; item: LedgerItem }
  /** Failed `maxAttempts` times; only a change of content runs it again. */
  | { action: 'skip-exhausted'; item: LedgerItem };

/** Pure decision from a record; `maxAttempts` from the watch config. */
export function decide(item: LedgerItem | undefined, maxAttempts: number): LedgerDecision {
  if (!item) return { action: 'run', attempts: 0, resumed: false };
  switch (item.state) {
    case 'done':
      return { action: 'skip-done', item };
    case 'failed':
      return item.attempts >= maxAttempts ? { action: 'skip-exhausted', item } : { action: 'run', attempts: item.attempts, resumed: false };
    case 'running':
    case 'queued':
    case 'seen':
    case 'settling':
    case 'ready':
      // On disk, `queued` only follows an interrupted start and `running` a crash: both resume.
      return { action: 'run', attempts: item.attempts, resumed: item.state === 'running' || item.state === 'queued' };
    default:
      return unreachable(item.state, 'state');
  }
}

/** The ledger of one watched folder. */
export class Ledger {
  readonly dir: string;
  readonly #clock: Clock;

  /** `dir` holds one `<id>.json` per bundle; `clock` dates each write. */
  constructor(dir: string, clock: Clock = systemClock) {
    this.dir = dir;
    this.#clock = clock;
  }

  #file(id: string): string {
    return path.join(this.dir, `${id}.json`);
  }

  /** The record for a bundle id, or undefined when it was never queued. */
  async read(id: string): Promise<LedgerItem | undefined> {
    let text: string;
    try {
      text = await readFile(this.#file(id), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const item = JSON.parse(text) as LedgerItem;
    if (item.version !== 1) throw new InternalError(`watch ledger item ${id} has unknown version ${String(item.version)}`);
    return item;
  }

  /**
   * Write a record (the caller holds the item's lease). `durable: false` for bookkeeping that
   * is safe to redo after a crash (e.g. `published`, since publishing is idempotent).
   */
  async write(item: LedgerItem, options: { durable?: boolean } = {}): Promise<void> {
    await writeJsonAtomic(this.#file(item.id), { ...item, updatedAt: new Date(this.#clock.now()).toISOString() }, options);
  }
}
