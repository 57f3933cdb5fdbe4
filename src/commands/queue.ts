/**
 * `talk queue status|pause|resume|drain --queue redis://…`: the shared queue at a glance, and
 * its switches. `pause` stops every worker from taking new jobs (jobs in flight finish);
 * `resume` lets them take jobs again; `drain` removes the jobs no worker has taken yet (jobs in
 * flight finish; their state and the finished jobs stay, so enqueuing again adds back only what
 * was removed).
 */
import { Queue } from 'bullmq';
import { ExitCode, UsageError } from '../core/errors.js';
import { KEY_PREFIX, QUEUE_NAME, redisOptions } from '../queue/connection.js';
import type { CommandContext, SharedOptions } from './context.js';
import { queueAddressFrom } from './queue-knobs.js';

export interface QueueOptions extends SharedOptions {
  queue?: string | undefined;
  json: boolean;
}

const ACTIONS = ['status', 'pause', 'resume', 'drain'] as const;
type QueueAction = (typeof ACTIONS)[number];

export async function queueCommand(args: string[], options: QueueOptions, ctx: CommandContext): Promise<number> {
  const action = args[0] as QueueAction | undefined;
  if (action === undefined || !ACTIONS.includes(action)) {
    throw new UsageError(`talk queue expects one of ${ACTIONS.join(', ')}${action === undefined ? '' : `, got "${action}"`}`, { hint: 'e.g. talk queue status --queue redis://127.0.0.1:6379' });
  }
  const address = queueAddressFrom(options.queue, ctx.env);
  if (!address) throw new UsageError(`talk queue ${action} needs a queue`, { hint: 'pass --queue redis://host:port[/db] or set TALK_QUEUE' });
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
      default: {
        const unreachable: never = action;
        return unreachable;
      }
    }
    const after = action === 'status' ? before : await counts(queue);
    const paused = await queue.isPaused();
    const workers = (await queue.getWorkers()).length;
    const removed = action === 'drain' ? before.waiting - after.waiting : 0;
    if (options.json) {
      ctx.stdout.write(`${JSON.stringify({ queue: address.shown, action, paused, workers, counts: after, ...(action === 'drain' ? { removed } : {}) })}\n`);
      return ExitCode.ok;
    }
    const said = { status: '', pause: 'paused: workers take no new jobs (jobs in flight finish)\n', resume: 'resumed: workers take jobs again\n', drain: `drained: ${removed} waiting ${removed === 1 ? 'job' : 'jobs'} removed (jobs in flight finish)\n` }[action];
    ctx.stdout.write(
      `${said}queue ${address.shown}: ${paused ? 'paused' : 'running'} · ${workers} ${workers === 1 ? 'worker' : 'workers'} · ${after.waiting} waiting · ${after.active} active · ${after.completed} completed · ${after.failed} failed\n`,
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
