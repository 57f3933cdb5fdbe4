/**
 * `--once` completion and failure policy of the watch engine, with the job injected: the run
 * must end when the last job finishes during a reconciliation scan, and an out-of-credits
 * failure must fail the bundle at once (no retries) with the next action in its error file.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveWatchConfig, watchFolder, type BundleJob, type RunBundle, type WatchConfig, type WatchFolderOptions, type WatchSummary } from '../../../src/watch/index.js';
import { EventLog, dropStemBundle, makeInbox, writeViaRename } from './watch-helpers.js';
import { readRecord } from '../../helpers/records.js';

const roots: string[] = [];
afterEach(async () => {
  for (const root of roots.splice(0)) await rm(root, { recursive: true, force: true });
});

async function setup(config: Partial<WatchConfig>) {
  const dirs = await makeInbox('talk-watch-once-');
  roots.push(dirs.root);
  const log = new EventLog();
  const options = (runBundle: RunBundle): WatchFolderOptions => ({
    dir: dirs.inbox,
    config: resolveWatchConfig({ settleMs: 50, scanIntervalMs: 60_000, bundleTimeoutMs: 60_000, ...config }),
    stateDir: dirs.stateDir,
    runBundle,
    once: true,
    poll: false,
    onSuccess: 'move',
    concurrency: 4,
    signal: new AbortController().signal,
    onEvent: log.push,
    retryDelayMs: 1,
  });
  return { ...dirs, log, options };
}

/** Fails the test instead of hanging it when `--once` never ends. */
async function within(ms: number, run: Promise<WatchSummary>, what: () => string): Promise<WatchSummary> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`--once did not end within ${ms} ms: ${what()}`)), ms);
  });
  try {
    return await Promise.race([run, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const done: RunBundle = async (job) => {
  await writeViaRename(job.output, `video of ${job.name}`);
  return { status: 'done', output: job.output };
};

describe('watchFolder --once', () => {
  it('ends when the last job finishes while a reconciliation scan is running', async () => {
    // With `--on-success keep` nothing moves, so no file event follows a job's end: the idle
    // check that job makes is the last one. A 1 ms scan interval keeps reconciliation scans
    // running back to back, so jobs end while a scan is in flight,
    // and the watcher must still notice it is idle when that scan ends.
    const { inbox, log, options } = await setup({ scanIntervalMs: 1 });
    for (let i = 0; i < 20; i += 1) await dropStemBundle(inbox, `p${i}`);
    // Later rounds skip the identical bundles: each round is another chance to end mid-scan.
    for (let round = 0; round < 10; round += 1) {
      const summary = await within(10_000, watchFolder({ ...options(done), onSuccess: 'keep' }), () => `round ${round}: ${log.of('bundle:done').length} done`);
      expect(summary.failed).toBe(0);
    }
    expect(log.of('bundle:done')).toHaveLength(20);
    expect(log.of('bundle:skipped')).toHaveLength(180);
  });

  it('fails an out-of-credits bundle at once, says what to do next, and runs the same files again after a top-up', async () => {
    const { inbox, log, options } = await setup({ maxAttempts: 3 });
    await dropStemBundle(inbox, 'anna');
    const calls: BundleJob[] = [];
    const broke: RunBundle = (job) => {
      calls.push(job);
      return Promise.resolve({
        status: 'failed',
        error: { code: 'credits', message: 'the account is out of credits (2001)', hint: 'bind the account at the link `talk credits` prints, then drop the files again' },
      });
    };
    const first = await watchFolder(options(broke));
    expect(first).toMatchObject({ done: 0, failed: 1 });
    expect(calls).toHaveLength(1);
    expect(log.of('bundle:failed')).toMatchObject([{ name: 'anna', attempt: 1, willRetry: false, error: { code: 'credits' } }]);
    const errorText = await readFile(path.join(inbox, 'failed', 'anna.error.txt'), 'utf8');
    expect(errorText).toMatch(/error \(credits\): the account is out of credits/);
    expect(errorText).toMatch(/next: bind the account at the link `talk credits` prints/);
    expect(errorText).toMatch(/Out of credits: top up/);
    const sidecar = await readRecord<Record<string, unknown>>(path.join(inbox, 'out', 'anna.talk.json'));
    expect(sidecar).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'credits' } });

    // Topped up: the identical files dropped again run (they are not "failed too often").
    await dropStemBundle(inbox, 'anna');
    const second = await watchFolder(options(done));
    expect(second).toMatchObject({ done: 1, failed: 0, skipped: 0 });
  });

  it('retries an ordinary failure, unlike credits', async () => {
    const { inbox, options } = await setup({ maxAttempts: 3 });
    await dropStemBundle(inbox, 'bob');
    let calls = 0;
    const flaky: RunBundle = () => {
      calls += 1;
      return Promise.resolve({ status: 'failed', error: { code: 'backend', message: 'the render failed' } });
    };
    expect(await watchFolder(options(flaky))).toMatchObject({ failed: 1 });
    expect(calls).toBe(3);
  });
});
