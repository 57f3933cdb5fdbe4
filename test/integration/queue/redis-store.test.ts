// The Redis pieces against a real redis-server: the job state store (write-through, mirrored
// onto the queue job so the next owner gets it with the job, fenced against an owner that lost
// the job's lock and against a store that read a state changed since) and the shared credit
// holds (atomic admission, charges drawing holds down, a stale balance read refused).
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { openRedisJobStore, readStateMirrors, runStateKeys, stateMirrorOf, type QueueJobHold } from '../../../src/queue/redis-state-store.js';
import { redisCredits } from '../../../src/queue/redis-credits.js';
import { StateWriteError } from '../../../src/state/state-store.js';

let server: TestRedis;
let redis: Redis;

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis({ host: '127.0.0.1', port: server.port, maxRetriesPerRequest: null });
});

beforeEach(async () => {
  await redis.flushall();
});

afterAll(async () => {
  await redis.quit();
  await server.stop();
});

const storeOptions = { runKey: 'run1', jobId: 'p01', workflowPath: '/w.yaml', name: 'w', backendId: 'http://b' };

/**
 * A queue job as BullMQ keeps it (a hash with its data) held by `token` (its lock), and the
 * hold a worker that took it would open the store with: the mirror as the hash then stands.
 */
async function take(queueJob: string, token: string): Promise<QueueJobHold> {
  const key = `talk:jobs:${queueJob}`;
  await redis.hset(key, 'data', '{}');
  await redis.set(`${key}:lock`, token);
  return { key, lockKey: `${key}:lock`, token, mirror: stateMirrorOf(await redis.hgetall(key)) };
}

describe('Redis job state store', () => {
  it('writes through and onto the queue job; the next owner gets it with the job; the one before can no longer write', async () => {
    const first = await openRedisJobStore({ redis, ...storeOptions, queueJob: await take('q1', 'worker-a:1') });
    expect(first.hadPrevious).toBe(false);
    await first.updateJob('p01', { status: 'running', sessionId: '42' });
    await first.putStep('p01', 'export', { kind: 'export', status: 'running', attempts: 1, render: { id: 'r-1', phase: 'submitting' } });
    const keys = runStateKeys('run1');
    const mirror = stateMirrorOf(await redis.hgetall('talk:jobs:q1'));
    expect(mirror).toEqual({ text: await redis.get(keys.job('p01')), revision: Number(await redis.get(keys.revision('p01'))) });
    expect(mirror?.revision).toBe(2);

    // BullMQ handed the job on (its lock is another worker's now): the state comes with it.
    const hold = await take('q1', 'worker-b:7');
    expect(hold.mirror).toEqual(mirror);
    await redis.del(keys.job('p01'));
    const second = await openRedisJobStore({ redis, ...storeOptions, queueJob: hold });
    // Read from the mirror: the key just deleted was not read.
    expect(second.hadPrevious).toBe(true);
    expect(second.job('p01')).toMatchObject({ status: 'running', sessionId: '42' });
    expect(second.step('p01', 'export')).toMatchObject({ render: { id: 'r-1', phase: 'submitting' } });

    // The first owner lost the job: its write is refused, and every later one too.
    await expect(first.putStep('p01', 'export', { kind: 'export', status: 'running', attempts: 2 })).rejects.toBeInstanceOf(StateWriteError);
    await expect(first.updateJob('p01', { status: 'done' })).rejects.toThrow(/another worker took job p01 over/);
    await second.putStep('p01', 'export', { kind: 'export', status: 'done', attempts: 1 });
    const third = await openRedisJobStore({ redis, ...storeOptions, queueJob: await take('q1', 'worker-c:1') });
    expect(third.step('p01', 'export')?.status).toBe('done');
    expect(third.step('p01', 'export')?.render).toBeUndefined();
    expect(JSON.parse(await redis.get(keys.job('p01')) ?? '{}')).toMatchObject({ steps: { export: { status: 'done' } } });
  });

  it('a store that read the state before it changed is refused at its first write: a second queue job of the job, an older talk taking it', async () => {
    const keys = runStateKeys('run1');
    const a = await openRedisJobStore({ redis, ...storeOptions, queueJob: await take('q1', 'a:1') });
    // Another queue job of the same plan job (enqueued again after an input changed).
    const b = await openRedisJobStore({ redis, ...storeOptions, queueJob: await take('q2', 'b:1') });
    await a.updateJob('p01', { status: 'running', sessionId: '1' });
    await expect(b.updateJob('p01', { status: 'running', sessionId: '2' })).rejects.toThrow(/state of job p01 was changed since this worker read it/);
    expect(JSON.parse(await redis.get(keys.job('p01')) ?? '{}')).toMatchObject({ sessionId: '1' });
    // q2 keeps no mirror of a state it never wrote.
    expect(stateMirrorOf(await redis.hgetall('talk:jobs:q2'))).toBeUndefined();

    // An older talk takes the job by bumping the same counter (its fence): this store stops.
    await a.updateJob('p01', { status: 'running', sessionId: '3' });
    await redis.incr(keys.revision('p01'));
    await expect(a.updateJob('p01', { status: 'done' })).rejects.toThrow(/was changed since this worker read it/);
  });

  it('a job carries its state as enqueued: none for a new job, the state and revision of one that has them; taken, it starts from that', async () => {
    const keys = runStateKeys('run1');
    await redis.set(keys.job('p02'), '{"status":"done","steps":{}}');
    await redis.set(keys.revision('p02'), '5');
    const states = await readStateMirrors(redis, 'run1', ['p01', 'p02']);
    expect(states.get('p01')).toEqual({ text: '', revision: 0 });
    expect(states.get('p02')).toEqual({ text: '{"status":"done","steps":{}}', revision: 5 });

    const hold = await take('fresh', 't:1');
    expect(hold.mirror).toBeUndefined();
    const store = await openRedisJobStore({ redis, ...storeOptions, queueJob: { ...hold, mirror: states.get('p01') } });
    expect(store.hadPrevious).toBe(false);
    await store.updateJob('p01', { status: 'running' });
    expect(stateMirrorOf(await redis.hgetall('talk:jobs:fresh'))).toEqual({ text: await redis.get(keys.job('p01')), revision: 1 });
    const resumed = await openRedisJobStore({ redis, ...storeOptions, jobId: 'p02', queueJob: { ...(await take('again', 't:1')), mirror: states.get('p02') } });
    expect(resumed.job('p02')?.status).toBe('done');
    await resumed.updateJob('p02', { status: 'done' });
    expect(await redis.get(keys.revision('p02'))).toBe('6');
  });

  it('changes made while a write is on its way land together with the next write, as the job then stands', async () => {
    const store = await openRedisJobStore({ redis, ...storeOptions, queueJob: await take('q1', 't:1') });
    const first = store.updateJob('p01', { status: 'running', sessionId: '7' });
    // The first write has gone out (its EVAL is sent in the microtask after the change).
    await Promise.resolve();
    const rest = [
      store.putStep('p01', 'upload-portrait', { kind: 'upload', status: 'running', attempts: 1 }),
      store.putStep('p01', 'upload-voice', { kind: 'upload', status: 'running', attempts: 1 }),
      store.putStep('p01', 'upload-portrait', { kind: 'upload', status: 'done', attempts: 1 }),
    ];
    await Promise.all([first, ...rest]);
    expect(store.stats()).toMatchObject({ changes: 4, flushes: 2 });
    const reloaded = await openRedisJobStore({ redis, ...storeOptions, queueJob: await take('q1', 't:2') });
    expect(reloaded.job('p01')).toMatchObject({ status: 'running', sessionId: '7', steps: { 'upload-portrait': { status: 'done' }, 'upload-voice': { status: 'running' } } });
  });

  it('a write waits through a Redis restart and lands (AOF on)', async () => {
    const store = await openRedisJobStore({ redis, ...storeOptions, queueJob: await take('q1', 't:1') });
    await store.updateJob('p01', { status: 'running' });
    const restarting = server.restart();
    const write = store.putStep('p01', 'instruction-1', { kind: 'instruction', status: 'running', attempts: 1 });
    await restarting;
    await write;
    const reloaded = await openRedisJobStore({ redis, ...storeOptions, queueJob: await take('q1', 't:2') });
    expect(reloaded.job('p01')).toMatchObject({ status: 'running', steps: { 'instruction-1': { status: 'running' } } });
  });
});

describe('shared credit holds', () => {
  const books = (holdKey: string, limit?: number, leaseMs = 60_000) => redisCredits({ redis, account: 'acct', runKey: 'run1', holdKey, limit, leaseMs });

  it('admits jobs until the holds reach the balance; a charge draws its hold down; release gives the rest back', async () => {
    expect(await books('a').admit(100, async () => 300)).toBeUndefined();
    expect(await books('b').admit(100, async () => 300)).toBeUndefined();
    expect(await books('c').admit(200, async () => 300)).toEqual({ needs: 200, available: 100, limitedBy: 'balance' });
    // Job a was charged 60 (balance 240): its hold is 40 now, so 240 − 40 − 100 = 100 are free.
    const a = books('a');
    a.charged(60);
    expect(await books('c').admit(200, async () => 240)).toEqual({ needs: 200, available: 100, limitedBy: 'balance' });
    expect(await books('c').admit(100, async () => 240)).toBeUndefined();
    // a ends: its last 40 go back.
    await a.release();
    expect(await books('d').admit(40, async () => 240)).toBeUndefined();
    expect(await books('e').admit(1, async () => 240)).toEqual({ needs: 1, available: 0, limitedBy: 'balance' });
  });

  it('side by side, only what fits is admitted (the check and the hold are one step)', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => books(`j${i}`).admit(100, async () => 300)));
    expect(results.filter((r) => r === undefined)).toHaveLength(3);
  });

  it('a balance read made stale by a charge is read again', async () => {
    const a = books('a');
    expect(await a.admit(100, async () => 100)).toBeUndefined();
    let reads = 0;
    // The read happens, then job a is charged (balance 0) before the decision: read again.
    const verdict = await books('b').admit(100, async () => {
      reads += 1;
      if (reads === 1) {
        a.charged(100);
        await a.release();
        return 100;
      }
      return 0;
    });
    expect(reads).toBe(2);
    expect(verdict).toEqual({ needs: 100, available: 0, limitedBy: 'balance' });
  });

  it('a hold whose lease ran out (its worker stopped renewing it) is dropped at the next admission; a renewed one stays', async () => {
    const kept = books('kept', 150);
    const dead = books('dead', 150);
    expect(await kept.admit(100, async () => 300)).toBeUndefined();
    expect(await dead.admit(50, async () => 300)).toBeUndefined();
    expect(await books('next', 150).admit(100, async () => 300)).toEqual({ needs: 100, available: 0, limitedBy: 'budget' });
    const lease = async (job: string): Promise<number> => Number(await redis.zscore('talk:credits:acct:leases', job));
    const before = await lease('kept');
    expect(before).toBeGreaterThan(0);
    // `dead`'s worker renewed nothing for longer than its lease: its lease ended a while ago.
    const [seconds] = await redis.time();
    for (const key of ['talk:credits:acct:leases', 'talk:state:run1:leases']) await redis.zadd(key, Number(seconds) * 1000 - 1, 'dead');
    expect(await kept.renew()).toBe(true);
    expect(await lease('kept')).toBeGreaterThanOrEqual(before);
    // Its 50 credits are free again, for the balance and for the budget.
    expect(await books('next', 150).admit(50, async () => 300)).toBeUndefined();
    expect(await redis.hkeys('talk:credits:acct:holds')).toEqual(expect.arrayContaining(['kept', 'next']));
    expect(await redis.hexists('talk:credits:acct:holds', 'dead')).toBe(0);
    expect(await redis.hexists('talk:state:run1:holds', 'dead')).toBe(0);
    expect(await dead.renew()).toBe(false);
    // Released: hold and lease both go.
    await kept.release();
    expect(await redis.zscore('talk:credits:acct:leases', 'kept')).toBeNull();
    expect(await redis.hexists('talk:credits:acct:holds', 'kept')).toBe(0);
  });

  it('a hold without a lease (left by a version before leases) is given one at the next admission, and ends with it', async () => {
    await redis.hset('talk:credits:acct:holds', 'legacy', '50');
    await redis.hset('talk:state:run1:holds', 'legacy', '50');
    const kept = books('kept', 150, 60_000);
    expect(await kept.admit(100, async () => 300)).toBeUndefined();
    // Adopted: the legacy hold counts, and has a lease of the admitting job's length from now.
    const [seconds] = await redis.time();
    for (const key of ['talk:credits:acct:leases', 'talk:state:run1:leases']) {
      expect(Number(await redis.zscore(key, 'legacy'))).toBeGreaterThan(Number(seconds) * 1000 + 50_000);
    }
    expect(await books('next', 150).admit(50, async () => 300)).toEqual({ needs: 50, available: 0, limitedBy: 'budget' });
    // Nobody renews it: once its lease ends (moved into the past here, as in the test above), its credits are free.
    for (const key of ['talk:credits:acct:leases', 'talk:state:run1:leases']) await redis.zadd(key, Number(seconds) * 1000 - 1, 'legacy');
    expect(await books('next', 150).admit(50, async () => 300)).toBeUndefined();
    expect(await redis.hexists('talk:credits:acct:holds', 'legacy')).toBe(0);
  });

  it('the workflow budget counts what every worker spent and holds', async () => {
    expect(await books('a', 150).admit(100, async () => 1000)).toBeUndefined();
    expect(await books('b', 150).admit(100, async () => 1000)).toEqual({ needs: 100, available: 50, limitedBy: 'budget' });
  });
});

describe('test redis helper', () => {
  it('says how to install redis-server when there is none', async () => {
    await expect(startRedis({ command: 'redis-server-that-is-not-installed' })).rejects.toThrow(/apt-get install redis-server/);
  });
});

describe("the account's turns across workers", () => {
  it('a turn in flight on one worker makes recovery on another not alone; settled, its charge counts; a dead worker leaves it unsettled', async () => {
    const { TurnsGroup } = await import('../../../src/runner/index.js');
    const { RedisTurns } = await import('../../../src/queue/redis-turns.js');
    // Two workers; timers far apart, reads made by hand so the test orders them.
    const a = new RedisTurns({ redis, account: 'acct', worker: 'A', refreshMs: 60_000, aliveMs: 60_000 });
    const b = new RedisTurns({ redis, account: 'acct', worker: 'B', refreshMs: 60_000, aliveMs: 60_000 });
    await a.start();
    await b.start();
    const onA = new TurnsGroup(Date.now, undefined, a).join('queue-job-1');
    const onB = new TurnsGroup(Date.now, undefined, b).join('queue-job-2');
    const since = Date.now() - 1000;
    onB.open('p01\u0000instruction-1');
    await b.refresh();
    expect(onB.activity('p01\u0000instruction-1', since)).toEqual({ alone: true, othersOpen: 0, othersUnsettled: 0, othersCharged: 0 });

    onA.open('p01\u0000instruction-1');
    await a.stop(); // its writes land; its heartbeat timer stops (the key lasts 60 s)
    await b.refresh();
    expect(onB.activity('p01\u0000instruction-1', since)).toMatchObject({ alone: false, othersOpen: 1 });

    onA.settle('p01\u0000instruction-1', 100);
    await a.stop();
    await b.refresh();
    expect(onB.activity('p01\u0000instruction-1', since)).toMatchObject({ alone: false, othersOpen: 0, othersCharged: 100 });

    // Worker A opens another turn and dies: its heartbeat is gone, the turn counts as unsettled.
    onA.open('p02\u0000instruction-1');
    await a.stop();
    await redis.del('talk:worker-alive:A');
    await b.refresh();
    expect(onB.activity('p01\u0000instruction-1', since)).toMatchObject({ othersOpen: 0, othersUnsettled: 1, othersCharged: 100 });
    // The worker that takes A's job over records the same turn: it is not "another" turn to itself.
    const takeover = new TurnsGroup(Date.now, undefined, b).join('queue-job-1');
    expect(takeover.activity('p02\u0000instruction-1', since)).toMatchObject({ othersUnsettled: 0 });
    await b.stop();
  });
});
