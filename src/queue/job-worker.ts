/**
 * BullMQ's Worker, keeping the state each job is fetched with. BullMQ hands a worker the job's
 * whole hash when it takes the job, and its `Job` keeps the fields it knows; the state mirror
 * (redis-state-store.ts) rides in the same hash, so a job starts without reading its state.
 */
import { Worker, type Job, type JobJsonRaw } from 'bullmq';
import { stateMirrorOf, type QueueJobHold, type StateMirror } from './redis-state-store.js';

export class StateCarryingWorker<Data, Result> extends Worker<Data, Result> {
  private readonly mirrors = new WeakMap<Job<Data, Result>, StateMirror>();

  protected override createJob(raw: JobJsonRaw, jobId: string): Job<Data, Result> {
    const job = super.createJob(raw, jobId);
    const mirror = stateMirrorOf(raw as unknown as Record<string, unknown>);
    if (mirror) this.mirrors.set(job, mirror);
    return job;
  }

  /** The hold a job's state store writes under: the job's hash and lock, this worker's token, and the state it came with. */
  holdOf(job: Job<Data, Result>, token: string): QueueJobHold {
    const key = this.toKey(job.id ?? '');
    return { key, lockKey: `${key}:lock`, token, mirror: this.mirrors.get(job) };
  }
}
