/**
 * `talk watch` through the built CLI (`node bin/talk.js`) with the in-process local backend:
 * `--once` renders the bundles it finds and exits 0 with outputs, sidecars, moved sources and
 * the folder's `out/index.html`;
 * a running watcher stopped with SIGINT exits 130 and leaves the bundle to the next start.
 */
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, spawnCli } from '../helpers/cli.js';
import { makeTestMedia, type TestMedia } from '../helpers/media.js';
import { readRecord } from '../helpers/records.js';

let media: TestMedia;
const roots: string[] = [];

beforeAll(async () => {
  media = await makeTestMedia(path.join(tmpdir(), 'talk-test-media-watch'));
});
afterAll(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

const WORKFLOW = ['version: 1', 'name: inbox', 'instructions:', '  - Make this photo talk using my voiceover', 'export:', '  quality: low', '  resolution: 720p', 'watch:', '  settle: 200ms', ''].join('\n');

async function setup(): Promise<{ cwd: string; inbox: string }> {
  const cwd = await mkdtemp(path.join(tmpdir(), 'talk-e2e-watch-'));
  roots.push(cwd);
  const inbox = path.join(cwd, 'inbox');
  await mkdir(inbox);
  await writeFile(path.join(cwd, 'watch.yaml'), WORKFLOW);
  return { cwd, inbox };
}

/** A bundle whose portrait differs from the others by a trailing byte (distinct content). */
async function drop(inbox: string, stem: string, salt: number): Promise<void> {
  const portrait = await readFile(media.portrait);
  await writeFile(path.join(inbox, `${stem}.jpg`), Buffer.concat([portrait, Buffer.from([salt])]));
  await copyFile(media.voice, path.join(inbox, `${stem}.mp3`));
}

describe('talk watch (built CLI)', () => {
  it('--once renders the bundles it finds, publishes outputs and sidecars, and exits 0', { timeout: 120_000 }, async () => {
    const { cwd, inbox } = await setup();
    await drop(inbox, 'anna', 1);
    await drop(inbox, 'bob', 2);
    // A portrait whose voice never comes: --once reports it incomplete.
    await copyFile(media.portrait, path.join(inbox, 'dora.jpg'));
    // One watcher identity renders two bundles: 200 credits, more than the anonymous grant.
    const result = await runCli(['watch', 'inbox', '--workflow', 'watch.yaml', '--once', '--backend', 'local', '--reporter', 'plain'], {
      cwd,
      env: { TALK_LOCAL_ANONYMOUS_CREDITS: '1000', TALK_LOCAL_TURN_DELAY_MS: '0' },
      timeoutMs: 110_000,
    });
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(result.stdout).toMatch(/anna.*done in .* → out\/anna\.mp4/);
    expect(result.stdout).toMatch(/bob.*done in .* → out\/bob\.mp4/);
    const out = (await readdir(path.join(inbox, 'out'))).sort();
    expect(out).toEqual(['anna.mp4', 'anna.talk.json', 'bob.mp4', 'bob.talk.json', 'dora.talk.json', 'index.html', 'report-frames']);
    for (const name of ['anna', 'bob']) {
      const sidecar = await readRecord<Record<string, unknown>>(path.join(inbox, 'out', `${name}.talk.json`));
      expect(sidecar).toMatchObject({ status: 'done', bundle: name, output: `${name}.mp4`, attempts: 1, creditsUsed: 100, error: null });
      expect((await readFile(path.join(inbox, 'out', `${name}.mp4`))).subarray(4, 8).toString('latin1')).toBe('ftyp');
    }
    expect((await readdir(path.join(inbox, 'processed'))).sort()).toEqual(['anna.jpg', 'anna.mp3', 'bob.jpg', 'bob.mp3']);
    expect(await readRecord(path.join(inbox, 'out', 'dora.talk.json'))).toMatchObject({ status: 'incomplete', bundle: 'dora' });

    // out/index.html is the folder's review page: a card per sidecar, the one that needs
    // attention first, each video with frames that exist beside it.
    const html = await readFile(path.join(inbox, 'out', 'index.html'), 'utf8');
    const cards = [...html.matchAll(/<article class="card ([a-z-]+)" data-job="([^"]+)"/g)].map((m) => `${m[2]}:${m[1]}`);
    expect(cards).toEqual(['dora:not-started', 'anna:done', 'bob:done']);
    expect(html).toContain('still missing: voice');
    const images = [...html.matchAll(/<img [^>]*src="([^"]+)"/g)].map((m) => decodeURIComponent(m[1]!));
    expect(images).toHaveLength(4);
    for (const src of images) expect((await readFile(path.join(inbox, 'out', src))).length).toBeGreaterThan(0);
    expect([...html.matchAll(/<video [^>]*src="([^"]+)"/g)].map((m) => m[1])).toEqual(['anna.mp4', 'bob.mp4']);
  });

  it('SIGINT on a running watcher exits 130; the next --once resumes the bundle without a second render', { timeout: 120_000 }, async () => {
    const { cwd, inbox } = await setup();
    await drop(inbox, 'carl', 3);
    const env = { TALK_LOCAL_TURN_DELAY_MS: '0', TALK_LOCAL_LATENCY: 'render=3000' };
    const child = spawnCli(['watch', 'inbox', '--workflow', 'watch.yaml', '--backend', 'local', '--json'], { cwd, env, timeoutMs: 60_000 });
    // The moment comes from the watcher's own events: the render is submitted and running.
    await child.waitForEvent((e) => e.type === 'step:progress' && e.job === 'carl' && e.step === 'export');
    child.child.kill('SIGINT');
    const stopped = await child.done;
    expect(stopped.code, stopped.stderr).toBe(130);
    expect(stopped.stderr).toContain('run `talk watch inbox --workflow watch.yaml --backend local` again to resume');
    expect((await readdir(inbox)).sort()).toContain('carl.jpg');

    const resumed = await runCli(['watch', 'inbox', '--workflow', 'watch.yaml', '--once', '--backend', 'local', '--reporter', 'plain'], { cwd, env, timeoutMs: 60_000 });
    expect(resumed.code, `${resumed.stdout}\n${resumed.stderr}`).toBe(0);
    expect(resumed.stdout).toMatch(/carl.*resuming where it stopped/);
    const sidecar = await readRecord<{ status: string; renderIds: string[] }>(path.join(inbox, 'out', 'carl.talk.json'));
    expect(sidecar.status).toBe('done');
    expect(sidecar.renderIds).toHaveLength(1);
  });
});
