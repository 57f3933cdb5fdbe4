/**
 * Timings of the queue, from the environment (tests and operators shorten them; the defaults
 * are BullMQ's):
 * - TALK_QUEUE_LOCK_MS: how long a worker's lock on a job lasts without renewal (BullMQ
 *   `lockDuration`, default 30 s); a worker that dies loses its jobs after this long;
 * - TALK_QUEUE_STALLED_MS: how often workers look for jobs whose lock expired (BullMQ
 *   `stalledInterval`, default 30 s);
 * - TALK_QUEUE_MAX_STALLED: how many times a job whose worker died is handed on before it
 *   counts as failed (BullMQ `maxStalledCount`, default 5 here);
 * - TALK_QUEUE_PRESENCE_MS: how often a following `talk run --queue` or `talk watch --queue`
 *   counts the workers while its jobs wait (default 5 s).
 */
import { UsageError } from '../core/errors.js';
import { parseQueueUrl, type QueueAddress } from '../queue/connection.js';
import { PRESENCE_CHECK_MS } from './queue-presence.js';

export interface QueueKnobs {
  lockDuration: number;
  stalledInterval: number;
  maxStalledCount: number;
  presenceInterval: number;
}

function ms(env: Readonly<Record<string, string | undefined>>, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 100) throw new UsageError(`${name} must be a whole number of milliseconds, at least 100; got "${text}"`);
  return n;
}

function count(env: Readonly<Record<string, string | undefined>>, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${name} must be a whole number, 0 or more; got "${text}"`);
  return n;
}

export function queueKnobsFromEnv(env: Readonly<Record<string, string | undefined>>): QueueKnobs {
  return {
    lockDuration: ms(env, 'TALK_QUEUE_LOCK_MS', 30_000),
    stalledInterval: ms(env, 'TALK_QUEUE_STALLED_MS', 30_000),
    maxStalledCount: count(env, 'TALK_QUEUE_MAX_STALLED', 5),
    presenceInterval: ms(env, 'TALK_QUEUE_PRESENCE_MS', PRESENCE_CHECK_MS),
  };
}

/** A queue's jobs on the in-process local backend: the workers cannot share it (exit 2). */
export function localBackendNotShared(command: string): UsageError {
  return new UsageError('workers cannot share the in-process local backend', { hint: `run one \`talk serve\` and pass its URL with --backend to \`${command}\` and to every \`talk worker\`` });
}

/** `--queue`, else `TALK_QUEUE`, parsed; undefined when neither is set. */
export function queueAddressFrom(flag: string | undefined, env: Readonly<Record<string, string | undefined>>): QueueAddress | undefined {
  const text = flag ?? (env['TALK_QUEUE'] === '' ? undefined : env['TALK_QUEUE']);
  return text === undefined ? undefined : parseQueueUrl(text);
}
