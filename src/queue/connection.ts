/**
 * The queue's address and its Redis connections. One BullMQ queue (`talk:jobs`) carries every
 * job of every workflow enqueued on a Redis; the run state and credit holds live beside
 * it under the same `talk:` prefix.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { sleep } from '../core/abort.js';
import { EnvironmentError, UsageError } from '../core/errors.js';

/** The key prefix of everything talk keeps in Redis. */
export const KEY_PREFIX = 'talk';
/** The BullMQ queue name (its keys are `talk:jobs:*`). */
export const QUEUE_NAME = 'jobs';

/** A parsed `redis://host:port[/db]`. */
export interface QueueAddress {
  host: string;
  port: number;
  db: number;
  /** As given, for messages and the commands talk prints (never with a password). */
  shown: string;
  username?: string;
  password?: string;
}

/** Read `--queue` / `TALK_QUEUE`: `redis://host[:port][/db]` (or `rediss://` for TLS is not supported yet). */
export function parseQueueUrl(text: string): QueueAddress {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--queue expects redis://host:port[/db], got "${text}"`, { hint: 'e.g. --queue redis://127.0.0.1:6379 (or set TALK_QUEUE)' });
  }
  if (url.protocol !== 'redis:') throw new UsageError(`--queue expects a redis:// URL, got "${url.protocol}//…"`, { hint: 'e.g. --queue redis://127.0.0.1:6379/0' });
  const dbText = url.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0) throw new UsageError(`--queue: the database must be a whole number, got "${dbText}"`, { hint: 'e.g. redis://127.0.0.1:6379/2' });
  const port = url.port === '' ? 6379 : Number(url.port);
  const shown = `redis://${url.hostname}:${port}${db === 0 ? '' : `/${db}`}`;
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port,
    db,
    shown,
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
  };
}

/**
 * A Redis connection for BullMQ and talk's own keys. `maxRetriesPerRequest: null`: a command
 * waits through a Redis restart instead of failing (BullMQ requires it for workers), so a state
 * write in flight lands when Redis is back, before the request it guards goes out.
 */
export function connectRedis(address: QueueAddress): Redis {
  return new Redis(redisOptions(address));
}

/** How long a disconnected socket may take to close. */
const DISCONNECT_MS = 100;

/** The connection options (BullMQ's queues, workers and event readers make their own from these). */
export function redisOptions(address: QueueAddress): RedisOptions {
  return {
    host: address.host,
    port: address.port,
    db: address.db,
    ...(address.username ? { username: address.username } : {}),
    ...(address.password ? { password: address.password } : {}),
    maxRetriesPerRequest: null,
    // Reconnect quickly and keep trying: workers outlive a Redis restart.
    retryStrategy: (times) => Math.min(times * 100, 2000),
    // A socket not closed this long after a disconnect is destroyed. ioredis waits 2 s for a
    // close, and a connection dropped while Redis is away had its close already: a command
    // stopped then (Ctrl-C) was held those 2 s for nothing.
    disconnectTimeout: DISCONNECT_MS,
  };
}

/**
 * End a connection: QUIT when it is connected, else drop it. A connection waiting for a Redis
 * that is away would hold a QUIT (and every command still queued on it) until Redis is back;
 * dropping it fails those commands at once.
 */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
  else if (redis.status !== 'end') redis.disconnect();
}

/** How long one look at Redis waits for a host that does not answer at all. */
const REACH_TIMEOUT_MS = 3000;
/** Between looks, while a worker waits for Redis to come up. */
const REACH_RETRY_MS = 1000;

/** One look: connect and PING, no retries; rejects with why not. */
async function pingOnce(address: QueueAddress): Promise<void> {
  const probe = new Redis({ ...redisOptions(address), lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: REACH_TIMEOUT_MS });
  // Why a connection failed comes as an 'error' event; connect() then only says it closed.
  let failure: Error | undefined;
  probe.on('error', (error: Error) => (failure ??= error));
  try {
    await probe.connect();
    await probe.ping();
  } catch (error) {
    throw failure ?? error;
  } finally {
    // A connection that failed has ended already: disconnecting it again would leave a timer
    // (ioredis's disconnect timeout, DISCONNECT_MS) holding the process for nothing.
    if (probe.status !== 'end') probe.disconnect();
  }
}

/** Why Redis did not answer, in a user's words. */
function unreachableError(address: QueueAddress, error: Error): EnvironmentError {
  const text = error.message;
  if (/NOAUTH|WRONGPASS|invalid password|invalid username/i.test(text)) {
    return new EnvironmentError('redis-auth', `the queue's Redis at ${address.shown} refused the login: ${text}`, { cause: error, hint: 'put its user and password in the URL (redis://user:password@host:port), or check them' });
  }
  if (/Protocol error/i.test(text)) {
    return new EnvironmentError('redis-protocol', `something answers at ${address.shown}, but not as Redis does (${text})`, { cause: error, hint: 'check the host and port of --queue / TALK_QUEUE: they must be a Redis server\'s' });
  }
  return new EnvironmentError('redis-unreachable', `cannot reach the queue's Redis at ${address.shown}: ${text}`, {
    cause: error,
    hint: `start Redis there (e.g. \`redis-server --port ${address.port} --appendonly yes\`), or point --queue / TALK_QUEUE at one that runs`,
  });
}

/**
 * Make sure Redis answers before a command builds on it. The connections talk keeps wait
 * through a restart (`maxRetriesPerRequest: null`), so without this look a wrong address or a
 * Redis that is down would leave a command waiting silently. `wait`: a worker started before
 * its Redis says so once (`onWaiting`) and looks again every second until Redis answers or
 * `signal` aborts; everything else fails at once with what to do.
 */
export async function reachRedis(address: QueueAddress, options: { signal?: AbortSignal; wait?: boolean; onWaiting?: (error: EnvironmentError) => void } = {}): Promise<void> {
  let told = false;
  for (;;) {
    try {
      await pingOnce(address);
      return;
    } catch (error) {
      const reason = unreachableError(address, error as Error);
      // Only a Redis that is not up yet is worth waiting for.
      if (!options.wait || reason.reason !== 'redis-unreachable') throw reason;
      if (!told) options.onWaiting?.(reason);
      told = true;
      await sleep(REACH_RETRY_MS, options.signal);
    }
  }
}
