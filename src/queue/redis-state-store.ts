/**
 * The run state of one queue job in Redis, behind the same `StateStore` interface as the
 * journal on disk: the runner records intent before every paid request and the remote id right
 * after it, and each change resolves once Redis has it (with AOF on, on its disk).
 *
 * One store per queue job: a worker loads the job's state when it takes the job (a job another
 * worker started resumes from what that one recorded) and writes the whole job back at every
 * change. Writes are fenced: taking a job bumps its fence, and a write lands only while the
 * fence is still this store's, so a worker that lost the job (its lock expired and another took
 * it) can no longer change what the new owner relies on — its write fails, and its run stops.
 *
 * Keys (`<run>` is `runKeyFor(workflow, backend)`):
 *   talk:state:<run>:job:<job id>    the job's `JobState`, JSON
 *   talk:state:<run>:fence:<job id>  the fence counter
 *   talk:state:<run>:meta            the run's workflow, name and backend, JSON
 *   talk:state:<run>:jobs            the set of job ids with state
 *   talk:state:<run>:spent           the credits the run's jobs were charged (redis-credits.ts)
 *   talk:runs                        the set of run keys
 */
import type { Redis } from 'ioredis';
import { StateWriteError, type StateStore, type StoreStats } from '../state/state-store.js';
import { STATE_FORMAT_VERSION, type JobState, type RunMeta, type RunState, type StepState } from '../state/types.js';
import { KEY_PREFIX } from './connection.js';

/** Where a run's state lives in Redis. */
export function runStateKeys(runKey: string): { base: string; meta: string; jobs: string; spent: string; job(id: string): string; fence(id: string): string } {
  const base = `${KEY_PREFIX}:state:${runKey}`;
  return { base, meta: `${base}:meta`, jobs: `${base}:jobs`, spent: `${base}:spent`, job: (id) => `${base}:job:${id}`, fence: (id) => `${base}:fence:${id}` };
}

/** Set the job's state only while its fence is ours; 1 when written, 0 when the fence moved on. */
const FENCED_SET = `
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[3])
return 1
`;

/**
 * Take the job's fence and load its state in one step (one round trip before a job can start):
 * the new fence and the job's state (nil when none); the run's meta and the run list are set
 * on the way.
 */
const OPEN = `
local fence = redis.call('INCR', KEYS[1])
local job = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[2])
return {fence, job}
`;

/** Options for `openRedisJobStore`. */
export interface RedisJobStoreOptions {
  redis: Redis;
  runKey: string;
  jobId: string;
  workflowPath: string;
  name: string;
  backendId: string;
  now?: () => Date;
}

/** Open the state of one job: take its fence and load what earlier owners recorded. */
export async function openRedisJobStore(options: RedisJobStoreOptions): Promise<StateStore> {
  const keys = runStateKeys(options.runKey);
  const { redis, jobId } = options;
  const meta = JSON.stringify({ workflowPath: options.workflowPath, name: options.name, backend: options.backendId });
  const [fence, text] = (await redis.eval(OPEN, 4, keys.fence(jobId), keys.job(jobId), keys.meta, `${KEY_PREFIX}:runs`, meta, options.runKey)) as [number, string | null | undefined];
  const job = typeof text === 'string' ? (JSON.parse(text) as JobState) : undefined;
  return new RedisJobStore(options, keys, String(fence), job);
}

/** Read every job's state of a run (for reports; no fence taken). */
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
    private readonly fence: string,
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
      try {
        const written = (await this.options.redis.eval(FENCED_SET, 3, this.keys.job(jobId), this.keys.fence(jobId), this.keys.jobs, text, this.fence, jobId)) as number;
        if (written !== 1) throw new Error(`another worker took job ${jobId} over (its lock had expired); this worker stops it`);
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
