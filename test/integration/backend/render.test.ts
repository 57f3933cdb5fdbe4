import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MockAgent, request } from 'undici';
import { createBackendClient, createTokenProvider, RenderFailedError } from '../../../src/backend/index.js';
import type { RetryInfo } from '../../../src/backend/types.js';
import { asRenderId, asSessionId } from '../../../src/core/ids.js';
import { paths } from '../../../src/contract/routes.js';
import { parseFaultRule, type LocalBackendOptions } from '../../../src/local-backend/index.js';
import { FAST, makeMedia, renderOnce, startRig, type Rig } from './rig.js';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

/** A session with a generated talking-avatar draft, ready to export. */
async function drafted(local: LocalBackendOptions = {}) {
  const r = await startRig({ local });
  rig = r;
  const media = makeMedia();
  const { sessionId } = await r.client.createSession({ taskName: 'p', language: 'en' });
  await r.client.uploadFile(sessionId, media.portrait);
  await r.client.uploadFile(sessionId, media.voice);
  await r.client.sendInstruction(sessionId, 'Make this photo talk using my voiceover');
  const draft = (await r.client.getState(sessionId)).state.draft;
  return { r, sessionId, draft };
}
const output = { format: 'mp4', quality: 'low', resolution: '720p' } as const;

describe('render lifecycle against the local backend', () => {
  it.each(['data', 'top-level'] as const)('reads the "%s" status shape and downloads the result', async (renderStatus) => {
    const { r, sessionId, draft } = await drafted({ compat: { renderStatus } });
    const result = await renderOnce(r.client, { sessionId, draft, output });
    expect(result.outputUrl).toMatch(/\/static\/render-result\/.+\.mp4$/);
    const dest = path.join(r.dir, 'a.mp4');
    const download = await r.client.downloadRender(result.renderId, result.outputUrl, dest);
    expect(download.sha256).toBe(createHash('sha256').update(await readFile(dest)).digest('hex'));
  });

  it('falls back to the download route when the output URL fails, and follows its JSON form', async () => {
    const { r, sessionId, draft } = await drafted({ compat: { download: 'json' } });
    const result = await renderOnce(r.client, { sessionId, draft, output });
    r.backend.addFaults([parseFaultRule('download:status=404:x1')]);
    const retries: RetryInfo[] = [];
    const dest = path.join(r.dir, 'b.mp4');
    const download = await r.client.downloadRender(result.renderId, result.outputUrl, dest, { onRetry: (x) => retries.push(x) });
    expect(download.bytes).toBeGreaterThan(1000);
    expect(retries[0]?.reason).toMatch(/using the download route/);
    // static (404) → download route (JSON) → static again.
    expect(r.backend.stats().requests.download).toBe(3);
    expect((await readdir(r.dir)).filter((f) => f.endsWith('.part'))).toEqual([]);
  });

  it('a connection reset in the middle of the download is retried, and the file is whole', async () => {
    const { r, sessionId, draft } = await drafted();
    const result = await renderOnce(r.client, { sessionId, draft, output });
    r.backend.addFaults([parseFaultRule('download:reset:x1')]);
    const retries: RetryInfo[] = [];
    const dest = path.join(r.dir, 'reset.mp4');
    const download = await r.client.downloadRender(result.renderId, result.outputUrl, dest, { onRetry: (x) => retries.push(x) });
    expect(download.bytes).toBeGreaterThan(1000);
    expect(r.backend.stats().faultsFired['download:reset:x1']).toBe(1);
    expect(retries).toHaveLength(1);
    expect(retries[0]?.reason).toBe('network error');
    // The same URL again (an idempotent GET), not a second render.
    expect(r.backend.stats().requests.download).toBe(2);
    expect(r.backend.stats().rendersStarted).toBe(1);
    expect((await readdir(r.dir)).filter((f) => f.endsWith('.part'))).toEqual([]);
  });

  it('re-attaches to a render by id and keeps polling through transient status errors', async () => {
    const { r, sessionId, draft } = await drafted({ latency: { render: 300 } });
    const renderId = r.client.newRenderId();
    await r.client.submitRender({ renderId, sessionId, draft, output });
    r.backend.addFaults([parseFaultRule('render-status:status=502:x1')]);
    const retries: RetryInfo[] = [];
    await expect(r.client.waitForRender(renderId, { onRetry: (x) => retries.push(x) })).resolves.toMatchObject({ outputUrl: expect.stringContaining(renderId) as unknown });
    expect(retries[0]?.reason).toBe('HTTP 502');
    expect(r.backend.stats().rendersStarted).toBe(1);
  });

  it('cancels a render in flight: polling then reports it cancelled, and a second cancel is refused', async () => {
    const { r, sessionId, draft } = await drafted({ latency: { render: 5_000 } });
    const renderId = r.client.newRenderId();
    await r.client.submitRender({ renderId, sessionId, draft, output });
    // The CLI never cancels a paid render (a resume re-attaches); the route is the backend's.
    const cancel = async () => (await request(`${r.backend.url}${paths.renderCancel(renderId)}`, { method: 'POST', headers: { authorization: `Bearer ${await r.tokens.token()}` } })).statusCode;
    expect(await cancel()).toBe(200);
    const error = await r.client.waitForRender(renderId).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RenderFailedError);
    expect((error as Error).message).toMatch(/cancelled/);
    expect(await cancel()).toBe(409);
    expect(r.backend.stats().requests['render-cancel']).toBe(2);
    expect(r.backend.stats().rendersCompleted).toBe(0);
  });

  it('stops polling at the cap with a timeout that says how to resume', async () => {
    const r = await startRig({ local: { latency: { render: 1_500 } }, timing: { renderCapMs: 200 } });
    rig = r;
    const media = makeMedia();
    const { sessionId } = await r.client.createSession({ taskName: 'p', language: 'en' });
    await r.client.uploadFile(sessionId, media.portrait);
    await r.client.uploadFile(sessionId, media.voice);
    await r.client.sendInstruction(sessionId, 'Make this photo talk using my voiceover');
    const draft = (await r.client.getState(sessionId)).state.draft;
    const error = await renderOnce(r.client, { sessionId, draft, output }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'timeout' });
    expect((error as Error & { hint: string }).hint).toMatch(/re-attaches/);
    expect(r.backend.stats().rendersStarted).toBe(1);
  });
});

/**
 * Shapes the local backend cannot produce: a render that reports `failed` and then succeeds
 * under a new id, unknown statuses, a CDN on another origin, a cloud host that is down, and a
 * server that echoes the token back.
 */
describe('shapes only a mock can produce (undici MockAgent)', () => {
  const BASE = 'https://api.mock.test';
  const CDN = 'https://cdn.mock.test';
  async function mocked() {
    const agent = new MockAgent();
    agent.disableNetConnect();
    const dir = await mkdtemp(path.join(tmpdir(), 'talk-mock-'));
    const tokens = createTokenProvider({ env: { NEMO_TOKEN: 'nmv_usr_mocktoken77' }, baseUrl: BASE, dispatcher: agent });
    const client = createBackendClient({ baseUrl: BASE, dispatcher: agent, auth: tokens, timing: { ...FAST, renderPollMs: 1 } });
    return { agent, client, dir, api: agent.get(BASE), close: async () => { await agent.close(); await rm(dir, { recursive: true, force: true }); } };
  }

  it('unknown statuses keep polling; a failed render is a RenderFailedError whose failure is render-failed', async () => {
    const m = await mocked();
    const session = asSessionId('1');
    m.api.intercept({ path: '/api/render/proxy/lambda', method: 'POST' }).reply(200, { success: true, data: { status: 'pending' } }).times(2);
    m.api.intercept({ path: /\/api\/render\/proxy\/lambda\/render_/, method: 'GET' }).reply(200, { success: true, data: { status: 'queued_on_gpu', progress: 10 } });
    m.api.intercept({ path: /\/api\/render\/proxy\/lambda\/render_/, method: 'GET' }).reply(200, { status: 'completed', output: { url: `${CDN}/x.mp4` } });
    const done = await renderOnce(m.client, { sessionId: session, draft: { t: [] }, output: { format: 'mp4' } });
    expect(done.outputUrl).toBe(`${CDN}/x.mp4`);

    m.api.intercept({ path: /\/api\/render\/proxy\/lambda\/render_/, method: 'GET' }).reply(200, { success: true, data: { status: 'failed', error: 'gpu lost' } });
    const error = await renderOnce(m.client, { sessionId: session, draft: {}, output: { format: 'mp4' } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RenderFailedError);
    expect(error).toMatchObject({ failure: 'render-failed', message: expect.stringMatching(/gpu lost/) as unknown });
    await m.close();
  });

  it('downloads from a CDN without the token, checks the size, and leaves no temp file on a short body', async () => {
    const m = await mocked();
    const cdn = m.agent.get(CDN);
    let authSeen: unknown = 'unset';
    cdn.intercept({ path: '/ok.mp4', method: 'GET' }).reply(200, (opts) => {
      authSeen = (opts.headers as Record<string, string>).authorization;
      return Buffer.from('0123456789');
    }, { headers: { 'content-type': 'video/mp4', 'content-length': '10' } });
    const dest = path.join(m.dir, 'ok.mp4');
    await expect(m.client.downloadRender(asRenderId('render_1'), `${CDN}/ok.mp4`, dest)).resolves.toMatchObject({ bytes: 10 });
    expect(authSeen).toBeUndefined();
    expect(await readFile(dest, 'utf8')).toBe('0123456789');
    // A body shorter than its Content-Length fails, for both URLs, and leaves nothing behind.
    for (const p of ['/short.mp4', '/api/render/proxy/render_2/download']) {
      (p.startsWith('/api') ? m.api : cdn).intercept({ path: p, method: 'GET' }).reply(200, Buffer.from('01234'), { headers: { 'content-type': 'video/mp4', 'content-length': '10' } });
    }
    const short = path.join(m.dir, 'short.mp4');
    await expect(m.client.downloadRender(asRenderId('render_2'), `${CDN}/short.mp4`, short)).rejects.toThrow();
    expect((await readdir(m.dir)).sort()).toEqual(['ok.mp4']);
    await m.close();
  });

  it('says the cloud is unreachable and suggests --backend local', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    agent.get('https://mega-api-prod.nemovideo.ai').intercept({ path: '/api/credits/balance/simple', method: 'GET' }).replyWithError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })).times(4);
    const tokens = createTokenProvider({ env: { NEMO_TOKEN: 'nmv_usr_x123456' }, baseUrl: 'https://mega-api-prod.nemovideo.ai', dispatcher: agent });
    const client = createBackendClient({ baseUrl: 'https://mega-api-prod.nemovideo.ai', dispatcher: agent, auth: tokens, timing: FAST });
    const error = (await client.getCredits().then(() => new Error('resolved'), (e: unknown) => e)) as Error & { hint?: string };
    expect(error.message).toMatch(/NemoVideo cloud backend .* could not be reached/);
    expect(error.hint).toMatch(/--backend local/);
    await agent.close();
  });

  it('redacts a token the server echoes back, in message and hint', async () => {
    const m = await mocked();
    m.api.intercept({ path: '/api/credits/balance/simple', method: 'GET' }).reply(400, { code: 4000, message: 'bad header Authorization: Bearer nmv_usr_mocktoken77' });
    const error = (await m.client.getCredits().then(() => new Error('resolved'), (e: unknown) => e)) as Error;
    expect(error.message).not.toContain('mocktoken77');
    expect(error.message).toContain('[redacted]');
    await m.close();
  });
});
