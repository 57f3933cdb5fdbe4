// Watch folder benchmark: N bundles dropped at once into a watched folder, each job taking a
// fixed time, at a fixed concurrency. Prints total time against the ideal for the concurrency,
// and per bundle the pick-up latency (files written → bundle queued; goal p95 ≤ settle +
// 250 ms) and ready-to-start latency (queued → job started, which includes waiting for a slot).
//
//   node --import tsx bench/watch.bench.ts [--bundles 1000] [--concurrency 8] [--job-ms 200] [--settle-ms 2000]
//
// The job is a fixed-latency stand-in (the bench measures the watcher, not ffmpeg); see
// bench/notes/watch.md for figures and how they were taken.
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { resolveWatchConfig, watchFolder, type RunBundle, type WatchEvent } from '../src/watch/index.js';

const { values } = parseArgs({
  options: {
    bundles: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '8' },
    'job-ms': { type: 'string', default: '200' },
    'settle-ms': { type: 'string', default: '2000' },
  },
});
const bundles = Number(values.bundles);
const concurrency = Number(values.concurrency);
const jobMs = Number(values['job-ms']);
const settleMs = Number(values['settle-ms']);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

const root = await mkdtemp(path.join(tmpdir(), 'talk-watch-bench-'));
const inbox = path.join(root, 'inbox');
await mkdir(inbox);
const events: WatchEvent[] = [];
const written = new Map<string, number>();
const controller = new AbortController();

const runBundle: RunBundle = async (job, signal) => {
  await delay(jobMs, undefined, { signal });
  await writeFile(job.output, job.id);
  return { status: 'done', output: job.output };
};

let readyResolve!: () => void;
const watching = new Promise<void>((resolve) => {
  readyResolve = resolve;
});
const run = watchFolder({
  dir: inbox,
  config: resolveWatchConfig({ settleMs, scanIntervalMs: 30_000 }),
  stateDir: path.join(root, 'state'),
  runBundle,
  once: false,
  poll: false,
  onSuccess: 'move',
  concurrency,
  signal: controller.signal,
  onEvent: (event) => {
    events.push(event);
    if (event.type === 'watch:ready') readyResolve();
    if (event.type === 'bundle:done' && events.filter((e) => e.type === 'bundle:done').length === bundles) controller.abort();
  },
});
await watching;

// Drop every bundle as fast as the file system takes it, each file written then renamed into
// place the way copy tools do.
const dropStart = Date.now();
for (let i = 0; i < bundles; i += 1) {
  const stem = `b${String(i).padStart(5, '0')}`;
  for (const [ext, text] of [
    ['jpg', `portrait ${i}`],
    ['mp3', `voice ${i}`],
  ] as const) {
    const file = path.join(inbox, `${stem}.${ext}`);
    await writeFile(`${file}.part`, text);
    await rename(`${file}.part`, file);
  }
  written.set(stem, Date.now());
}
const dropEnd = Date.now();
const summary = await run;
const end = Date.now();

const queued = new Map<string, number>();
const pickup: number[] = [];
const readyToStart: number[] = [];
for (const event of events) {
  if (event.type === 'bundle:queued') {
    queued.set(event.name, event.readyAt);
    pickup.push(event.readyAt - (written.get(event.name) ?? NaN));
  }
  if (event.type === 'bundle:start') readyToStart.push(event.startedAt - event.readyAt);
}
pickup.sort((a, b) => a - b);
readyToStart.sort((a, b) => a - b);
// Work cannot start before the first bundle settles nor end before the last one settled and ran.
const ideal = Math.max(dropEnd - dropStart + settleMs + jobMs, settleMs + Math.ceil(bundles / concurrency) * jobMs);
const total = end - dropStart;

console.log(`bundles ${bundles}, concurrency ${concurrency}, job ${jobMs} ms, settle ${settleMs} ms`);
console.log(`done ${summary.done}, failed ${summary.failed}, starts ${readyToStart.length} (duplicates: ${readyToStart.length - new Set(events.filter((e) => e.type === 'bundle:start').map((e) => (e as { id: string }).id)).size})`);
console.log(`drop took ${dropEnd - dropStart} ms`);
console.log(`total ${total} ms; ideal ${ideal} ms (max(drop + settle + job, settle + ceil(N/c) × job)); overhead ${((total / ideal - 1) * 100).toFixed(1)} %`);
console.log(`pick-up (last file written → queued): p50 ${percentile(pickup, 50)} ms, p95 ${percentile(pickup, 95)} ms, max ${pickup.at(-1)} ms; goal p95 ≤ ${settleMs + 250} ms`);
console.log(`ready → start (includes waiting for a slot): p50 ${percentile(readyToStart, 50)} ms, p95 ${percentile(readyToStart, 95)} ms`);
await rm(root, { recursive: true, force: true });
