/**
 * The queue's address and its Redis connections. One BullMQ queue (`talk:jobs`) carries every
 * job of every workflow enqueued on a Redis; the run state and credit holds live beside
 * it under the same `talk:` prefix.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { UsageError } from '../core/errors.js';

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
  };
}
