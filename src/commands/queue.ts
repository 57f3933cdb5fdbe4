/**
 * `talk queue status|pause|resume|drain|limit --queue redis://…`: the shared queue at a glance,
 * and its switches. `pause` stops every worker from taking new jobs (jobs in flight finish);
 * `resume` lets them take jobs again; `drain` removes the jobs no worker has taken yet (jobs in
 * flight finish; their state and the finished jobs stay, so enqueuing again adds back only what
 * was removed). `limit rate=N/DURATION at-once=N` sets limits every worker obeys (BullMQ's
 * global rate limit and global concurrency, kept in Redis): at most N jobs started per
 * DURATION (`30/1m`, for accounts that get 429s), at most N jobs in flight across all workers
 * (each job renders once, so this bounds the farm's renders too); `limit off` removes both.
 */
import { Queue } from 'bullmq';
import { ExitCode, UsageError } from '../core/errors.js';
import { formatDuration, parseDuration } from '../core/abort.js';
import { KEY_PREFIX, QUEUE_NAME, reachRedis, redisOptions } from '../queue/connection.js';
import { workerProcesses } from '../queue/job-worker.js';
import type { CommandContext, SharedOptions } from './context.js';
import { queueAddressFrom } from './queue-knobs.js';
import { unreachable } from '../core/unreachable.js';

export interface QueueOptions extends SharedOptions {
  queue?: string | undefined;
  json: boolean;
}

const ACTIONS = ['status', 'pause', 'resume', 'drain', 'limit'] as const;
type QueueAction = (typeof ACTIONS)[number];

export async function queueCommand(args: string[], options: QueueOptions, ctx: CommandContext): Promise<number> {
  const action = args[0] as QueueAction | undefined;
  if (action === undefined || !ACTIONS.includes(action)) {
    throw new UsageError(`talk queue expects one of ${ACTIONS.join(', ')}${action === undefined ? '' : `, got "${action}"`}`, { hint: 'e.g. talk queue status --queue redis://127.0.0.1:6379' });
  }
  const address = queueAddressFrom(options.queue, ctx.env);
  if (!address) throw new UsageError(`talk queue ${action} needs a queue`, { hint: 'pass --queue redis://host:port[/db] or set TALK_QUEUE' });
  const settings = action === 'limit' ? parseLimits(args.slice(1)) : undefined;
  if (action !== 'limit' && args.length > 1) throw new UsageError(`talk queue ${action} takes no settings, got "${args.slice(1).join(' ')}"`);
  await reachRedis(address);
  const queue = new Queue(QUEUE_NAME, { connection: redisOptions(address), prefix: KEY_PREFIX });
  try {
    const before = await counts(queue);
    switch (action) {
      case 'status':
        break;
      case 'pause':
        await queue.pause();
        break;
      case 'resume':
        await queue.resume();
        break;
      case 'drain':
        await queue.drain();
        break;
      case 'limit':
        if (settings === 'off') {
          await queue.removeGlobalRateLimit();
          await queue.removeGlobalConcurrency();
        } else {
          if (settings?.rate) await queue.setGlobalRateLimit(settings.rate.max, settings.rate.duration);
          if (settings?.atOnce !== undefined) await queue.setGlobalConcurrency(settings.atOnce);
        }
        break;
      default:
        return unreachable(action, 'action');
    }
    const after = action === 'status' ? before : await counts(queue);
    const paused = await queue.isPaused();
    const workers = workerProcesses(await queue.getWorkers());
    const removed = action === 'drain' ? before.waiting - after.waiting : 0;
    const rate = await queue.getGlobalRateLimit();
    const atOnce = await queue.getGlobalConcurrency();
    const limits = { rate: rate ? { max: rate.max, durationMs: rate.duration } : null, atOnce: atOnce ?? null };
    if (options.json) {
      ctx.stdout.write(`${JSON.stringify({ queue: address.shown, action, paused, workers, counts: after, limits, ...(action === 'drain' ? { removed } : {}) })}\n`);
      return ExitCode.ok;
    }
    const said = {
      status: '',
      pause: 'paused: workers take no new jobs (jobs in flight finish)\n',
      resume: 'resumed: workers take jobs again\n',
      drain: `drained: ${removed} waiting ${removed === 1 ? 'job' : 'jobs'} removed (jobs in flight finish)\n`,
      limit: settings === 'off' ? 'limits removed\n' : 'limits set (every worker obeys them)\n',
    }[action];
    const shownLimits = [...(limits.rate ? [`at most ${limits.rate.max} jobs started per ${formatDuration(limits.rate.durationMs)}`] : []), ...(limits.atOnce !== null ? [`at most ${limits.atOnce} at once`] : [])];
    ctx.stdout.write(
      `${said}queue ${address.shown}: ${paused ? 'paused' : 'running'} · ${workers} ${workers === 1 ? 'worker' : 'workers'} · ${after.waiting} waiting · ${after.active} active · ${after.completed} completed · ${after.failed} failed${shownLimits.length > 0 ? ` · ${shownLimits.join(', ')}` : ''}\n`,
    );
    return ExitCode.ok;
  } finally {
    await queue.close();
  }
}

/** Jobs by state; `waiting` counts every job not yet taken (prioritized, paused, delayed too). */
async function counts(queue: Queue): Promise<{ waiting: number; active: number; completed: number; failed: number }> {
  const c = await queue.getJobCounts('waiting', 'prioritized', 'paused', 'delayed', 'active', 'completed', 'failed');
  return { waiting: (c['waiting'] ?? 0) + (c['prioritized'] ?? 0) + (c['paused'] ?? 0) + (c['delayed'] ?? 0), active: c['active'] ?? 0, completed: c['completed'] ?? 0, failed: c['failed'] ?? 0 };
}

/** `rate=N/DURATION` and `at-once=N` (either or both), or `off`. */
function parseLimits(words: string[]): 'off' | { rate?: { max: number; duration: number }; atOnce?: number } {
  const hint = 'e.g. talk queue limit rate=30/1m at-once=8 --queue …, or talk queue limit off --queue …';
  if (words.length === 1 && words[0] === 'off') return 'off';
  if (words.length === 0) throw new UsageError('talk queue limit needs rate=N/DURATION, at-once=N, or off', { hint });
  const out: { rate?: { max: number; duration: number }; atOnce?: number } = {};
  for (const word of words) {
    const rate = /^rate=(\d+)\/(.+)$/.exec(word);
    const atOnce = /^at-once=(\d+)$/.exec(word);
    if (rate) {
      const max = Number(rate[1]);
      const duration = parseDuration(rate[2] ?? '');
      if (max < 1 || duration === undefined || duration < 1) throw new UsageError(`talk queue limit: ${word} is not N/DURATION with N ≥ 1 (e.g. rate=30/1m)`, { hint });
      out.rate = { max, duration };
    } else if (atOnce && Number(atOnce[1]) >= 1) {
      out.atOnce = Number(atOnce[1]);
    } else {
      throw new UsageError(`talk queue limit: "${word}" is not rate=N/DURATION or at-once=N (N ≥ 1)`, { hint });
    }
  }
  return out;
}
