/**
 * The job side of `talk watch --queue`: each settled bundle becomes one queue job for the
 * `talk worker`s instead of running here. The watcher keeps everything else — settling, the
 * exactly-once ledger, leases, publishing and moving the sources — and waits for the job's
 * outcome before it publishes, so a worker still sees the bundle's files where they were.
 *
 * The job's id is its fingerprint, as for `talk run --queue`: a watcher restarted while a
 * bundle was queued or running finds the same job again and waits for it; nothing is added.
 */
import { Queue, QueueEvents } from 'bullmq';
import { InterruptedError } from '../core/errors.js';
import { stamp, type EventSink } from '../core/events.js';
import { planJobForItem, planRun } from '../plan/plan-run.js';
import { cachedHasher, fingerprintJob, hashFile } from '../runner/index.js';
import { closeRedis, connectRedis, KEY_PREFIX, QUEUE_NAME, reachRedis, redisOptions, type QueueAddress } from '../queue/connection.js';
import { JOB_DATA_VERSION, queueJobId, runKeyFor, type QueueJobData, type QueueJobResult } from '../queue/job-data.js';
import { readStateMirrors } from '../queue/redis-state-store.js';
import type { BundleResult, RunBundle } from '../watch/index.js';
import type { Workflow } from '../workflow/index.js';
import type { CommandContext, SharedOptions } from './context.js';
import { backendIdFor } from './resume-view.js';
import type { WatchJobRunner } from './watch-jobs.js';
import { watchQueuePresence } from './queue-presence.js';
import { queueKnobsFromEnv } from './queue-knobs.js';

export interface QueueBundleOptions {
  address: QueueAddress;
  workflow: () => Workflow;
  options: SharedOptions;
  ctx: CommandContext;
  emit: EventSink;
}

/** A `WatchJobRunner` whose bundles run on the queue's workers. */
export async function createQueueBundleRunner(o: QueueBundleOptions): Promise<WatchJobRunner> {
  // On a backend workers can share: watch.ts refuses the in-process one.
  const first = planRun(o.workflow(), { backend: o.options.backend, concurrency: o.options.concurrency });
  const backendId = backendIdFor(first, o.ctx.env);
  // Read first: a wrong value is refused before the watch starts.
  const knobs = queueKnobsFromEnv(o.ctx.env);
  await reachRedis(o.address);
  // The queue's commands and the state each bundle's job carries, on our connection, not one
  // BullMQ makes: closing it does not wait for a Redis that went away.
  const redis = connectRedis(o.address);
  const queue = new Queue<QueueJobData, QueueJobResult>(QUEUE_NAME, { connection: redis, prefix: KEY_PREFIX });
  const events = new QueueEvents(QUEUE_NAME, { connection: redisOptions(o.address), prefix: KEY_PREFIX });
  await events.waitUntilReady();
  let creditsUsed = 0;
  // While bundles wait on the workers: whether any worker takes them (said once per stretch).
  let waiting = 0;
  let presence: { stop: AbortController; done: Promise<void> } | undefined;
  const waitStarts = (): void => {
    waiting += 1;
    if (presence) return;
    const stop = new AbortController();
    const done = watchQueuePresence({
      queue,
      address: o.address,
      backend: first.backend.kind === 'url' ? backendId : undefined,
      program: o.ctx.program,
      say: (level, message) => o.emit(stamp({ type: 'notice', level, message })),
      signal: AbortSignal.any([stop.signal, o.ctx.signal]),
      everyMs: knobs.presenceInterval,
    });
    presence = { stop, done };
  };
  const waitEnds = (): void => {
    waiting -= 1;
    if (waiting > 0 || !presence) return;
    presence.stop.abort();
    presence = undefined;
  };

  const runBundle: RunBundle = async (bundle, signal): Promise<BundleResult> => {
    const workflow = o.workflow();
    const plan = planRun(workflow, { backend: o.options.backend, concurrency: o.options.concurrency });
    const job = planJobForItem(workflow, { id: bundle.name, files: bundle.files, instructions: bundle.instructions, output: bundle.output });
    const fingerprints = await fingerprintJob(job, { backendId, hasher: cachedHasher(hashFile), signal });
    const fps = Object.fromEntries([...fingerprints].map(([id, fp]) => [id, fp.fingerprint]));
    const fields = Object.fromEntries([...fingerprints].map(([id, fp]) => [id, fp.fields]));
    const { jobs: _jobs, ...settings } = plan;
    const id = queueJobId(workflow.file, backendId, job.id, fps);
    // The job carries its state as it stands (none, for a new bundle): a worker starts it from that.
    const state = (await readStateMirrors(redis, runKeyFor(plan.workflowPath, backendId), [job.id])).get(job.id);
    const data: QueueJobData = { version: JOB_DATA_VERSION, plan: settings, job, backendId, fingerprints: fps, fields, enqueuedAt: new Date().toISOString(), state };
    const queued = await queue.add(workflow.name, data, { jobId: id, removeOnComplete: false, removeOnFail: false });
    o.emit(stamp({ type: 'notice', level: 'info', job: bundle.name, message: `queued for the workers on ${o.address.shown}` }));
    let result: QueueJobResult;
    try {
      const stopped = new Promise<never>((_resolve, reject) => {
        if (signal.aborted) reject(new InterruptedError(`${bundle.name} stays queued`));
        signal.addEventListener('abort', () => reject(new InterruptedError(`${bundle.name} stays queued`)), { once: true });
      });
      waitStarts();
      try {
        result = await Promise.race([queued.waitUntilFinished(events), stopped]);
      } finally {
        waitEnds();
      }
    } catch (error) {
      if (error instanceof InterruptedError) throw error;
      return { status: 'failed', error: { code: 'queue', message: `${bundle.name}: ${(error as Error).message}`, hint: 'see the worker\'s output; drop the files again once it is fixed' } };
    }
    creditsUsed += result.creditsUsed;
    if (result.status === 'done') return { status: 'done', creditsUsed: result.creditsUsed, ...(result.outputs[0] ? { output: result.outputs[0].path } : {}) };
    if (result.status === 'interrupted') throw new InterruptedError(`${bundle.name} was interrupted on its worker`);
    return {
      status: 'failed',
      creditsUsed: result.creditsUsed,
      error: result.error ?? { code: result.status === 'not-started' ? 'credits' : result.status, message: `${bundle.name} ${result.status === 'not-started' ? 'was not started: it did not fit in the credits left' : 'failed'}` },
    };
  };

  return {
    backendLabel: `${backendId} (queue ${o.address.shown})`,
    runBundle,
    creditsUsed: () => creditsUsed,
    async close() {
      presence?.stop.abort();
      await presence?.done;
      await events.close().catch(() => undefined);
      await queue.close().catch(() => undefined);
      await closeRedis(redis);
    },
  };
}
