/**
 * The run state store: an in-memory `RunState` backed by a snapshot file plus an append-only
 * journal of changes.
 *
 * Why a journal: a batch of 10,000 jobs changes one step at a time; rewriting the whole state on
 * every transition would cost O(run size) per change. Each change is one small JSON line,
 * appended and fsynced (changes that arrive together share one write and one fsync). When the
 * journal grows past a few times the snapshot, it is compacted: the full state is written to a
 * temp file, fsynced and renamed over the snapshot under a new generation number, and the old
 * journal is deleted. Amortised, a change costs O(change).
 *
 * Files in a run dir:
 *   state.json          {"generation": g, "state": RunState}
 *   journal-<g>.ndjson  changes made after snapshot g, one JSON object per line
 *   lock                the runner holding this state (src/state/lock.ts)
 *
 * A failed write poisons the store: every later change rejects, and the runner stops loudly
 * rather than pay for work it could not record.
 */
import { mkdir, open, readFile, readdir, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { TalkError } from '../core/errors.js';
import { parseJournal } from '../core/journal.js';
import { throwIfAborted, type SignalOptions } from '../core/abort.js';
import { acquireLock, type HeldLock, type LockEnvironment, type LockOwner } from './lock.js';
import { STATE_FORMAT_VERSION, type JobState, type RunMeta, type RunState, type StepState } from './types.js';
import { unreachable } from '../core/unreachable.js';
import { writeFileAtomic } from '../core/atomic-write.js';

/** One journal line. Each is a last-writer-wins assignment, so replaying is deterministic. */
type JournalOp =
  | { op: 'run'; set: Partial<RunMeta> }
  | { op: 'job'; job: string; set: Partial<Omit<JobState, 'steps'>> }
  | { op: 'step'; job: string; step: string; state: StepState; run?: Partial<RunMeta> }
  | { op: 'reset-job'; job: string };

/** Counters for benchmarks and tests. */
export interface StoreStats {
  /** Bytes appended to journals plus bytes of snapshots written. */
  bytesWritten: number;
  /** Changes recorded. */
  changes: number;
  /** Physical writes (each followed by one fsync). */
  flushes: number;
  compactions: number;
}

/** The run state of one workflow, held under its lock. */
export interface StateStore {
  /** The run dir (inside the state dir). */
  readonly dir: string;
  /** Set when this store took the lock over from a runner that is gone. */
  readonly tookOverFrom: LockOwner | undefined;
  /** True when state from an earlier run was loaded. */
  readonly hadPrevious: boolean;
  /** The current state. Read-only for callers: change it through the methods below. */
  readonly state: Readonly<RunState>;
  job(jobId: string): Readonly<JobState> | undefined;
  step(jobId: string, stepId: string): Readonly<StepState> | undefined;
  /**
   * Each change applies in memory at once and resolves when it is on disk. Awaiting is how the
   * runner keeps the write-ahead order: intent on disk before the request goes out.
   */
  updateRun(set: Partial<RunMeta>): Promise<void>;
  updateJob(jobId: string, set: Partial<Omit<JobState, 'steps'>>): Promise<void>;
  /**
   * `run` carries run facts that change with the step (the credits a turn booked): they are
   * recorded with it as one change, so no crash can keep one without the other.
   */
  putStep(jobId: string, stepId: string, state: StepState, run?: Partial<RunMeta>): Promise<void>;
  /** Forget a job's session and steps (a new session starts). */
  resetJob(jobId: string): Promise<void>;
  /** Resolves when every change so far is on disk. */
  flush(): Promise<void>;
  stats(): StoreStats;
  /** Flush, compact, release the lock. Safe to call twice. */
  close(): Promise<void>;
}

/** Options for `openStateStore`. */
export interface OpenStateOptions extends SignalOptions {
  /** The run dir for this workflow (see `runDirFor`). */
  dir: string;
  workflowPath: string;
  name: string;
  /** Ignore (and replace) any earlier state. */
  fresh?: boolean;
  /** Journal bytes that trigger compaction, as a multiple of the snapshot size (default 4). */
  compactFactor?: number;
  /** Lower bound for compaction, bytes (default 256 KiB). */
  compactMinBytes?: number;
  lockEnvironment?: LockEnvironment;
  now?: () => Date;
}

const SNAPSHOT = 'state.json';
const journalName = (generation: number): string => `journal-${generation}.ndjson`;

/** Failure to record state. The run stops: continuing could pay for work nobody remembers. */
export class StateWriteError extends TalkError {
  constructor(file: string, cause: unknown) {
    super('step-failed', `could not save run state to ${file}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
      hint: 'the run stopped so nothing is paid twice; free disk space or fix permissions, then run again to resume',
    });
    this.name = 'StateWriteError';
  }
}

/** Run state could not be read. */
export class StateReadError extends TalkError {
  constructor(file: string, cause: unknown) {
    super('usage', `the run state in ${file} cannot be read: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
      hint: 'run again with --fresh to start over (finished outputs stay on disk)',
    });
    this.name = 'StateReadError';
  }
}

/** Apply one journal op to a state, in place. */
function applyOp(state: RunState, op: JournalOp): void {
  switch (op.op) {
    case 'run':
      Object.assign(state, op.set);
      return;
    case 'job': {
      const job = (state.jobs[op.job] ??= { status: 'pending', steps: {} });
      Object.assign(job, op.set);
      return;
    }
    case 'step': {
      const job = (state.jobs[op.job] ??= { status: 'pending', steps: {} });
      job.steps[op.step] = op.state;
      if (op.run) Object.assign(state, op.run);
      return;
    }
    case 'reset-job':
      state.jobs[op.job] = { status: 'pending', steps: {} };
      return;
    default:
      return unreachable(op, 'op');
  }
}

function emptyState(workflowPath: string, name: string, now: Date): RunState {
  return {
    version: STATE_FORMAT_VERSION,
    workflowPath,
    name,
    startedAt: now.toISOString(),
    updatedAt: now.toISOString(),
    finished: false,
    status: 'running',
    creditsUsed: 0,
    jobs: {},
  };
}

/** Loaded state without a lock (for `talk status` and `talk plan`, which only read). */
export interface LoadedState {
  state: RunState;
  generation: number;
  snapshotBytes: number;
  journalBytes: number;
}

/**
 * Read the state in a run dir without locking it. Returns undefined when there is none. A torn
 * last journal line (a crash mid-append) is ignored: it was never acknowledged.
 */
export async function readRunState(dir: string, options: SignalOptions = {}): Promise<LoadedState | undefined> {
  throwIfAborted(options.signal);
  const snapshotFile = path.join(dir, SNAPSHOT);
  let generation = 0;
  let state: RunState | undefined;
  let snapshotBytes = 0;
  try {
    const text = await readFile(snapshotFile, { encoding: 'utf8', signal: options.signal });
    snapshotBytes = Buffer.byteLength(text);
    const parsed = JSON.parse(text) as { generation: number; state: RunState };
    generation = parsed.generation;
    state = parsed.state;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new StateReadError(snapshotFile, error);
  }
  let journalText = '';
  try {
    journalText = await readFile(path.join(dir, journalName(generation)), { encoding: 'utf8', signal: options.signal });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new StateReadError(path.join(dir, journalName(generation)), error);
  }
  if (!state && journalText === '') return undefined;
  const journalFile = path.join(dir, journalName(generation));
  let ops: JournalOp[];
  try {
    ops = parseJournal(journalText, journalFile) as JournalOp[];
  } catch (error) {
    throw new StateReadError(journalFile, error);
  }
  const first = ops[0];
  if (!state) {
    if (first?.op !== 'run' || first.set.workflowPath === undefined) return undefined;
    state = { ...emptyState(first.set.workflowPath, first.set.name ?? '', new Date()), ...first.set };
  }
  for (const op of ops) applyOp(state, op);
  return { state, generation, snapshotBytes, journalBytes: Buffer.byteLength(journalText) };
}

/**
 * Open (and lock) the state of one workflow. Creates the run dir. With `fresh`, earlier state
 * is discarded. Resolves once the lock is held and the state is loaded.
 */
export async function openStateStore(options: OpenStateOptions): Promise<StateStore> {
  const now = options.now ?? (() => new Date());
  const dir = options.dir;
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    throw new StateWriteError(dir, error);
  }
  const lock = await acquireLock(path.join(dir, 'lock'), options.lockEnvironment);
  try {
    const loaded = options.fresh ? undefined : await readRunState(dir, options);
    const store = new JournalStore(dir, lock, loaded, options, now);
    await store.start();
    return store;
  } catch (error) {
    await lock.release();
    throw error;
  }
}

class JournalStore implements StateStore {
  readonly dir: string;
  readonly tookOverFrom: LockOwner | undefined;
  readonly hadPrevious: boolean;
  state: RunState;

  private generation: number;
  private snapshotBytes: number;
  private journalBytes = 0;
  private pending: string[] = [];
  private waiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  private flushing: Promise<void> | undefined;
  private failure: StateWriteError | undefined;
  private closed = false;
  /** The current generation's journal, open for appending from its first change to compaction. */
  private journal: FileHandle | undefined;
  private readonly counters: StoreStats = { bytesWritten: 0, changes: 0, flushes: 0, compactions: 0 };
  private readonly compactFactor: number;
  private readonly compactMinBytes: number;

  constructor(
    dir: string,
    private readonly lock: HeldLock,
    loaded: LoadedState | undefined,
    options: OpenStateOptions,
    private readonly now: () => Date,
  ) {
    this.dir = dir;
    this.tookOverFrom = lock.tookOverFrom;
    this.hadPrevious = loaded !== undefined;
    this.state = loaded?.state ?? emptyState(options.workflowPath, options.name, now());
    this.generation = loaded?.generation ?? 0;
    this.snapshotBytes = loaded?.snapshotBytes ?? 0;
    this.compactFactor = options.compactFactor ?? 4;
    this.compactMinBytes = options.compactMinBytes ?? 256 * 1024;
  }

  /** Start from a clean snapshot: compacting on open also drops stray journals of old generations. */
  async start(): Promise<void> {
    await this.compact();
    const entries = await readdir(this.dir).catch(() => [] as string[]);
    const current = journalName(this.generation);
    await Promise.all(
      entries.filter((e) => /^journal-\d+\.ndjson$/.test(e) && e !== current).map((e) => rm(path.join(this.dir, e), { force: true })),
    );
  }

  job(jobId: string): Readonly<JobState> | undefined {
    return this.state.jobs[jobId];
  }

  step(jobId: string, stepId: string): Readonly<StepState> | undefined {
    return this.state.jobs[jobId]?.steps[stepId];
  }

  updateRun(set: Partial<RunMeta>): Promise<void> {
    return this.record({ op: 'run', set: { ...set, updatedAt: this.now().toISOString() } });
  }

  updateJob(jobId: string, set: Partial<Omit<JobState, 'steps'>>): Promise<void> {
    return this.record({ op: 'job', job: jobId, set });
  }

  putStep(jobId: string, stepId: string, state: StepState, run?: Partial<RunMeta>): Promise<void> {
    const at = this.now().toISOString();
    return this.record({ op: 'step', job: jobId, step: stepId, state: { ...state, updatedAt: at }, ...(run ? { run: { ...run, updatedAt: at } } : {}) });
  }

  resetJob(jobId: string): Promise<void> {
    return this.record({ op: 'reset-job', job: jobId });
  }

  async flush(): Promise<void> {
    while (this.flushing || this.pending.length > 0) {
      if (this.failure) throw this.failure;
      await (this.flushing ?? this.startFlush());
    }
    if (this.failure) throw this.failure;
  }

  stats(): StoreStats {
    return { ...this.counters };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.flush();
      this.closed = true;
      await this.compact();
    } finally {
      this.closed = true;
      await this.closeJournal();
      await this.lock.release();
    }
  }

  private async closeJournal(): Promise<void> {
    const handle = this.journal;
    this.journal = undefined;
    await handle?.close().catch(() => undefined);
  }

  private record(op: JournalOp): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new StateWriteError(this.dir, new Error('the state store is closed')));
    applyOp(this.state, op);
    this.counters.changes += 1;
    this.pending.push(`${JSON.stringify(op)}\n`);
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (!this.flushing) void this.startFlush();
    return done;
  }

  /** Group commit: everything queued goes out in one write and one fsync. */
  private startFlush(): Promise<void> {
    const run = async (): Promise<void> => {
      while (this.pending.length > 0) {
        const lines = this.pending.join('');
        const waiters = this.waiters;
        this.pending = [];
        this.waiters = [];
        try {
          const handle = (this.journal ??= await open(path.join(this.dir, journalName(this.generation)), 'a'));
          await handle.appendFile(lines);
          await handle.datasync();
          // A state dir removed under a running runner must fail the run, not fill a deleted
          // file nobody will ever read: the journal kept open has no links left then.
          if ((await handle.stat()).nlink === 0) throw new Error(`${this.dir} was removed while the run was using it`);
          const bytes = Buffer.byteLength(lines);
          this.journalBytes += bytes;
          this.counters.bytesWritten += bytes;
          this.counters.flushes += 1;
          if (this.journalBytes > Math.max(this.compactMinBytes, this.snapshotBytes * this.compactFactor)) await this.compact();
          for (const w of waiters) w.resolve();
        } catch (error) {
          await this.closeJournal();
          this.failure ??= error instanceof StateWriteError ? error : new StateWriteError(path.join(this.dir, journalName(this.generation)), error);
          for (const w of [...waiters, ...this.waiters]) w.reject(this.failure);
          this.waiters = [];
          this.pending = [];
          return;
        }
      }
    };
    this.flushing = run().finally(() => {
      this.flushing = undefined;
      // A change recorded after the loop's last check but before this callback would strand.
      if (this.pending.length > 0 && !this.failure) void this.startFlush();
    });
    return this.flushing;
  }

  /**
   * Write the full state as snapshot g+1 (temp, fsync, rename), then drop journal g. Changes
   * recorded while its pieces are written may or may not be in it (each job is written as it
   * stands when its turn comes); all of them also go to journal g+1, whose ops are assignments
   * replayed in order, so loading gives the same state either way.
   */
  private async compact(): Promise<void> {
    const next = this.generation + 1;
    const target = path.join(this.dir, SNAPSHOT);
    let bytes: number;
    try {
      bytes = await writeFileAtomic(target, snapshotChunks(next, this.state));
      await syncDir(this.dir);
    } catch (error) {
      throw new StateWriteError(target, error);
    }
    await this.closeJournal();
    const old = this.generation;
    this.generation = next;
    this.snapshotBytes = bytes;
    this.journalBytes = 0;
    this.counters.bytesWritten += this.snapshotBytes;
    this.counters.compactions += 1;
    await rm(path.join(this.dir, journalName(old)), { force: true });
  }
}

/** Snapshot text is written in pieces of about this many characters. */
const SNAPSHOT_CHUNK = 256 * 1024;

/**
 * The snapshot `{"generation": g, "state": RunState}` as JSON, job by job in pieces of about
 * `SNAPSHOT_CHUNK` characters. Memory stays at one piece however big the run is: the whole text
 * of a 10,000-job state is tens of megabytes, made once more as a buffer to write it.
 */
function* snapshotChunks(generation: number, state: RunState): Generator<string> {
  const { jobs, ...meta } = state;
  // `meta` always has fields (version, workflowPath, …), so its text ends in `…}`.
  let chunk = `{"generation":${generation},"state":${JSON.stringify(meta).slice(0, -1)},"jobs":{`;
  let first = true;
  for (const [id, job] of Object.entries(jobs)) {
    chunk += `${first ? '' : ','}${JSON.stringify(id)}:${JSON.stringify(job)}`;
    first = false;
    if (chunk.length >= SNAPSHOT_CHUNK) {
      yield chunk;
      chunk = '';
    }
  }
  yield `${chunk}}}}`;
}

/** Make a rename durable: fsync the folder that holds it (a no-op where folders cannot be opened). */
async function syncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Some platforms refuse to open or fsync a directory; the rename itself is still atomic.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
