// Queue mode against one machine: N jobs at fixed latencies through 1, 2 and 4 `talk worker`s
// (separate processes of the built CLI, one Redis, one `talk serve`) beside a single-process
// `talk run` at the same total concurrency.
//
//   npm run build && node --import tsx bench/queue.bench.ts [--jobs 200] [--concurrency 20] [--workers 1,2,4] [--scale 5] [--rounds 1] [--no-single] [--cold] [--cpu-prof DIR]
//
// Each job: 2 uploads → 1 instruction → export, latencies × `--scale` (as scheduler.bench.ts).
// Ideal = one job alone (median of three) × ⌈jobs ÷ concurrency⌉. Printed per mode: wall,
// wall ÷ ideal, the difference from single-process `talk run`, CPU per job, Redis commands per
// job, and the queue's overhead per job: how long the runners' slots stood empty while jobs
// waited for them (slot-ms ÷ jobs), read from the jobs' own records — BullMQ's added time, and
// the runner's span on each job, which the worker returns with the result. In single-process
// `talk run` a slot is refilled the moment its job ends, so there it is 0 by construction;
// here every end is recorded in Redis, the next job fetched and its state loaded before a
// runner starts it, and a queue slow at any of that scores it in full, while the noise in the
// runner's own time at a given load does not enter it. What the queue costs inside the
// runner's span (state writes, relayed events) shows in the wall difference and the CPU per
// job. `--rounds N` repeats every mode N times, interleaved, and prints the medians.
// `BENCH_DEBUG=1` prints the first jobs' timeline (added, taken, runner start and end, finished).
// Goal: 4 workers within 5 % of single-process; overhead ≤ 5 ms per job. Benchmarks print;
// they never assert. Figures and conditions: bench/notes/queue.md.
import { spawn } from 'node:child_process';
import { link, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { makeTestMedia } from '../test/helpers/media.js';
import { startRedis } from '../test/helpers/redis.js';
import type { QueueJobData, QueueJobResult } from '../src/queue/job-data.js';
import { serveProcess } from './lib/serve.js';
import { slotIdle, type SlotIdle } from './lib/slot-idle.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '20' },
    workers: { type: 'string', default: '1,2,4' },
    scale: { type: 'string', default: '5' },
    // Leave out single-process `talk run` (queue modes are then compared with nothing).
    'no-single': { type: 'boolean', default: false },
    // Write a V8 CPU profile of every talk process (workers, follower, `talk run`) into DIR.
    'cpu-prof': { type: 'string' },
    // Repeat every mode this many times, interleaved, and print the medians.
    rounds: { type: 'string', default: '1' },
    // Leave out the warm-up job through one worker: workers then start without a code cache.
    cold: { type: 'boolean', default: false },
  },
});
const jobs = Number(values.jobs);
const concurrency = Number(values.concurrency);
const workerCounts = values.workers.split(',').filter((w) => w !== '').map(Number);
const scale = Number(values.scale);
const rounds = Math.max(1, Number(values.rounds));
const profileDir = values['cpu-prof'] === undefined ? undefined : path.resolve(values['cpu-prof']);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(repoRoot, 'bin', 'talk.js');
const cpuPreload = pathToFileURL(path.join(repoRoot, 'bench', 'lib', 'cpu-at-exit.mjs')).href;

const root = await mkdtemp(path.join(tmpdir(), 'talk-queue-bench-'));
const media = await makeTestMedia(path.join(root, 'media'));
await mkdir(path.join(root, 'faces'));
await mkdir(path.join(root, 'voices'));
for (let i = 0; i < jobs; i += 1) {
  const stem = `p${String(i).padStart(4, '0')}`;
  await link(media.portrait, path.join(root, 'faces', `${stem}.jpg`));
  await link(media.voice, path.join(root, 'voices', `${stem}.mp3`));
}
const batch = (name: string, glob: string): string =>
  [
    'version: 1',
    `name: ${name}`,
    `concurrency: ${concurrency}`,
    `limits: { uploads: ${concurrency * 2}, renders: ${concurrency} }`,
    'foreach:',
    `  portrait: ${glob}`,
    '  voice: voices/${{ item.portrait.stem }}.mp3',
    'instructions:',
    '  - Make this photo talk using my voiceover',
    'export:',
    '  resolution: 720p',
    '  quality: low',
    '  output: out/${{ item.portrait.stem }}.mp4',
    '',
  ].join('\n');
await writeFile(path.join(root, 'batch.yaml'), batch('bench', 'faces/*.jpg'));
await writeFile(path.join(root, 'one.yaml'), batch('one', 'faces/p0000.jpg'));

const latency = Object.fromEntries(Object.entries({ session: 50, upload: 100, state: 20, credits: 20, 'render-status': 10, download: 50 }).map(([r, ms]) => [r, ms * scale]));
const serve = await serveProcess(path.join(root, 'backend'), {
  TALK_LOCAL_LATENCY: Object.entries(latency).map(([r, ms]) => `${r}=${ms}`).join(','),
  TALK_LOCAL_TURN_DELAY_MS: String(200 * scale),
  TALK_LOCAL_SILENT_EDIT_RATIO: '0',
  TALK_LOCAL_ANONYMOUS_CREDITS: '100000000',
});
const redis = await startRedis();
const redisClient = new Redis({ host: '127.0.0.1', port: redis.port });
const cpuFile = path.join(root, 'cpu.ndjson');
const env = { ...process.env, NEMO_CLIENT_ID: 'queue-bench', HOME: path.join(root, 'home'), XDG_CONFIG_HOME: path.join(root, 'home', '.config'), TALK_BENCH_CPU_FILE: cpuFile };

/** `node` flags for a talk process: the CPU-time preload, and a profile when asked for. */
function nodeArgs(role: string): string[] {
  return ['--import', cpuPreload, ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', path.join(profileDir, role)] : []), bin];
}

/** Run the CLI to completion; resolves with when it started and ended (epoch ms), its wall time and exit code. */
function cli(args: string[], role: string): Promise<{ startedAt: number; endedAt: number; ms: number; code: number | null; stderr: string }> {
  const startedAt = Date.now();
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...nodeArgs(role), ...args], { cwd: root, env: { ...env, TALK_BENCH_ROLE: role }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('exit', (code) => resolve({ startedAt, endedAt: Date.now(), ms: performance.now() - started, code, stderr }));
  });
}

/**
 * A worker; resolves once it says it is ready. `stop()` resolves with the CPU ms it spent from
 * ready to stop (its start-up left out, as it happens before the timed run), or with what the
 * exit-time record says when /proc cannot be read.
 */
function worker(perWorker: number, role: string): Promise<{ stop(): Promise<number | undefined> }> {
  const child = spawn(process.execPath, [...nodeArgs(role), 'worker', '--queue', redis.url, '--backend', serve.url, '--concurrency', String(perWorker)], {
    cwd: root,
    env: { ...env, TALK_BENCH_ROLE: role },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    let seen = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      seen += d;
      if (!seen.includes('worker ready')) return;
      seen = '';
      void procCpuMs(child.pid).then((atReady) =>
        resolve({
          stop: async () => {
            const atStop = await procCpuMs(child.pid);
            child.kill('SIGTERM');
            await exited;
            return atReady === undefined || atStop === undefined ? undefined : atStop - atReady;
          },
        }),
      );
    });
    child.once('exit', () => reject(new Error(`worker exited: ${seen}`)));
  });
}

const fresh = async (): Promise<void> => {
  await redisClient.flushall();
  await rm(path.join(root, 'out'), { recursive: true, force: true });
  await rm(cpuFile, { force: true });
};

/** CPU ms of the talk processes that ended since the last `fresh()`, by role prefix. */
async function talkCpuMs(prefix: string): Promise<number> {
  const text = await readFile(cpuFile, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { role: string; cpuMs: number })
    .filter((r) => r.role.startsWith(prefix))
    .reduce((sum, r) => sum + r.cpuMs, 0);
}

/** redis-server's own CPU ms so far (INFO cpu). */
async function redisCpuMs(): Promise<number> {
  const info = await redisClient.info('cpu');
  const read = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return (read('used_cpu_user') + read('used_cpu_sys')) * 1000;
}

/** Redis commands run so far, by command (INFO commandstats: a script call counts as EVAL or EVALSHA, and each command the script runs counts too). */
async function redisCalls(): Promise<Map<string, number>> {
  const info = await redisClient.info('commandstats');
  return new Map([...info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));
}

/** Commands per job between two `redisCalls()`, the busiest first. */
function callsPerJob(before: Map<string, number>, after: Map<string, number>): string {
  const delta = [...after].map(([name, n]) => [name, (n - (before.get(name) ?? 0)) / jobs] as const).filter(([, n]) => n > 0);
  const total = delta.reduce((sum, [, n]) => sum + n, 0);
  const top = delta.sort((a, b) => b[1] - a[1]).slice(0, 6).map(([name, n]) => `${name} ${n.toFixed(1)}`);
  return `${total.toFixed(1)} (${top.join(', ')})`;
}

/** A process's CPU ms so far, from /proc (Linux); undefined elsewhere. */
async function procCpuMs(pid: number | undefined): Promise<number | undefined> {
  const stat = await readFile(`/proc/${String(pid)}/stat`, 'utf8').catch(() => undefined);
  if (!stat) return undefined;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime, fields 14 and 15 of proc(5), in clock ticks (100 a second on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** The queue's overhead per job (bench/lib/slot-idle.ts), from the completed jobs' records. */
async function queueShare(slots: number): Promise<SlotIdle> {
  const queue = new Queue<QueueJobData, QueueJobResult>('jobs', { connection: { host: '127.0.0.1', port: redis.port }, prefix: 'talk' });
  try {
    const done = await queue.getJobs(['completed'], 0, -1);
    if (done.length !== jobs) throw new Error(`${done.length} of ${jobs} jobs completed`);
    const records = done.map((job) => {
      const timing = job.returnvalue.timing;
      if (!timing || job.processedOn === undefined || job.finishedOn === undefined) throw new Error(`job ${job.id ?? '?'} has no timing`);
      return { added: job.timestamp, taken: job.processedOn, finished: job.finishedOn, runFrom: timing.runFrom, runTo: timing.runTo };
    });
    return slotIdle(records, slots, process.env['BENCH_DEBUG'] !== undefined);
  } finally {
    await queue.close();
  }
}

const fmt = (ms: number): string => ms.toFixed(1);
console.log(`cpus ${cpus().length} · load ${loadavg().map((l) => l.toFixed(1)).join(' ')} · ${jobs} jobs · concurrency ${concurrency} · latencies ×${scale}`);
try {
  // One job alone, three times: the critical path (the render cache warm after the first).
  const singles: number[] = [];
  for (let i = 0; i < 4; i += 1) {
    const r = await cli(['run', 'one.yaml', '--backend', serve.url, '--fresh', '--no-report', '--reporter', 'plain'], `alone-${i}`);
    if (r.code !== 0) throw new Error(`one job: exit ${String(r.code)}\n${r.stderr}`);
    if (i > 0) singles.push(r.ms);
  }
  const alone = singles.sort((a, b) => a - b)[1]!;
  const ideal = alone * Math.ceil(jobs / concurrency);
  console.log(`one job alone (CLI start to exit, median of 3): ${alone.toFixed(0)} ms · ideal ${ideal.toFixed(0)} ms`);
  // `talk run` starts every timed run with the code cache its runs above wrote (bin/talk.js);
  // a worker gets its own the same way, from one job through one worker (--cold: none).
  if (!values.cold) {
    await fresh();
    const warm = await worker(1, 'warm-up');
    const r = await cli(['run', 'one.yaml', '--queue', redis.url, '--backend', serve.url, '--no-report', '--reporter', 'plain'], 'warm-up-follow');
    await warm.stop();
    if (r.code !== 0) throw new Error(`warm-up job on the queue: exit ${String(r.code)}\n${r.stderr}`);
  }

  /** Single-process `talk run` over the batch: its wall time. */
  const runSingle = async (): Promise<number> => {
    await fresh();
    const [serve0, redis0] = [await procCpuMs(serve.pid), await redisCpuMs()];
    const run = await cli(['run', 'batch.yaml', '--backend', serve.url, '--fresh', '--no-report', '--reporter', 'plain'], 'run');
    if (run.code !== 0) throw new Error(`talk run: exit ${String(run.code)}\n${run.stderr}`);
    const serve1 = await procCpuMs(serve.pid);
    const cpu = (await talkCpuMs('run')) / jobs;
    console.log(
      `talk run (one process, concurrency ${concurrency}): ${run.ms.toFixed(0)} ms · wall ÷ ideal ${(run.ms / ideal).toFixed(3)} · CPU per job: talk ${fmt(cpu)} ms, redis ${fmt(((await redisCpuMs()) - redis0) / jobs)} ms${serve0 === undefined || serve1 === undefined ? '' : `, serve ${fmt((serve1 - serve0) / jobs)} ms`}`,
    );
    return run.ms;
  };

  /** The batch through `count` workers (one `talk run --queue` enqueues and follows): its wall time and overhead per job. */
  const runQueued = async (count: number, single: number | undefined): Promise<{ ms: number; overhead: number }> => {
    await fresh();
    const perWorker = Math.max(1, Math.round(concurrency / count));
    const workers = await Promise.all(Array.from({ length: count }, (_, i) => worker(perWorker, `worker-${count}-${i}`)));
    const before = (await serve.stats()).messages;
    const [serve0, redis0, calls0] = [await procCpuMs(serve.pid), await redisCpuMs(), await redisCalls()];
    const run = await cli(['run', 'batch.yaml', '--queue', redis.url, '--backend', serve.url, '--no-report', '--reporter', 'plain'], `follow-${count}`);
    const [serve1, redis1, calls1] = [await procCpuMs(serve.pid), await redisCpuMs(), await redisCalls()];
    const sent = (await serve.stats()).messages - before;
    const workerCpu = await Promise.all(workers.map((w) => w.stop()));
    if (run.code !== 0) throw new Error(`talk run --queue: exit ${String(run.code)}\n${run.stderr}`);
    const share = await queueShare(perWorker * count);
    const workersCpu = workerCpu.every((ms) => ms !== undefined) ? workerCpu.reduce((sum, ms) => sum + ms, 0) : await talkCpuMs('worker-');
    const cpu = (workersCpu + (await talkCpuMs('follow-'))) / jobs;
    const versus = single === undefined ? '' : ` · vs talk run ${((run.ms / single - 1) * 100).toFixed(1)} % (Δwall × ${concurrency} ÷ ${jobs}: ${fmt(((run.ms - single) * concurrency) / jobs)} ms)`;
    console.log(
      `${count} worker${count === 1 ? ' ' : 's'} × ${perWorker}: ${run.ms.toFixed(0)} ms · wall ÷ ideal ${(run.ms / ideal).toFixed(3)}${versus} · messages ${sent}\n` +
        `    queue overhead per job ${fmt(share.total)} slot-ms (first wave ${fmt(share.firstWave)}: each slot's first job started ${share.slotStart.toFixed(0)} ms after the first was added, once per batch; between jobs ${fmt(share.between)}; per job: taken → runner ${fmt(share.before)} ms, runner → finished ${fmt(share.after)} ms) · ` +
        `enqueue: start → first job added ${(share.head - run.startedAt).toFixed(0)} ms · last job finished → follower exit ${(run.endedAt - share.lastFinished).toFixed(0)} ms\n` +
        `    CPU per job: talk ${fmt(cpu)} ms (workers from ready to stop + follower), redis ${fmt((redis1 - redis0) / jobs)} ms${serve0 === undefined || serve1 === undefined ? '' : `, serve ${fmt((serve1 - serve0) / jobs)} ms`} · Redis commands per job ${callsPerJob(calls0, calls1)}`,
    );
    return { ms: run.ms, overhead: share.total };
  };

  // Rounds one after another, each mode once per round, so a change in the machine's load
  // falls on every mode alike; the medians come last.
  const walls = new Map<string, number[]>();
  const overheads = new Map<string, number[]>();
  const note = (map: Map<string, number[]>, mode: string, value: number): void => void map.set(mode, [...(map.get(mode) ?? []), value]);
  for (let round = 1; round <= rounds; round += 1) {
    if (rounds > 1) console.log(`round ${round} of ${rounds} · load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    const single = values['no-single'] ? undefined : await runSingle();
    if (single !== undefined) note(walls, 'run', single);
    for (const count of workerCounts) {
      const queued = await runQueued(count, single);
      note(walls, String(count), queued.ms);
      note(overheads, String(count), queued.overhead);
    }
  }
  if (rounds > 1) {
    const median = (xs: number[]): number => {
      const sorted = [...xs].sort((a, b) => a - b);
      const mid = Math.floor(sorted.length / 2);
      return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
    };
    const single = walls.get('run');
    console.log(`medians of ${rounds} rounds:${single ? ` talk run ${median(single).toFixed(0)} ms` : ''}`);
    for (const count of workerCounts) {
      const w = walls.get(String(count)) ?? [];
      const versus = single ? ` · vs talk run ${((median(w) / median(single) - 1) * 100).toFixed(1)} % (per round: ${w.map((ms, i) => `${((ms / single[i]! - 1) * 100).toFixed(1)} %`).join(', ')})` : '';
      console.log(`  ${count} worker${count === 1 ? ' ' : 's'}: ${median(w).toFixed(0)} ms${versus} · queue overhead per job ${fmt(median(overheads.get(String(count)) ?? []))} slot-ms`);
    }
  }
} finally {
  await redisClient.quit();
  await serve.close();
  await redis.stop();
  await rm(root, { recursive: true, force: true });
}
