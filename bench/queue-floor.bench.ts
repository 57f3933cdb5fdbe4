// The queue engine's own floor under queue.bench.ts's overhead figure: the same batch shape —
// N jobs, a total concurrency split over 1, 2 and 4 worker processes, one Redis with AOF, jobs
// added 25 at a time with talk's priorities and job data of talk's size — run by bare BullMQ
// workers whose jobs only wait as long as a talk job runs, each slot a Worker of its own as in a
// talk worker (`--one-worker`: one Worker of the whole concurrency per process). No talk code
// runs. What it scores is what BullMQ and Redis cost on this machine with nothing else on it: a
// talk worker's overhead can come close to it, not under it.
//
//   node --import tsx bench/queue-floor.bench.ts [--jobs 200] [--concurrency 20] [--workers 1,2,4] [--job-ms 2500] [--data-bytes 2763] [--rounds 3] [--one-worker]
//
// `--data-bytes`: the JSON of one of queue.bench.ts's jobs is 2,763 bytes. Prints, per worker
// count and round, the overhead per job in slot-ms (bench/lib/slot-idle.ts, the same figure as
// queue.bench.ts), and the median of the rounds. Benchmarks print; they never assert.
import { fork, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { startRedis } from '../test/helpers/redis.js';
import { slotIdle, type SlotIdle } from './lib/slot-idle.js';

const PREFIX = 'talk';
const QUEUE = 'jobs';

/**
 * A worker process: `worker <port> <slots> <job ms> [one]`; says 'ready', stops on any message.
 * Its slots take jobs as talk's do (src/queue/job-worker.ts): one Worker of one job at a time per
 * slot, on one shared command connection; `one`: a single Worker of concurrency `slots`.
 */
async function workerProcess(port: number, slots: number, jobMs: number, one: boolean): Promise<void> {
  const connection = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: null });
  const job = async (): Promise<{ runFrom: number; runTo: number }> => {
    const runFrom = Date.now();
    await new Promise((resolve) => setTimeout(resolve, jobMs));
    return { runFrom, runTo: Date.now() };
  };
  const workers = Array.from({ length: one ? 1 : slots }, () => new Worker<unknown, { runFrom: number; runTo: number }>(QUEUE, job, { connection, prefix: PREFIX, concurrency: one ? slots : 1, autorun: false }));
  await Promise.all(workers.map((worker) => worker.waitUntilReady()));
  process.send?.('ready');
  for (const worker of workers) void worker.run();
  process.once('message', () => {
    void Promise.all(workers.map((worker) => worker.close()))
      .then(() => connection.quit())
      .then(() => process.exit(0));
  });
}

if (process.argv[2] === 'worker') {
  await workerProcess(Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5]), process.argv[6] === 'one');
} else {
  const { values } = parseArgs({
    options: {
      jobs: { type: 'string', default: '200' },
      concurrency: { type: 'string', default: '20' },
      workers: { type: 'string', default: '1,2,4' },
      'job-ms': { type: 'string', default: '2500' },
      'data-bytes': { type: 'string', default: '2763' },
      rounds: { type: 'string', default: '3' },
      // One BullMQ Worker of the whole concurrency per process, instead of one per slot.
      'one-worker': { type: 'boolean', default: false },
    },
  });
  const jobs = Number(values.jobs);
  const concurrency = Number(values.concurrency);
  const jobMs = Number(values['job-ms']);
  const rounds = Math.max(1, Number(values.rounds));
  const workerCounts = values.workers.split(',').filter((w) => w !== '').map(Number);
  const data = { pad: 'x'.repeat(Math.max(0, Number(values['data-bytes']) - 10)) };
  const redis = await startRedis();
  const client = new Redis({ host: '127.0.0.1', port: redis.port });
  const self = fileURLToPath(import.meta.url);
  console.log(`load ${loadavg().map((l) => l.toFixed(1)).join(' ')} · ${jobs} jobs · concurrency ${concurrency} · jobs wait ${jobMs} ms · job data ${JSON.stringify(data).length} bytes`);

  const batch = async (count: number): Promise<SlotIdle> => {
    await client.flushall();
    const perWorker = Math.max(1, Math.round(concurrency / count));
    const children = await Promise.all(
      Array.from(
        { length: count },
        () =>
          new Promise<ChildProcess>((resolve, reject) => {
            const child = fork(self, ['worker', String(redis.port), String(perWorker), String(jobMs), ...(values['one-worker'] ? ['one'] : [])], { execArgv: ['--import', 'tsx'] });
            child.once('message', () => resolve(child));
            child.once('exit', (code) => reject(new Error(`a worker exited (${String(code)}) before it was ready`)));
          }),
      ),
    );
    const queue = new Queue(QUEUE, { connection: { host: '127.0.0.1', port: redis.port }, prefix: PREFIX });
    try {
      const adds = Array.from({ length: jobs }, (_, k) => ({ name: 'floor', data, opts: { jobId: `job-${k}`, priority: k + 1, removeOnComplete: false, removeOnFail: false } }));
      for (let from = 0; from < jobs; from += 25) await queue.addBulk(adds.slice(from, from + 25));
      while (((await queue.getJobCounts('completed')).completed ?? 0) < jobs) await new Promise((resolve) => setTimeout(resolve, 100));
      const done = await queue.getJobs(['completed'], 0, -1);
      const records = done.map((job) => {
        const span = job.returnvalue as { runFrom: number; runTo: number } | undefined;
        if (!span) throw new Error(`job ${job.id ?? '?'} returned nothing`);
        return { added: job.timestamp, taken: job.processedOn ?? job.timestamp, finished: job.finishedOn ?? span.runTo, ...span };
      });
      return slotIdle(records, perWorker * count);
    } finally {
      await queue.close();
      await Promise.all(children.map((child) => new Promise((resolve) => child.once('exit', resolve).send('stop'))));
    }
  };

  const fmt = (ms: number): string => ms.toFixed(1);
  const totals = new Map<number, number[]>();
  for (let round = 1; round <= rounds; round += 1) {
    for (const count of workerCounts) {
      const share = await batch(count);
      (totals.get(count) ?? totals.set(count, []).get(count)!).push(share.total);
      console.log(`round ${round} · ${count} worker${count === 1 ? ' ' : 's'} × ${Math.round(concurrency / count)}: overhead per job ${fmt(share.total)} slot-ms (first wave ${fmt(share.firstWave)}: slots started ${share.slotStart.toFixed(0)} ms after the first add; between jobs ${fmt(share.between)}; taken → job ${fmt(share.before)} ms)`);
    }
  }
  for (const [count, all] of totals) {
    const sorted = [...all].sort((a, b) => a - b);
    console.log(`${count} worker${count === 1 ? ' ' : 's'}: median ${fmt(sorted[Math.floor(sorted.length / 2)] ?? 0)} slot-ms per job (of ${sorted.map(fmt).join(', ')})`);
  }
  client.disconnect();
  await redis.stop();
}
