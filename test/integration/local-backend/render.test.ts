/* eslint-disable @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-call -- wire JSON is read loosely here; the assertions check its shape */
import { describe, expect, it, vi } from 'vitest';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fetch, FormData, type RequestInit } from 'undici';
import { probeMedia, startLocalBackend, type LocalBackend } from '../../../src/local-backend/index.js';
import { runTool } from '../../../src/local-backend/ffmpeg.js';
import { ManualTime } from '../../helpers/manual-time.js';
import { testTools } from '../../helpers/media.js';
import { backendFixture, json, nextEvent, preparedSession, readSse, sendTurn, state, waitForRender, type Account } from './client.js';

const fx = backendFixture('render');
const start = fx.start;

function submit(b: LocalBackend, account: Account, body: unknown): Promise<Record<string, any>> {
  return fetch(`${b.url}/api/render/proxy/lambda`, { method: 'POST', headers: { ...account.headers, 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(json);
}

async function talkingDraft(b: LocalBackend, text = 'Make this photo talk and add a title "Hi" for 1 second'): Promise<{ account: Account; sessionId: string; draft: any }> {
  const { account, sessionId } = await preparedSession(b.url, fx.media);
  await readSse(await sendTurn(b.url, account, sessionId, text));
  return { account, sessionId, draft: (await state(b.url, account, sessionId))['data'].state.draft };
}

async function downloadTo(url: string, file: string, headers: Record<string, string> = {}): Promise<void> {
  const res = await fetch(url, { headers });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('video/mp4');
  await writeFile(file, Buffer.from(await res.arrayBuffer()));
}

describe('renders are real videos', () => {
  it('renders H.264 + AAC at the requested size and the draft duration; a repeat is a cache copy', async () => {
    const b = await start();
    const { account, sessionId, draft } = await talkingDraft(b);
    const events: string[] = [];
    b.onEvent((e) => {
      if (e.renderId === 'render_a') events.push(e.type);
    });
    const accepted = await submit(b, account, { id: 'render_a', sessionId, draft, output: { format: 'mp4', quality: 'low', resolution: '720p', aspect: '9:16' } });
    expect(accepted['data'].status).toBe('pending');
    const done = await waitForRender(b, account, 'render_a');
    expect(done['data']).toMatchObject({ id: 'render_a', status: 'completed', progress: 100 });
    expect(done['data'].outputUrl).toBe(`${b.url}/static/render-result/render_a.mp4`);
    expect(done['data'].completedAt).toBeGreaterThanOrEqual(done['data'].createdAt);
    expect(events).toEqual(expect.arrayContaining(['render:submitted', 'render:started', 'render:completed']));

    const file = path.join(fx.dir, 'a.mp4');
    await downloadTo(done['data'].outputUrl, file);
    const { ffprobe } = testTools();
    const { stdout } = await runTool(ffprobe, ['-v', 'error', '-show_entries', 'stream=codec_name,width,height,pix_fmt', '-of', 'json', file]);
    const streams = (JSON.parse(stdout.toString()) as { streams: { codec_name: string; width?: number; height?: number; pix_fmt?: string }[] }).streams;
    expect(streams.find((s) => s.codec_name === 'h264')).toMatchObject({ width: 720, height: 1280, pix_fmt: 'yuv420p' });
    expect(streams.some((s) => s.codec_name === 'aac')).toBe(true);
    const info = await probeMedia(ffprobe, file);
    expect(Math.abs(info.duration! - draft.d / 1000)).toBeLessThanOrEqual(0.1);

    // The picture moves: frames differ over time (motion from the voice's loudness).
    const { stdout: md5 } = await runTool(testTools().ffmpeg, ['-v', 'error', '-i', file, '-an', '-f', 'framemd5', '-']);
    const hashes = new Set(md5.toString().split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(',').pop()));
    expect(hashes.size).toBeGreaterThan(5);

    // Same draft, media and options again: a copy from the cache.
    await submit(b, account, { id: 'render_b', sessionId, draft, output: { format: 'mp4', quality: 'low', resolution: '720p', aspect: '9:16' } });
    expect((await waitForRender(b, account, 'render_b'))['data'].status).toBe('completed');
    expect(b.stats()).toMatchObject({ rendersStarted: 2, rendersCompleted: 2, renderCacheHits: 1 });

    // The fallback download route needs the bearer and serves the same file.
    const fallback = await fetch(`${b.url}/api/render/proxy/render_a/download`);
    expect((await json(fallback))['code']).toBe(1001);
    await downloadTo(`${b.url}/api/render/proxy/render_a/download`, path.join(fx.dir, 'a2.mp4'), account.headers);
    expect(b.stats().requests.download).toBe(3);
  });

  it('top-level render status, JSON download, and render=MS as the least render time with progress over time', async () => {
    // The render's clock and timers move only when the test moves them, so the floor and the
    // progress over it are read on that clock, however long the encode takes on this machine.
    const time = new ManualTime();
    const b = await start({ compat: { renderStatus: 'top-level', download: 'json' }, latency: { render: 600 }, clock: time, renderTimers: time });
    const { account, sessionId, draft } = await talkingDraft(b, 'make this photo talk');
    const progress: number[] = [];
    b.onEvent((e) => {
      if (e.type === 'render:progress' && typeof e['progress'] === 'number') progress.push(e['progress']);
    });
    const t0 = time.now();
    await submit(b, account, { id: 'render_t', sessionId, draft, output: { format: 'mp4', quality: 'low', resolution: '720p', aspect: '1:1' } });
    // Encoded, the render waits out its floor: its progress ticker and the floor's timer are set.
    await vi.waitFor(() => expect(time.pending).toBe(2), { timeout: 30_000, interval: 5 });
    for (let step = 0; step < 6; step++) time.advance(100);
    const done = await waitForRender(b, account, 'render_t');
    expect(time.now() - t0).toBeGreaterThanOrEqual(590);
    expect(done).toMatchObject({ id: 'render_t', status: 'completed', progress: 100, output: { url: `${b.url}/static/render-result/render_t.mp4` } });
    expect(done['output'].size).toBeGreaterThan(1000);
    expect(progress.length).toBeGreaterThan(1);
    expect([...progress].sort((x, y) => x - y)).toEqual(progress);
    const dl = await json(await fetch(`${b.url}/api/render/proxy/render_t/download`, { headers: account.headers }));
    expect(dl).toEqual({ output: { url: done['output'].url, size: done['output'].size } });
  });

  it('a restarted server keeps its sessions and finishes a render that was in flight', async () => {
    const dataDir = path.join(fx.dir, 'persist');
    const first = await startLocalBackend({ env: process.env, dataDir, turnDelayMs: { generation: 5, edit: 5 }, latency: { render: 60_000 } });
    const { account, sessionId, draft } = await talkingDraft(first, 'make this photo talk');
    const inFlight = nextEvent(first, (e) => e.type === 'render:started' && e.renderId === 'render_p');
    await submit(first, account, { id: 'render_p', sessionId, draft, output: { format: 'mp4', quality: 'low', resolution: '720p' } });
    await inFlight;
    await first.close();

    const second = await start({ dataDir });
    // The old token still works (stored by hash), the session and its draft are there.
    const s = await state(second.url, account, sessionId);
    expect(s['code']).toBe(0);
    expect(s['data'].state.draft.d).toBe(draft.d);
    expect(s['data'].state.draft.t[0].sg[0].src).toMatch(new RegExp(`^${second.url}/media/`));
    const done = await waitForRender(second, account, 'render_p');
    expect(done['data'].status).toBe('completed');
    const file = path.join(fx.dir, 'p.mp4');
    await downloadTo(done['data'].outputUrl, file);
    const info = await probeMedia(testTools().ffprobe, file);
    expect(info).toMatchObject({ width: 720, height: 1280, hasAudio: true });
    const credits = (await json(await fetch(`${second.url}/api/credits/balance/simple`, { headers: account.headers })))['data'];
    expect(credits).toEqual({ available: 0, frozen: 0, total: 0 });
  });

  it('close() stops an encode in flight and leaves neither its work folder nor a temp file behind', async () => {
    const dataDir = path.join(fx.dir, 'left');
    const b = await startLocalBackend({ env: process.env, dataDir, turnDelayMs: { generation: 5, edit: 5 } });
    const { account, sessionId, draft } = await talkingDraft(b, 'make this photo talk');
    const workDir = path.join(dataDir, 'work');
    await submit(b, account, { id: 'render_left', sessionId, draft, output: { format: 'mp4', quality: 'low', resolution: '720p' } });
    // The encode is under way once its work folder exists.
    await expect.poll(async () => (await readdir(workDir)).length, { timeout: 10_000, interval: 5 }).toBeGreaterThan(0);
    await b.close();
    // The stopped encode's ffmpeg is gone and its work folder and temp file removed.
    expect(await readdir(workDir)).toEqual([]);
    expect((await readdir(path.join(dataDir, 'renders'))).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('a client gone while its route waits out its latency leaves no request behind: close() still ends', async () => {
    const dataDir = path.join(fx.dir, 'gone');
    const b = await startLocalBackend({ env: process.env, dataDir, turnDelayMs: { generation: 5, edit: 5 } });
    const { account, sessionId, draft } = await talkingDraft(b, 'make this photo talk');
    await submit(b, account, { id: 'render_gone', sessionId, draft, output: { format: 'mp4', quality: 'low', resolution: '720p' } });
    const done = await waitForRender(b, account, 'render_gone');
    // Only now are uploads and downloads slow: the client leaves during the wait.
    const slow = 300;
    const latency = { upload: slow, download: slow };
    await b.close();
    const again = await startLocalBackend({ env: process.env, dataDir, latency });
    const form = new FormData();
    form.append('files', new Blob([await readFile(fx.media.portrait)]), 'late.jpg');
    const leaving = new AbortController();
    const ask = (url: string, init: RequestInit): Promise<unknown> => fetch(url, { ...init, signal: leaving.signal }).then((r) => r.arrayBuffer()).catch((e: unknown) => e);
    const asked = Promise.all([
      ask(`${again.url}/api/upload-video/nemo_agent/me/${sessionId}`, { method: 'POST', headers: account.headers, body: form }),
      ask(String(done['data'].outputUrl).replace(b.url, again.url), { headers: account.headers }),
    ]);
    // Both requests are in the server (counted as they enter, before their latency), then the client leaves.
    await expect.poll(() => again.stats().requests, { timeout: 10_000, interval: 5 }).toMatchObject({ upload: 1, download: 1 });
    leaving.abort();
    await asked;
    // The server's latency timers were set before this one, so they fire first (same process):
    // when it fires, both handlers have gone on with a request whose client had gone.
    await new Promise((resolve) => setTimeout(resolve, slow));
    await again.close();
    expect((await readdir(path.join(dataDir, 'uploads'))).filter((f) => f.includes('.tmp') || f.includes('.part'))).toEqual([]);
  });

  it('fails a render whose media is gone with an error, never crashing', async () => {
    const b = await start();
    const { account, sessionId, draft } = await talkingDraft(b, 'make this photo talk');
    const broken = structuredClone(draft);
    broken.t[0].sg[0].src = `${b.url}/media/unknown.jpg`;
    broken.t[1].sg[0].src = `${b.url}/media/unknown.mp3`;
    broken.t.push({ tt: 7, sg: [{ id: 'x1', text: 'only text', st: 0, d: 500 }] });
    await submit(b, account, { id: 'render_nomedia', sessionId, draft: broken, output: { format: 'mp4', resolution: '720p', aspect: '16:9', quality: 'low' } });
    const done = await waitForRender(b, account, 'render_nomedia');
    // Without media the render still makes a valid (plain) video of the draft's length.
    expect(done['data'].status).toBe('completed');
    const file = path.join(fx.dir, 'n.mp4');
    await downloadTo(done['data'].outputUrl, file);
    expect(await probeMedia(testTools().ffprobe, file)).toMatchObject({ width: 1280, height: 720, hasAudio: true });
  });
});
