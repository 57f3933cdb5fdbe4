// Watch folder benchmark: N bundles dropped at once into a watched folder, each job taking a
// fixed time, at a fixed concurrency. Prints total time against the ideal for the concurrency,
// and per bundle the pick-up latency (files written → bundle queued; goal p95 ≤ settle +
// 250 ms) and ready-to-start latency (queued → job started, which includes waiting for a slot).
//
//   node --import tsx bench/watch.bench.ts [--bundles 1000] [--concurrency 8] [--job-ms 200] [--settle-ms 2000]
//   node --import tsx bench/watch.bench.ts --backend local [--bundles 1000] [--concurrency 8] [--job-ms 200]
//
// The bundles are dropped by another process (bench/lib/drop-bundles.ts), as a sync tool would.
// By default the job is a fixed-latency stand-in (the bench measures the watcher, not ffmpeg).
// `--backend local` runs every bundle through the real runner against the local backend, a
// `talk serve` in its own process (renders take at least --job-ms; tiny real media in 10
// variants, so most renders are the backend's cache copies; each bundle is distinct by its own
// instructions file). See bench/notes/watch.md for figures and how they were taken.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { resolveWatchConfig, watchFolder, type RunBundle, type WatchEvent } from '../src/watch/index.js';
import { serveProcess, type ServeProcess } from './lib/serve.js';
import { createWatchJobRunner, type WatchJobRunner } from '../src/commands/watch-jobs.js';
import { loadWorkflow } from '../src/workflow/index.js';
import { makeTestMedia } from '../test/helpers/media.js';

const { values } = parseArgs({
  options: {
    bundles: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '8' },
    'job-ms': { type: 'string', default: '200' },
    'settle-ms': { type: 'string', default: '2000' },
    backend: { type: 'string' },
  },
});
const localMode = values.backend === 'local';
if (values.backend !== undefined && !localMode) throw new Error('--backend takes only `local`');
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

let runBundle: RunBundle = async (job, signal) => {
  await delay(jobMs, undefined, { signal });
  await writeFile(job.output, job.id);
  return { status: 'done', output: job.output };
};
let backend: ServeProcess | undefined;
let jobs: WatchJobRunner | undefined;
let mediaFiles: string[] = [];
if (localMode) {
  const made = await makeTestMedia(path.join(tmpdir(), 'talk-test-media-watch'));
  mediaFiles = [made.portrait, made.voice];
  backend = await serveProcess(path.join(root, 'backend'), {
    TALK_LOCAL_LATENCY: `render=${jobMs}`,
    TALK_LOCAL_TURN_DELAY_MS: '0',
    TALK_LOCAL_ANONYMOUS_CREDITS: String(bundles * 100),
  });
  const workflowFile = path.join(root, 'watch.yaml');
  await writeFile(workflowFile, ['version: 1', 'name: bench', 'instructions:', '  - Make this photo talk using my voiceover', 'export:', '  quality: low', '  resolution: 720p', 'watch:', `  settle: ${settleMs}ms`, ''].join('\n'));
  const env = { PATH: process.env['PATH'], XDG_CONFIG_HOME: path.join(root, 'config'), HOME: root };
  const sink = { write: () => undefined, isTTY: false, columns: undefined };
  const loaded = await loadWorkflow(workflowFile, { vars: {}, env, cwd: root });
  const workflow = loaded.workflow;
  if (!workflow) throw new Error('bench workflow is invalid');
  jobs = await createWatchJobRunner({
    workflow: () => workflow,
    options: { backend: backend.url, stateDir: undefined, reporter: 'plain', quiet: true, verbose: false, color: false, vars: {}, concurrency, fresh: false, dryRun: false, failFast: false },
    ctx: { stdout: sink, stderr: sink, env, cwd: root, signal: controller.signal, version: 'bench' },
    stateDir: path.join(root, 'state'),
    dir: inbox,
    emit: () => undefined,
  });
  runBundle = jobs.runBundle;
}

let ended = 0;
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
    if (event.type === 'bundle:failed') console.error(`${event.name}: attempt ${event.attempt} failed: ${event.error.message}`);
    if (event.type === 'watch:error') console.error(event.message);
    // Every bundle reached its end (done, or failed for good): stop.
    if (event.type === 'bundle:done' || (event.type === 'bundle:failed' && !event.willRetry)) {
      ended += 1;
      if (ended === bundles) controller.abort();
    }
  },
});
await watching;

// Another process drops every bundle as fast as the file system takes it.
const dropper = spawn(process.execPath, ['--import', 'tsx', path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib', 'drop-bundles.ts'), inbox, String(bundles), ...mediaFiles], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
let dropStart = NaN;
let dropEnd = NaN;
for await (const line of createInterface({ input: dropper.stdout })) {
  const record = JSON.parse(line) as { start?: number; end?: number; stem?: string; at?: number };
  if (record.start !== undefined) dropStart = record.start;
  if (record.end !== undefined) dropEnd = record.end;
  if (record.stem !== undefined && record.at !== undefined) written.set(record.stem, record.at);
}
const summary = await run;
const end = Date.now();
const localStats = await backend?.stats();
await jobs?.close();
await backend?.close();

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
// With the local backend a job's time is what the runner measured (median), not --job-ms.
const jobDurations = events.flatMap((e) => (e.type === 'bundle:done' ? [e.durationMs] : [])).sort((a, b) => a - b);
const effectiveJobMs = localMode ? percentile(jobDurations, 50) : jobMs;
// Work cannot start before the first bundle settles nor end before the last one settled and ran.
const ideal = Math.max(dropEnd - dropStart + settleMs + effectiveJobMs, settleMs + Math.ceil(bundles / concurrency) * effectiveJobMs);
const total = end - dropStart;

console.log(`bundles ${bundles}, concurrency ${concurrency}, job ${jobMs} ms, settle ${settleMs} ms${localMode ? ', local backend (render floor = job ms)' : ''}`);
if (localMode && localStats) {
  console.log(`job (runner, start → done): p50 ${percentile(jobDurations, 50)} ms, p95 ${percentile(jobDurations, 95)} ms`);
  console.log(`backend: renders started ${localStats.rendersStarted}, messages ${localStats.messages}, sessions ${localStats.sessionsCreated}, render cache hits ${localStats.renderCacheHits}`);
}
// Duplicates two ways: the same content started twice (by id), and a bundle name started as
// more than one item (its files seen before they were all there: a second run, a second render).
const starts = events.flatMap((e) => (e.type === 'bundle:start' ? [e] : []));
const byId = starts.length - new Set(starts.map((e) => e.id)).size;
const byName = starts.length - new Set(starts.map((e) => e.name)).size;
console.log(`done ${summary.done}, failed ${summary.failed}, starts ${starts.length} (duplicates: ${byId} by content, ${byName} by bundle name)`);
console.log(`drop took ${dropEnd - dropStart} ms`);
console.log(`total ${total} ms; ideal ${ideal} ms (max(drop + settle + job, settle + ceil(N/c) × job)); overhead ${((total / ideal - 1) * 100).toFixed(1)} %`);
console.log(`pick-up (last file written → queued): p50 ${percentile(pickup, 50)} ms, p95 ${percentile(pickup, 95)} ms, max ${pickup.at(-1)} ms; goal p95 ≤ ${settleMs + 250} ms`);
console.log(`ready → start (includes waiting for a slot): p50 ${percentile(readyToStart, 50)} ms, p95 ${percentile(readyToStart, 95)} ms`);
await rm(root, { recursive: true, force: true });
