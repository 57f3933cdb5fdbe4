// A worker process's slots on the queue (src/queue/job-worker.ts) against a real redis-server:
// each slot takes one job at a time with the state its job hash carries and the lock BullMQ
// gave it; the slots of one process count as one worker; their connection errors reach the
// log once, however many slots report them.
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { SlotWorkers, workerProcesses } from '../../../src/queue/job-worker.js';
import type { QueueJobHold } from '../../../src/queue/redis-state-store.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const clean of cleanups.splice(0).reverse()) await clean();
});

async function redisServer(): Promise<TestRedis> {
  const server = await startRedis();
  cleanups.push(() => server.stop());
  return server;
}

const connect = (server: TestRedis): Redis => new Redis({ host: '127.0.0.1', port: server.port, maxRetriesPerRequest: null });

function slotWorkers<Data, Result>(server: TestRedis, slots: number, processor: ConstructorParameters<typeof SlotWorkers<Data, Result>>[1], name = 'host-a-1') {
  const workers = new SlotWorkers<Data, Result>('jobs', processor, { connection: connect(server), prefix: 'talk', slots, name, lockDuration: 30_000, stalledInterval: 30_000, maxStalledCount: 1 });
  cleanups.push(() => workers.close());
  return workers;
}

describe('SlotWorkers', () => {
  it('each slot takes one job at a time, with the state mirror on its hash (none before a first write) and the lock BullMQ gave it', async () => {
    const server = await redisServer();
    const redis = connect(server);
    cleanups.push(() => redis.quit());
    const queue = new Queue('jobs', { connection: { host: '127.0.0.1', port: server.port }, prefix: 'talk' });
    cleanups.push(() => queue.close());
    for (let i = 0; i < 5; i += 1) await queue.add('w', { n: i }, { jobId: `q${i}` });
    // As an earlier owner's write left it.
    await redis.hset(queue.toKey('q1'), 'talk:state', '{"status":"running","steps":{}}', 'talk:rev', '4');

    const seen = new Map<string, { hold: QueueJobHold; lockHolder: string | null }>();
    let running = 0;
    let mostAtOnce = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    cleanups.push(async () => release());
    const workers: SlotWorkers<unknown, void> = slotWorkers(server, 3, async (job, token) => {
      running += 1;
      mostAtOnce = Math.max(mostAtOnce, running);
      const hold = workers.holdOf(job, token ?? '');
      seen.set(job.id ?? '', { hold, lockHolder: await redis.get(hold.lockKey) });
      await gate;
      running -= 1;
    });
    await workers.waitUntilReady();
    void workers.run();
    // Three slots, three jobs in hand: the other two wait in the queue.
    await vi.waitFor(() => expect(running).toBe(3), { timeout: 5000 });
    expect(await queue.getJobCounts('active', 'waiting')).toMatchObject({ active: 3, waiting: 2 });
    release();
    await vi.waitFor(async () => expect(await queue.getJobCounts('completed')).toMatchObject({ completed: 5 }), { timeout: 5000 });

    expect(mostAtOnce).toBe(3);
    expect(seen.size).toBe(5);
    expect(seen.get('q0')?.hold.mirror).toBeUndefined();
    expect(seen.get('q1')?.hold.mirror).toEqual({ text: '{"status":"running","steps":{}}', revision: 4 });
    for (const { hold, lockHolder } of seen.values()) {
      expect(hold.key).toMatch(/^talk:jobs:q\d$/);
      expect(lockHolder).toBe(hold.token);
    }
    // Every job says which process took it.
    for (const job of await queue.getJobs(['completed'])) expect(job.processedBy).toBe('host-a-1');
  });

  it('the slots of one process count as one worker; close() ends every connection they held', async () => {
    const server = await redisServer();
    const queue = new Queue('jobs', { connection: { host: '127.0.0.1', port: server.port }, prefix: 'talk' });
    cleanups.push(() => queue.close());
    const a = slotWorkers(server, 4, async () => undefined, 'host-a-1');
    const b = slotWorkers(server, 2, async () => undefined, 'host-b-1');
    await Promise.all([a.waitUntilReady(), b.waitUntilReady()]);
    const clients = await queue.getWorkers();
    // BullMQ lists each slot's blocking connection: six of them, from two processes.
    expect(clients).toHaveLength(6);
    expect(workerProcesses(clients)).toBe(2);

    const probe = connect(server);
    cleanups.push(() => probe.quit());
    const clientsNow = async (): Promise<number> => ((await probe.client('LIST')) as string).trim().split('\n').length;
    const before = await clientsNow();
    await a.close();
    await b.close();
    expect(workerProcesses(await queue.getWorkers())).toBe(0);
    // Six blocking connections and the two shared ones.
    expect(before - (await clientsNow())).toBe(8);
  });

  it('a Redis that goes away: each slot reports it, the log hears each message once in its window', async () => {
    const server = await redisServer();
    let now = 0;
    const heard: string[] = [];
    const raw: string[] = [];
    const workers = slotWorkers(server, 4, async () => undefined);
    workers.onError((error) => heard.push(error.message), { clock: { now: () => now }, windowMs: 10_000 });
    workers.on('error', (error) => raw.push(error.message));
    await workers.waitUntilReady();
    void workers.run();
    await server.stop();

    // Every slot and the shared connection say so, and again at each reconnect.
    await vi.waitFor(() => expect(raw.length).toBeGreaterThanOrEqual(10), { timeout: 10_000 });
    const distinct = new Set(raw);
    expect(heard).toHaveLength(distinct.size);
    expect(new Set(heard)).toEqual(distinct);

    // Past the window, the next report of the same message is heard again.
    now += 10_000;
    const seen = raw.length;
    await vi.waitFor(() => expect(raw.length).toBeGreaterThan(seen), { timeout: 10_000 });
    expect(heard.length).toBeGreaterThan(distinct.size);
    // Nothing can be handed back now: the slots say so, and close at once.
    expect(workers.connected).toBe(false);
    await workers.close();
  });
});
