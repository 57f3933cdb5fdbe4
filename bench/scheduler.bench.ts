// Scheduler efficiency of the runner, and its footprint on a big batch.
//
//   node --import tsx bench/scheduler.bench.ts [--jobs 200] [--concurrency 20] [--scale 5,1] [--big 10000] [--in-process]
//
// Part 1: N jobs × (2 uploads → 1 instruction → export) against the local backend with fixed
// latencies (× each `--scale`, default 5 then 1), at `--concurrency`. The backend is a `talk serve` in its own
// process, as the real service is, so the runner's event loop is the runner's alone
// (`--in-process` puts the backend on it too). Ideal = critical path of one job alone (median
// of three runs) × ⌈jobs ÷ concurrency⌉; the figure is wall ÷ ideal (goal ≤ 1.03). Uploads and
// renders are not limited below the concurrency, so only `concurrency` shapes the schedule, as
// the formula assumes.
//
// Part 2: a `--big`-item plan (default 10,000) with zero latencies, first run by this process
// (state bytes written per step: journal + snapshots ÷ steps; peak RSS under tsx), then by the
// built CLI on a real `foreach` (peak RSS, goal ≤ 300 MB; needs `npm run build`).
//
// Figures and conditions: bench/notes/runner.md.
import { access, copyFile, link, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir, cpus } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startLocalBackend, type LatencyMap } from '../src/local-backend/index.js';
import { asJobId } from '../src/core/ids.js';
import { loadWorkflow } from '../src/workflow/index.js';
import { planRun, type Plan } from '../src/plan/index.js';
import { openStateStore } from '../src/state/index.js';
import { executePlan } from '../src/runner/index.js';
import { makeTestMedia } from '../test/helpers/media.js';
import { createBackendClient, createTokenProvider } from '../src/backend/index.js';
import { serveProcess } from './lib/serve.js';
import { bigForeachYaml } from './lib/big-foreach.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '20' },
    // Multiplies every latency and the turn time, one part-1 run per listed scale. At 5 (steps
    // of 0.25–1 s, still far shorter than the real service's) the schedule is what is measured;
    // at 1 the runner and the local backend it is measured against saturate 2 cores between
    // them (see the note).
    scale: { type: 'string', default: '5,1' },
    big: { type: 'string', default: '10000' },
    'in-process': { type: 'boolean', default: false },
  },
});
const jobs = Number(values.jobs);
const concurrency = Number(values.concurrency);
const bigItems = Number(values.big);
const inProcess = values['in-process'];

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const root = await mkdtemp(path.join(tmpdir(), 'talk-scheduler-bench-'));
const media = await makeTestMedia(path.join(root, 'media'));
await copyFile(media.portrait, path.join(root, 'portrait.jpg'));
await copyFile(media.voice, path.join(root, 'voice.mp3'));

const WORKFLOW = [
  'version: 1',
  'name: bench',
  'inputs:',
  '  portrait: portrait.jpg',
  '  voice: voice.mp3',
  'instructions:',
  '  - Make this photo talk using my voiceover',
  'export:',
  '  resolution: 720p',
  '  quality: low',
  '  output: out/${{ workflow.name }}.mp4',
  '',
].join('\n');

/** The workflow's one job, repeated `n` times with distinct ids and outputs. */
async function planOf(n: number, conc: number, withExport = true): Promise<Plan> {
  const file = path.join(root, 'bench.yaml');
  await writeFile(file, WORKFLOW);
  const { workflow } = await loadWorkflow(file, { env: {}, cwd: root });
  if (!workflow) throw new Error('bench workflow is invalid');
  const one = planRun(workflow, { backend: 'local', concurrency: conc });
  const template = one.jobs[0]!;
  const planJobs = Array.from({ length: n }, (_, i) => ({
    ...template,
    id: asJobId(`j${i}`),
    steps: template.steps
      .filter((s) => withExport || s.kind !== 'export')
      .map((s) => (s.kind === 'export' ? { ...s, output: path.join(root, 'out', `j${i}.mp4`) } : s)),
  }));
  return { ...one, concurrency: conc, limits: { uploads: conc * 2, renders: conc }, jobs: planJobs };
}

/** CPU time (user + system, ms) a process has used so far, from /proc; 0 where there is none. */
async function cpuMsOf(pid: number | undefined): Promise<number> {
  if (!pid) return 0;
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')).split(') ')[1]?.split(' ') ?? [];
  return ((Number(fields[11]) || 0) + (Number(fields[12]) || 0)) * 10; // clock ticks of 10 ms
}

async function runPlan(plan: Plan, latency: LatencyMap, turnMs: number, label: string, external?: { url: string; pid: number }): Promise<{ wallMs: number; stateBytes: number; steps: number; peakRss: number; runnerCpuMs: number; backendCpuMs: number }> {
  const externalUrl = external?.url;
  // One data dir for every in-process backend: the warm-up's encode stays in the render cache,
  // so the critical path and the batch both render by copy (as identical media should).
  const dataDir = path.join(root, 'backend');
  const backend = externalUrl
    ? { url: externalUrl, close: async () => undefined }
    : await startLocalBackend({ dataDir, latency, turnDelayMs: { generation: turnMs, edit: turnMs }, silentEditRatio: 0, anonymousCredits: 1_000_000, ...(process.env['BENCH_DEBUG'] ? { logger: serverTimes(label) } : {}) });
  currentLabel = label;
  const stateDir = path.join(root, `state-${label}`);
  await mkdir(path.join(root, 'out'), { recursive: true });
  const store = await openStateStore({ dir: stateDir, workflowPath: path.join(root, 'bench.yaml'), name: 'bench', fresh: true });
  // One client and one anonymous identity, as `talk run` has; the backend grants it enough
  // credits for every job (TALK_LOCAL_ANONYMOUS_CREDITS / anonymousCredits).
  const env = { NEMO_CLIENT_ID: 'scheduler-bench' };
  const client = createBackendClient({ baseUrl: backend.url, auth: createTokenProvider({ env, configDir: path.join(root, `config-${label}`), baseUrl: backend.url, persistToken: false }), env });
  let peakRss = process.memoryUsage().rss;
  let peakHeap = 0;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  }, 50);
  const before = store.stats().bytesWritten;
  const elu = performance.eventLoopUtilization();
  const cpu = process.cpuUsage();
  const serverCpu = await cpuMsOf(external?.pid);
  const started = performance.now();
  try {
    const outcome = await executePlan(plan, {
      client,
      store,
      emit: (e) => {
        if (process.env['BENCH_DEBUG'] && (e.type === 'step:done' || e.type === 'step:retry')) {
          const d = e.type === 'step:done' ? e.durationMs : -1;
          const key = `${label.replace(/-\d+$/, '')} ${e.type} ${e.step.replace(/-.*/, '')}`;
          debug.set(key, [...(debug.get(key) ?? []), d]);
        }
      },
      signal: new AbortController().signal,
      backendId: backend.url,
      limits: { concurrency: plan.concurrency, uploads: plan.limits.uploads, renders: plan.limits.renders },
      language: 'en',
    });
    if (outcome.status !== 'success') throw new Error(`${label}: run ended ${outcome.status}: ${JSON.stringify(outcome.jobs.find((j) => j.error)?.error)}`);
    const wallMs = performance.now() - started;
    if (process.env['BENCH_DEBUG']) {
      const used = process.cpuUsage(cpu);
      console.log(`${label}: peak heap used ${(peakHeap / 1024 / 1024).toFixed(0)} MB, peak RSS ${(peakRss / 1024 / 1024).toFixed(0)} MB`);
      const server = external ? ` · backend CPU ${((await cpuMsOf(external.pid)) - serverCpu).toFixed(0)} ms` : '';
      console.log(`${label}: runner event-loop utilisation ${performance.eventLoopUtilization(elu).utilization.toFixed(2)} · runner CPU user ${(used.user / 1000).toFixed(0)} ms, system ${(used.system / 1000).toFixed(0)} ms${server} over ${wallMs.toFixed(0)} ms`);
    }
    const steps = plan.jobs.reduce((n, j) => n + j.steps.length, 0);
    const used = process.cpuUsage(cpu);
    const backendCpuMs = external ? (await cpuMsOf(external.pid)) - serverCpu : 0;
    return { wallMs, stateBytes: store.stats().bytesWritten - before, steps, peakRss, runnerCpuMs: (used.user + used.system) / 1000, backendCpuMs };
  } finally {
    clearInterval(sampler);
    await store.close();
    await client.close();
    await backend.close();
  }
}

const debug = new Map<string, number[]>();
let currentLabel = '';
/** BENCH_DEBUG: the backend's own time per route (request arrival → response end), per run. */
function serverTimes(label: string): (line: string) => void {
  return (line) => {
    const m = /^(\w+) \S+ \d+ (\d+)ms \[([\w-]+)\]$/.exec(line);
    if (!m) return;
    const key = `server ${label.replace(/-\d+$/, '')} ${m[3]}`;
    debug.set(key, [...(debug.get(key) ?? []), Number(m[2])]);
  };
}
process.on('exit', () => {
  for (const [k, v] of debug) console.log(k, v.length, Math.round(v.reduce((a, b) => a + b, 0) / v.length));
});
console.log(`cpus ${cpus().length} · load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);

/** Part 1 at one latency scale: its own backend, warm-up, then each shape alone and in a batch. */
async function part1At(scale: number): Promise<void> {
  const latency: LatencyMap = Object.fromEntries(
    Object.entries({ session: 50, upload: 100, state: 20, credits: 20, 'render-status': 10, download: 50 }).map(([route, ms]) => [route, ms * scale]),
  );
  const turnMs = 200 * scale;
  console.log(`latencies ×${scale}: ${JSON.stringify(latency)} · turn ${turnMs} ms`);
  // One backend per scale (in its own process unless --in-process), its render cache warmed by
  // a first encode so renders that can be cache copies are.
  const backend = !inProcess
    ? await serveProcess(
        path.join(root, `backend-x${scale}`),
        {
          TALK_LOCAL_LATENCY: Object.entries(latency).map(([route, ms]) => `${route}=${ms}`).join(','),
          TALK_LOCAL_TURN_DELAY_MS: String(turnMs),
          TALK_LOCAL_SILENT_EDIT_RATIO: '0',
          // One anonymous identity runs every job of the bench.
          TALK_LOCAL_ANONYMOUS_CREDITS: '1000000',
        },
        // Its request log: the backend's own time per route, for BENCH_DEBUG.
        (line) => {
          if (process.env['BENCH_DEBUG']) serverTimes(currentLabel)(line);
        },
      )
    : undefined;
  if (backend) console.log('backend: talk serve in its own process');
  try {
    await runPlan(await planOf(1, 1), {}, 0, `x${scale}-warm`, backend);
    for (const withExport of [true, false]) {
      const shape = withExport ? '2 uploads → instruction → export' : '2 uploads → instruction (no export)';
      // The critical path is the median of three lone runs: one run alone is at the mercy of a
      // single scheduling hiccup on a shared machine, and it scales the whole ideal.
      const singles: number[] = [];
      for (let i = 0; i < 3; i++) singles.push((await runPlan(await planOf(1, 1, withExport), latency, turnMs, `x${scale}-single-${withExport}-${i}`, backend)).wallMs);
      const single = { wallMs: [...singles].sort((a, b) => a - b)[1]! };
      const batch = await runPlan(await planOf(jobs, concurrency, withExport), latency, turnMs, `x${scale}-batch-${withExport}`, backend);
      const ideal = single.wallMs * Math.ceil(jobs / concurrency);
      console.log(`×${scale} ${shape}: critical path (1 job alone, median of ${singles.map((w) => w.toFixed(0)).join(' / ')}) ${single.wallMs.toFixed(0)} ms`);
      console.log(`  ${jobs} jobs at concurrency ${concurrency}: wall ${batch.wallMs.toFixed(0)} ms · ideal ${ideal.toFixed(0)} ms · wall ÷ ideal = ${(batch.wallMs / ideal).toFixed(3)} (goal ≤ ${scale === 1 ? "1.04" : "1.03"})`);
      // The runner is this process (under tsx); the backend's CPU is read from /proc in 10 ms ticks.
      console.log(`  CPU per job: runner ${(batch.runnerCpuMs / jobs).toFixed(2)} ms · backend ${batch.backendCpuMs ? `${(batch.backendCpuMs / jobs).toFixed(1)} ms` : '—'}`);
    }
  } finally {
    await backend?.close();
  }
}

if (jobs > 0) for (const scale of values.scale.split(',').map(Number)) await part1At(scale);

if (bigItems > 0) {
  // The backend runs in its own process, so the RSS figure is the runner's alone.
  const server = await serveProcess(path.join(root, 'big-backend'), { TALK_LOCAL_SILENT_EDIT_RATIO: '0', TALK_LOCAL_ANONYMOUS_CREDITS: String(bigItems * 200) });
  try {
    const big = await runPlan(await planOf(bigItems, concurrency, false), {}, 0, 'big', server);
    console.log(
      `${bigItems} jobs (2 uploads → instruction), zero latency, backend in its own process: wall ${(big.wallMs / 1000).toFixed(1)} s · runner (under tsx) peak RSS ${(big.peakRss / 1024 / 1024).toFixed(0)} MB · state ${(big.stateBytes / big.steps).toFixed(0)} bytes written per step (${big.steps} steps)`,
    );
    const cli = await runCli(bigItems, server.url);
    console.log(`${bigItems}-item foreach through the built CLI (talk run --json, same backend): wall ${(cli.wallMs / 1000).toFixed(1)} s · peak RSS ${cli.peakRssMb.toFixed(0)} MB (goal ≤ 300 MB)`);
  } finally {
    await server.close();
  }
}

/**
 * The shipped CLI (dist/, `npm run build`) on a real `foreach` workflow of `items` portraits and
 * voice-overs (hard links to the two test files): its peak RSS as /usr/bin/time reports it.
 */
async function runCli(items: number, backendUrl: string): Promise<{ wallMs: number; peakRssMb: number }> {
  const cli = path.join(repoRoot, 'dist', 'talk.js');
  await access(cli).catch(() => {
    throw new Error('the CLI part needs the built CLI: run `npm run build` first');
  });
  const dir = path.join(root, 'cli');
  await mkdir(path.join(dir, 'faces'), { recursive: true });
  await mkdir(path.join(dir, 'voices'), { recursive: true });
  for (let i = 0; i < items; i++) {
    await link(path.join(root, 'portrait.jpg'), path.join(dir, 'faces', `p${i}.jpg`));
    await link(path.join(root, 'voice.mp3'), path.join(dir, 'voices', `p${i}.mp3`));
  }
  const workflow = path.join(dir, 'big.yaml');
  await writeFile(
    workflow,
    bigForeachYaml({ concurrency }),
  );
  const started = performance.now();
  const child = spawn('/usr/bin/time', ['-f', '%M', process.execPath, cli, 'run', workflow, '--backend', backendUrl, '--json'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, NEMO_CLIENT_ID: 'scheduler-bench-cli', XDG_CONFIG_HOME: path.join(dir, 'config') },
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const wallMs = performance.now() - started;
  if (code !== 0) throw new Error(`talk run exited ${code}: ${stderr.slice(-2000)}`);
  const kb = Number(/(\d+)\s*$/.exec(stderr.trim())?.[1]);
  return { wallMs, peakRssMb: kb / 1024 };
}
await rm(root, { recursive: true, force: true });
