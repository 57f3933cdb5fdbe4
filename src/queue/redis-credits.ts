/**
 * Credit reservations shared by every worker of a queue (SPEC §1 money rules across machines):
 * before a job's first paid step its remaining estimate is held in Redis against the account's
 * live total and the workflow's budget, less what every job on every worker holds. The check
 * and the hold are one Lua script, so two workers can never both take the last credits.
 *
 * A charge draws the job's hold down (and adds to the run's spent credits); the job's end gives
 * the rest back. Why a sequence number: the live total is read from the backend before the
 * script runs, and a charge in between would make it stale while the charged job's hold is
 * already drawn down — counting the same credits as free twice. Every charge bumps the
 * account's sequence; a script that finds it moved since the read refuses to decide, and the
 * worker reads the balance again.
 *
 * Every hold has a lease (a time on Redis' clock, `leaseMs` from its last renewal): the worker
 * renews it whenever BullMQ renews its lock on the job, so a hold lasts while its worker is
 * alive and holds the job. A worker killed for good renews nothing; the next admission on the
 * account after the lease ran out drops the hold, and other jobs can have the credits. (A job
 * BullMQ hands to another worker is admitted again there, replacing its hold.) A hold found
 * without a lease, as versions before leases left them, is given one at the next admission.
 *
 * Keys: talk:credits:<account>:holds (hash job → credits), talk:credits:<account>:leases
 * (sorted set job → lease end, ms), talk:credits:<account>:seq, talk:state:<run>:holds and
 * talk:state:<run>:leases (the run's holds, for its budget), talk:state:<run>:spent.
 */
import type { Redis } from 'ioredis';
import { KEY_PREFIX } from './connection.js';
import { runStateKeys } from './redis-state-store.js';

/** What admission found for a job that does not fit (the runner's `AdmissionRefusal`). */
export interface SharedRefusal {
  needs: number;
  available: number;
  limitedBy: 'budget' | 'balance';
}

/** Redis' clock in ms, and the function that drops the holds whose lease ran out. */
const LEASES = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function lapse(holds, leases, leaseMs)
  -- A hold with no lease (taken before holds had them) gets one from now, so it ends too.
  -- Every hold taken since has its lease: only fewer leases than holds means there is one.
  if redis.call('HLEN', holds) > redis.call('ZCARD', leases) then
    for _, id in ipairs(redis.call('HKEYS', holds)) do redis.call('ZADD', leases, 'NX', now + leaseMs, id) end
  end
  local gone = redis.call('ZRANGEBYSCORE', leases, '-inf', now)
  for _, id in ipairs(gone) do redis.call('HDEL', holds, id) end
  if #gone > 0 then redis.call('ZREM', leases, unpack(gone)) end
end
`;

/** KEYS: account holds, run holds, run spent, account seq, account leases, run leases. */
const ADMIT = `${LEASES}
if (redis.call('GET', KEYS[4]) or '0') ~= ARGV[5] then return {2} end
lapse(KEYS[1], KEYS[5], tonumber(ARGV[6]))
lapse(KEYS[2], KEYS[6], tonumber(ARGV[6]))
local job = ARGV[1]
local cost = tonumber(ARGV[2])
local total = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local function others(key)
  local sum = 0
  local flat = redis.call('HGETALL', key)
  for i = 1, #flat, 2 do
    if flat[i] ~= job then sum = sum + tonumber(flat[i + 1]) end
  end
  return sum
end
local byBalance = total - others(KEYS[1])
local byBudget = byBalance + 1
if limit >= 0 then byBudget = limit - tonumber(redis.call('GET', KEYS[3]) or '0') - others(KEYS[2]) end
local available = math.min(byBalance, byBudget)
if cost > available then
  local by = 'balance'
  if byBudget <= byBalance then by = 'budget' end
  return {1, math.max(0, available), by}
end
local lease = now + tonumber(ARGV[6])
redis.call('HSET', KEYS[1], job, cost)
redis.call('HSET', KEYS[2], job, cost)
redis.call('ZADD', KEYS[5], lease, job)
redis.call('ZADD', KEYS[6], lease, job)
return {0}
`;

/** KEYS: account holds, run holds, account leases, run leases. 1 when the job still holds credits. */
const RENEW = `${LEASES}
local lease = now + tonumber(ARGV[2])
local held = 0
for i = 1, 2 do
  if redis.call('HEXISTS', KEYS[i], ARGV[1]) == 1 then
    redis.call('ZADD', KEYS[i + 2], 'XX', lease, ARGV[1])
    held = 1
  end
end
return held
`;

const CHARGE = `
local credits = tonumber(ARGV[2])
for i = 1, 2 do
  local held = tonumber(redis.call('HGET', KEYS[i], ARGV[1]) or '-1')
  if held >= 0 then redis.call('HSET', KEYS[i], ARGV[1], math.max(0, held - credits)) end
end
redis.call('INCRBY', KEYS[3], credits)
redis.call('INCR', KEYS[4])
return 1
`;

/** Options of one job's shared credit books. */
export interface RedisCreditsOptions {
  redis: Redis;
  /** The account the job spends from (backend + user), as a key. */
  account: string;
  runKey: string;
  /** The queue job's id: unique across workflows. */
  holdKey: string;
  /** The workflow's `budget.credits`, when it sets one. */
  limit: number | undefined;
  /** How long a hold lasts from its last renewal (`renew`). */
  leaseMs: number;
  /** A charge could not be recorded (Redis gone for good): the worker says so. */
  onError?: (error: Error) => void;
}

/** The shared books of one queue job (the runner's `SharedCredits`, and the lease's renewal). */
export function redisCredits(options: RedisCreditsOptions): {
  admit(cost: number, readAccountTotal: () => Promise<number>): Promise<SharedRefusal | undefined>;
  charged(credits: number): void;
  /** Extend the hold's lease; false when the hold is gone (its lease had run out). */
  renew(): Promise<boolean>;
  release(): Promise<void>;
} {
  const { redis, holdKey } = options;
  const account = `${KEY_PREFIX}:credits:${options.account}`;
  const run = runStateKeys(options.runKey);
  const holds = [`${account}:holds`, `${run.base}:holds`] as const;
  const leases = [`${account}:leases`, `${run.base}:leases`] as const;
  const spent = run.spent;
  const seq = `${account}:seq`;
  let pending: Promise<unknown> = Promise.resolve();
  /** Admitted and not released: there is a hold to renew. */
  let holding = false;
  return {
    async admit(cost, readAccountTotal) {
      for (;;) {
        const seen = (await redis.get(seq)) ?? '0';
        const total = await readAccountTotal();
        const result = (await redis.eval(ADMIT, 6, ...holds, spent, seq, ...leases, holdKey, cost, total, options.limit ?? -1, seen, options.leaseMs)) as [number, number?, string?];
        if (result[0] === 2) continue;
        if (result[0] === 0) {
          holding = true;
          return undefined;
        }
        return { needs: cost, available: Number(result[1] ?? 0), limitedBy: result[2] === 'budget' ? 'budget' : 'balance' };
      }
    },
    charged(credits) {
      // In order, and before the release: the runner's books are synchronous, Redis is not.
      pending = pending.then(() => redis.eval(CHARGE, 4, ...holds, spent, seq, holdKey, credits)).catch((error: unknown) => options.onError?.(error as Error));
    },
    async renew() {
      if (!holding) return true;
      return ((await redis.eval(RENEW, 4, ...holds, ...leases, holdKey, options.leaseMs)) as number) === 1;
    },
    async release() {
      holding = false;
      await pending;
      await redis.multi().hdel(holds[0], holdKey).hdel(holds[1], holdKey).zrem(leases[0], holdKey).zrem(leases[1], holdKey).exec();
    },
  };
}
