import { afterEach, describe, expect, it } from 'vitest';
import { stripVTControlCharacters } from 'node:util';
import type { TalkEvent } from '../../../src/core/events.js';
import { RunTally, createReporter, formatSummary } from '../../../src/reporters/index.js';
import { Clock, captureSink, runStart, successfulJob } from './fixtures.js';

interface ListrTestLine {
  event: string;
  data: unknown;
}

/** Lines listr2's own test renderer wrote (one JSON object each). */
function listrEvents(text: string): ListrTestLine[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as ListrTestLine);
}

/** Lets listr2 run its pending task callbacks (a turn of the event loop; not a timed sleep). */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Waits until listr2 has started drawing: its first write to the sink. */
async function drawing(sink: { chunks: string[] }): Promise<void> {
  while (sink.chunks.length === 0) await turn();
  await turn();
}

describe('tty reporter (listr2 test renderer)', () => {
  it('titles steps with transfer rate and ETA, tool labels, retries, still working and results', async () => {
    const clock = new Clock();
    const stdout = captureSink(true, 100);
    const reporter = createReporter({ name: 'tty', stdout, stderr: captureSink(), quiet: false, verbose: false, color: false, env: {}, ttyRenderer: 'test' });
    reporter.emit(runStart(clock, ['main']));
    await drawing(stdout);
    const job = successfulJob(clock, 'main');
    const sequence = [
      ...job.slice(0, 8),
      clock.at({ type: 'step:retry', job: 'main', step: 'talk', attempt: 2, reason: 'rate limited', delayMs: 30_000 }),
      clock.at({ type: 'step:progress', job: 'main', step: 'talk', label: 'still working' }, 60_000),
      clock.at({ type: 'step:progress', job: 'main', step: 'talk', label: 'still working' }, 61_000),
      ...job.slice(8).map((e) => ({ ...e, ts: new Date(Date.parse(e.ts) + 121_000).toISOString() })),
    ];
    for (const event of sequence) {
      reporter.emit(event);
      await turn();
    }
    reporter.emit(clock.at({ type: 'run:done', status: 'success', outputs: [], creditsUsed: 100, durationMs: 130_000 }));
    await reporter.close();

    const events = listrEvents(stdout.text());
    const titles = events.filter((e) => e.event === 'TITLE').map((e) => e.data);
    expect(titles).toContain('portrait · uploading 500 KB / 1.0 MB (50%) · 500 KB/s · ETA 1 s');
    expect(titles).toContain('talk · generating video');
    // 60 s of heartbeats is not yet news; 2 minutes is.
    const still = titles.filter((t) => String(t).includes('still working'));
    expect(still).toHaveLength(1);
    expect(still[0]).toMatch(/^talk · ⏳ still working \(2 min \d+ s\)$/);
    expect(titles).toContain('export · rendering 50%');
    expect(titles).toContain('export · done in 2 s → out/main.mp4');
    expect(titles).toContain('hello · 1 done · 100 credits');
    const outputs = events.filter((e) => e.event === 'OUTPUT').map((e) => e.data);
    expect(outputs).toContain('rate limited, retrying in 30 s (attempt 2)');
    // The summary follows listr2's last line.
    expect(stdout.text()).toMatch(/\nSummary: success · 1 job · 2 min 10 s · 100 credits\n {2}✔ main {2}out\/main.mp4/);
  });

  it('shows a failed step with its error and the next action', async () => {
    const clock = new Clock();
    const stdout = captureSink(true, 100);
    const reporter = createReporter({ name: 'tty', stdout, stderr: captureSink(), quiet: false, verbose: false, color: false, env: {}, ttyRenderer: 'test', workflowFile: 'w.yaml' });
    reporter.emit(runStart(clock, ['main']));
    reporter.emit(clock.at({ type: 'step:start', job: 'main', step: 'export', kind: 'export' }));
    reporter.emit(clock.at({ type: 'step:failed', job: 'main', step: 'export', error: { code: 'backend', message: 'render failed', hint: 'resume with `talk run w.yaml`' } }));
    reporter.emit(clock.at({ type: 'run:done', status: 'failed', outputs: [], creditsUsed: 0, durationMs: 1 }));
    await reporter.close();
    const events = listrEvents(stdout.text());
    const errors = events.filter((e) => e.event === 'MESSAGE').map((e) => JSON.stringify(e.data));
    expect(errors.some((e) => e.includes('export: render failed (backend) → resume with `talk run w.yaml`'))).toBe(true);
    expect(stdout.text()).toContain('      → resume with `talk run w.yaml`\n');
  });
});

describe('marks that tell the truth', () => {
  it.each([
    ['failed', 'hello · 0 done · 1 failed · failed'],
    ['interrupted', 'hello · 0 done · 1 interrupted · interrupted'],
    ['credits', 'hello · 0 done · 1 failed · out of credits'],
  ] as const)('the header of a %s run is not drawn as a success', async (status, title) => {
    const clock = new Clock();
    const stdout = captureSink(true, 100);
    const reporter = createReporter({ name: 'tty', stdout, stderr: captureSink(), quiet: false, verbose: false, color: false, env: {}, ttyRenderer: 'test', workflowFile: 'w.yaml' });
    reporter.emit(runStart(clock, ['main']));
    reporter.emit(clock.at({ type: 'step:start', job: 'main', step: 'export', kind: 'export' }));
    if (status !== 'interrupted') reporter.emit(clock.at({ type: 'step:failed', job: 'main', step: 'export', error: { code: status === 'credits' ? 'credits' : 'backend', message: 'no' } }));
    reporter.emit(clock.at({ type: 'run:done', status, outputs: [], creditsUsed: 0, durationMs: 1 }));
    await reporter.close();
    const events = listrEvents(stdout.text());
    const said = events.filter((e) => e.event === 'MESSAGE' || e.event === 'SKIPPED' || e.event === 'STATE').map((e) => JSON.stringify(e.data));
    expect(said.some((e) => e.includes(title))).toBe(true);
    const summary = stdout.text().slice(stdout.text().indexOf('Summary:'));
    expect(summary).not.toMatch(/✔/);
    if (status === 'credits') expect(summary).toMatch(/^Summary: out of credits/);
  });

  it('the summary marks ✔ only a job done with its outputs; every other outcome has its own mark and word, in aligned columns', () => {
    const clock = new Clock();
    const tally = new RunTally();
    const jobs = ['ada', 'grace', 'katherine', 'mary', 'dorothy'];
    tally.observe(runStart(clock, jobs, false));
    tally.observe(clock.at({ type: 'step:start', job: 'ada', step: 'export', kind: 'export' }));
    tally.observe(clock.at({ type: 'step:done', job: 'ada', step: 'export', durationMs: 1000, output: 'out/ada.mp4' }));
    // grace's export ran and reported done, but no file came of it.
    tally.observe(clock.at({ type: 'step:start', job: 'grace', step: 'export', kind: 'export' }));
    tally.observe(clock.at({ type: 'step:done', job: 'grace', step: 'export', durationMs: 1800 }));
    tally.observe(clock.at({ type: 'step:start', job: 'katherine', step: 'talk', kind: 'instruction' }));
    tally.observe(clock.at({ type: 'step:failed', job: 'katherine', step: 'talk', error: { code: 'backend', message: 'no' } }));
    tally.observe(clock.at({ type: 'step:start', job: 'mary', step: 'talk', kind: 'instruction' }));
    tally.observe(clock.at({ type: 'run:done', status: 'failed', outputs: [], creditsUsed: 0, durationMs: 5000 }));
    const text = formatSummary(tally, { paint: (_c, t) => t, resumeCommand: 'talk run w.yaml' });
    const rows = text.split('\n').filter((l) => /^ {2}\S /.test(l));
    expect(rows.find((r) => r.includes('ada'))).toMatch(/^ {2}✔ ada /);
    expect(rows.find((r) => r.includes('grace'))).toMatch(/^ {2}! grace +done, but no output/);
    expect(rows.find((r) => r.includes('katherine'))).toMatch(/^ {2}✖ katherine +failed/);
    expect(rows.find((r) => r.includes('mary'))).toMatch(/^ {2}■ mary +interrupted/);
    expect(text.match(/resume with/g)).toHaveLength(1);
    // Durations start in one column.
    const starts = rows.filter((r) => /\d s/.test(r)).map((r) => r.search(/\d+(\.\d+)? s/));
    expect(new Set(starts).size).toBe(1);
  });
});

describe('tty frames', () => {
  it('coalesces a burst of progress into one change per frame', async () => {
    const clock = new Clock();
    const stdout = captureSink(true, 100);
    const reporter = createReporter({ name: 'tty', stdout, stderr: captureSink(), quiet: false, verbose: false, color: false, env: {}, ttyRenderer: 'test', ttyFrameMs: 60_000 });
    reporter.emit(runStart(clock, ['main']));
    await drawing(stdout);
    reporter.emit(clock.at({ type: 'step:start', job: 'main', step: 'export', kind: 'export' }));
    for (let p = 0; p <= 100; p++) reporter.emit(clock.at({ type: 'step:progress', job: 'main', step: 'export', percent: p }, 10));
    await turn();
    // Within one (long) frame nothing reached listr2 yet.
    const changed = (e: ListrTestLine): boolean => e.event === 'TITLE' && String(e.data).startsWith('export') && !String(e.data).endsWith('· waiting');
    expect(listrEvents(stdout.text()).filter(changed)).toEqual([]);
    reporter.emit(clock.at({ type: 'step:done', job: 'main', step: 'export', durationMs: 1000, output: 'out/x.mp4' }));
    reporter.emit(clock.at({ type: 'run:done', status: 'success', outputs: [], creditsUsed: 0, durationMs: 1000 }));
    await reporter.close();
    // Closing applies the last state at once: the final title, not the 101 in between.
    const titles = listrEvents(stdout.text()).filter(changed).map((e) => e.data);
    expect(titles).toEqual(['export · done in 1 s → out/x.mp4']);
  });
});

describe('tty reporter (listr2 default renderer on a terminal)', () => {
  const wasTTY = process.stdout.isTTY;
  afterEach(() => {
    process.stdout.isTTY = wasTTY;
  });

  it('keeps a 16-job batch to a header and the running jobs', async () => {
    // listr2 draws only when the process's stdout is a terminal; pretend it is.
    process.stdout.isTTY = true;
    const clock = new Clock();
    const stdout = captureSink(true, 120);
    // Every change drawn at once (no 100 ms frames), so each frame can be checked.
    const reporter = createReporter({ name: 'tty', stdout, stderr: captureSink(), quiet: false, verbose: false, color: false, env: {}, ttyFrameMs: 0 });
    const jobs = Array.from({ length: 16 }, (_, i) => `face-${String(i).padStart(3, '0')}`);
    reporter.emit(runStart(clock, jobs));
    await drawing(stdout);
    // Four jobs in flight at a time, their events interleaved.
    for (let i = 0; i < jobs.length; i += 4) {
      const batch = jobs.slice(i, i + 4).map((job) => successfulJob(clock, job));
      for (let k = 0; k < batch[0]!.length; k++) {
        for (const events of batch) reporter.emit(events[k]!);
        await turn();
      }
    }
    reporter.emit(clock.at({ type: 'run:done', status: 'success', outputs: [], creditsUsed: 1600, durationMs: 1 }));
    await reporter.close();
    // Every frame log-update drew fits a terminal: the header, six lanes of a job and its steps, notices.
    const frames = stdout.chunks.map((c) => stripVTControlCharacters(c)).filter((c) => c.includes('hello ·'));
    expect(frames.length).toBeGreaterThan(30);
    expect(Math.max(...frames.map((f) => f.split('\n').length))).toBeLessThanOrEqual(1 + 6 * 5 + 1);
    // Mid-run, the running jobs are on screen with their steps.
    expect(frames.some((f) => /face-01\d\n\s+› ✔ portrait · done in 2 s\n/.test(f))).toBe(true);
    const text = stripVTControlCharacters(stdout.text());
    // The final frame (before the summary): only the header with its counts.
    const final = frames.at(-1)!.split('\n').filter((l) => l.trim() !== '');
    expect(final).toEqual([expect.stringMatching(/^✔ hello · 16 done · 1600 credits/)]);
    expect(text).toContain('Summary: success · 16 jobs');
    expect(text.match(/^ {2}✔ face-\d{3} {2}out\/face-\d{3}\.mp4/gm)).toHaveLength(16);
  });
});

/** Keeps the import of TalkEvent meaningful for readers: the fixtures build these. */
export type { TalkEvent };
