/**
 * A watch folder on one account: bundles are admitted against one balance, so two bundles on a
 * 100-credit account never both start; the one that does not fit waits (it is never half-paid)
 * and starts once the account is topped up, in the same session of the watcher.
 */
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InterruptedError, WorkflowInvalidError } from '../../../src/core/errors.js';
import { startLocalBackend, type LocalBackend } from '../../../src/local-backend/index.js';
import { watchCommand, type WatchOptions } from '../../../src/commands/watch.js';
import type { CommandContext } from '../../../src/commands/context.js';
import { jpegWithComment, makeTestMedia } from '../../helpers/media.js';
import { waitFor } from './watch-helpers.js';
import { readRecord } from '../../helpers/records.js';

let backend: LocalBackend | undefined;
let root: string | undefined;
afterEach(async () => {
  await backend?.close();
  if (root) await rm(root, { recursive: true, force: true });
  backend = undefined;
  root = undefined;
});

describe('talk watch --strict', () => {
  it('a warning (an undeclared --var) stops the watcher before it takes a bundle; without --strict it is only a warning', async () => {
    root = await mkdtemp(path.join(tmpdir(), 'talk-watch-strict-'));
    const inbox = path.join(root, 'inbox');
    await mkdir(inbox);
    const workflow = path.join(root, 'watch.yaml');
    await writeFile(workflow, ['version: 1', 'name: inbox', 'vars:', '  release: "1.0"', 'instructions:', '  - Make this photo talk using my voiceover', 'watch:', '  settle: 200ms', ''].join('\n'));
    let out = '';
    const sink = { write: (t: string) => void (out += t), isTTY: false, columns: undefined };
    const ctx: CommandContext = { stdout: sink, stderr: sink, env: { PATH: process.env['PATH'], XDG_CONFIG_HOME: path.join(root, 'config'), HOME: root }, cwd: root, signal: new AbortController().signal, version: 'test' };
    const options: WatchOptions = {
      backend: 'local', stateDir: undefined, reporter: 'plain', quiet: false, verbose: false, color: false, vars: { relase: '2.0' }, concurrency: undefined,
      fresh: false, dryRun: true, failFast: false, workflow, once: true, poll: false, onSuccess: 'move', strict: true,
    };
    await expect(watchCommand([inbox], options, ctx)).rejects.toBeInstanceOf(WorkflowInvalidError);
    expect(out).toMatch(/relase/);
    expect(await watchCommand([inbox], { ...options, strict: false }, ctx)).toBe(0);
  });
});

describe('talk watch and credits', () => {
  it('two bundles on a 100-credit account: one starts, the other waits for credits and starts after a top-up', async () => {
    const media = await makeTestMedia(path.join(tmpdir(), 'talk-test-media-watch'));
    root = await mkdtemp(path.join(tmpdir(), 'talk-watch-credits-'));
    backend = await startLocalBackend({ dataDir: path.join(root, 'backend-data'), latency: { render: 500 } });
    const inbox = path.join(root, 'inbox');
    await mkdir(inbox);
    const workflow = path.join(root, 'watch.yaml');
    await writeFile(workflow, ['version: 1', 'name: inbox', 'concurrency: 2', 'instructions:', '  - Make this photo talk using my voiceover', 'export:', '  quality: low', '  resolution: 720p', 'watch:', '  settle: 200ms', ''].join('\n'));
    // Different bytes per bundle: identical content would be one bundle rendered once.
    for (const stem of ['anna', 'bert']) {
      await writeFile(path.join(inbox, `${stem}.jpg`), jpegWithComment(await readFile(media.portrait), stem));
      await copyFile(media.voice, path.join(inbox, `${stem}.mp3`));
    }
    let out = '';
    const sink = { write: (t: string) => void (out += t), isTTY: false, columns: undefined };
    const controller = new AbortController();
    const ctx: CommandContext = { stdout: sink, stderr: sink, env: { PATH: process.env['PATH'], XDG_CONFIG_HOME: path.join(root, 'config'), HOME: root }, cwd: root, signal: controller.signal, version: 'test' };
    const options: WatchOptions = {
      backend: backend.url, stateDir: undefined, reporter: 'plain', quiet: false, verbose: false, color: false, vars: {}, concurrency: undefined,
      fresh: false, dryRun: false, failFast: false, workflow, once: false, poll: false, onSuccess: 'move',
    };
    const running = watchCommand([inbox], options, ctx);
    running.catch((e: unknown) => { out += `\nwatch ended: ${String(e)}`; });
    await waitFor(() => /waits for credits: it needs about 100 and 0 are left/.test(out), 30_000, () => `a bundle to wait for credits; output so far:\n${out}`);
    // Only one turn was started for the two bundles, and the waiting one says so in its sidecar.
    expect(backend.stats().messages).toBeLessThanOrEqual(1);
    const waiting = out.match(/job (\w+) waits for credits/)?.[1] ?? '';
    await waitFor(async () => (await readFile(path.join(inbox, 'out', `${waiting}.talk.json`), 'utf8').catch(() => '')).includes('waiting-credits'), 10_000, () => 'the waiting sidecar');
    expect(await readRecord(path.join(inbox, 'out', `${waiting}.talk.json`))).toMatchObject({ status: 'waiting-credits', bundle: waiting, needs: 100, available: 0 });
    await backend.grantCredits(100);
    const sidecarStatus = async (name: string): Promise<unknown> => (JSON.parse(await readFile(path.join(inbox, 'out', `${name}.talk.json`), 'utf8').catch(() => '{}')) as { status?: unknown }).status;
    await waitFor(
      async () => (await readdir(path.join(inbox, 'out')).catch(() => [])).filter((f) => f.endsWith('.mp4')).length === 2 && (await sidecarStatus(waiting)) === 'done',
      60_000,
      () => `both videos and the waiting bundle's outcome; output so far:\n${out}`,
    );
    controller.abort(new InterruptedError('test stop'));
    await running.catch(() => undefined);
    // Admitted and done: the outcome replaced the waiting sidecar.
    expect(await readRecord(path.join(inbox, 'out', `${waiting}.talk.json`))).toMatchObject({ status: 'done' });
    const stats = backend.stats();
    expect(stats.messages).toBe(2);
    expect(stats.creditsSpent).toBe(200);
    expect(stats.rendersStarted).toBe(2);
  }, 90_000);
});
