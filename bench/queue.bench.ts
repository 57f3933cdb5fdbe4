// Queue mode against one machine: N jobs at fixed latencies through 1, 2 and 4 `talk worker`s
// (separate processes of the built CLI, one Redis, one `talk serve`) beside a single-process
// `talk run` at the same total concurrency.
//
//   npm run build && node --import tsx bench/queue.bench.ts [--jobs 200] [--concurrency 20] [--workers 1,2,4] [--scale 5]
//
// Each job: 2 uploads → 1 instruction → export, latencies × `--scale` (as scheduler.bench.ts).
// Ideal = one job alone (median of three) × ⌈jobs ÷ concurrency⌉. Printed per mode: wall,
// wall ÷ ideal, and against single-process `talk run`: the difference in wall time and the
// queue's overhead per job = Δwall × concurrency ÷ jobs (the extra time each job held a slot).
// Goal: 4 workers within 5 % of single-process; overhead ≤ 5 ms per job. Benchmarks print;
// they never assert. Figures and conditions: bench/notes/queue.md.
import { spawn } from 'node:child_process';
import { link, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { makeTestMedia } from '../test/helpers/media.js';
import { startRedis } from '../test/helpers/redis.js';
import { serveProcess } from './lib/serve.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '20' },
    workers: { type: 'string', default: '1,2,4' },
    scale: { type: 'string', default: '5' },
  },
});
const jobs = Number(values.jobs);
const concurrency = Number(values.concurrency);
const workerCounts = values.workers.split(',').map(Number);
const scale = Number(values.scale);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(repoRoot, 'bin', 'talk.js');

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
const env = { ...process.env, NEMO_CLIENT_ID: 'queue-bench', HOME: path.join(root, 'home'), XDG_CONFIG_HOME: path.join(root, 'home', '.config') };

/** Run the CLI to completion; resolves with its wall time (ms) and exit code. */
function cli(args: string[]): Promise<{ ms: number; code: number | null; stderr: string }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('exit', (code) => resolve({ ms: performance.now() - started, code, stderr }));
  });
}

/** A worker; resolves once it says it is ready. */
function worker(perWorker: number): Promise<{ stop(): Promise<void> }> {
  const child = spawn(process.execPath, [bin, 'worker', '--queue', redis.url, '--backend', serve.url, '--concurrency', String(perWorker)], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    let seen = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      seen += d;
      if (seen.includes('worker ready')) resolve({ stop: async () => void (child.kill('SIGTERM'), await exited) });
    });
    child.once('exit', () => reject(new Error(`worker exited: ${seen}`)));
  });
}

const fresh = async (): Promise<void> => {
  const client = new Redis({ host: '127.0.0.1', port: redis.port });
  await client.flushall();
  await client.quit();
  await rm(path.join(root, 'out'), { recursive: true, force: true });
};

console.log(`cpus ${cpus().length} · load ${loadavg().map((l) => l.toFixed(1)).join(' ')} · ${jobs} jobs · concurrency ${concurrency} · latencies ×${scale}`);
try {
  // One job alone, three times: the critical path (the render cache warm after the first).
  const singles: number[] = [];
  for (let i = 0; i < 4; i += 1) {
    const r = await cli(['run', 'one.yaml', '--backend', serve.url, '--fresh', '--no-report', '--reporter', 'plain']);
    if (r.code !== 0) throw new Error(`one job: exit ${String(r.code)}\n${r.stderr}`);
    if (i > 0) singles.push(r.ms);
  }
  const alone = singles.sort((a, b) => a - b)[1]!;
  const ideal = alone * Math.ceil(jobs / concurrency);
  console.log(`one job alone (CLI start to exit, median of 3): ${alone.toFixed(0)} ms · ideal ${ideal.toFixed(0)} ms`);

  await fresh();
  const single = await cli(['run', 'batch.yaml', '--backend', serve.url, '--fresh', '--no-report', '--reporter', 'plain']);
  if (single.code !== 0) throw new Error(`talk run: exit ${String(single.code)}\n${single.stderr}`);
  console.log(`talk run (one process, concurrency ${concurrency}): ${single.ms.toFixed(0)} ms · wall ÷ ideal ${(single.ms / ideal).toFixed(3)}`);

  for (const count of workerCounts) {
    await fresh();
    const perWorker = Math.max(1, Math.round(concurrency / count));
    const workers = await Promise.all(Array.from({ length: count }, () => worker(perWorker)));
    const before = (await serve.stats()).messages;
    const run = await cli(['run', 'batch.yaml', '--queue', redis.url, '--backend', serve.url, '--no-report', '--reporter', 'plain']);
    const sent = (await serve.stats()).messages - before;
    await Promise.all(workers.map((w) => w.stop()));
    if (run.code !== 0) throw new Error(`talk run --queue: exit ${String(run.code)}\n${run.stderr}`);
    const delta = run.ms - single.ms;
    console.log(
      `${count} worker${count === 1 ? ' ' : 's'} × ${perWorker}: ${run.ms.toFixed(0)} ms · wall ÷ ideal ${(run.ms / ideal).toFixed(3)} · vs talk run ${((run.ms / single.ms - 1) * 100).toFixed(1)} % · overhead per job ${((delta * concurrency) / jobs).toFixed(1)} ms · messages ${sent}`,
    );
  }
} finally {
  await serve.close();
  await redis.stop();
  await rm(root, { recursive: true, force: true });
}
