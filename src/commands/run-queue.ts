/**
 * `talk run <workflow> --queue redis://…`: the plan is made here as for a run on this machine,
 * then each of its jobs becomes one BullMQ job (its id is the job's fingerprint, so enqueuing
 * the same workflow again adds nothing) for `talk worker`s to take. Without `--detach` the
 * command then follows the jobs through BullMQ's queue events — the workers relay each step's
 * events as job progress — and reports and exits exactly as a run here would.
 *
 * Before anything is added, the batch must fit the credits as for a run here (credits-fit.ts):
 * else exit 3, unless `--partial`. Then credits are admitted per job by the workers, against
 * holds every worker shares; a job that does not fit ends `not-started` and the run exits 3 as
 * it would here. The in-process local backend cannot be shared: a usage error.
 */
import { Queue, QueueEvents, type Job } from 'bullmq';
import { ExitCode } from '../core/errors.js';
import { stamp } from '../core/events.js';
import { planListing, type Plan } from '../plan/types.js';
import { createReporter } from '../reporters/index.js';
import { cachedHasher, fingerprintJob, hashFile, type FileHasher } from '../runner/index.js';
import { closeRedis, connectRedis, KEY_PREFIX, QUEUE_NAME, reachRedis, redisOptions, type QueueAddress } from '../queue/connection.js';
import { readRedisRunJobs, readStateMirrors, runStateKeys, type StateMirror } from '../queue/redis-state-store.js';
import { relayedEvents } from '../queue/event-relay.js';
import { JOB_DATA_VERSION, queueJobId, runKeyFor, type QueueJobData, type QueueJobResult } from '../queue/job-data.js';
import { connectBackend, type Connection } from './connect.js';
import { reporterOutput, type CommandContext, type SharedOptions } from './context.js';
import { checkCreditsFit } from './credits-fit.js';
import { watchQueuePresence } from './queue-presence.js';
import { queueKnobsFromEnv } from './queue-knobs.js';
import { commandLine, workerCommandLine } from './resume-command.js';

/** How a queued run is reported. */
export interface QueueRunOptions extends SharedOptions {
  detach: boolean;
  /** Enqueue every job when not all fit in the credits (the workers admit the ones that do). */
  partial: boolean;
}

/** The run's status from its jobs' results (as `executePlan` decides it). */
function statusOf(results: QueueJobResult[], interrupted: boolean): 'success' | 'failed' | 'interrupted' | 'credits' {
  if (interrupted || results.some((r) => r.status === 'interrupted')) return 'interrupted';
  if (results.some((r) => r.status === 'credits' || r.status === 'not-started')) return 'credits';
  if (results.some((r) => r.status === 'failed')) return 'failed';
  return 'success';
}

/** BullMQ's largest priority (2^21); jobs past it share it, in order. */
const MAX_PRIORITY = 2 ** 21;

const EXIT = { success: ExitCode.ok, failed: ExitCode.failed, credits: ExitCode.credits, interrupted: ExitCode.interrupted } as const;

/**
 * `talk run`'s whole-batch fit check (credits-fit.ts) over the jobs about to be added and what
 * the workers recorded of them in Redis (done instructions cost nothing; the run's charges
 * count against its budget): the same refusal, before anything is queued.
 */
async function checkAddedJobsFit(adding: Plan, context: { address: QueueAddress; backendId: string; followCommand: string }, options: QueueRunOptions, ctx: CommandContext, hasher: FileHasher): Promise<void> {
  if (adding.jobs.length === 0) return;
  const redis = connectRedis(context.address);
  let connection: Connection | undefined;
  try {
    const runKey = runKeyFor(adding.workflowPath, context.backendId);
    const recorded = { jobs: await readRedisRunJobs(redis, runKey), creditsUsed: Number((await redis.get(runStateKeys(runKey).spent)) ?? 0) };
    const connect = async (): Promise<Connection> => (connection = await connectBackend(adding.backend, ctx.cwd, ctx));
    await checkCreditsFit(adding, recorded, { backendId: context.backendId, connect }, { partial: options.partial, hasher, signal: ctx.signal, again: context.followCommand });
  } finally {
    await connection?.close();
    await redis.quit().catch(() => undefined);
  }
}

/** Jobs added per round trip to Redis. */
const ADD_SLICE = 25;

/** The states of a run's jobs as they stand in Redis, for their queue jobs to carry. */
async function readJobStates(address: QueueAddress, runKey: string, jobIds: string[]): Promise<Map<string, StateMirror>> {
  const redis = connectRedis(address);
  try {
    return await readStateMirrors(redis, runKey, jobIds);
  } finally {
    await redis.quit().catch(() => undefined);
  }
}

/** Enqueue the plan's jobs (on a backend workers can share: run.ts refuses the in-process one); follow them unless `detach`. Returns the exit code. */
export async function enqueueAndFollow(
  plan: Plan,
  context: { address: QueueAddress; backendId: string; shown: string; followCommand: string },
  options: QueueRunOptions,
  ctx: CommandContext,
): Promise<number> {
  // Read first: a wrong value is refused before anything is enqueued.
  const knobs = queueKnobsFromEnv(ctx.env);
  await reachRedis(context.address);
  const started = Date.now();
  const hasher = cachedHasher(hashFile);
  const entries: { id: string; data: QueueJobData }[] = [];
  for (const job of plan.jobs) {
    const fingerprints = await fingerprintJob(job, { backendId: context.backendId, hasher, signal: ctx.signal });
    const fps = Object.fromEntries([...fingerprints].map(([id, fp]) => [id, fp.fingerprint]));
    const fields = Object.fromEntries([...fingerprints].map(([id, fp]) => [id, fp.fields]));
    const { jobs: _jobs, ...settings } = plan;
    entries.push({
      id: queueJobId(plan.workflowPath, context.backendId, job.id, fps),
      data: { version: JOB_DATA_VERSION, plan: settings, job, backendId: context.backendId, fingerprints: fps, fields, enqueuedAt: new Date().toISOString() },
    });
  }
  // Our connection, not one BullMQ makes: closing it does not wait for a Redis that went away.
  const redis = connectRedis(context.address);
  const queue = new Queue<QueueJobData, QueueJobResult>(QUEUE_NAME, { connection: redis, prefix: KEY_PREFIX });
  let before: (Job<QueueJobData, QueueJobResult> | undefined)[];
  try {
    before = await Promise.all(entries.map((e) => queue.getJob(e.id)));
    // Before anything is added: the jobs this adds must fit in the credits (those already
    // queued were checked when they were added).
    await checkAddedJobsFit({ ...plan, jobs: plan.jobs.filter((_, k) => before[k] === undefined) }, context, options, ctx, hasher);
  } catch (error) {
    await queue.close().catch(() => undefined);
    await closeRedis(redis);
    throw error;
  }
  let events: QueueEvents | undefined;
  const reporter = options.detach
    ? undefined
    : createReporter({ name: options.reporter, ...reporterOutput(options, ctx), workflowFile: context.shown, resumeCommand: context.followCommand, plan, cwd: ctx.cwd });
  try {
    const ours = new Map(entries.map((e) => [e.id, e.data.job.id as string]));
    const results = new Map<string, QueueJobResult>();
    let settle: () => void = () => undefined;
    const allSettled = new Promise<void>((resolve) => (settle = resolve));
    const record = (queueId: string, result: QueueJobResult): void => {
      if (!ours.has(queueId) || results.has(queueId)) return;
      results.set(queueId, result);
      if (results.size === ours.size) settle();
    };
    const failedResult = (queueId: string, reason: string): QueueJobResult => {
      const jobId = ours.get(queueId) ?? queueId;
      const job = plan.jobs.find((j) => j.id === jobId);
      for (const step of job?.steps ?? []) reporter?.emit(stamp({ type: 'step:failed', job: jobId, step: step.id, error: { code: 'queue', message: reason } }));
      return { job: jobId, status: 'failed', outputs: [], creditsUsed: 0, error: { code: 'queue', message: reason } };
    };
    if (reporter) {
      // Listening before anything is added: no event of our jobs can be missed.
      events = new QueueEvents(QUEUE_NAME, { connection: redisOptions(context.address), prefix: KEY_PREFIX });
      events.on('progress', ({ jobId, data }) => {
        if (!ours.has(jobId) || results.has(jobId)) return;
        for (const event of relayedEvents(data)) reporter.emit(event);
      });
      events.on('completed', ({ jobId, returnvalue }) => {
        const value = (typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue) as QueueJobResult;
        record(jobId, value);
      });
      events.on('failed', ({ jobId, failedReason }) => {
        if (ours.has(jobId) && !results.has(jobId)) record(jobId, failedResult(jobId, failedReason));
      });
      await events.waitUntilReady();
      reporter.emit(stamp({ type: 'run:start', workflow: plan.workflowPath, name: plan.name, backend: context.backendId, jobs: plan.jobs.length, resumed: false, ...(plan.shard ? { shard: plan.shard } : {}), plan: planListing(plan) }));
    }
    const already = before.filter((j) => j !== undefined).length;
    // Fairness: the k-th job of every workflow has priority k, so workers take the first jobs of
    // each workflow before the later ones of any — a 10-job workflow enqueued behind a 10,000-job
    // one is not starved; it interleaves. (BullMQ: 1 is first; jobs of one priority in order.)
    // Each job carries its state as it stands (none, for a new job): a worker starts it from that.
    const states = await readJobStates(context.address, runKeyFor(plan.workflowPath, context.backendId), entries.map((e) => e.data.job.id));
    const adds = entries.map((e, k) => ({ name: plan.name, data: { ...e.data, state: states.get(e.data.job.id) }, opts: { jobId: e.id, priority: Math.min(k + 1, MAX_PRIORITY), removeOnComplete: false, removeOnFail: false } }));
    // In slices: one MULTI holds Redis until its last job is added, and no worker can take the
    // first job meanwhile. A slice interrupted half-way leaves what it added queued; running the
    // same command again adds the rest (job ids are the jobs' fingerprints).
    for (let from = 0; from < adds.length; from += ADD_SLICE) await queue.addBulk(adds.slice(from, from + ADD_SLICE));
    const message = `enqueued ${entries.length - already} of ${entries.length} jobs on ${context.address.shown}${already > 0 ? ` (${already} were already queued: the same jobs are never added twice)` : ''}`;
    if (!reporter) {
      const worker = workerCommandLine(context.address.shown, plan.backend.kind === 'url' ? context.backendId : undefined, ctx.program);
      const status = commandLine(['status', context.shown, '--queue', context.address.shown], ctx.program);
      if (options.reporter === 'json') {
        // stdout carries JSON lines only in this mode.
        ctx.stdout.write(`${JSON.stringify(stamp({ type: 'notice', level: 'info', message: `${message}; follow with: ${context.followCommand}` }))}\n`);
        return ExitCode.ok;
      }
      ctx.stdout.write(`${message}\nfollow with: ${context.followCommand}\nrun them with: ${worker}\nsee where they are: ${status}\n`);
      return ExitCode.ok;
    }
    reporter.emit(stamp({ type: 'notice', level: 'info', message }));
    // Jobs that ended before we listened (enqueued and finished earlier) are read back. Their
    // state first, then the job: a job read while it ran and found finished a moment later
    // would bring no result (the 'completed' event brings it then).
    for (const entry of entries) {
      const state = await queue.getJobState(entry.id);
      if (state !== 'completed' && state !== 'failed') continue;
      const job = await queue.getJob(entry.id);
      if (!job) continue;
      if (state === 'failed') record(entry.id, failedResult(entry.id, job.failedReason));
      else if (job.returnvalue) record(entry.id, job.returnvalue);
    }
    if (entries.length === 0) settle();
    const interrupted = new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      ctx.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    // Jobs that nothing takes (no worker, or the queue paused) are said to wait, and why.
    const followed = new AbortController();
    const presence = results.size < ours.size
      ? watchQueuePresence({
          queue,
          address: context.address,
          backend: plan.backend.kind === 'url' ? context.backendId : undefined,
          program: ctx.program,
          say: (level, message) => reporter.emit(stamp({ type: 'notice', level, message })),
          signal: AbortSignal.any([followed.signal, ctx.signal]),
          everyMs: knobs.presenceInterval,
        })
      : undefined;
    try {
      await Promise.race([allSettled, interrupted]);
    } finally {
      followed.abort();
      await presence;
    }
    const done = [...results.values()];
    const status = statusOf(done, results.size < ours.size);
    const notStarted = done.filter((r) => r.status === 'not-started');
    if (notStarted.length > 0) {
      const needs = notStarted.reduce((sum, r) => sum + (r.notStarted?.needs ?? 0), 0);
      reporter.emit(stamp({ type: 'notice', level: 'warn', message: `${notStarted.length} of ${ours.size} jobs not started: they need about ${needs} credits, more than the account's balance (less what other jobs hold) left for them (${notStarted.map((r) => r.job).join(', ')})` }));
    }
    const outputs = done.flatMap((r) => r.outputs);
    const creditsUsed = done.reduce((sum, r) => sum + r.creditsUsed, 0);
    reporter.emit(stamp({ type: 'run:done', status, outputs, creditsUsed, durationMs: Date.now() - started }));
    await reporter.close();
    if (status === 'interrupted') ctx.stderr.write(`stopped following; the jobs stay queued and the workers go on. Follow again with: ${context.followCommand}\n`);
    return EXIT[status];
  } finally {
    await reporter?.close();
    await events?.close().catch(() => undefined);
    await queue.close().catch(() => undefined);
    await closeRedis(redis);
  }
}
