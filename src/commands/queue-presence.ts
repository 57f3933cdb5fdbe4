/**
 * While `talk run --queue` or `talk watch --queue` waits for its jobs: whether anything takes
 * them. Jobs on a queue no worker reads, or on a paused queue, wait without a sign; this says
 * so when it starts or becomes true (with the command that fixes it), and again when workers
 * take jobs once more.
 */
import type { Queue } from 'bullmq';
import { abortable, sleep } from '../core/abort.js';
import type { QueueAddress } from '../queue/connection.js';
import { workerProcesses } from '../queue/job-worker.js';
import { commandLine, workerCommandLine } from './resume-command.js';

/** How often the queue's workers are counted while jobs wait. */
export const PRESENCE_CHECK_MS = 5000;

type Presence = 'taking' | 'no-workers' | 'paused';

export interface PresenceOptions {
  queue: Pick<Queue, 'getWorkers' | 'isPaused'>;
  address: QueueAddress;
  /** The backend the workers must use (`--backend` of the worker command shown), if a URL. */
  backend: string | undefined;
  program: string | undefined;
  say: (level: 'info' | 'warn', message: string) => void;
  /** Ends the watch (the jobs settled, or the command stops). */
  signal: AbortSignal;
  everyMs?: number;
}

/** Count the workers now and every `everyMs` until `signal` aborts; say each change that matters. */
export async function watchQueuePresence(o: PresenceOptions): Promise<void> {
  const worker = workerCommandLine(o.address.shown, o.backend, o.program);
  const resume = commandLine(['queue', 'resume', '--queue', o.address.shown], o.program);
  let last: Presence = 'taking';
  while (!o.signal.aborted) {
    let now: Presence;
    let workers = 0;
    try {
      // Redis away: the look waits for it, the stop does not.
      const [list, paused] = await abortable(Promise.all([o.queue.getWorkers(), o.queue.isPaused()]), o.signal);
      workers = workerProcesses(list);
      now = paused ? 'paused' : workers === 0 ? 'no-workers' : 'taking';
    } catch {
      // Redis away for a moment: the follow itself waits for it; nothing to say here.
      now = last;
    }
    if (now !== last && !o.signal.aborted) {
      if (now === 'no-workers') o.say('warn', `no worker is taking jobs from ${o.address.shown}; the jobs wait until one starts: ${worker}`);
      else if (now === 'paused') o.say('warn', `the queue on ${o.address.shown} is paused; the jobs wait until it is resumed: ${resume}`);
      else o.say('info', `${workers} ${workers === 1 ? 'worker is' : 'workers are'} taking jobs from ${o.address.shown}`);
      last = now;
    }
    await sleep(o.everyMs ?? PRESENCE_CHECK_MS, o.signal).catch(() => undefined);
  }
}
