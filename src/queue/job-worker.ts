/**
 * How a worker process takes jobs from the queue: one BullMQ Worker per slot, each keeping the
 * state its job is fetched with.
 *
 * One per slot because of how a BullMQ Worker fills its concurrency: one fetch after another,
 * and the jobs it fetched wait until the last of them has come. When a batch reaches an idle
 * worker, its slots stand empty for as many round trips as it has slots, each one longer for
 * the jobs already starting on the same event loop; one Worker per slot fetches for every slot
 * at once. Measured in bench/notes/queue.md (1 worker × 20 slots: a slot's first job started
 * 50–52 ms after the batch was added with one Worker, 15–17 ms with one per slot). Between jobs
 * nothing changes: a slot's next job comes with the reply that records its last one finished.
 *
 * The Workers share one connection for their commands; each has its own blocking one (BullMQ
 * waits for new jobs on it), all named after the process, so `talk queue status` counts
 * processes, not slots.
 */
import { Worker, type Job, type JobJsonRaw, type Processor, type WorkerListener } from 'bullmq';
import type { Redis } from 'ioredis';
import { systemClock, type Clock } from '../core/clock.js';
import { closeRedis } from './connection.js';
import { stateMirrorOf, type QueueJobHold, type StateMirror } from './redis-state-store.js';

/**
 * BullMQ's Worker, keeping the state each job is fetched with. BullMQ hands a worker the job's
 * whole hash when it takes the job, and its `Job` keeps the fields it knows; the state mirror
 * (redis-state-store.ts) rides in the same hash, so a job starts without reading its state.
 */
class StateCarryingWorker<Data, Result> extends Worker<Data, Result> {
  constructor(
    name: string,
    processor: Processor<Data, Result>,
    options: ConstructorParameters<typeof Worker<Data, Result>>[2],
    private readonly mirrors: WeakMap<Job<Data, Result>, StateMirror>,
  ) {
    super(name, processor, options);
  }

  protected override createJob(raw: JobJsonRaw, jobId: string): Job<Data, Result> {
    const job = super.createJob(raw, jobId);
    const mirror = stateMirrorOf(raw as unknown as Record<string, unknown>);
    if (mirror) this.mirrors.set(job, mirror);
    return job;
  }
}

export interface SlotWorkersOptions {
  /** The connection every slot sends its commands on (`maxRetriesPerRequest: null`); closed with the slots. */
  connection: Redis;
  prefix: string;
  slots: number;
  /** This process's name on the queue: its blocking connections' client name, and each job's `processedBy`. */
  name: string;
  lockDuration: number;
  stalledInterval: number;
  maxStalledCount: number;
}

/** How long a connection error already shown stays quiet. */
const ERROR_REPEAT_MS = 10_000;

/** A worker process's slots on one queue: `slots` BullMQ Workers of one job at a time. */
export class SlotWorkers<Data, Result> {
  private readonly mirrors = new WeakMap<Job<Data, Result>, StateMirror>();
  private readonly workers: StateCarryingWorker<Data, Result>[];
  private readonly connection: Redis;

  constructor(queueName: string, processor: Processor<Data, Result>, options: SlotWorkersOptions) {
    this.connection = options.connection;
    this.workers = Array.from(
      { length: Math.max(1, options.slots) },
      () =>
        new StateCarryingWorker<Data, Result>(
          queueName,
          processor,
          {
            connection: options.connection,
            prefix: options.prefix,
            name: options.name,
            concurrency: 1,
            autorun: false,
            lockDuration: options.lockDuration,
            stalledInterval: options.stalledInterval,
            maxStalledCount: options.maxStalledCount,
          },
          this.mirrors,
        ),
    );
  }

  /** `listener` on every slot's Worker. */
  on<E extends keyof WorkerListener<Data, Result>>(event: E, listener: WorkerListener<Data, Result>[E]): void {
    for (const worker of this.workers) worker.on(event, listener);
  }

  /**
   * `listener` for the slots' errors, each message once in `windowMs`: every slot reports the
   * shared connection's errors, each its own blocking connection's, and a Redis that is away
   * sends them again at every reconnect.
   */
  onError(listener: (error: Error) => void, options: { clock?: Clock; windowMs?: number } = {}): void {
    const clock = options.clock ?? systemClock;
    const windowMs = options.windowMs ?? ERROR_REPEAT_MS;
    const shown = new Map<string, number>();
    this.on('error', (error) => {
      const now = clock.now();
      const last = shown.get(error.message);
      if (last !== undefined && now - last < windowMs) return;
      shown.set(error.message, now);
      listener(error);
    });
  }

  /** The hold a job's state store writes under: the job's hash and lock, this worker's token, and the state it came with. */
  holdOf(job: Job<Data, Result>, token: string): QueueJobHold {
    const key = this.workers[0]!.toKey(job.id ?? '');
    return { key, lockKey: `${key}:lock`, token, mirror: this.mirrors.get(job) };
  }

  async waitUntilReady(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.waitUntilReady()));
  }

  /** Take jobs until `close()`; resolves then. */
  async run(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.run()));
  }

  /** Whether Redis answers on the slots' connection now (else `close()` cannot hand jobs back). */
  get connected(): boolean {
    return this.connection.status === 'ready';
  }

  /**
   * Stop taking jobs, wait for the ones in flight (they hand themselves back), and close the
   * connections. With Redis away (not `connected`) nothing can be handed back or recorded, and
   * BullMQ's close would wait for it: the slots are closed at once, and their jobs' locks run
   * out so that BullMQ's stalled check hands the jobs on, as after a worker killed.
   */
  async close(): Promise<void> {
    const force = !this.connected;
    try {
      await Promise.all(this.workers.map((worker) => worker.close(force)));
    } finally {
      await closeRedis(this.connection);
    }
  }
}

/** How many worker processes the queue's workers (BullMQ `getWorkers()`) are: slots of one process share its name. */
export function workerProcesses(clients: readonly { rawname?: string }[]): number {
  const named = new Set<string>();
  let unnamed = 0;
  for (const client of clients) {
    if (client.rawname?.includes(':w:')) named.add(client.rawname);
    else unnamed += 1;
  }
  return named.size + unnamed;
}
