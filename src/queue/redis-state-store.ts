/**
 * The run state of one queue job in Redis, behind the same `StateStore` interface as the
 * journal on disk: the runner records intent before every paid request and the remote id right
 * after it, and each change resolves once Redis has it (with AOF on, on its disk).
 *
 * One store per queue job: a worker takes a job with its state (a job another worker started
 * resumes from what that one recorded) and writes the whole job back at every change.
 *
 * The state arrives with the job, so a job starts without a round trip of its own: a job comes
 * with the state it had when it was enqueued (`QueueJobData.state`, none for a new one), and
 * every write mirrors the state onto the BullMQ job's own hash, which BullMQ hands the worker
 * whole when it takes the job again (after a worker died, or handed it back). Only a job
 * enqueued by an older talk has neither, and its state is read.
 *
 * Writes are guarded twice, in the script that makes them:
 *   - the BullMQ lock: a write lands only while this worker's token holds the job's lock, so a
 *     worker that lost the job (its lock expired and BullMQ handed it on) can no longer change
 *     what the new owner relies on — its write fails, and its run stops;
 *   - the state's revision: every write bumps it and lands only on the revision its store last
 *     saw, so a store that started from a state someone else changed since is refused at its
 *     first write, which the runner makes before any paid request. Only a second queue job of
 *     the same plan job can change it (enqueued after an input changed: of the two, the one
 *     whose inputs differ fails its fingerprint check before writing anything), or a worker of
 *     an older talk, which bumps the same counter (its fence) when it takes a job.
 *
 * Keys (`<run>` is `runKeyFor(workflow, backend)`):
 *   talk:state:<run>:job:<job id>    the job's `JobState`, JSON
 *   talk:state:<run>:fence:<job id>  the state's revision
 *   talk:state:<run>:meta            the run's workflow, name and backend, JSON
 *   talk:state:<run>:jobs            the set of job ids with state
 *   talk:state:<run>:spent           the credits the run's jobs were charged (redis-credits.ts)
 *   talk:runs                        the set of run keys
 * and on the BullMQ job's hash, the fields `talk:state` (the JSON, empty for none) and
 * `talk:rev` (its revision).
 */
import type { Redis } from 'ioredis';
import { StateWriteError, type StateStore, type StoreStats } from '../state/state-store.js';
import { STATE_FORMAT_VERSION, type JobState, type RunMeta, type RunState, type StepState } from '../state/types.js';
import { KEY_PREFIX } from './connection.js';

/** Where a run's state lives in Redis. (The revision's key is named as an older talk named its fence, which it shares.) */
export function runStateKeys(runKey: string): { base: string; meta: string; jobs: string; spent: string; job(id: string): string; revision(id: string): string } {
  const base = `${KEY_PREFIX}:state:${runKey}`;
  return { base, meta: `${base}:meta`, jobs: `${base}:jobs`, spent: `${base}:spent`, job: (id) => `${base}:job:${id}`, revision: (id) => `${base}:fence:${id}` };
}

/** The fields of the BullMQ job hash that mirror the job's state. */
const MIRROR_STATE = 'talk:state';
const MIRROR_REVISION = 'talk:rev';

/** Why a write was refused (the script's answer below 0). */
const LOCK_LOST = -1;
const REVISION_MOVED = -2;

/**
 * Set the job's state while the job's lock is this worker's and the revision is the one the
 * store last saw; bump the revision and mirror both onto the queue job. The new revision, or
 * LOCK_LOST / REVISION_MOVED. The run's meta and the run list are set with the store's first
 * write (ARGV[5] empty after that).
 */
const WRITE = `
if redis.call('GET', KEYS[3]) ~= ARGV[3] then return ${LOCK_LOST} end
local revision = tonumber(redis.call('GET', KEYS[2]) or '0')
if revision ~= tonumber(ARGV[2]) then return ${REVISION_MOVED} end
revision = revision + 1
redis.call('SET', KEYS[2], revision)
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[4])
if redis.call('EXISTS', KEYS[5]) == 1 then redis.call('HSET', KEYS[5], '${MIRROR_STATE}', ARGV[1], '${MIRROR_REVISION}', revision) end
if ARGV[5] ~= '' then
  redis.call('SET', KEYS[6], ARGV[5])
  redis.call('SADD', KEYS[7], ARGV[6])
end
return revision
`;

/** The state a queue job carries: its JSON (empty for none) and revision. */
export interface StateMirror {
  text: string;
  revision: number;
}

/** The mirror in a BullMQ job hash as fetched (every field of it), if it has one. */
export function stateMirrorOf(hash: Readonly<Record<string, unknown>>): StateMirror | undefined {
  const text = hash[MIRROR_STATE];
  const revision = Number(hash[MIRROR_REVISION]);
  return typeof text === 'string' && Number.isSafeInteger(revision) ? { text, revision } : undefined;
}

/**
 * The states of a run's jobs as they stand (none: empty text, revision 0), for jobs about to be
 * enqueued to carry: one round trip per thousand jobs.
 */
export async function readStateMirrors(redis: Redis, runKey: string, jobIds: readonly string[]): Promise<Map<string, StateMirror>> {
  const keys = runStateKeys(runKey);
  const out = new Map<string, StateMirror>();
  for (let from = 0; from < jobIds.length; from += 1000) {
    const ids = jobIds.slice(from, from + 1000);
    const values = await redis.mget(ids.flatMap((id) => [keys.job(id), keys.revision(id)]));
    ids.forEach((id, i) => out.set(id, { text: values[2 * i] ?? '', revision: Number(values[2 * i + 1] ?? 0) }));
  }
  return out;
}

/** The queue job a store's state belongs to, as the worker holding it sees it. */
export interface QueueJobHold {
  /** The BullMQ job's hash (the mirror's home). */
  key: string;
  /** The BullMQ job's lock, and the token this worker holds it with. */
  lockKey: string;
  token: string;
  /** The state the job was fetched with; without it, the state is read. */
  mirror?: StateMirror | undefined;
}

/** Options for `openRedisJobStore`. */
export interface RedisJobStoreOptions {
  redis: Redis;
  runKey: string;
  jobId: string;
  workflowPath: string;
  name: string;
  backendId: string;
  queueJob: QueueJobHold;
  now?: () => Date;
}

/** Open the state of one job: from its mirror when it came with one, else read from Redis. */
export async function openRedisJobStore(options: RedisJobStoreOptions): Promise<StateStore> {
  const keys = runStateKeys(options.runKey);
  let mirror = options.queueJob.mirror;
  if (!mirror) {
    const [text, revision] = await options.redis.mget(keys.job(options.jobId), keys.revision(options.jobId));
    mirror = { text: text ?? '', revision: Number(revision ?? 0) };
  }
  const job = mirror.text === '' ? undefined : (JSON.parse(mirror.text) as JobState);
  return new RedisJobStore(options, keys, mirror.revision, job);
}

/** Read every job's state of a run (for reports). */
export async function readRedisRunJobs(redis: Redis, runKey: string): Promise<Record<string, JobState>> {
  const keys = runStateKeys(runKey);
  const ids = (await redis.smembers(keys.jobs)).sort();
  const out: Record<string, JobState> = {};
  if (ids.length === 0) return out;
  const texts = await redis.mget(ids.map((id) => keys.job(id)));
  ids.forEach((id, i) => {
    const text = texts[i];
    if (text) out[id] = JSON.parse(text) as JobState;
  });
  return out;
}

class RedisJobStore implements StateStore {
  readonly dir: string;
  readonly tookOverFrom = undefined;
  readonly hadPrevious: boolean;
  readonly state: RunState;
  private chain: Promise<void> = Promise.resolve();
  /** The write not started yet, which the changes made now will land with. */
  private nextWrite: Promise<void> | undefined;
  private failure: StateWriteError | undefined;
  private closed = false;
  private readonly counters: StoreStats = { bytesWritten: 0, changes: 0, flushes: 0, compactions: 0 };
  private readonly now: () => Date;

  constructor(
    private readonly options: RedisJobStoreOptions,
    private readonly keys: ReturnType<typeof runStateKeys>,
    /** The state's revision as this store last saw it (read, or written). */
    private revision: number,
    job: JobState | undefined,
  ) {
    this.now = options.now ?? (() => new Date());
    this.dir = `redis state ${options.runKey}`;
    this.hadPrevious = job !== undefined;
    const at = this.now().toISOString();
    this.state = {
      version: STATE_FORMAT_VERSION,
      workflowPath: options.workflowPath,
      name: options.name,
      backend: options.backendId,
      startedAt: at,
      updatedAt: at,
      finished: false,
      status: 'running',
      creditsUsed: 0,
      jobs: job ? { [options.jobId]: job } : {},
    };
  }

  job(jobId: string): Readonly<JobState> | undefined {
    return this.state.jobs[jobId];
  }

  step(jobId: string, stepId: string): Readonly<StepState> | undefined {
    return this.state.jobs[jobId]?.steps[stepId];
  }

  /** Run facts are this process's own view here: the shared ones (credits) live with the credit holds. */
  updateRun(set: Partial<RunMeta>): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    Object.assign(this.state, set, { updatedAt: this.now().toISOString() });
    return Promise.resolve();
  }

  updateJob(jobId: string, set: Partial<Omit<JobState, 'steps'>>): Promise<void> {
    return this.change(jobId, (job) => Object.assign(job, set));
  }

  putStep(jobId: string, stepId: string, state: StepState, run?: Partial<RunMeta>): Promise<void> {
    if (run) Object.assign(this.state, run, { updatedAt: this.now().toISOString() });
    return this.change(jobId, (job) => {
      job.steps[stepId] = { ...state, updatedAt: this.now().toISOString() };
    });
  }

  resetJob(jobId: string): Promise<void> {
    return this.change(jobId, (job) => {
      for (const key of Object.keys(job)) delete (job as unknown as Record<string, unknown>)[key];
      Object.assign(job, { status: 'pending', steps: {} });
    });
  }

  async flush(): Promise<void> {
    await this.chain;
    if (this.failure) throw this.failure;
  }

  stats(): StoreStats {
    return { ...this.counters };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain;
  }

  /**
   * Apply in memory now; resolve when Redis holds the whole job as it then stands. Every write
   * is the whole job, so the changes made while one write is on its way all land with the next
   * one (it is written when that one is done, as the job then stands): one round trip for them
   * all instead of one each, and never an older job written after a newer one.
   */
  private change(jobId: string, apply: (job: JobState) => void): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new StateWriteError(this.dir, new Error('the state store is closed')));
    if (jobId !== this.options.jobId) return Promise.reject(new StateWriteError(this.dir, new Error(`job ${jobId} is not this store's (${this.options.jobId})`)));
    const job = (this.state.jobs[jobId] ??= { status: 'pending', steps: {} });
    apply(job);
    this.counters.changes += 1;
    if (this.nextWrite) return this.nextWrite;
    const write = async (): Promise<void> => {
      // From here on, changes wait for the write after this one.
      this.nextWrite = undefined;
      if (this.failure) throw this.failure;
      const text = JSON.stringify(job);
      const { queueJob } = this.options;
      // The run's meta goes with the first write.
      const meta = this.counters.flushes === 0 ? JSON.stringify({ workflowPath: this.options.workflowPath, name: this.options.name, backend: this.options.backendId }) : '';
      try {
        const keys = [this.keys.job(jobId), this.keys.revision(jobId), queueJob.lockKey, this.keys.jobs, queueJob.key, this.keys.meta, `${KEY_PREFIX}:runs`];
        const written = (await this.options.redis.eval(WRITE, keys.length, ...keys, text, this.revision, queueJob.token, jobId, meta, this.options.runKey)) as number;
        if (written === LOCK_LOST) throw new Error(`another worker took job ${jobId} over (its lock had expired); this worker stops it`);
        if (written === REVISION_MOVED) {
          throw new Error(`the state of job ${jobId} was changed since this worker read it (another queue job runs the same job, or a worker of an older talk took it); this worker stops it`);
        }
        this.revision = written;
        this.counters.flushes += 1;
        this.counters.bytesWritten += Buffer.byteLength(text);
      } catch (error) {
        this.failure ??= new StateWriteError(`Redis (${this.dir}, job ${jobId})`, error);
        throw this.failure;
      }
    };
    const next = this.chain.then(write);
    this.nextWrite = next;
    // The chain itself never rejects, so a later flush waits for every write before it.
    this.chain = next.catch(() => undefined);
    return next;
  }
}
