// BullMQ's floor: 4 processes × 5 concurrency, jobs that sleep, same metric as queue.bench.
import { fork } from 'node:child_process';
import { Queue, Worker } from 'bullmq';
import { startRedis } from '../test/helpers/redis.js';
const role = process.argv[2];
if (role === 'worker') {
  const port = Number(process.argv[3]);
  const w = new Worker('jobs', async (job) => { const runFrom = Date.now(); await new Promise((r) => setTimeout(r, Number(process.env.SLEEP ?? 2500))); return { runFrom, runTo: Date.now() }; }, { connection: { host: '127.0.0.1', port }, prefix: 'talk', concurrency: Number(process.env.CONC ?? 5), autorun: false });
  await w.waitUntilReady(); process.send?.('ready'); void w.run();
  process.on('message', async () => { await w.close(); process.exit(0); });
} else {
  const redis = await startRedis();
  const nw = Number(process.env.WORKERS ?? 4);
  const kids = await Promise.all(Array.from({ length: nw }, () => new Promise<ReturnType<typeof fork>>((res) => { const c = fork(new URL(import.meta.url).pathname, ['worker', String(redis.port)], { execArgv: ['--import', 'tsx'] }); c.once('message', () => res(c)); })));
  const q = new Queue('jobs', { connection: { host: '127.0.0.1', port: redis.port }, prefix: 'talk' });
  const data = { blob: 'x'.repeat(3000) };
  const n = 200; const adds = Array.from({ length: n }, (_, k) => ({ name: 'n', data, opts: { jobId: `j${k}`, priority: k + 1, removeOnComplete: false } }));
  for (let i = 0; i < n; i += 25) await q.addBulk(adds.slice(i, i + 25));
  for (;;) { const c = await q.getJobCounts('completed'); if (c.completed === n) break; await new Promise((r) => setTimeout(r, 200)); }
  const done = await q.getJobs(['completed'], 0, -1);
  const recs = done.map((j) => ({ added: j.timestamp, taken: j.processedOn!, ...(j.returnvalue as { runFrom: number; runTo: number }) }));
  const added = Math.min(...recs.map((r) => r.added)); const starts = recs.map((r) => r.runFrom).sort((a, b) => a - b); const last = starts.at(-1)!;
  const slots = 20; const held = recs.reduce((s, r) => s + Math.max(0, Math.min(r.runTo, last) - Math.max(r.runFrom, added)), 0);
  const idle = slots * (last - added) - held; const fw = starts.slice(0, slots).reduce((s, t) => s + (t - added), 0);
  console.log(`overhead ${(idle / n).toFixed(1)} slot-ms (first wave ${(fw / n).toFixed(1)}, between ${((idle - fw) / n).toFixed(1)}), taken→run ${(recs.reduce((s, r) => s + r.runFrom - r.taken, 0) / n).toFixed(1)} ms; first starts ${starts.slice(0, 20).map((t) => t - added).join(' ')}`);
  const { Redis } = await import('ioredis'); const r = new Redis({ port: redis.port }); const info = await r.info('commandstats');
  for (const line of info.split('\n')) if (/cmdstat_(evalsha|eval|hset|xadd|zadd|bzpopmin|exec)\b/.test(line)) console.log(line.trim());
  await r.config('SET', 'slowlog-log-slower-than', '0'); r.disconnect();
  for (const k of kids) k.send('stop');
  await q.close(); await redis.stop(); process.exit(0);
}
