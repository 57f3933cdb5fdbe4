/**
 * `talk watch` end to end in-process: the real workflow loader, planner, runner and backend
 * client against the real local backend on loopback, asserting its `/__local/stats`.
 *
 * Each anonymous client gets the contract's 100-credit grant, one generation: so these tests
 * use one talking bundle per watcher identity (config dir). The burst of many bundles against
 * the local backend (with a raised grant) is burst.test.ts; two watchers are covered with an
 * injected job in folder-watcher.test.ts; two watchers that would each start an in-process
 * local backend on one data dir are refused here.
 */
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InterruptedError, UsageError } from '../../../src/core/errors.js';
import { startLocalBackend, type LocalBackend } from '../../../src/local-backend/index.js';
import { watchCommand, type WatchOptions } from '../../../src/commands/watch.js';
import type { CommandContext } from '../../../src/commands/context.js';
import { makeTestMedia, type TestMedia } from '../../helpers/media.js';
import { waitFor } from './watch-helpers.js';
import { readRecord } from '../../helpers/records.js';

let backend: LocalBackend;
let media: TestMedia;
const roots: string[] = [];

beforeAll(async () => {
  media = await makeTestMedia(path.join(tmpdir(), 'talk-test-media-watch'));
  // Renders take at least 1.5 s, so a test can stop the watcher while one is in flight.
  backend = await startLocalBackend({ env: process.env, latency: { render: 1500 }, turnDelayMs: { generation: 0, edit: 0 } });
});
afterAll(async () => {
  await backend.close();
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function setup(): Promise<{ root: string; inbox: string; workflow: string }> {
  const root = await mkdtemp(path.join(tmpdir(), 'talk-watch-cmd-'));
  roots.push(root);
  const inbox = path.join(root, 'inbox');
  await mkdir(inbox);
  const workflow = path.join(root, 'watch.yaml');
  await writeFile(
    workflow,
    ['version: 1', 'name: inbox', 'instructions:', '  - Make this photo talk using my voiceover', 'export:', '  quality: low', '  resolution: 720p', 'watch:', '  settle: 200ms', ''].join('\n'),
  );
  return { root, inbox, workflow };
}

async function drop(inbox: string, stem: string): Promise<void> {
  await copyFile(media.portrait, path.join(inbox, `${stem}.jpg`));
  await copyFile(media.voice, path.join(inbox, `${stem}.mp3`));
}

function context(root: string, signal: AbortSignal): { ctx: CommandContext; output: () => string } {
  let out = '';
  const sink = { write: (t: string) => void (out += t), isTTY: false, columns: undefined };
  const env = { PATH: process.env['PATH'], XDG_CONFIG_HOME: path.join(root, 'config'), HOME: root };
  return { ctx: { stdout: sink, stderr: sink, env, cwd: root, signal, version: 'test' }, output: () => out };
}

function options(workflow: string, once: boolean): WatchOptions {
  return {
    backend: backend.url,
    stateDir: undefined,
    reporter: 'plain',
    quiet: false,
    verbose: false,
    color: false,
    vars: {},
    concurrency: undefined,
    fresh: false,
    dryRun: false,
    failFast: false,
    workflow,
    once,
    poll: false,
    onSuccess: 'move',
  };
}

describe('talk watch with the local backend', () => {
  it('renders a dropped bundle once, records it in the sidecar, and skips the identical bundle dropped again', async () => {
    const { root, inbox, workflow } = await setup();
    const before = backend.stats();
    await drop(inbox, 'anna');
    const first = context(root, new AbortController().signal);
    expect(await watchCommand([inbox], options(workflow, true), first.ctx)).toBe(0);
    const sidecar = await readRecord<Record<string, unknown>>(path.join(inbox, 'out', 'anna.talk.json'));
    expect(sidecar).toMatchObject({ status: 'done', output: 'anna.mp4', attempts: 1, creditsUsed: 100, error: null });
    expect(sidecar['sessionIds']).toHaveLength(1);
    expect((sidecar['renderIds'] as string[]).length).toBeGreaterThanOrEqual(1);
    expect((await readFile(path.join(inbox, 'out', 'anna.mp4'))).subarray(4, 8).toString('latin1')).toBe('ftyp');
    expect((await readdir(path.join(inbox, 'processed'))).sort()).toEqual(['anna.jpg', 'anna.mp3']);

    await drop(inbox, 'anna');
    const second = context(root, new AbortController().signal);
    expect(await watchCommand([inbox], options(workflow, true), second.ctx)).toBe(0);
    expect(second.output()).toMatch(/skipped: identical content was already rendered as out\/anna\.mp4/);
    const after = backend.stats();
    expect(after.rendersStarted - before.rendersStarted).toBe(1);
    expect(after.messages - before.messages).toBe(1);
    expect(after.sessionsCreated - before.sessionsCreated).toBe(1);
  });

  it('stopped mid-render and restarted: re-attaches the render, no second render or instruction', async () => {
    const { root, inbox, workflow } = await setup();
    const before = backend.stats();
    await drop(inbox, 'bob');
    const controller = new AbortController();
    const first = context(root, controller.signal);
    let renderStarted = false;
    const unsubscribe = backend.onEvent((event) => {
      if (event.type === 'render:started') renderStarted = true;
    });
    const running = watchCommand([inbox], options(workflow, false), first.ctx);
    await waitFor(() => renderStarted, 30_000, () => 'a render to start');
    unsubscribe();
    controller.abort(new InterruptedError('test stop'));
    await expect(running).rejects.toBeInstanceOf(InterruptedError);
    expect(await readdir(inbox)).toContain('bob.jpg');

    const second = context(root, new AbortController().signal);
    expect(await watchCommand([inbox], options(workflow, true), second.ctx)).toBe(0);
    expect(second.output()).toMatch(/resuming where it stopped/);
    const after = backend.stats();
    expect(after.rendersStarted - before.rendersStarted).toBe(1);
    expect(after.messages - before.messages).toBe(1);
    expect(after.sessionsCreated - before.sessionsCreated).toBe(1);
    expect(await readdir(path.join(inbox, 'out'))).toContain('bob.mp4');
  });

  it('refuses a workflow that uploads nothing (no `watch:` key, no inputs) before any paid turn', async () => {
    const { root, inbox, workflow } = await setup();
    await writeFile(workflow, ['version: 1', 'name: inbox', 'instructions:', '  - Make this photo talk using my voiceover', ''].join('\n'));
    await drop(inbox, 'dora');
    const before = backend.stats();
    const run = context(root, new AbortController().signal);
    await expect(watchCommand([inbox], options(workflow, true), run.ctx)).rejects.toThrow(/uploads nothing/);
    expect(backend.stats().messages - before.messages).toBe(0);
    expect((await readdir(inbox)).sort()).toEqual(['dora.jpg', 'dora.mp3']);
  });

  it('reports a missing partner in a status file at the end of --once', async () => {
    const { root, inbox, workflow } = await setup();
    await copyFile(media.voice, path.join(inbox, 'carl.mp3'));
    const run = context(root, new AbortController().signal);
    expect(await watchCommand([inbox], options(workflow, true), run.ctx)).toBe(0);
    const status = await readRecord<Record<string, unknown>>(path.join(inbox, 'out', 'carl.talk.json'));
    expect(status).toMatchObject({ status: 'incomplete', missing: ['portrait'] });
    expect(run.output()).toMatch(/carl.*incomplete: no portrait file/);
  });

  it('two watchers with `--backend local` on one workflow: the second is refused with how to share one backend', async () => {
    const { root, inbox, workflow } = await setup();
    const controller = new AbortController();
    const first = context(root, controller.signal);
    const running = watchCommand([inbox], { ...options(workflow, false), backend: 'local' }, first.ctx);
    // The in-process backend holds its data dir before the watcher says anything.
    await waitFor(() => first.output().length > 0, 30_000, () => 'the first watcher to start');
    const second = context(root, new AbortController().signal);
    const refused = await watchCommand([inbox], { ...options(workflow, false), backend: 'local' }, second.ctx).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UsageError);
    expect((refused as UsageError).message).toMatch(/local backend data in .* is in use by another talk process/);
    expect((refused as UsageError).hint).toMatch(/talk serve --data-dir/);
    controller.abort(new InterruptedError('test stop'));
    await expect(running).rejects.toBeInstanceOf(InterruptedError);
  });

  it('--dry-run lists the bundles it would take now with their cost, and touches nothing', async () => {
    const { root, inbox, workflow } = await setup();
    const before = backend.stats();
    await drop(inbox, 'anna');
    await writeFile(path.join(inbox, 'bert.jpg'), 'only a portrait');
    // Settled by the clock the watcher uses: the files' mtime, a minute ago.
    const past = new Date(Date.now() - 60_000);
    for (const name of ['anna.jpg', 'anna.mp3', 'bert.jpg']) await utimes(path.join(inbox, name), past, past);
    const run = context(root, new AbortController().signal);
    expect(await watchCommand([inbox], { ...options(workflow, true), dryRun: true }, run.ctx)).toBe(0);
    expect(run.output()).toMatch(/1 bundle would be taken now .* about 100 credits; nothing was changed/);
    expect(run.output()).toMatch(/take +anna +≈ 100 credits → inbox\/out\/anna\.mp4/);
    expect(run.output()).toMatch(/wait +bert +no voice file/);
    expect((await readdir(inbox)).sort()).toEqual(['anna.jpg', 'anna.mp3', 'bert.jpg']);
    expect((await readdir(root)).sort()).toEqual(['inbox', 'watch.yaml']);
    const after = backend.stats();
    expect(after.messages - before.messages).toBe(0);
    expect(after.uploads - before.uploads).toBe(0);
  });
});
