/**
 * `talk worker --queue redis://…`: take jobs from the shared queue and run each through the
 * same runner, limiters and credit admission as `talk run`, with its state in Redis.
 *
 * Exactly once across workers: BullMQ gives a job to one worker at a time under a lock the
 * worker renews; a worker that dies stops renewing, and BullMQ's stalled-job check hands the
 * job to another after the lock expires. That one gets the job's state with the job — the
 * render id recorded before the submit, the turn recorded before the instruction — and the
 * runner's resume rules take it from there: the render is re-attached, the instruction judged
 * by disconnect recovery, nothing paid is sent twice. Every state write checks that the job's
 * lock is still this worker's, so the old owner, should it still be alive, cannot write over
 * the new one's records.
 *
 * SIGINT/SIGTERM: stop taking jobs; jobs in flight stop starting steps, their state lands, and
 * each goes back to the queue (renders keep running at the backend, a next worker re-attaches);
 * exit 130.
 */
import { UnrecoverableError, WaitingError, type Job } from 'bullmq';
import { ExitCode, StepFailedError, UsageError } from '../core/errors.js';
import type { TalkEvent } from '../core/events.js';
import { stamp } from '../core/events.js';
import { clockTime } from '../reporters/format.js';
import type { Plan } from '../plan/types.js';
import { cachedHasher, changedFields, createLimiters, createRunner, CreditBudget, hashFile, TurnsGroup, type Limiters, type StepFingerprint } from '../runner/index.js';
import { closeRedis, connectRedis, KEY_PREFIX, QUEUE_NAME, reachRedis } from '../queue/connection.js';
import { JOB_DATA_VERSION, runKeyFor, type QueueJobData, type QueueJobResult } from '../queue/job-data.js';
import { openRedisJobStore } from '../queue/redis-state-store.js';
import { redisCredits } from '../queue/redis-credits.js';
import { chooseBackend, connectBackend, type Connection } from './connect.js';
import type { CommandContext, SharedOptions } from './context.js';
import { provenanceDeps } from './media-tools.js';
import { queueAddressFrom, queueKnobsFromEnv } from './queue-knobs.js';
import type { BackendChoice } from '../plan/types.js';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { RedisTurns } from '../queue/redis-turns.js';
import { EventRelay } from '../queue/event-relay.js';
import { SlotWorkers } from '../queue/job-worker.js';

export interface WorkerOptions extends SharedOptions {
  queue?: string | undefined;
  json: boolean;
}

/** Input files whose hashes a worker remembers at most (a few MB). */
const HASHER_FILES = 10_000;

/** Jobs in flight per worker when `--concurrency` is not given. */
const DEFAULT_WORKER_CONCURRENCY = 4;

/** The key of the account a connection spends from (credit holds, turns). */
function accountKeyOf(connection: Connection): string {
  return runKeyFor(connection.account() ?? 'unknown', connection.backendId);
}

/** A step whose fingerprint differs from the one enqueued: the job fails saying what changed. */
function inputsChanged(data: QueueJobData, fingerprints: ReadonlyMap<string, StepFingerprint>): StepFailedError | undefined {
  const jobId = data.job.id as string;
  for (const [stepId, fp] of fingerprints) {
    if (fp.fingerprint === data.fingerprints[stepId]) continue;
    const changed = changedFields(data.fields[stepId], fp);
    return new StepFailedError(jobId, stepId, `job ${jobId}, step ${stepId}: ${changed.join(', ') || 'its fingerprint'} differ from what was enqueued (an input changed, or this worker sees other files)`, {
      hint: 'make every worker see the same inputs at the same paths, then enqueue the workflow again',
    });
  }
  return undefined;
}

export async function workerCommand(_args: string[], options: WorkerOptions, ctx: CommandContext): Promise<number> {
  const address = queueAddressFrom(options.queue, ctx.env);
  if (!address) throw new UsageError('talk worker needs a queue', { hint: 'pass --queue redis://host:port[/db] or set TALK_QUEUE' });
  const knobs = queueKnobsFromEnv(ctx.env);
  const concurrency = options.concurrency ?? DEFAULT_WORKER_CONCURRENCY;
  const json = options.json || options.reporter === 'json';
  // A worker's text is a log: every line says when (UTC, as the plain reporter's lines).
  const say = (text: string): void => {
    if (!json) ctx.stdout.write(`${clockTime(new Date().toISOString())} ${text}\n`);
  };
  const emitLine = (event: TalkEvent): void => {
    if (json) ctx.stdout.write(`${JSON.stringify(event)}\n`);
    else if (event.type === 'notice' && event.level === 'warn') say(`warning: ${event.message}`);
  };

  // A worker may start before its Redis: it says so and starts when Redis answers.
  await reachRedis(address, {
    wait: true,
    signal: ctx.signal,
    onWaiting: (error) => emitLine(stamp({ type: 'notice', level: 'warn', message: `${error.message}; waiting for it (Ctrl-C to stop)` })),
  });
  const redis = connectRedis(address);
  const connections = new Map<string, Promise<Connection>>();
  const limiters = new Map<string, Limiters>();
  // The account's turns on every worker, for disconnect recovery: one group per account.
  const workerId = `${hostname()}-${randomUUID().slice(0, 12)}`;
  const groups = new Map<string, Promise<{ group: TurnsGroup; remote: RedisTurns }>>();
  const turnsFor = (account: string): Promise<TurnsGroup> => {
    let entry = groups.get(account);
    if (!entry) {
      const remote = new RedisTurns({ redis, account, worker: workerId });
      entry = remote.start().then(() => ({ group: new TurnsGroup(Date.now, undefined, remote), remote }));
      groups.set(account, entry);
    }
    return entry.then((e) => e.group);
  };
  const fixedBackend: BackendChoice | undefined = options.backend === undefined ? undefined : chooseBackend(options.backend, undefined);

  // One per worker: the jobs of a batch share their inputs, and each is read once (a worker
  // taking one job after another forgets the files it was asked for least recently).
  const hasher = cachedHasher(hashFile, { maxEntries: HASHER_FILES });
  // Found once per worker: the media tools do not change between jobs.
  let provenance: ReturnType<typeof provenanceDeps> | undefined;
  const provenanceOnce = (): ReturnType<typeof provenanceDeps> => (provenance ??= provenanceDeps(ctx.env, { talk: ctx.version, node: ctx.nodeVersion ?? 'unknown' }, false, ctx.signal));
  const connectionFor = (choice: BackendChoice): Promise<Connection> => {
    const key = JSON.stringify(choice);
    let connection = connections.get(key);
    if (!connection) {
      connection = connectBackend(choice, ctx.cwd, ctx).then(async (c) => {
        // One request first: the account (the credit holds' key) is known from then on.
        await c.client.getCredits({ signal: ctx.signal });
        return c;
      });
      connection.catch(() => connections.delete(key));
      connections.set(key, connection);
    }
    return connection;
  };

  /**
   * What every job needs, found before the worker says it is ready rather than by its first
   * jobs: the media tools, and with `--backend` the connection (its account) and the account's
   * turns. A backend that cannot be reached yet is tried again by the first job.
   */
  const prepare = async (): Promise<void> => {
    await provenanceOnce();
    if (!fixedBackend) return;
    try {
      const connection = await connectionFor(fixedBackend);
      await turnsFor(accountKeyOf(connection));
    } catch (error) {
      if (ctx.signal.aborted) throw error;
      emitLine(stamp({ type: 'notice', level: 'warn', message: `could not reach the backend yet (${(error as Error).message}); each job tries again` }));
    }
  };

  /**
   * A job's credit books in Redis. Its hold's lease is twice the lock: renewed with the lock, it
   * lasts while this worker holds the job, and through the stalled check that hands the job of
   * a worker that died to another (which admits it again); a worker gone for good frees it
   * after the lease.
   */
  const creditBooks = (job: Job<QueueJobData, QueueJobResult>, connection: Connection, onError?: (error: Error) => void): ReturnType<typeof redisCredits> =>
    redisCredits({
      redis,
      account: accountKeyOf(connection),
      runKey: runKeyFor(job.data.plan.workflowPath, connection.backendId),
      holdKey: job.id ?? job.data.job.id,
      limit: job.data.plan.budget?.credits,
      leaseMs: 2 * knobs.lockDuration,
      ...(onError ? { onError } : {}),
    });
  /** The books of the jobs in flight, by queue job id: their leases are renewed with their locks. */
  const heldBooks = new Map<string, ReturnType<typeof redisCredits>>();

  // A job whose lock could not be renewed may be handed to another worker: this one stops
  // sending anything for it at once (its next state write would be refused anyway: the lock is not its own).
  const lostLocks = new Map<string, AbortController>();

  const processJob = async (job: Job<QueueJobData, QueueJobResult>, token: string | undefined): Promise<QueueJobResult> => {
    const lost = new AbortController();
    lostLocks.set(job.id ?? '', lost);
    try {
      return await processLockedJob(job, token, AbortSignal.any([ctx.signal, lost.signal]));
    } finally {
      lostLocks.delete(job.id ?? '');
    }
  };

  const processLockedJob = async (job: Job<QueueJobData, QueueJobResult>, token: string | undefined, signal: AbortSignal): Promise<QueueJobResult> => {
    const takenAt = Date.now();
    const data = job.data;
    if (data.version !== JOB_DATA_VERSION) throw new UnrecoverableError(`job data version ${data.version} is not ${JOB_DATA_VERSION}: enqueue it again with this version of talk`);
    const choice = fixedBackend ?? data.plan.backend;
    if (choice.kind === 'local') {
      throw new UnrecoverableError('the job runs on an in-process local backend, which workers cannot share: run one `talk serve` and pass its URL with --backend to both `talk run --queue` and `talk worker`');
    }
    const connection = await connectionFor(choice);
    if (connection.backendId !== data.backendId) {
      throw new UnrecoverableError(`the job was enqueued for backend ${data.backendId}, this worker uses ${connection.backendId}: start the worker with --backend ${data.backendId}`);
    }
    const plan: Plan = { ...data.plan, jobs: [data.job] };
    const jobId = data.job.id as string;
    const account = accountKeyOf(connection);
    const runKey = runKeyFor(plan.workflowPath, connection.backendId);
    if (token === undefined) throw new Error(`job ${jobId} came without a lock token`);
    // Its state: as its last owner wrote it, else as it was enqueued (else read from Redis).
    const hold = worker.holdOf(job, token);
    const store = await openRedisJobStore({ redis, runKey, jobId, workflowPath: plan.workflowPath, name: plan.name, backendId: connection.backendId, queueJob: { ...hold, mirror: hold.mirror ?? data.state } });
    const book = (await turnsFor(account)).join(job.id ?? jobId);
    book.seed(store.state);
    // The follower (`talk run --queue`) reads these through BullMQ's events, in order.
    const relay = new EventRelay((batch) => job.updateProgress(batch));
    const emit = (event: TalkEvent): void => {
      emitLine(event);
      relay.push(event);
    };
    const shared = creditBooks(job, connection, (error) => emit(stamp({ type: 'notice', level: 'warn', job: jobId, message: `could not record a charge in the queue's credit books: ${error.message}` })));
    heldBooks.set(job.id ?? '', shared);
    const runLimiters = limiters.get(runKey) ?? createLimiters({ concurrency, uploads: plan.limits.uploads, renders: plan.limits.renders });
    limiters.set(runKey, runLimiters);
    const runner = createRunner({
      client: connection.client,
      store,
      emit,
      signal,
      backendId: connection.backendId,
      limits: { concurrency, uploads: plan.limits.uploads, renders: plan.limits.renders },
      language: plan.language,
      credits: new CreditBudget(undefined, 0, (_job, credits) => shared.charged(credits)),
      sharedCredits: shared,
      turns: book,
      limiters: runLimiters,
      hasher,
      // The inputs every worker sees must be the ones the plan was made from: checked in the
      // runner's own fingerprinting, so each input is read once.
      checkFingerprints: (_job, fingerprints) => inputsChanged(data, fingerprints),
      provenance: await provenanceOnce(),
    });
    say(`job ${jobId} of ${plan.name}: taken${store.hadPrevious ? ' (resuming what was recorded)' : ''}`);
    let outcome;
    const runFrom = Date.now();
    let runTo = runFrom;
    try {
      outcome = await runner.runJob(plan, data.job);
      runTo = Date.now();
    } finally {
      heldBooks.delete(job.id ?? '');
      book.leave();
      await store.close();
      await relay.flushed();
    }
    if (runner.fatal) throw runner.fatal;
    if (outcome.status === 'interrupted' && !ctx.signal.aborted) {
      // Not a stop of this worker: the job's lock was lost, and another worker may hold it now.
      throw new Error(`job ${jobId}: this worker lost its lock on the job (it was too slow to renew it); another worker resumes it`);
    }
    if (outcome.status === 'interrupted') {
      // Handed back: the next worker resumes it from the state just saved.
      await job.moveToWait(token);
      say(`job ${jobId} of ${plan.name}: handed back to the queue`);
      throw new WaitingError();
    }
    const creditsUsed = Object.values(store.job(jobId)?.steps ?? {}).reduce((sum, s) => sum + (s.kind === 'instruction' && s.status === 'done' ? (s.turn?.creditsUsed ?? 0) : 0), 0);
    say(`job ${jobId} of ${plan.name}: ${outcome.status}`);
    return {
      job: jobId,
      status: outcome.status,
      outputs: outcome.outputs,
      creditsUsed,
      ...(outcome.error ? { error: outcome.error } : {}),
      ...(outcome.notStarted ? { notStarted: outcome.notStarted } : {}),
      timing: { takenAt, runFrom, runTo },
    };
  };

  const worker = new SlotWorkers<QueueJobData, QueueJobResult>(QUEUE_NAME, processJob, {
    connection: connectRedis(address),
    prefix: KEY_PREFIX,
    slots: concurrency,
    name: workerId,
    lockDuration: knobs.lockDuration,
    stalledInterval: knobs.stalledInterval,
    // A job whose worker died is handed on a few times before it counts as failed.
    maxStalledCount: knobs.maxStalledCount,
  });
  worker.on('lockRenewalFailed', (jobIds) => {
    for (const id of jobIds) lostLocks.get(id)?.abort(new Error(`lost the lock on job ${id}`));
  });
  worker.on('locksRenewed', ({ jobIds }) => {
    for (const id of jobIds) {
      const books = heldBooks.get(id);
      void books
        ?.renew()
        .then((held) => {
          // Its lease ran out while the job ran: its credits may be promised to another job.
          if (!held && heldBooks.get(id) === books) lostLocks.get(id)?.abort(new Error(`the credit hold of job ${id} ran out`));
        })
        .catch(() => undefined);
    }
  });
  worker.onError((error) => emitLine(stamp({ type: 'notice', level: 'warn', message: `queue: ${error.message}` })));
  worker.on('failed', (job, error) => {
    if (job && !(error instanceof WaitingError)) say(`job ${job.data.job.id} of ${job.data.plan.name}: failed: ${error.message}`);
    // BullMQ failed a job whose workers kept dying (its stalled limit): the hold the last one
    // took goes back now rather than when its lease runs out.
    const choice = job?.deferredFailure ? (fixedBackend ?? job.data.plan.backend) : undefined;
    if (job && choice && choice.kind !== 'local') {
      void connectionFor(choice)
        .then((connection) => creditBooks(job, connection).release())
        .catch((e: unknown) => emitLine(stamp({ type: 'notice', level: 'warn', message: `could not give back the credit hold of job ${job.data.job.id}: ${(e as Error).message}` })));
    }
  });
  try {
    await worker.waitUntilReady();
    await prepare();
    const ready = `worker ready: queue ${address.shown}, ${concurrency} ${concurrency === 1 ? 'job' : 'jobs'} at a time`;
    say(ready);
    if (json) emitLine(stamp({ type: 'notice', level: 'info', message: ready }));
    const stopped = new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      ctx.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    void worker.run().catch((error: unknown) => emitLine(stamp({ type: 'notice', level: 'warn', message: `queue: ${(error as Error).message}` })));
    await stopped;
    if (worker.connected) say('stopping: jobs in flight save their state and go back to the queue');
    else emitLine(stamp({ type: 'notice', level: 'warn', message: `the queue's Redis at ${address.shown} is not answering: jobs in flight could not be handed back; another worker resumes them when their locks run out (${Math.round(knobs.lockDuration / 1000)} s)` }));
    // Waits for the jobs in flight: each sees the abort, lands its state and is handed back.
    await worker.close();
    return ExitCode.interrupted;
  } finally {
    await worker.close().catch(() => undefined);
    for (const connection of connections.values()) await (await connection.catch(() => undefined))?.close();
    // With Redis away the turns' last writes cannot land: dropping the connection ends the wait for them.
    if (redis.status !== 'ready') await closeRedis(redis);
    for (const entry of groups.values()) await (await entry.catch(() => undefined))?.remote.stop();
    await closeRedis(redis);
  }
}
