/**
 * The watch engine against real files, real chokidar and real timers, with the job injected:
 * detection, settle, bundling, exactly-once, leases, publishing. Where a check depends on how
 * much time passed, the watcher gets a clock and timers the test moves (helpers/manual-time.ts).
 * The runner-backed tests are in watch-command.test.ts.
 */
import { createHash } from 'node:crypto';
import { open, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveWatchConfig, watchFolder, type BundleJob, type RunBundle, type WatchConfig, type WatchFolderOptions } from '../../../src/watch/index.js';
import { EventLog, dropStemBundle, gate, makeInbox, waitFor, writeViaRename } from './watch-helpers.js';
import { ManualTime } from '../../helpers/manual-time.js';
import { readRecord } from '../../helpers/records.js';

const roots: string[] = [];
afterEach(async () => {
  for (const root of roots.splice(0)) await rm(root, { recursive: true, force: true });
});

/** A stand-in job: records the call and writes an output made from the inputs' bytes. */
function recordingJob(calls: BundleJob[], options: { hold?: Promise<void>; failFor?: (job: BundleJob) => boolean } = {}): RunBundle {
  return async (job, signal) => {
    calls.push(job);
    if (options.hold) {
      await Promise.race([
        options.hold,
        new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true })),
      ]);
    }
    if (options.failFor?.(job)) throw new Error(`render refused for ${job.name}`);
    const hash = createHash('sha256');
    for (const file of Object.values(job.files).sort()) hash.update(await readFile(file));
    await writeViaRename(job.output, hash.digest('hex'));
    return { status: 'done', output: job.output, sessionIds: [`s-${job.name}`], renderIds: [`r-${job.name}`], creditsUsed: 100 };
  };
}

async function setup(config: Partial<WatchConfig> = {}) {
  const dirs = await makeInbox();
  roots.push(dirs.root);
  const log = new EventLog();
  const base = (runBundle: RunBundle, extra: Partial<WatchFolderOptions> = {}): WatchFolderOptions => ({
    dir: dirs.inbox,
    config: resolveWatchConfig({ settleMs: 100, scanIntervalMs: 60_000, bundleTimeoutMs: 60_000, ...config }),
    stateDir: dirs.stateDir,
    runBundle,
    once: true,
    poll: false,
    onSuccess: 'move',
    concurrency: 4,
    signal: new AbortController().signal,
    onEvent: log.push,
    retryDelayMs: 1,
    ...extra,
  });
  return { ...dirs, log, base };
}

describe('watchFolder', () => {
  it('renders every bundle found at start once, publishes sidecars and moves sources (--once)', async () => {
    const { inbox, log, base } = await setup();
    for (let i = 0; i < 30; i += 1) await dropStemBundle(inbox, `p${i}`);
    await writeFile(path.join(inbox, 'p0.txt'), 'Make this photo talk\n\nAdd background music\n');
    await writeFile(path.join(inbox, 'notes.pdf'), 'not input');
    const calls: BundleJob[] = [];
    const summary = await watchFolder(base(recordingJob(calls)));

    expect(log.of("bundle:failed")).toEqual([]);
    expect(summary).toMatchObject({ done: 30, failed: 0, skipped: 0, interrupted: false });
    expect(new Set(calls.map((c) => c.id)).size).toBe(30);
    expect(calls.find((c) => c.name === 'p0')?.instructions).toEqual(['Make this photo talk', 'Add background music']);
    expect(calls.find((c) => c.name === 'p1')?.instructions).toBeUndefined();
    const sidecar = await readRecord<Record<string, unknown>>(path.join(inbox, 'out', 'p3.talk.json'));
    expect(sidecar).toMatchObject({ status: 'done', bundle: 'p3', output: 'p3.mp4', sessionIds: ['s-p3'], renderIds: ['r-p3'], attempts: 1, creditsUsed: 100, error: null });
    expect((await readdir(path.join(inbox, 'processed'))).length).toBe(61);
    expect((await readdir(inbox)).sort()).toEqual(['notes.pdf', 'out', 'processed']);
    expect(log.of('bundle:start').every((e) => e.startedAt >= e.readyAt)).toBe(true);
  });

  it('two bundles with identical content under different names, dropped together: one render, the other skipped naming it, in the same session', async () => {
    const { inbox, log, base } = await setup();
    for (const stem of ['anna', 'bert']) {
      await writeViaRename(path.join(inbox, `${stem}.jpg`), 'the same portrait');
      await writeViaRename(path.join(inbox, `${stem}.mp3`), 'the same voice');
    }
    const calls: BundleJob[] = [];
    // The first copy is held until the second has been looked at, so they are active together.
    let release: () => void = () => undefined;
    const hold = new Promise<void>((resolve) => (release = resolve));
    const running = watchFolder(base(recordingJob(calls, { hold })));
    await log.next((e) => e.type === 'bundle:start');
    await log.next((e) => e.type === 'watch:ready');
    release();
    const summary = await running;
    expect(calls).toHaveLength(1);
    const first = calls[0]?.name;
    const second = first === 'anna' ? 'bert' : 'anna';
    expect(summary).toMatchObject({ done: 1, skipped: 1, failed: 0 });
    const skipped = log.of('bundle:skipped');
    expect(skipped.map((e) => [e.name, e.reason])).toEqual([[second, `identical content was already rendered as out/${first}.mp4`]]);
    expect((await readdir(inbox)).sort()).toEqual(['out', 'processed']);
    expect((await readdir(path.join(inbox, 'processed'))).sort()).toEqual(['anna.jpg', 'anna.mp3', 'bert.jpg', 'bert.mp3']);
  });

  it('does not take a file written slowly in chunks before it has settled', async () => {
    const settleMs = 1000;
    const { inbox, log, base } = await setup({ settleMs });
    // The watcher's clock and timers move only when this test moves them: the copy below lasts
    // longer than `settle` on that clock however fast or slow the machine writes it (with real
    // time, a stalled machine stretched a gap past `settle` and the half-copied file was taken).
    const time = new ManualTime();
    const controller = new AbortController();
    const calls: BundleJob[] = [];
    const running = watchFolder(base(recordingJob(calls), { once: false, signal: controller.signal, clock: time, timers: time }));
    await log.next((e) => e.type === 'watch:ready');
    await writeViaRename(path.join(inbox, 'slow.jpg'), 'portrait');
    const handle = await open(path.join(inbox, 'slow.mp3'), 'w');
    // A slow copy: chunks keep arriving for longer than `settle`, each gap well under it.
    for (let i = 0; i < 10; i += 1) {
      if (i > 0) time.advance(settleMs / 5);
      await handle.write(Buffer.alloc(1000, i));
      await handle.sync();
    }
    await handle.close();
    // The watcher measures the settle window on its clock, so the test reads the same clock:
    // its time at the last write (never later than the moment the watcher could see the write).
    const lastWrite = time.now();
    // Time goes on until the watcher takes the bundle.
    await waitFor(() => {
      if (log.of('bundle:start').length > 0) return true;
      time.advance(settleMs / 10);
      return false;
    });
    const start = await log.next((e) => e.type === 'bundle:start');
    await log.next((e) => e.type === 'bundle:done');
    controller.abort();
    await running;
    expect(calls).toHaveLength(1);
    if (start.type === 'bundle:start') expect(start.startedAt).toBeGreaterThanOrEqual(lastWrite + settleMs);
    expect((await readFile(path.join(inbox, 'processed', 'slow.mp3'))).length).toBe(10_000);
  });

  it('processes a .part file once, after it is renamed to its final name', async () => {
    const { inbox, log, base } = await setup();
    const controller = new AbortController();
    const calls: BundleJob[] = [];
    const running = watchFolder(base(recordingJob(calls), { once: false, signal: controller.signal }));
    await log.next((e) => e.type === 'watch:ready');
    await writeFile(path.join(inbox, 'anna.jpg'), 'portrait');
    await writeFile(path.join(inbox, 'anna.mp3.part'), 'voice, half');
    await writeFile(path.join(inbox, 'anna.mp3.part'), 'voice, all of it');
    await rename(path.join(inbox, 'anna.mp3.part'), path.join(inbox, 'anna.mp3'));
    await log.next((e) => e.type === 'bundle:done');
    controller.abort();
    await running;
    expect(calls).toHaveLength(1);
    expect(calls[0]?.files).toEqual({ portrait: path.join(inbox, 'anna.jpg'), voice: path.join(inbox, 'anna.mp3') });
    expect(await readFile(path.join(inbox, 'processed', 'anna.mp3'), 'utf8')).toBe('voice, all of it');
  });

  it('skips identical content dropped again, naming the existing output; changed content is a new item', async () => {
    const { inbox, log, base } = await setup();
    const calls: BundleJob[] = [];
    await dropStemBundle(inbox, 'anna');
    expect((await watchFolder(base(recordingJob(calls)))).done).toBe(1);

    await dropStemBundle(inbox, 'anna');
    const again = await watchFolder(base(recordingJob(calls)));
    expect(again).toMatchObject({ done: 0, skipped: 1 });
    const skipped = log.of('bundle:skipped')[0];
    expect(skipped?.reason).toBe(`identical content was already rendered as ${path.join('out', 'anna.mp4')}`);
    // The duplicate is tidied away like a success, not left to be looked at forever.
    expect(await readdir(inbox)).not.toContain('anna.jpg');

    await dropStemBundle(inbox, 'anna', 'changed');
    expect((await watchFolder(base(recordingJob(calls)))).done).toBe(1);
    expect(calls).toHaveLength(2);
    expect(calls[0]?.id).not.toBe(calls[1]?.id);
  });

  it('writes a status file saying what is missing when a partner never arrives', async () => {
    const { inbox, log, base } = await setup({ bundleTimeoutMs: 200 });
    const controller = new AbortController();
    const running = watchFolder(base(recordingJob([]), { once: false, signal: controller.signal }));
    await log.next((e) => e.type === 'watch:ready');
    await writeViaRename(path.join(inbox, 'solo.jpg'), 'portrait');
    const event = await log.next((e) => e.type === 'bundle:incomplete');
    controller.abort();
    await running;
    expect(event).toMatchObject({ name: 'solo', missing: ['voice'] });
    const status = await readRecord<Record<string, unknown>>(path.join(inbox, 'out', 'solo.talk.json'));
    expect(status).toMatchObject({ status: 'incomplete', bundle: 'solo', missing: ['voice'], sources: ['solo.jpg'] });
    expect(String((status['problems'] as string[])[0])).toMatch(/no voice file/);
  });

  it('gives each bundle to one of two watchers on the same folder', async () => {
    const { inbox, base } = await setup();
    for (let i = 0; i < 40; i += 1) await dropStemBundle(inbox, `b${i}`);
    const callsA: BundleJob[] = [];
    const callsB: BundleJob[] = [];
    const [a, b] = await Promise.all([watchFolder(base(recordingJob(callsA))), watchFolder(base(recordingJob(callsB)))]);
    const ids = [...callsA, ...callsB].map((c) => c.id);
    expect(ids).toHaveLength(40);
    expect(new Set(ids).size).toBe(40);
    expect(a.done + b.done).toBe(40);
    expect((await readdir(path.join(inbox, 'out'))).filter((f) => f.endsWith('.mp4'))).toHaveLength(40);
  });

  it('resumes after a stop mid-batch without running any bundle twice to completion', async () => {
    const { inbox, log, base } = await setup();
    for (let i = 0; i < 8; i += 1) await dropStemBundle(inbox, `r${i}`);
    const held = gate();
    const first: BundleJob[] = [];
    const controller = new AbortController();
    const running = watchFolder(base(recordingJob(first, { hold: held.promise }), { once: false, concurrency: 2, signal: controller.signal }));
    await log.count((e) => e.type === 'bundle:start', 2);
    controller.abort();
    const stopped = await running;
    expect(stopped.interrupted).toBe(true);
    expect(first).toHaveLength(2);
    expect(log.of('bundle:interrupted')).toHaveLength(2);

    const second: BundleJob[] = [];
    const summary = await watchFolder(base(recordingJob(second)));
    expect(summary.done).toBe(8);
    expect(new Set(second.map((c) => c.id)).size).toBe(8);
    const resumed = second.filter((c) => c.resumed).map((c) => c.id).sort();
    expect(resumed).toEqual(first.map((c) => c.id).sort());
  });

  it('retries a failure up to max_attempts, then moves it to failed/ with an error file, and skips it when re-dropped', async () => {
    const { inbox, log, base } = await setup({ maxAttempts: 2 });
    await dropStemBundle(inbox, 'bad');
    await dropStemBundle(inbox, 'good');
    const calls: BundleJob[] = [];
    const job = recordingJob(calls, { failFor: (j) => j.name === 'bad' });
    const summary = await watchFolder(base(job));
    expect(summary).toMatchObject({ done: 1, failed: 1 });
    expect(calls.filter((c) => c.name === 'bad').map((c) => c.attempt)).toEqual([1, 2]);
    expect(log.of('bundle:failed').map((e) => e.willRetry)).toEqual([true, false]);
    expect((await readdir(path.join(inbox, 'failed'))).sort()).toEqual(['bad.error.txt', 'bad.jpg', 'bad.mp3']);
    expect(await readFile(path.join(inbox, 'failed', 'bad.error.txt'), 'utf8')).toMatch(/render refused for bad/);
    const sidecar = await readRecord<Record<string, unknown>>(path.join(inbox, 'out', 'bad.talk.json'));
    expect(sidecar).toMatchObject({ status: 'failed', attempts: 2, error: { message: 'render refused for bad' } });

    await dropStemBundle(inbox, 'bad');
    const again = await watchFolder(base(job));
    expect(again).toMatchObject({ done: 0, failed: 0, skipped: 1 });
    expect(log.of('bundle:skipped')[0]?.reason).toMatch(/failed 2 times .*change the files to try again/);
  });

  it('queues a change made while a bundle runs as a new item, without stopping the running one', async () => {
    const { inbox, log, base } = await setup();
    await dropStemBundle(inbox, 'anna');
    const held = gate();
    const calls: BundleJob[] = [];
    let firstDone = false;
    const job = recordingJob(calls, { hold: held.promise });
    const running = watchFolder(
      base(async (j, signal) => {
        const result = await job(j, signal);
        if (!firstDone) firstDone = true;
        return result;
      }),
    );
    await log.next((e) => e.type === 'bundle:start');
    await writeViaRename(path.join(inbox, 'anna.mp3'), 'voice anna, take two');
    await log.count((e) => e.type === 'bundle:queued', 2);
    expect(log.of('bundle:start')).toHaveLength(1);
    expect(firstDone).toBe(false);
    held.open();
    const summary = await running;
    expect(summary.done).toBe(2);
    expect(calls).toHaveLength(2);
    expect(calls[0]?.id).not.toBe(calls[1]?.id);
    expect(await readFile(path.join(inbox, 'processed', 'anna.mp3'), 'utf8')).toBe('voice anna, take two');
    await waitFor(async () => !(await readdir(inbox)).includes('anna.jpg'));
  });

  it('pairs folder bundles and takes instructions from a manifest written last', async () => {
    const { inbox, base } = await setup({ pairing: 'manifest' });
    const calls: BundleJob[] = [];
    const { mkdir } = await import('node:fs/promises');
    await mkdir(path.join(inbox, 'job1'));
    await writeFile(path.join(inbox, 'job1', 'face.png'), 'p');
    await writeFile(path.join(inbox, 'job1', 'talk.wav'), 'v');
    await mkdir(path.join(inbox, 'job2'));
    await writeFile(path.join(inbox, 'job2', 'face.png'), 'p2');
    await writeFile(path.join(inbox, 'job2', 'talk.wav'), 'v2');
    await writeFile(path.join(inbox, 'job2', 'job.yaml'), 'instructions:\n  - Make this photo talk\n');
    const summary = await watchFolder(base(recordingJob(calls)));
    expect(summary).toMatchObject({ done: 1, incomplete: 1 });
    expect(calls.map((c) => [c.name, c.instructions])).toEqual([['job2', ['Make this photo talk']]]);
    expect(await readdir(path.join(inbox, 'processed', 'job2'))).toHaveLength(3);
    expect(await readdir(inbox)).toContain('job1');
  });
});
