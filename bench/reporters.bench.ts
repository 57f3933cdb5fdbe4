// Cost of the reporters per event, for a 1,000-job batch (12 events a job), and why the tty
// view draws big batches in lanes: listr2 redraws every task on every change, so a task per
// job and step grows with the square of the batch. Prints figures; asserts nothing (notes in
// bench/notes/reporters.md). Run: npm run bench -- reporters
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { DefaultRenderer, Listr, ListrLogger, ProcessOutput } from 'listr2';
import { stamp, type TalkEvent, type TalkEventInit } from '../src/core/events.js';
import { createReporter, type ReporterChoice } from '../src/reporters/index.js';

const JOBS = Number(process.env['BENCH_JOBS'] ?? 1000);
const STEPS = ['portrait', 'voice', 'talk', 'export'];

function batch(jobs: number): TalkEvent[] {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const at = (init: TalkEventInit, ms = 0): TalkEvent => {
    now += ms;
    return stamp(init, () => new Date(now));
  };
  const ids = Array.from({ length: jobs }, (_, i) => `face-${i}`);
  const events: TalkEvent[] = [at({ type: 'run:start', workflow: 'b.yaml', name: 'bench', backend: 'local', jobs, resumed: false, plan: ids.map((job) => ({ job, steps: STEPS })) })];
  // Eight jobs in flight, their events interleaved, as the runner would emit them.
  for (let i = 0; i < ids.length; i += 8) {
    const group = ids.slice(i, i + 8);
    const perJob = group.map((job) => [
      at({ type: 'step:start', job, step: 'portrait', kind: 'upload' }, 10),
      at({ type: 'step:progress', job, step: 'portrait', bytes: 500_000, total: 1_000_000 }, 100),
      at({ type: 'step:done', job, step: 'portrait', durationMs: 200 }, 100),
      at({ type: 'step:skipped', job, step: 'voice', reason: 'resumed' }),
      at({ type: 'step:start', job, step: 'talk', kind: 'instruction' }),
      at({ type: 'step:progress', job, step: 'talk', label: 'generating video' }, 100),
      at({ type: 'step:progress', job, step: 'talk', label: 'editing timeline' }, 100),
      at({ type: 'step:done', job, step: 'talk', durationMs: 300, creditsUsed: 100 }, 100),
      at({ type: 'step:start', job, step: 'export', kind: 'export' }),
      at({ type: 'step:progress', job, step: 'export', percent: 50 }, 100),
      at({ type: 'step:progress', job, step: 'export', bytes: 100_000, total: 100_000 }, 100),
      at({ type: 'step:done', job, step: 'export', durationMs: 300, output: `out/${job}.mp4` }, 100),
    ]);
    for (let k = 0; k < perJob[0]!.length; k++) for (const jobEvents of perJob) events.push(jobEvents[k]!);
  }
  events.push(at({ type: 'run:done', status: 'success', outputs: [], creditsUsed: jobs * 100, durationMs: now }));
  return events;
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function measure(name: ReporterChoice, events: TalkEvent[]): Promise<{ ms: number; bytes: number; maxFrameLines: number }> {
  let bytes = 0;
  let maxFrameLines = 0;
  const sink = {
    write: (text: string) => {
      bytes += text.length;
      if (name === 'tty') maxFrameLines = Math.max(maxFrameLines, text.split('\n').length);
    },
    isTTY: name === 'tty',
    columns: 120,
  };
  const reporter = createReporter({ name, stdout: sink, stderr: sink, quiet: false, verbose: false, color: false, env: {} });
  const start = performance.now();
  for (const event of events) {
    reporter.emit(event);
    // The tty view draws between events, as it would while a real run waits on the network.
    if (name === 'tty') await turn();
  }
  await reporter.close();
  return { ms: performance.now() - start, bytes, maxFrameLines };
}

async function listrTaskPerJob(jobs: number): Promise<number> {
  const quiet = (): NodeJS.WriteStream => Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: true, columns: 120, rows: 40 }) as unknown as NodeJS.WriteStream;
  const logger = new ListrLogger({ useIcons: true, processOutput: new ProcessOutput(quiet(), quiet()) });
  const start = performance.now();
  const tasks = Array.from({ length: jobs }, (_, i) => ({
    title: `face-${i}`,
    task: (_ctx: unknown, task: { newListr: (t: unknown[], o: unknown) => unknown }) =>
      task.newListr(STEPS.map((s) => ({ title: s, task: async () => undefined })), { concurrent: true }),
  }));
  await new Listr(tasks as never, { concurrent: true, renderer: DefaultRenderer, rendererOptions: { logger }, registerSignalListeners: false }).run();
  return performance.now() - start;
}

// listr2's default renderer draws only when the process's stdout is a terminal.
process.stdout.isTTY = true;
const events = batch(JOBS);
console.log(`${JOBS} jobs, ${events.length} events`);
for (const name of ['json', 'plain', 'tty'] as const) {
  const { ms, bytes, maxFrameLines } = await measure(name, events);
  const extra = name === 'tty' ? `, tallest frame ${maxFrameLines} lines` : '';
  console.log(`${name.padEnd(5)} ${ms.toFixed(0).padStart(6)} ms total, ${((ms * 1000) / events.length).toFixed(1).padStart(6)} µs/event, ${(bytes / 1e6).toFixed(1)} MB written${extra}`);
}
for (const jobs of [8, 40, 80]) {
  console.log(`listr2 with a task per job and step, ${jobs} jobs: ${(await listrTaskPerJob(jobs)).toFixed(0)} ms`);
}
