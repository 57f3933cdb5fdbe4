// Queue mode end to end: `talk run --queue` and `talk worker`s as separate processes of the
// built CLI, a real redis-server (AOF on) and one `talk serve` they all share over loopback.
// Every job once across workers (the backend's counters), the same workflow enqueued twice,
// credit holds across workers, a worker killed -9 mid-render and mid-instruction, and Redis
// restarted mid-batch. Moments are picked from the processes' events, never from sleeps.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli, spawnCli, type CliProcess } from '../helpers/cli.js';
import { freePort, startRedis, type TestRedis } from '../helpers/redis.js';
import { batchWorkspace, startServe, type Served } from '../helpers/serve.js';
import { makeTestMedia, testTools } from '../helpers/media.js';
import type { TalkEvent } from '../../src/core/events.js';

beforeAll(() => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'talk.js'))) execFileSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'build.mjs')], { stdio: 'ignore' });
}, 120_000);

let redis: TestRedis;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  redis = await startRedis();
}, 30_000);

afterEach(async () => {
  for (const clean of cleanups.splice(0).reverse()) await clean().catch(() => undefined);
  // Each test starts from an empty Redis (a new queue, no state, no holds).
  const client = new Redis({ host: '127.0.0.1', port: redis.port });
  await client.flushall();
  await client.quit();
});

afterAll(async () => {
  await redis.stop();
});

/**
 * For the kill tests: a dead worker's job is handed on within seconds. Other tests keep BullMQ's
 * 30 s lock, so a busy machine that delays a lock renewal never hands a live worker's job on.
 */
const FAST_LOCKS = { TALK_QUEUE_LOCK_MS: '3000', TALK_QUEUE_STALLED_MS: '500' };

async function serve(env: Record<string, string>, args: string[] = []): Promise<Served> {
  const served = await startServe({ env, args });
  cleanups.push(() => served.stop());
  return served;
}

async function workspace(items: number, top: string[] = []): Promise<string> {
  const dir = await batchWorkspace(items, { concurrency: 8, top });
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A worker in a folder of its own (its own config dir), on the account of `clientId`. */
async function startWorker(served: Served, clientId: string, concurrency: number, env: Record<string, string> = {}): Promise<CliProcess> {
  const cwd = await mkdtemp(path.join(tmpdir(), 'talk-e2e-worker-'));
  const child = spawnCli(['worker', '--queue', redis.url, '--backend', served.url, '--concurrency', String(concurrency), '--json'], { cwd, env: { NEMO_CLIENT_ID: clientId, ...env }, timeoutMs: 300_000 });
  cleanups.push(async () => {
    if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill('SIGKILL');
    await child.done.catch(() => undefined);
    await rm(cwd, { recursive: true, force: true });
  });
  await child.waitForEvent((e) => e.type === 'notice' && /worker ready/.test(e.message));
  return child;
}

function follow(cwd: string, served: Served, clientId: string, options: { viaEnv?: boolean; args?: string[] } = {}): Promise<Awaited<ReturnType<typeof runCli>>> {
  // TALK_QUEUE is the environment form of --queue.
  const queue = options.viaEnv ? [] : ['--queue', redis.url];
  return runCli(['run', 'batch.yaml', ...queue, '--backend', served.url, '--json', ...(options.args ?? [])], { cwd, env: { NEMO_CLIENT_ID: clientId, ...(options.viaEnv ? { TALK_QUEUE: redis.url } : {}) }, timeoutMs: 300_000 });
}

async function queueCounts(): Promise<Record<string, number>> {
  const queue = new Queue('jobs', { connection: { host: '127.0.0.1', port: redis.port }, prefix: 'talk' });
  try {
    return await queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized');
  } finally {
    await queue.close();
  }
}

/**
 * A watch folder in `dir`: `watch.yaml` (one instruction, a low-quality 720p export, a 200 ms
 * settle) and `inbox/` with a portrait (its own bytes per stem) and a voice-over per stem, dated
 * a minute ago so they count as settled whenever the test looks. Returns the inbox.
 */
async function watchInbox(dir: string, stems: readonly string[]): Promise<string> {
  await writeFile(path.join(dir, 'watch.yaml'), ['version: 1', 'name: inbox', 'instructions:', '  - Make this photo talk using my voiceover', 'export:', '  quality: low', '  resolution: 720p', 'watch:', '  settle: 200ms', ''].join('\n'));
  const inbox = path.join(dir, 'inbox');
  await mkdir(inbox);
  const media = await makeTestMedia(path.join(tmpdir(), 'talk-test-media-e2e'));
  const settled = new Date(Date.now() - 60_000);
  for (const stem of stems) {
    const portrait = path.join(inbox, `${stem}.jpg`);
    const voice = path.join(inbox, `${stem}.mp3`);
    await writeFile(portrait, Buffer.concat([await readFile(media.portrait), Buffer.from(stem)]));
    await copyFile(media.voice, voice);
    for (const file of [portrait, voice]) await utimes(file, settled, settled);
  }
  return inbox;
}

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `p${String(i).padStart(2, '0')}`);

/** An MP4 that ffprobe reads, with a video stream and a duration. */
function assertValidMp4(file: string): void {
  const out = execFileSync(testTools().ffprobe, ['-v', 'error', '-show_entries', 'format=duration:stream=codec_type', '-of', 'json', file], { encoding: 'utf8' });
  const probe = JSON.parse(out) as { format: { duration: string }; streams: { codec_type: string }[] };
  expect(Number(probe.format.duration), file).toBeGreaterThan(0);
  expect(probe.streams.map((s) => s.codec_type), file).toContain('video');
}

describe('talk run --queue + talk worker (built CLI, real Redis)', () => {
  it('3 workers × 30 jobs: every job once; enqueued twice it is still 30 jobs', async () => {
    const served = await serve({ TALK_LOCAL_ANONYMOUS_CREDITS: '3000' });
    const cwd = await workspace(30);
    const account = 'e2e-queue-30';
    // Enqueued twice before any worker runs: the job ids are the jobs' fingerprints.
    for (const round of [1, 2]) {
      const detached = await runCli(['run', 'batch.yaml', '--queue', redis.url, '--backend', served.url, '--detach'], { cwd, env: { NEMO_CLIENT_ID: account } });
      expect(detached.code).toBe(0);
      expect(detached.stdout).toContain(round === 1 ? 'enqueued 30 of 30 jobs' : 'enqueued 0 of 30 jobs');
      expect(detached.stdout).toMatch(/follow with: talk run batch\.yaml --queue redis:\S+ --backend http:\S+\nrun them with: talk worker --queue redis:\S+ --backend http:\S+\nsee where they are: talk status batch\.yaml --queue redis:\S+\n/);
    }
    // Waiting in priority order (the k-th job of a workflow has priority k, see the fairness test).
    expect(await queueCounts()).toMatchObject({ prioritized: 30, waiting: 0, active: 0, completed: 0 });
    // --detach --json: one JSON line, nothing else.
    const jsonDetached = await runCli(['run', 'batch.yaml', '--queue', redis.url, '--backend', served.url, '--detach', '--json'], { cwd, env: { NEMO_CLIENT_ID: account } });
    expect(jsonDetached.stdout.trim().split('\n')).toHaveLength(1);
    expect(jsonDetached.events[0]).toMatchObject({ type: 'notice', message: expect.stringMatching(/^enqueued 0 of 30 jobs/) as unknown });

    const workers = await Promise.all([1, 2, 3].map(() => startWorker(served, account, 4)));
    const result = await follow(cwd, served, account);
    expect(result.stderr).not.toMatch(/internal error/);
    expect(result.code).toBe(0);
    const done = result.events.at(-1);
    expect(done).toMatchObject({ type: 'run:done', status: 'success', creditsUsed: 3000 });
    expect((done as Extract<TalkEvent, { type: 'run:done' }>).outputs.map((o) => o.job).sort()).toEqual(ids(30));

    const stats = await served.stats();
    expect(stats).toMatchObject({ messages: 30, rendersStarted: 30, rendersCompleted: 30, creditsSpent: 3000, sessionsCreated: 30 });
    for (const id of ids(30)) assertValidMp4(path.join(cwd, 'out', `${id}.mp4`));
    expect(await queueCounts()).toMatchObject({ waiting: 0, active: 0, completed: 30, failed: 0 });
    // The work was shared: each job was taken by exactly one worker, and more than one worker worked.
    const takenBy = workers.map((w) => new Set(w.events().flatMap((e) => (e.type === 'step:start' ? [e.job] : []))));
    expect(takenBy.reduce((n, s) => n + s.size, 0)).toBe(30);
    expect(takenBy.filter((s) => s.size > 0).length).toBeGreaterThan(1);

    // talk status --queue: the state the workers keep in Redis, per job.
    const status = await runCli(['status', 'batch.yaml', '--queue', redis.url, '--json'], { cwd });
    expect(status.code, status.stderr).toBe(0);
    const runs = (JSON.parse(status.stdout) as { runs: { status: string; creditsUsed: number; jobs: Record<string, { status: string; sessionId?: string; steps: Record<string, { renderIds?: string[]; output?: { path: string } }> }> }[] }).runs;
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ status: 'success', creditsUsed: 3000 });
    expect(Object.keys(runs[0]!.jobs).sort()).toEqual(ids(30));
    for (const [id, job] of Object.entries(runs[0]!.jobs)) {
      expect(job.status).toBe('done');
      expect(job.sessionId).toMatch(/^\d+$/);
      expect(job.steps['export']?.renderIds).toHaveLength(1);
      expect(job.steps['export']?.output?.path).toBe(path.join(cwd, 'out', `${id}.mp4`));
    }
    const text = await runCli(['status', 'batch.yaml', '--queue', redis.url], { cwd });
    expect(text.stdout).toMatch(/batch \(batch\.yaml\): success · 3000 credits used/);
    // 30 jobs, all done: counted, not listed one by one.
    expect(text.stdout).toContain('  30 jobs: 30 done\n');
    expect(text.stdout).toContain(`  30 jobs not listed (30 done); every one: talk status batch.yaml --queue ${redis.url} --all\n`);
    expect((await runCli(['status', 'batch.yaml', '--queue', redis.url, '--all'], { cwd })).stdout.match(/^ {2}job p\d\d: done/gm)).toHaveLength(30);

    // And once more, after everything finished: nothing is added, nothing sent, exit 0.
    const again = await follow(cwd, served, account);
    expect(again.code).toBe(0);
    expect(again.events.at(-1)).toMatchObject({ type: 'run:done', status: 'success' });
    expect((await served.stats()).messages).toBe(30);
    expect(await queueCounts()).toMatchObject({ completed: 30 });
  }, 300_000);

  it('3 jobs on a 100-credit account: refused before anything is enqueued, as talk run refuses them (exit 3); with --detach too', async () => {
    const served = await serve({ TALK_LOCAL_ANONYMOUS_CREDITS: '100' });
    const cwd = await workspace(3);
    const account = 'e2e-queue-refused';
    await startWorker(served, account, 1);
    for (const detach of [[], ['--detach']]) {
      const refused = await runCli(['run', 'batch.yaml', '--queue', redis.url, '--backend', served.url, '--reporter', 'plain', ...detach], { cwd, env: { NEMO_CLIENT_ID: account } });
      expect(refused.code).toBe(3);
      // talk run's words (test/e2e/credits.test.ts), and the command that would run the one that fits.
      expect(refused.stderr).toMatch(/1 of 3 jobs fit in 100 credits; the batch needs about 300\. Nothing was sent\./);
      expect(refused.stderr).toMatch(/run the 1 that fits now with: talk run batch\.yaml --queue redis:\S+ --backend http:\S+ --partial/);
    }
    expect(await queueCounts()).toMatchObject({ waiting: 0, prioritized: 0, active: 0, completed: 0 });
    expect(await served.stats()).toMatchObject({ sessionsCreated: 0, uploads: 0, messages: 0 });
    // A budget smaller than the balance is the limit, and said so.
    await writeFile(path.join(cwd, 'batch.yaml'), (await readFile(path.join(cwd, 'batch.yaml'), 'utf8')).replace('foreach:', 'budget:\n  credits: 50\nforeach:'));
    const overBudget = await runCli(['run', 'batch.yaml', '--queue', redis.url, '--backend', served.url, '--detach'], { cwd, env: { NEMO_CLIENT_ID: account } });
    expect(overBudget.code).toBe(3);
    expect(overBudget.stderr).toMatch(/0 of 3 jobs fit in the 50 credits left of the budget of 50; the batch needs about 300\. Nothing was sent\./);
    expect(await queueCounts()).toMatchObject({ waiting: 0, prioritized: 0 });
  }, 120_000);

  it('the fit check honours what the workers recorded: a finished job costs nothing, so enqueued again on the emptied account it is not refused', async () => {
    const served = await serve({ TALK_LOCAL_ANONYMOUS_CREDITS: '100' });
    const cwd = await workspace(1);
    const account = 'e2e-queue-refit';
    await startWorker(served, account, 1);
    expect((await follow(cwd, served, account)).code).toBe(0);
    // The finished job leaves the queue (its state stays in Redis); the balance is 0 now.
    const queue = new Queue('jobs', { connection: { host: '127.0.0.1', port: redis.port }, prefix: 'talk' });
    await queue.clean(0, 0, 'completed');
    await queue.close();
    expect(await queueCounts()).toMatchObject({ completed: 0 });
    const again = await follow(cwd, served, account);
    expect(again.code, `${again.stdout.slice(-3000)}\n${again.stderr}`).toBe(0);
    expect(again.events.at(-1)).toMatchObject({ type: 'run:done', status: 'success' });
    // Resumed from its state on the worker: nothing sent or charged again.
    expect(again.events).toContainEqual(expect.objectContaining({ type: 'step:skipped', step: 'instruction-1', reason: 'resumed' }));
    expect(await served.stats()).toMatchObject({ messages: 1, rendersStarted: 1, creditsSpent: 100 });
  }, 120_000);

  it('a 100-credit account and 3 workers, --partial: exactly one job is admitted, the others end not-started (exit 3)', async () => {
    // A generation that takes a while: the other workers decide while the first one's turn runs.
    const served = await serve({ TALK_LOCAL_ANONYMOUS_CREDITS: '100', TALK_LOCAL_TURN_DELAY_MS: '1500' });
    const cwd = await workspace(3);
    const account = 'e2e-queue-poor';
    await Promise.all([1, 2, 3].map(() => startWorker(served, account, 1)));
    // --partial: every job is enqueued, and the workers' shared admission decides.
    const result = await follow(cwd, served, account, { viaEnv: true, args: ['--partial'] });
    expect(result.code).toBe(3);
    const stats = await served.stats();
    expect(stats).toMatchObject({ messages: 1, creditsSpent: 100, rendersStarted: 1 });
    expect(result.events.filter((e) => e.type === 'step:failed')).toEqual([]);
    expect(result.events.at(-1)).toMatchObject({ type: 'run:done', status: 'credits', creditsUsed: 100 });
    const notStarted = result.events.filter((e) => e.type === 'step:skipped' && e.reason === 'not-started');
    expect(new Set(notStarted.map((e) => (e as { job: string }).job)).size).toBe(2);
  }, 120_000);

  it('a worker killed -9 while its render is in flight: another finishes the job, one render, one message', async () => {
    const served = await serve({ TALK_LOCAL_ANONYMOUS_CREDITS: '1000' }, ['--latency', 'render=4000']);
    const cwd = await workspace(1);
    const account = 'e2e-queue-kill-render';
    const first = await startWorker(served, account, 1, FAST_LOCKS);
    const following = follow(cwd, served, account);
    await first.waitForEvent((e) => e.type === 'step:progress' && e.step === 'export' && e.percent !== undefined);
    first.child.kill('SIGKILL');
    expect((await first.done).signal).toBe('SIGKILL');
    expect((await served.stats()).rendersStarted).toBe(1);

    const second = await startWorker(served, account, 1, FAST_LOCKS);
    const result = await following;
    expect(result.code).toBe(0);
    expect(result.events.at(-1)).toMatchObject({ type: 'run:done', status: 'success' });
    // The second worker resumed: the instruction was skipped, the export re-attached to the render.
    expect(second.events()).toContainEqual(expect.objectContaining({ type: 'step:skipped', step: 'instruction-1', reason: 'resumed' }));
    expect(await served.stats()).toMatchObject({ messages: 1, rendersStarted: 1, creditsSpent: 100 });
    assertValidMp4(path.join(cwd, 'out', 'p00.mp4'));
  }, 120_000);

  it('SIGTERM stops a worker mid-render with exit 130 and hands the job back; the next worker re-attaches', async () => {
    const served = await serve({ TALK_LOCAL_ANONYMOUS_CREDITS: '1000' }, ['--latency', 'render=3000']);
    const cwd = await workspace(1);
    const account = 'e2e-queue-sigterm';
    const first = await startWorker(served, account, 1);
    const following = follow(cwd, served, account);
    await first.waitForEvent((e) => e.type === 'step:progress' && e.step === 'export' && e.percent !== undefined);
    first.child.kill('SIGTERM');
    const stopped = await first.done;
    expect(stopped.code).toBe(130);
    expect(stopped.events).toContainEqual(expect.objectContaining({ type: 'step:skipped', step: 'export', reason: 'interrupted' }));
    // Handed back at once (not left to the 30 s lock): it waits for the next worker.
    const counts = await queueCounts();
    expect((counts['waiting'] ?? 0) + (counts['prioritized'] ?? 0)).toBe(1);
    expect(counts['active']).toBe(0);
    await startWorker(served, account, 1);
    const result = await following;
    expect(result.code).toBe(0);
    expect(await served.stats()).toMatchObject({ messages: 1, rendersStarted: 1 });
  }, 120_000);

  it('SIGTERM while the Redis is away: the worker still stops (exit 130), saying its job could not be handed back', async () => {
    const own = await startRedis();
    cleanups.push(() => own.stop());
    const served = await serve({ TALK_LOCAL_ANONYMOUS_CREDITS: '1000' }, ['--latency', 'render=3000']);
    const cwd = await workspace(1);
    const account = 'e2e-queue-sigterm-away';
    const workerDir = await mkdtemp(path.join(tmpdir(), 'talk-e2e-worker-'));
    const worker = spawnCli(['worker', '--queue', own.url, '--backend', served.url, '--concurrency', '2', '--json'], { cwd: workerDir, env: { NEMO_CLIENT_ID: account }, timeoutMs: 120_000 });
    cleanups.push(async () => {
      if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
      await worker.done.catch(() => undefined);
      await rm(workerDir, { recursive: true, force: true });
    });
    await worker.waitForEvent((e) => e.type === 'notice' && /worker ready/.test(e.message));
    const detached = await runCli(['run', 'batch.yaml', '--queue', own.url, '--backend', served.url, '--detach'], { cwd, env: { NEMO_CLIENT_ID: account } });
    expect(detached.code).toBe(0);
    await worker.waitForEvent((e) => e.type === 'step:progress' && e.step === 'export' && e.percent !== undefined);
    await own.stop();
    // Its slots report the lost connection: once each message, not once per slot.
    await worker.waitForEvent((e) => e.type === 'notice' && e.level === 'warn' && /^queue: /.test(e.message));
    worker.child.kill('SIGTERM');
    const stopped = await worker.done;
    expect(stopped.code).toBe(130);
    const warnings = stopped.events.flatMap((e) => (e.type === 'notice' && e.level === 'warn' ? [e.message] : []));
    expect(warnings).toContainEqual(expect.stringMatching(new RegExp(`^the queue's Redis at ${own.url} is not answering: jobs in flight could not be handed back; another worker resumes them when their locks run out \\(30 s\\)$`)));
    const queueWarnings = warnings.filter((m) => m.startsWith('queue: '));
    expect(new Set(queueWarnings).size).toBe(queueWarnings.length);
  }, 120_000);

  it('fairness: a small workflow enqueued behind a big one is not starved; their jobs interleave', async () => {
    const served = await serve({ TALK_LOCAL_ANONYMOUS_CREDITS: '2000' });
    const big = await workspace(10);
    const small = await batchWorkspace(2, { name: 'small', concurrency: 8 });
    cleanups.push(() => rm(small, { recursive: true, force: true }));
    const account = 'e2e-queue-fair';
    for (const cwd of [big, small]) {
      const detached = await runCli(['run', 'batch.yaml', '--queue', redis.url, '--backend', served.url, '--detach'], { cwd, env: { NEMO_CLIENT_ID: account } });
      expect(detached.code).toBe(0);
    }
    // One worker, one job at a time: the order it takes them in is the queue's order.
    const worker = await startWorker(served, account, 1);
    const following = [follow(big, served, account), follow(small, served, account)];
    const results = await Promise.all(following);
    expect(results.map((r) => r.code)).toEqual([0, 0]);
    const order = worker.events().flatMap((e) => (e.type === 'step:start' && e.kind === 'instruction' ? [e.job] : []));
    expect(order).toHaveLength(12);
    // Both p00s first, then both p01s: the small workflow's two jobs are among the first four.
    expect(order.slice(0, 4).sort()).toEqual(['p00', 'p00', 'p01', 'p01']);
  }, 180_000);

  it('talk queue status, pause, resume and drain', async () => {
    const served = await serve({ TALK_LOCAL_ANONYMOUS_CREDITS: '1000' });
    const cwd = await workspace(3);
    const account = 'e2e-queue-ops';
    const ops = async (action: string): Promise<{ paused: boolean; workers: number; counts: { waiting: number; active: number; completed: number }; removed?: number }> => {
      const result = await runCli(['queue', action, '--queue', redis.url, '--json'], { cwd });
      expect(result.code, result.stderr).toBe(0);
      return JSON.parse(result.stdout) as never;
    };
    expect(await ops('status')).toMatchObject({ paused: false, workers: 0, counts: { waiting: 0 } });
    expect((await runCli(['run', 'batch.yaml', '--queue', redis.url, '--backend', served.url, '--detach'], { cwd, env: { NEMO_CLIENT_ID: account } })).code).toBe(0);
    expect(await ops('pause')).toMatchObject({ paused: true, counts: { waiting: 3 } });
    await startWorker(served, account, 2);
    expect(await ops('status')).toMatchObject({ paused: true, workers: 1, counts: { waiting: 3, active: 0 } });
    expect(await ops('resume')).toMatchObject({ paused: false });
    const result = await follow(cwd, served, account);
    expect(result.code).toBe(0);
    expect(await ops('status')).toMatchObject({ counts: { waiting: 0, completed: 3 } });

    // drain removes what no worker took; the text form says how many.
    await ops('pause');
    const other = await batchWorkspace(2, { name: 'other' });
    cleanups.push(() => rm(other, { recursive: true, force: true }));
    expect((await runCli(['run', 'batch.yaml', '--queue', redis.url, '--backend', served.url, '--detach'], { cwd: other, env: { NEMO_CLIENT_ID: account } })).code).toBe(0);
    const drained = await runCli(['queue', 'drain', '--queue', redis.url], { cwd });
    expect(drained.stdout).toMatch(/drained: 2 waiting jobs removed/);
    expect(drained.stdout).toMatch(/queue redis:\S+: paused · 1 worker · 0 waiting · 0 active · 3 completed · 0 failed/);
    expect((await served.stats()).messages).toBe(3);
    expect((await runCli(['queue', 'flush', '--queue', redis.url], { cwd })).code).toBe(2);
  }, 120_000);

  it('talk queue limit: at-once=1 keeps every worker to one job in flight between them; rate=1/1500ms spaces their starts; off removes both', async () => {
    const served = await serve({ TALK_LOCAL_ANONYMOUS_CREDITS: '1000' }, ['--latency', 'render=500']);
    const account = 'e2e-queue-limits';
    const limit = async (...settings: string[]): Promise<{ limits: { rate: { max: number; durationMs: number } | null; atOnce: number | null } }> => {
      const result = await runCli(['queue', 'limit', ...settings, '--queue', redis.url, '--json'], { cwd: tmpdir() });
      expect(result.code, result.stderr).toBe(0);
      return JSON.parse(result.stdout) as never;
    };
    /** Each job's span on the workers, from its first step:start to its last step event, in ms. */
    const spans = (workers: CliProcess[]): { start: number; end: number }[] => {
      const byJob = new Map<string, { start: number; end: number }>();
      for (const e of workers.flatMap((w) => w.events())) {
        if (!e.type.startsWith('step:')) continue;
        const t = Date.parse(e.ts);
        const job = (e as { job: string }).job;
        const span = byJob.get(job) ?? { start: t, end: t };
        byJob.set(job, { start: Math.min(span.start, t), end: Math.max(span.end, t) });
      }
      return [...byJob.values()].sort((a, b) => a.start - b.start);
    };

    expect((await limit('at-once=1')).limits).toEqual({ rate: null, atOnce: 1 });
    const first = await workspace(3);
    const workers = await Promise.all([1, 2].map(() => startWorker(served, account, 2)));
    expect((await follow(first, served, account)).code).toBe(0);
    const serial = spans(workers);
    expect(serial).toHaveLength(3);
    for (let i = 1; i < serial.length; i += 1) expect(serial[i]!.start).toBeGreaterThanOrEqual(serial[i - 1]!.end);

    expect((await limit('off')).limits).toEqual({ rate: null, atOnce: null });
    expect((await limit('rate=1/1500ms')).limits).toEqual({ rate: { max: 1, durationMs: 1500 }, atOnce: null });
    const second = await batchWorkspace(3, { name: 'spaced' });
    cleanups.push(() => rm(second, { recursive: true, force: true }));
    expect((await follow(second, served, account)).code).toBe(0);
    // When each job was taken (BullMQ's processedOn, set where the limiter counts it): one per window.
    const queue = new Queue('jobs', { connection: { host: '127.0.0.1', port: redis.port }, prefix: 'talk' });
    const taken = (await queue.getJobs(['completed'])).filter((j) => (j.data as { plan: { name: string } }).plan.name === 'spaced').map((j) => j.processedOn ?? 0).sort((a, b) => a - b);
    await queue.close();
    expect(taken).toHaveLength(3);
    for (let i = 1; i < taken.length; i += 1) expect(taken[i]! - taken[i - 1]!).toBeGreaterThanOrEqual(1450);
    expect((await limit('off')).limits).toEqual({ rate: null, atOnce: null });
    expect((await runCli(['queue', 'limit', 'rate=0/1m', '--queue', redis.url], { cwd: tmpdir() })).code).toBe(2);
    expect((await runCli(['queue', 'limit', '--queue', redis.url], { cwd: tmpdir() })).code).toBe(2);
  }, 180_000);

  it('talk watch --queue: each settled bundle runs on a worker; the watcher publishes it as usual', async () => {
    const served = await serve({ TALK_LOCAL_ANONYMOUS_CREDITS: '1000' });
    const cwd = await mkdtemp(path.join(tmpdir(), 'talk-e2e-watchq-'));
    cleanups.push(() => rm(cwd, { recursive: true, force: true }));
    const inbox = await watchInbox(cwd, ['anna', 'bob']);
    const account = 'e2e-queue-watch';
    const worker = await startWorker(served, account, 2);
    const watched = await runCli(['watch', 'inbox', '--workflow', 'watch.yaml', '--once', '--queue', redis.url, '--backend', served.url, '--reporter', 'plain'], { cwd, env: { NEMO_CLIENT_ID: account }, timeoutMs: 120_000 });
    expect(watched.code, `${watched.stdout}\n${watched.stderr}`).toBe(0);
    expect(watched.stdout).toMatch(/anna.*queued for the workers on redis:/);
    expect(watched.stdout).toMatch(/bob.*done in .* → out\/bob\.mp4/);
    expect((await readdir(path.join(inbox, 'processed'))).sort()).toEqual(['anna.jpg', 'anna.mp3', 'bob.jpg', 'bob.mp3']);
    for (const name of ['anna', 'bob']) assertValidMp4(path.join(inbox, 'out', `${name}.mp4`));
    // The worker ran them, not the watcher.
    expect(new Set(worker.events().flatMap((e) => (e.type === 'step:start' ? [e.job] : [])))).toEqual(new Set(['anna', 'bob']));
    expect(await served.stats()).toMatchObject({ messages: 2, rendersStarted: 2 });
    expect(await queueCounts()).toMatchObject({ completed: 2 });
  }, 150_000);

  /**
   * A job on a 100-credit account whose worker is killed -9 after admission (its uploads take
   * 4 s, so nothing is paid yet): the job's hold of 100 credits is left in Redis.
   */
  async function orphanedHold(served: Served, account: string, env: Record<string, string>): Promise<{ client: Redis; holdsKey: string; jobId: string }> {
    const cwd = await workspace(1);
    expect((await runCli(['run', 'batch.yaml', '--queue', redis.url, '--backend', served.url, '--detach'], { cwd, env: { NEMO_CLIENT_ID: account } })).code).toBe(0);
    const first = await startWorker(served, account, 1, env);
    await first.waitForEvent((e) => e.type === 'step:start' && e.kind === 'upload');
    first.child.kill('SIGKILL');
    await first.done;
    const client = new Redis({ host: '127.0.0.1', port: redis.port });
    cleanups.push(async () => void (await client.quit()));
    const [holdsKey] = await client.keys('talk:credits:*:holds');
    const holds = await client.hgetall(holdsKey!);
    expect(Object.values(holds)).toEqual(['100']);
    return { client, holdsKey: holdsKey!, jobId: Object.keys(holds)[0]! };
  }

  /** Another workflow's job on the same account, through a new worker: admitted and paid. */
  async function anotherJobIsAdmitted(served: Served, account: string, env: Record<string, string>): Promise<void> {
    const other = await batchWorkspace(1, { name: 'other' });
    cleanups.push(() => rm(other, { recursive: true, force: true }));
    await startWorker(served, account, 1, env);
    const result = await follow(other, served, account);
    expect(result.code).toBe(0);
    expect(result.events.at(-1)).toMatchObject({ type: 'run:done', status: 'success', creditsUsed: 100 });
    expect(await served.stats()).toMatchObject({ messages: 1, creditsSpent: 100 });
  }

  it('talk watch --queue with no worker: says its bundles wait for one, and how to start it; a worker started then runs them', async () => {
    const served = await serve({ TALK_LOCAL_ANONYMOUS_CREDITS: '1000' });
    const cwd = await mkdtemp(path.join(tmpdir(), 'talk-e2e-watchq-'));
    cleanups.push(() => rm(cwd, { recursive: true, force: true }));
    const inbox = await watchInbox(cwd, ['cleo']);
    const account = 'e2e-queue-watch-idle';
    const watching = spawnCli(['watch', 'inbox', '--workflow', 'watch.yaml', '--once', '--queue', redis.url, '--backend', served.url, '--json'], { cwd, env: { NEMO_CLIENT_ID: account }, timeoutMs: 120_000 });
    cleanups.push(async () => {
      if (watching.child.exitCode === null) watching.child.kill('SIGKILL');
      await watching.done.catch(() => undefined);
    });
    const said = await watching.waitForEvent((e) => e.type === 'notice' && e.level === 'warn' && /no worker/.test(e.message));
    expect(said).toMatchObject({ message: `no worker is taking jobs from ${redis.url}; the jobs wait until one starts: talk worker --queue ${redis.url} --backend ${served.url}` });
    await startWorker(served, account, 1);
    const done = await watching.done;
    expect(done.code, done.stderr).toBe(0);
    assertValidMp4(path.join(inbox, 'out', 'cleo.mp4'));
  }, 150_000);

  it('Ctrl-C while the Redis is away: a following talk run --queue and a talk watch --queue stop at once (exit 130)', async () => {
    const own = await startRedis();
    cleanups.push(() => own.stop());
    const served = await serve({ TALK_LOCAL_ANONYMOUS_CREDITS: '1000' });
    const runDir = await workspace(1);
    const watchDir = await mkdtemp(path.join(tmpdir(), 'talk-e2e-watchq-'));
    cleanups.push(() => rm(watchDir, { recursive: true, force: true }));
    await watchInbox(watchDir, ['cleo']);
    // Workers counted every 200 ms: a count is on its way when the Redis goes, and never comes back.
    const env = { NEMO_CLIENT_ID: 'e2e-queue-away', TALK_QUEUE_PRESENCE_MS: '200' };
    const following = spawnCli(['run', 'batch.yaml', '--queue', own.url, '--backend', served.url, '--json'], { cwd: runDir, env, timeoutMs: 120_000 });
    const watching = spawnCli(['watch', 'inbox', '--workflow', 'watch.yaml', '--queue', own.url, '--backend', served.url, '--json'], { cwd: watchDir, env, timeoutMs: 120_000 });
    for (const child of [following, watching]) {
      cleanups.push(async () => {
        if (child.child.exitCode === null) child.child.kill('SIGKILL');
        await child.done.catch(() => undefined);
      });
    }
    // Both wait for a worker; then their Redis goes away.
    for (const child of [following, watching]) await child.waitForEvent((e) => e.type === 'notice' && e.level === 'warn' && /no worker/.test(e.message));
    await own.stop();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    for (const child of [following, watching]) child.child.kill('SIGINT');
    const [followed, watched] = await Promise.all([following.done, watching.done]);
    expect(followed.code, followed.stderr).toBe(130);
    expect(followed.stderr).toContain('stopped following; the jobs stay queued');
    expect(watched.code, watched.stderr).toBe(130);
  }, 120_000);

  it('a bundle taken while the Redis is away: Ctrl-C stops talk watch --queue at once (exit 130), the bundle left for the next start', async () => {
    const own = await startRedis();
    cleanups.push(() => own.stop());
    const served = await serve({ TALK_LOCAL_ANONYMOUS_CREDITS: '1000' });
    const cwd = await mkdtemp(path.join(tmpdir(), 'talk-e2e-watchq-'));
    cleanups.push(() => rm(cwd, { recursive: true, force: true }));
    const inbox = await watchInbox(cwd, []);
    const watching = spawnCli(['watch', 'inbox', '--workflow', 'watch.yaml', '--queue', own.url, '--backend', served.url, '--json'], { cwd, env: { NEMO_CLIENT_ID: 'e2e-queue-away-add' }, timeoutMs: 120_000 });
    cleanups.push(async () => {
      if (watching.child.exitCode === null) watching.child.kill('SIGKILL');
      await watching.done.catch(() => undefined);
    });
    await watching.waitForEvent((e) => e.type === 'notice' && /^watching /.test(e.message));
    await own.stop();
    // Settled at once (dated a minute back): the watcher takes it and tries to queue it.
    const media = await makeTestMedia(path.join(tmpdir(), 'talk-test-media-e2e'));
    const settled = new Date(Date.now() - 60_000);
    for (const [from, name] of [[media.portrait, 'ann.jpg'], [media.voice, 'ann.mp3']] as const) {
      await copyFile(from, path.join(inbox, name));
      await utimes(path.join(inbox, name), settled, settled);
    }
    await watching.waitForEvent((e) => e.type === 'notice' && e.job === 'ann' && e.message === 'started');
    watching.child.kill('SIGINT');
    const stopped = await watching.done;
    expect(stopped.code, stopped.stderr).toBe(130);
    expect(stopped.events).toContainEqual(expect.objectContaining({ type: 'notice', job: 'ann', message: 'stopped; the next start resumes it' }));
    expect(existsSync(path.join(inbox, 'ann.jpg'))).toBe(true);
  }, 120_000);

  it('the credit hold of a worker killed -9 whose job never comes back is dropped after its lease; another job is then admitted', async () => {
    const served = await serve({ TALK_LOCAL_ANONYMOUS_CREDITS: '100' }, ['--latency', 'upload=4000']);
    const account = 'e2e-queue-lease';
    const { client, holdsKey, jobId } = await orphanedHold(served, account, FAST_LOCKS);
    // The job is taken off the queue once its lock has run out (BullMQ keeps a locked job), so
    // no worker ever takes it again.
    const queue = new Queue('jobs', { connection: { host: '127.0.0.1', port: redis.port }, prefix: 'talk' });
    cleanups.push(() => queue.close());
    while ((await queue.remove(jobId)) !== 1) await new Promise((resolve) => setTimeout(resolve, 200));
    // Then its lease runs out on Redis' clock: nothing renews it, its worker is gone.
    const leaseEnd = Number(await client.zscore(holdsKey.replace(/:holds$/, ':leases'), jobId));
    expect(leaseEnd).toBeGreaterThan(0);
    const redisNow = async (): Promise<number> => {
      const [seconds, micros] = await client.time();
      return Number(seconds) * 1000 + Number(micros) / 1000;
    };
    while ((await redisNow()) <= leaseEnd) await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await client.hexists(holdsKey, jobId)).toBe(1);
    await anotherJobIsAdmitted(served, account, FAST_LOCKS);
  }, 120_000);

  it('a job BullMQ fails for stalling (its workers kept dying) gives its credit hold back at once', async () => {
    const served = await serve({ TALK_LOCAL_ANONYMOUS_CREDITS: '100' }, ['--latency', 'upload=4000']);
    const account = 'e2e-queue-stalled';
    // Failed at its first stall.
    const env = { ...FAST_LOCKS, TALK_QUEUE_MAX_STALLED: '0' };
    const { client, holdsKey, jobId } = await orphanedHold(served, account, env);
    const events = new QueueEvents('jobs', { connection: { host: '127.0.0.1', port: redis.port }, prefix: 'talk' });
    cleanups.push(() => events.close());
    await events.waitUntilReady();
    const failed = new Promise<string>((resolve) => events.on('failed', ({ jobId: id, failedReason }) => id === jobId && resolve(failedReason)));
    // A second worker's stalled check finds the job, and BullMQ fails it there.
    await startWorker(served, account, 1, env);
    expect(await failed).toMatch(/stalled more than allowable limit/);
    // Nothing was admitted since (a lapsed lease is dropped only by an admission): the worker
    // that saw the job fail gave the hold back.
    for (let tries = 0; tries < 100 && (await client.hexists(holdsKey, jobId)) === 1; tries += 1) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await client.hexists(holdsKey, jobId)).toBe(0);
    expect(await client.zscore(holdsKey.replace(/:holds$/, ':leases'), jobId)).toBeNull();
    await anotherJobIsAdmitted(served, account, env);
  }, 120_000);

  it('a worker that sees other bytes than were enqueued fails the job, naming the step and what changed, and sends nothing', async () => {
    const served = await serve({ TALK_LOCAL_ANONYMOUS_CREDITS: '1000' });
    const cwd = await workspace(1);
    const account = 'e2e-queue-changed-input';
    const following = spawnCli(['run', 'batch.yaml', '--queue', redis.url, '--backend', served.url, '--json'], { cwd, env: { NEMO_CLIENT_ID: account }, timeoutMs: 120_000 });
    cleanups.push(async () => {
      if (following.child.exitCode === null && following.child.signalCode === null) following.child.kill('SIGKILL');
      await following.done.catch(() => undefined);
    });
    await following.waitForEvent((e) => e.type === 'notice' && /^enqueued 1 of 1 jobs/.test(e.message));
    // Enqueued; then the portrait changes before any worker has seen it.
    const portrait = path.join(cwd, 'faces', 'p00.jpg');
    await writeFile(portrait, Buffer.concat([await readFile(portrait), Buffer.from([7])]));
    await startWorker(served, account, 1);
    const result = await following.done;
    expect(result.code).toBe(1);
    const failed = result.events.filter((e) => e.type === 'step:failed');
    expect(failed.map((e) => (e as { step: string }).step).sort()).toEqual(['export', 'instruction-1', 'upload-portrait', 'upload-voice']);
    expect(failed[0]).toMatchObject({ job: 'p00', error: { code: 'step-failed', message: expect.stringMatching(/^job p00, step upload-portrait: inputs differ from what was enqueued/) as unknown } });
    expect(result.events.at(-1)).toMatchObject({ type: 'run:done', status: 'failed', creditsUsed: 0 });
    expect(await served.stats()).toMatchObject({ sessionsCreated: 0, uploads: 0, messages: 0, rendersStarted: 0 });
  }, 120_000);

  it('usage: --detach without a queue, a queue that is not redis://, the in-process local backend on a queue (also in a dry run, which says where the jobs would go), a queue knob out of range, a worker without a queue: exit 2', async () => {
    const cwd = await workspace(1);
    const noQueue = await runCli(['run', 'batch.yaml', '--backend', 'http://127.0.0.1:9', '--detach'], { cwd });
    expect(noQueue.code).toBe(2);
    expect(noQueue.stderr).toMatch(/--detach needs a queue/);
    const badUrl = await runCli(['run', 'batch.yaml', '--backend', 'http://127.0.0.1:9', '--queue', 'http://127.0.0.1:6379'], { cwd });
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toMatch(/--queue expects a redis:\/\/ URL/);
    const local = await runCli(['run', 'batch.yaml', '--backend', 'local', '--queue', redis.url], { cwd });
    expect(local.code).toBe(2);
    expect(local.stderr).toMatch(/workers cannot share the in-process local backend/);
    expect(local.stderr).toMatch(/pass its URL with --backend to `talk run --queue` and to every `talk worker`/);
    // A dry run with --queue refuses what the enqueue would, and says where the jobs would go.
    const localDry = await runCli(['run', 'batch.yaml', '--backend', 'local', '--queue', redis.url, '--dry-run'], { cwd });
    expect(localDry.code).toBe(2);
    expect(localDry.stderr).toMatch(/workers cannot share the in-process local backend/);
    const dry = await runCli(['run', 'batch.yaml', '--backend', 'http://127.0.0.1:9', '--queue', redis.url, '--dry-run'], { cwd });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`with --queue: this job would be enqueued on ${redis.url} for the workers (jobs already queued are not added again); nothing was enqueued`);
    await watchInbox(cwd, ['zed']);
    const watchDry = await runCli(['watch', 'inbox', '--workflow', 'watch.yaml', '--queue', redis.url, '--backend', 'http://127.0.0.1:9', '--dry-run'], { cwd });
    expect(watchDry.code, watchDry.stderr).toBe(0);
    expect(watchDry.stdout).toContain(`dry run: 1 bundle would be taken now from inbox and queued for the workers on ${redis.url}`);
    expect((await runCli(['watch', 'inbox', '--workflow', 'watch.yaml', '--queue', redis.url, '--backend', 'local', '--dry-run'], { cwd })).code).toBe(2);
    // A queue knob out of range is refused before anything is enqueued.
    const knob = await runCli(['run', 'batch.yaml', '--backend', 'http://127.0.0.1:9', '--queue', redis.url], { cwd, env: { TALK_QUEUE_PRESENCE_MS: '5' } });
    expect(knob.code).toBe(2);
    expect(knob.stderr).toMatch(/TALK_QUEUE_PRESENCE_MS must be a whole number of milliseconds, at least 100; got "5"/);
    expect(await queueCounts()).toMatchObject({ waiting: 0, prioritized: 0 });
    const worker = await runCli(['worker'], { cwd });
    expect(worker.code).toBe(2);
    expect(worker.stderr).toMatch(/talk worker needs a queue/);
  });

  it('a Redis that is not there: run --queue, queue, status --queue and watch --queue stop at once saying what to do (exit 1); a worker started before its Redis waits for it, then takes jobs', async () => {
    const served = await serve({ TALK_LOCAL_ANONYMOUS_CREDITS: '1000' });
    const cwd = await workspace(1);
    const port = await freePort();
    const absent = `redis://127.0.0.1:${port}`;
    const account = 'e2e-queue-absent';
    await watchInbox(cwd, []);
    const commands = [
      ['run', 'batch.yaml', '--queue', absent, '--backend', served.url],
      ['run', 'batch.yaml', '--queue', absent, '--backend', served.url, '--detach'],
      ['queue', 'status', '--queue', absent],
      ['status', '--queue', absent],
      ['watch', 'inbox', '--workflow', 'watch.yaml', '--once', '--queue', absent, '--backend', served.url],
    ];
    for (const args of commands) {
      const result = await runCli(args, { cwd, env: { NEMO_CLIENT_ID: account }, timeoutMs: 60_000 });
      expect(result.code, `${args.join(' ')}\n${result.stdout}\n${result.stderr}`).toBe(1);
      expect(result.stderr, args.join(' ')).toContain(`cannot reach the queue's Redis at ${absent}: connect ECONNREFUSED`);
      expect(result.stderr, args.join(' ')).toContain(`redis-server --port ${port} --appendonly yes`);
    }
    expect(await served.stats()).toMatchObject({ messages: 0, uploads: 0 });

    const workerDir = await mkdtemp(path.join(tmpdir(), 'talk-e2e-worker-'));
    const worker = spawnCli(['worker', '--queue', absent, '--backend', served.url, '--concurrency', '1', '--json'], { cwd: workerDir, env: { NEMO_CLIENT_ID: account }, timeoutMs: 120_000 });
    cleanups.push(async () => {
      if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
      await worker.done.catch(() => undefined);
      await rm(workerDir, { recursive: true, force: true });
    });
    const waiting = await worker.waitForEvent((e) => e.type === 'notice' && e.level === 'warn');
    expect(waiting).toMatchObject({ message: expect.stringMatching(/^cannot reach the queue's Redis at .*; waiting for it/) as unknown });
    const late = await startRedis({ port });
    cleanups.push(() => late.stop());
    await worker.waitForEvent((e) => e.type === 'notice' && /worker ready/.test(e.message));
    const result = await runCli(['run', 'batch.yaml', '--queue', late.url, '--backend', served.url, '--json'], { cwd, env: { NEMO_CLIENT_ID: account }, timeoutMs: 120_000 });
    expect(result.code, result.stderr).toBe(0);
    expect(await served.stats()).toMatchObject({ messages: 1, rendersStarted: 1 });
    worker.child.kill('SIGINT');
    expect((await worker.done).code).toBe(130);
  }, 150_000);

  it("a worker's text is a log: ready, each job taken and done, the stop — every line timed", async () => {
    const served = await serve({ TALK_LOCAL_ANONYMOUS_CREDITS: '1000' });
    const account = 'e2e-queue-worker-text';
    const cwd = await workspace(2);
    const workerDir = await mkdtemp(path.join(tmpdir(), 'talk-e2e-worker-'));
    const worker = spawnCli(['worker', '--queue', redis.url, '--backend', served.url, '--concurrency', '1'], { cwd: workerDir, env: { NEMO_CLIENT_ID: account }, timeoutMs: 120_000 });
    cleanups.push(async () => {
      if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
      await worker.done.catch(() => undefined);
      await rm(workerDir, { recursive: true, force: true });
    });
    await worker.waitForOutput(/worker ready/);
    expect((await follow(cwd, served, account)).code).toBe(0);
    worker.child.kill('SIGINT');
    const result = await worker.done;
    expect(result.code).toBe(130);
    const lines = result.stdout.trim().split('\n');
    for (const line of lines) expect(line).toMatch(/^\d\d:\d\d:\d\d \S/);
    const text = lines.map((l) => l.slice(9));
    expect(text[0]).toBe(`worker ready: queue ${redis.url}, 1 job at a time`);
    expect(text).toEqual(expect.arrayContaining(['job p00 of batch: taken', 'job p00 of batch: done', 'job p01 of batch: taken', 'job p01 of batch: done']));
    expect(text.at(-1)).toBe('stopping: jobs in flight save their state and go back to the queue');
  }, 150_000);

  it('jobs nothing takes are said to wait, and why: no worker (with the command that starts one), a paused queue (with the one that resumes it)', async () => {
    const served = await serve({ TALK_LOCAL_ANONYMOUS_CREDITS: '1000' });
    const account = 'e2e-queue-presence';
    const cwd = await workspace(2);
    const following = spawnCli(['run', 'batch.yaml', '--queue', redis.url, '--backend', served.url, '--json'], { cwd, env: { NEMO_CLIENT_ID: account }, timeoutMs: 120_000 });
    cleanups.push(async () => {
      if (following.child.exitCode === null) following.child.kill('SIGKILL');
      await following.done.catch(() => undefined);
    });
    const none = await following.waitForEvent((e) => e.type === 'notice' && e.level === 'warn');
    expect(none).toMatchObject({ message: `no worker is taking jobs from ${redis.url}; the jobs wait until one starts: talk worker --queue ${redis.url} --backend ${served.url}` });
    await startWorker(served, account, 2);
    const done = await following.done;
    expect(done.code, done.stderr).toBe(0);
    expect(done.events.filter((e) => e.type === 'notice' && e.level === 'warn')).toHaveLength(1);

    expect((await runCli(['queue', 'pause', '--queue', redis.url], { cwd })).code).toBe(0);
    const other = await workspace(1);
    const paused = spawnCli(['run', 'batch.yaml', '--queue', redis.url, '--backend', served.url, '--json'], { cwd: other, env: { NEMO_CLIENT_ID: account }, timeoutMs: 120_000 });
    cleanups.push(async () => {
      if (paused.child.exitCode === null) paused.child.kill('SIGKILL');
      await paused.done.catch(() => undefined);
    });
    const said = await paused.waitForEvent((e) => e.type === 'notice' && e.level === 'warn');
    expect(said).toMatchObject({ message: `the queue on ${redis.url} is paused; the jobs wait until it is resumed: talk queue resume --queue ${redis.url}` });
    expect((await runCli(['queue', 'resume', '--queue', redis.url], { cwd })).code).toBe(0);
    expect((await paused.done).code).toBe(0);
  }, 150_000);

  it('a worker that loses its lock on a job stops sending for it; the job is resumed from its state, rendered once', async () => {
    const served = await serve({ TALK_LOCAL_ANONYMOUS_CREDITS: '1000' }, ['--latency', 'render=4000']);
    const cwd = await workspace(1);
    const account = 'e2e-queue-lost-lock';
    const worker = await startWorker(served, account, 1, FAST_LOCKS);
    const following = follow(cwd, served, account);
    await worker.waitForEvent((e) => e.type === 'step:progress' && e.step === 'export' && e.percent !== undefined);
    // As if the lock had expired (a long pause, a partition): the next renewal fails.
    const client = new Redis({ host: '127.0.0.1', port: redis.port });
    const locks = await client.keys('talk:jobs:*:lock');
    expect(locks).toHaveLength(1);
    await client.del(locks[0]!);
    await client.quit();
    await worker.waitForEvent((e) => e.type === 'step:skipped' && e.step === 'export' && e.reason === 'interrupted');
    const result = await following;
    expect(result.code).toBe(0);
    // The stalled-job check handed it back and it was resumed: the render re-attached, not sent again.
    expect(worker.events()).toContainEqual(expect.objectContaining({ type: 'step:skipped', step: 'instruction-1', reason: 'resumed' }));
    expect(await served.stats()).toMatchObject({ messages: 1, rendersStarted: 1 });
    assertValidMp4(path.join(cwd, 'out', 'p00.mp4'));
  }, 120_000);

  it('a worker killed -9 while its instruction is in flight: another concludes it without sending it again', async () => {
    const served = await serve({ TALK_LOCAL_ANONYMOUS_CREDITS: '1000', TALK_LOCAL_TURN_DELAY_MS: '3000' });
    const cwd = await workspace(1);
    const account = 'e2e-queue-kill-turn';
    const first = await startWorker(served, account, 1, FAST_LOCKS);
    const following = follow(cwd, served, account);
    // The turn streams (the agent reports its tools): the backend took it and goes on without us.
    await first.waitForEvent((e) => e.type === 'step:progress' && e.step === 'instruction-1' && e.label !== undefined);
    expect((await served.stats()).messages).toBe(1);
    first.child.kill('SIGKILL');
    await first.done;

    const second = await startWorker(served, account, 1, FAST_LOCKS);
    const result = await following;
    expect(result.code).toBe(0);
    expect(second.events()).toContainEqual(expect.objectContaining({ type: 'notice', message: expect.stringMatching(/was applied; it was not sent again/) as unknown }));
    expect(await served.stats()).toMatchObject({ messages: 1, rendersStarted: 1, creditsSpent: 100 });
    assertValidMp4(path.join(cwd, 'out', 'p00.mp4'));
  }, 120_000);

  it('Redis restarted (AOF) mid-batch: nothing lost, nothing duplicated', async () => {
    const served = await serve({ TALK_LOCAL_ANONYMOUS_CREDITS: '1000' }, ['--latency', 'render=1500']);
    const cwd = await workspace(8);
    const account = 'e2e-queue-restart';
    const workers = await Promise.all([1, 2].map(() => startWorker(served, account, 2)));
    const following = follow(cwd, served, account);
    // Mid-batch: the first video is out, others are still to come.
    await workers[0]!.waitForEvent((e) => e.type === 'step:done' && e.step === 'export').catch(() => workers[1]!.waitForEvent((e) => e.type === 'step:done' && e.step === 'export'));
    await redis.restart();
    const result = await following;
    expect(result.code).toBe(0);
    expect(result.events.at(-1)).toMatchObject({ type: 'run:done', status: 'success', creditsUsed: 800 });
    expect(await served.stats()).toMatchObject({ messages: 8, rendersStarted: 8, creditsSpent: 800 });
    expect(await queueCounts()).toMatchObject({ completed: 8, failed: 0 });
    for (const id of ids(8)) expect((await readFile(path.join(cwd, 'out', `${id}.mp4`))).subarray(4, 8).toString()).toBe('ftyp');
  }, 180_000);
});
