// The runner's admission against the queue's shared credit books (real Redis, a real local
// backend): a charge made on another worker between this worker's balance read and its
// admission must not leave the same credits counted free twice; and a turn another worker has
// been charged for but not booked yet must not be counted twice either (gone from the balance
// and still held).
import path from 'node:path';
import { rm } from 'node:fs/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { batchForm, makeWorkspace, shortForm } from '../runner/rig.js';
import { startLocalBackend } from '../../../src/local-backend/index.js';
import { createBackendClient, createTokenProvider } from '../../../src/backend/index.js';
import type { BackendClient } from '../../../src/backend/types.js';
import { loadWorkflow } from '../../../src/workflow/index.js';
import { planRun, type Plan, type PlanJob } from '../../../src/plan/index.js';
import { createRunner, CreditBudget, TurnsGroup, type AccountTurns, type Runner, type SharedCredits } from '../../../src/runner/index.js';
import { RedisTurns } from '../../../src/queue/redis-turns.js';
import { openRedisJobStore } from '../../../src/queue/redis-state-store.js';
import type { StateStore } from '../../../src/state/index.js';
import { redisCredits } from '../../../src/queue/redis-credits.js';
import { writeFile } from 'node:fs/promises';

let server: TestRedis;
let redis: Redis;

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis({ host: '127.0.0.1', port: server.port, maxRetriesPerRequest: null });
});

afterAll(async () => {
  await redis.quit();
  await server.stop();
});

/** A queue job's state store, its BullMQ hash and lock held by this test as a worker holds them. */
async function heldStore(plan: Plan, job: PlanJob, runKey: string, queueKey: string, token: string, backendId: string): Promise<StateStore> {
  await redis.hset(queueKey, 'data', '{}');
  await redis.set(`${queueKey}:lock`, token);
  return openRedisJobStore({ redis, runKey, jobId: job.id, workflowPath: plan.workflowPath, name: plan.name, backendId, queueJob: { key: queueKey, lockKey: `${queueKey}:lock`, token } });
}

/** A runner as a worker builds one for a job: one slot, the shared credit books, perhaps shared turns. */
function workerRunner(plan: Plan, deps: { client: BackendClient; store: StateStore; shared: SharedCredits; backendId: string; turns?: AccountTurns }): Runner {
  const { shared } = deps;
  return createRunner({
    client: deps.client,
    store: deps.store,
    emit: () => undefined,
    signal: new AbortController().signal,
    backendId: deps.backendId,
    limits: { concurrency: 1, uploads: 1, renders: 1 },
    language: plan.language,
    credits: new CreditBudget(undefined, 0, (_job, credits) => shared.charged(credits)),
    sharedCredits: shared,
    turns: deps.turns,
  });
}

describe('admission with shared credit books', () => {
  it('a charge on another worker right after this worker read the balance is seen: the job is refused, not admitted on stale credits', async () => {
    const dir = await makeWorkspace();
    const backend = await startLocalBackend({ dataDir: path.join(dir, 'backend-data'), silentEditRatio: 0, anonymousCredits: 100 });
    try {
      await writeFile(path.join(dir, 'workflow.yaml'), shortForm());
      const { workflow } = await loadWorkflow(path.join(dir, 'workflow.yaml'), { env: {}, cwd: dir });
      const plan = planRun(workflow!, { backend: backend.url });
      const job = plan.jobs[0]!;
      const real = createBackendClient({ baseUrl: backend.url, auth: createTokenProvider({ env: { NEMO_CLIENT_ID: 'shared-admission' }, configDir: path.join(dir, 'config'), baseUrl: backend.url }), env: {} });
      const books = (holdKey: string) => redisCredits({ redis, account: 'acct', runKey: 'run1', holdKey, limit: undefined, leaseMs: 60_000 });
      // Another worker's job holds the account's 100 credits and is about to be charged them.
      const other = books('other-job');
      expect(await other.admit(100, async () => 100)).toBeUndefined();
      // This worker's balance reads: the first returns 100, and the other job's charge lands
      // right after it (its hold drawn to 0, the sequence bumped); from then on the balance is 0.
      let reads = 0;
      const client = new Proxy(real, {
        get(target, property, receiver) {
          if (property !== 'getCredits') return Reflect.get(target, property, receiver) as unknown;
          return async () => {
            reads += 1;
            if (reads > 1) return { available: 0, frozen: 0 };
            other.charged(100);
            await other.release();
            return { available: 100, frozen: 0 };
          };
        },
      }) as BackendClient;
      const store = await heldStore(plan, job, 'run1', 'talk:jobs:this-job', 'token-1', backend.url);
      const runner = workerRunner(plan, { client, store, shared: books('this-job'), backendId: backend.url });
      const outcome = await runner.runJob(plan, job);
      await store.close();
      expect(outcome).toMatchObject({ status: 'not-started', notStarted: { needs: 100, available: 0, limitedBy: 'balance' } });
      expect(reads).toBe(2);
      expect(backend.stats()).toMatchObject({ sessionsCreated: 0, uploads: 0, messages: 0 });
      await real.close();
    } finally {
      await backend.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
  it('two workers on exactly 200 credits: the second waits for the first one\'s turn, charged but not yet booked, instead of counting it twice', async () => {
    const dir = await makeWorkspace(2);
    const backend = await startLocalBackend({ dataDir: path.join(dir, 'backend-data'), silentEditRatio: 0, anonymousCredits: 200 });
    const remotes = [new RedisTurns({ redis, account: 'acct', worker: 'A' }), new RedisTurns({ redis, account: 'acct', worker: 'B' })];
    try {
      await writeFile(path.join(dir, 'workflow.yaml'), batchForm('pair', 1));
      const { workflow } = await loadWorkflow(path.join(dir, 'workflow.yaml'), { env: {}, cwd: dir });
      const plan = planRun(workflow!, { backend: backend.url });
      expect(plan.jobs).toHaveLength(2);
      const real = createBackendClient({ baseUrl: backend.url, auth: createTokenProvider({ env: { NEMO_CLIENT_ID: 'shared-admission-2' }, configDir: path.join(dir, 'config'), baseUrl: backend.url }), env: {} });
      // Worker A hears of its turn 1.5 s after the backend ended and charged it.
      let charged!: () => void;
      const chargedAtBackend = new Promise<void>((resolve) => (charged = resolve));
      const heardLate = new Proxy(real, {
        get(target, property, receiver) {
          if (property !== 'sendInstruction') return Reflect.get(target, property, receiver) as unknown;
          return async (...args: Parameters<BackendClient['sendInstruction']>) => {
            const result = await target.sendInstruction(...args);
            charged();
            await new Promise((resolve) => setTimeout(resolve, 1_500));
            return result;
          };
        },
      }) as BackendClient;
      for (const remote of remotes) await remote.start();
      const [onA, onB] = remotes.map((remote, i) => new TurnsGroup(Date.now, undefined, remote).join(`queue-job-${i}`));
      const runOn = async (worker: number, client: BackendClient, turns: NonNullable<typeof onA>) => {
        const job = plan.jobs[worker]!;
        const store = await heldStore(plan, job, 'run2', `talk:jobs:q${worker}`, `token-${worker}`, backend.url);
        const shared = redisCredits({ redis, account: 'acct', runKey: 'run2', holdKey: `q${worker}`, limit: undefined, leaseMs: 60_000 });
        const runner = workerRunner(plan, { client, store, shared, backendId: backend.url, turns });
        try {
          return await runner.runJob(plan, job);
        } finally {
          await store.close();
        }
      };
      const first = runOn(0, heardLate, onA!);
      await chargedAtBackend;
      // Worker B has read A's turn as open (its books are read every 250 ms).
      while (onB!.openElsewhere() === 0) await remotes[1]!.refresh();
      expect((await real.getCredits()).available).toBe(100);
      const second = await runOn(1, real, onB!);
      expect(second.status).toBe('done');
      expect((await first).status).toBe('done');
      expect(backend.stats()).toMatchObject({ messages: 2, creditsSpent: 200 });
      await real.close();
    } finally {
      for (const remote of remotes) await remote.stop();
      await backend.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
