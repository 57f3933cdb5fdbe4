/* eslint-disable @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-argument -- wire JSON is read loosely here; the assertions check its shape */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fetch, FormData } from 'undici';
import { startLocalBackend, type LocalBackend } from '../../../src/local-backend/index.js';
import { makeTestMedia, type TestMedia } from '../../helpers/media.js';
import { anonymousToken, createSession, credits, json, preparedSession, sendTurn, readSse, state, upload, SKILL_HEADERS } from './client.js';

let dir: string;
let media: TestMedia;
let backend: LocalBackend;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'talk-lb-protocol-'));
  media = await makeTestMedia(path.join(dir, 'media'));
  backend = await startLocalBackend({ env: process.env, dataDir: path.join(dir, 'data'), maxUploadBytes: 64 * 1024, turnDelayMs: { generation: 5, edit: 5 } });
});
afterAll(async () => {
  await backend.close();
  await rm(dir, { recursive: true, force: true });
});

describe('anonymous token', () => {
  it('needs X-Client-Id (HTTP 400) of at most 64 characters', async () => {
    const none = await fetch(`${backend.url}/api/auth/anonymous-token`, { method: 'POST' });
    expect(none.status).toBe(400);
    expect((await json(none))['code']).toBe(400);
    const long = await fetch(`${backend.url}/api/auth/anonymous-token`, { method: 'POST', headers: { 'x-client-id': 'x'.repeat(65) } });
    expect(long.status).toBe(400);
  });

  it('issues nmv_usr_ tokens with 100 credits and repeats the live token for the same client id', async () => {
    const res = await json(await fetch(`${backend.url}/api/auth/anonymous-token`, { method: 'POST', headers: { 'x-client-id': 'same-client' } }));
    expect(res['code']).toBe(0);
    expect(res['data'].token).toMatch(/^nmv_usr_/);
    expect(res['data'].user_id).toMatch(/^anon_/);
    expect(res['data'].credits).toBe(100);
    expect(Date.parse(res['data'].expires_at)).toBeGreaterThan(Date.now() + 6 * 24 * 3600 * 1000);
    const again = await json(await fetch(`${backend.url}/api/auth/anonymous-token`, { method: 'POST', headers: { 'x-client-id': 'same-client' } }));
    expect(again['data'].token).toBe(res['data'].token);
  });

  it('answers 429 with Retry-After for a repeat when anonRepeat=429', async () => {
    const strict = await startLocalBackend({ env: process.env, compat: { anonRepeat: '429' } });
    try {
      const first = await fetch(`${strict.url}/api/auth/anonymous-token`, { method: 'POST', headers: { 'x-client-id': 'c' } });
      expect(first.status).toBe(200);
      const second = await fetch(`${strict.url}/api/auth/anonymous-token`, { method: 'POST', headers: { 'x-client-id': 'c' } });
      expect(second.status).toBe(429);
      expect(second.headers.get('retry-after')).toBe('30');
    } finally {
      await strict.close();
    }
  });

  it('answers 429 once an IP address has had its quota of new tokens, when the quota is on', async () => {
    const strict = await startLocalBackend({ env: process.env, ipQuota: 2 });
    try {
      const ask = (id: string) => fetch(`${strict.url}/api/auth/anonymous-token`, { method: 'POST', headers: { 'x-client-id': id } });
      expect((await ask('a')).status).toBe(200);
      expect((await ask('b')).status).toBe(200);
      // The live token of a known client id is not a new token: no quota spent.
      expect((await ask('a')).status).toBe(200);
      const third = await ask('c');
      expect(third.status).toBe(429);
      expect(third.headers.get('retry-after')).toBe('30');
      expect(strict.stats().tokensIssued).toBe(2);
    } finally {
      await strict.close();
    }
  });

  it('after expiry answers 1001, and the same client id gets a new token for the same user and sessions', async () => {
    // The backend's clock is injected: the token expires when the test moves it, not after a wait.
    let now = Date.now();
    const short = await startLocalBackend({ env: process.env, tokenTtlMs: 150, clock: { now: () => now } });
    try {
      const a = await anonymousToken(short.url, 'expiring');
      const sessionId = await createSession(short.url, a);
      expect((await json(await fetch(`${short.url}/api/credits/balance/simple`, { headers: a.headers })))['code']).toBe(0);
      now += 150;
      const body = await json(await fetch(`${short.url}/api/credits/balance/simple`, { headers: a.headers }));
      expect(body['code']).toBe(1001);
      const b = await anonymousToken(short.url, 'expiring');
      expect(b.token).not.toBe(a.token);
      expect(b.userId).toBe(a.userId);
      expect((await state(short.url, b, sessionId))['code']).toBe(0);
    } finally {
      await short.close();
    }
  });
});

describe('auth on every other route', () => {
  it('answers 1001 without a bearer, with an unknown token, on code and render routes', async () => {
    const noAuth = await json(await fetch(`${backend.url}/api/credits/balance/simple`));
    expect(noAuth['code']).toBe(1001);
    const bad = await json(await fetch(`${backend.url}/api/credits/balance/simple`, { headers: { authorization: 'Bearer nmv_usr_nope' } }));
    expect(bad['code']).toBe(1001);
    const render = await fetch(`${backend.url}/api/render/proxy/lambda/x`, { headers: { authorization: 'Bearer nmv_usr_nope' } });
    const body = await json(render);
    expect(body['success']).toBe(false);
    expect(body['code']).toBe(1001);
  });

  it('maps codes to HTTP statuses in errors=status mode, and adds msg in legacy mode', async () => {
    const statusMode = await startLocalBackend({ env: process.env, compat: { errors: 'status' } });
    const legacy = await startLocalBackend({ env: process.env, compat: { errors: 'legacy' } });
    try {
      const a = await fetch(`${statusMode.url}/api/credits/balance/simple`);
      expect(a.status).toBe(401);
      expect((await json(a))['code']).toBe(1001);
      const acc = await anonymousToken(statusMode.url);
      const missing = await fetch(`${statusMode.url}/api/state/nemo_agent/me/123/latest`, { headers: acc.headers });
      expect(missing.status).toBe(404);
      expect((await json(missing))['code']).toBe(1002);
      const l = await fetch(`${legacy.url}/api/credits/balance/simple`);
      expect(l.status).toBe(200);
      const body = await json(l);
      expect(body['code']).toBe(1001);
      expect(body['msg']).toBe(body['message']);
    } finally {
      await statusMode.close();
      await legacy.close();
    }
  });
});

describe('sessions, claim, credits, state', () => {
  it('creates a session with a 19-digit id and a task id; claim-token returns clm_ for 7 days', async () => {
    const a = await anonymousToken(backend.url);
    const res = await json(
      await fetch(`${backend.url}/api/tasks/me/with-session/nemo_agent`, { method: 'POST', headers: { ...a.headers, 'content-type': 'application/json' }, body: '{}' }),
    );
    expect(res['data'].session_id).toMatch(/^[1-9]\d{18}$/);
    expect(res['data'].task_id).toMatch(/^task_/);
    const claim = await json(
      await fetch(`${backend.url}/api/auth/claim-token`, {
        method: 'POST',
        headers: { ...a.headers, 'content-type': 'application/json' },
        body: JSON.stringify({ task_id: res['data'].task_id, session_id: res['data'].session_id }),
      }),
    );
    expect(claim['data'].claim_token).toMatch(/^clm_/);
    expect(claim['data'].expires_in).toBe(604800);
    const wrong = await json(
      await fetch(`${backend.url}/api/auth/claim-token`, { method: 'POST', headers: { ...a.headers, 'content-type': 'application/json' }, body: JSON.stringify({ task_id: 'task_x', session_id: res['data'].session_id }) }),
    );
    expect(wrong['code']).toBe(1002);
  });

  it('credits start at 100 with nothing frozen', async () => {
    const a = await anonymousToken(backend.url);
    expect(await credits(backend.url, a)).toEqual({ available: 100, frozen: 0, total: 100 });
  });

  it('state: unknown session and another user id in the path are 1002; own user id and "me" work', async () => {
    const a = await anonymousToken(backend.url);
    const b = await anonymousToken(backend.url);
    const sessionId = await createSession(backend.url, a);
    expect((await state(backend.url, a, '999'))['code']).toBe(1002);
    expect((await state(backend.url, b, sessionId))['code']).toBe(1002);
    const own = await json(await fetch(`${backend.url}/api/state/nemo_agent/${a.userId}/${sessionId}/latest`, { headers: a.headers }));
    expect(own['code']).toBe(0);
    const other = await json(await fetch(`${backend.url}/api/state/nemo_agent/anon_other/${sessionId}/latest`, { headers: a.headers }));
    expect(other['code']).toBe(1002);
    const s = await state(backend.url, a, sessionId);
    expect(s['data'].state.video_infos).toEqual([]);
    expect('draft' in s['data'].state).toBe(false);
  });

  it.each([
    ['null', null],
    ['empty', {}],
  ] as const)('noDraft=%s shows "no draft yet" that way', async (mode, expected) => {
    const b = await startLocalBackend({ env: process.env, compat: { noDraft: mode } });
    try {
      const a = await anonymousToken(b.url);
      const sessionId = await createSession(b.url, a);
      expect((await state(b.url, a, sessionId))['data'].state.draft).toEqual(expected);
    } finally {
      await b.close();
    }
  });
});

describe('upload', () => {
  it('stores repeated "files" parts under server-chosen names and lists them in video_infos', async () => {
    const a = await anonymousToken(backend.url);
    const sessionId = await createSession(backend.url, a);
    const res = await upload(backend.url, a, sessionId, [{ file: media.portrait, name: '../../evil/portrait.jpg' }, { file: media.voice }]);
    const body = await json(res);
    expect(body['code']).toBe(0);
    expect(body['data'].session_state_applied).toBe(true);
    const [image, audio] = body['data'].files;
    expect(image).toMatchObject({ filename: 'portrait.jpg', file_type: 'image', width: 270, height: 480 });
    expect(audio.file_type).toBe('audio');
    expect(audio.duration).toBeGreaterThan(1.9);
    expect(audio.duration).toBeLessThan(2.2);
    // Nothing escaped the uploads folder; names are the server's own.
    const stored = await readdir(path.join(backend.dataDir, 'uploads'));
    expect(stored.every((f) => /^u[0-9a-f]+(-poster)?\.[a-z0-9]+$/.test(f))).toBe(true);
    const fetched = await fetch(image.cdn_url);
    expect(fetched.status).toBe(200);
    expect(fetched.headers.get('content-type')).toBe('image/jpeg');
    await fetched.arrayBuffer();
    const s = await state(backend.url, a, sessionId);
    expect(s['data'].state.video_infos).toHaveLength(2);
  });

  it('accepts the "file" alias', async () => {
    const a = await anonymousToken(backend.url);
    const sessionId = await createSession(backend.url, a);
    const form = new FormData();
    form.append('file', new Blob([Buffer.from('RIFF')]), 'x.wav');
    const body = await json(await fetch(`${backend.url}/api/upload-video/nemo_agent/me/${sessionId}`, { method: 'POST', headers: a.headers, body: form }));
    expect(body['code']).toBe(0);
    expect(body['data'].files[0].file_type).toBe('audio');
  });

  it('refuses unsupported types with 4001 (and stores nothing of the batch)', async () => {
    const a = await anonymousToken(backend.url);
    const sessionId = await createSession(backend.url, a);
    const res = await upload(backend.url, a, sessionId, [{ file: media.portrait }, { file: media.voice, name: 'notes.txt' }]);
    expect((await json(res))['code']).toBe(4001);
    expect((await state(backend.url, a, sessionId))['data'].state.video_infos).toEqual([]);
  });

  it('answers 413 + 4002 when the body runs over the limit', async () => {
    const a = await anonymousToken(backend.url);
    const sessionId = await createSession(backend.url, a);
    const form = new FormData();
    form.append('files', new Blob([Buffer.alloc(100 * 1024)]), 'big.mp4');
    const res = await fetch(`${backend.url}/api/upload-video/nemo_agent/me/${sessionId}`, { method: 'POST', headers: a.headers, body: form });
    expect(res.status).toBe(413);
    expect((await json(res))['code']).toBe(4002);
  });

  it('takes the URL form and stands in a placeholder of the right kind', async () => {
    const a = await anonymousToken(backend.url);
    const sessionId = await createSession(backend.url, a);
    const res = await json(
      await fetch(`${backend.url}/api/upload-video/nemo_agent/me/${sessionId}`, {
        method: 'POST',
        headers: { ...a.headers, 'content-type': 'application/json' },
        body: JSON.stringify({ urls: ['https://example.com/face.png', 'https://example.com/talk.mp3'], source_type: 'url' }),
      }),
    );
    expect(res['code']).toBe(0);
    expect(res['data'].files.map((f: { file_type: string }) => f.file_type)).toEqual(['image', 'audio']);
    const bad = await json(
      await fetch(`${backend.url}/api/upload-video/nemo_agent/me/${sessionId}`, {
        method: 'POST',
        headers: { ...a.headers, 'content-type': 'application/json' },
        body: JSON.stringify({ urls: ['https://example.com/x.exe'], source_type: 'url' }),
      }),
    );
    expect(bad['code']).toBe(4001);
  });

  it('takes its own media by URL without the bytes (same content, same probe), counts uploadBytes and urlUploads, and refuses a stale media link', async () => {
    const a = await anonymousToken(backend.url);
    const first = await createSession(backend.url, a);
    const before = backend.stats();
    const sent = await json(await upload(backend.url, a, first, [{ file: media.portrait }]));
    const original = sent['data'].files[0];
    const afterFile = backend.stats();
    expect(afterFile.uploadBytes - before.uploadBytes).toBe((await stat(media.portrait)).size);
    expect(afterFile.urlUploads).toBe(before.urlUploads);

    const byUrl = (sessionId: string, urls: string[]) =>
      fetch(`${backend.url}/api/upload-video/nemo_agent/me/${sessionId}`, {
        method: 'POST',
        headers: { ...a.headers, 'content-type': 'application/json' },
        body: JSON.stringify({ urls, source_type: 'url' }),
      }).then(json);
    const second = await createSession(backend.url, a);
    // The in-process backend's port changes between runs: a link from an earlier port still counts.
    const oldPort = String(original.cdn_url).replace(/:\d+\/media\//, ':1/media/');
    const linked = await byUrl(second, [oldPort]);
    expect(linked['code']).toBe(0);
    expect(linked['data'].files[0]).toMatchObject({ filename: 'portrait.jpg', file_type: 'image', hash: original.hash, size: original.size, width: 270, height: 480 });
    expect(linked['data'].files[0].cdn_url).not.toBe(original.cdn_url);
    const fetched = Buffer.from(await (await fetch(linked['data'].files[0].cdn_url)).arrayBuffer());
    expect(fetched.equals(await readFile(media.portrait))).toBe(true);
    const afterUrl = backend.stats();
    expect(afterUrl.uploadBytes).toBe(afterFile.uploadBytes);
    expect(afterUrl.urlUploads).toBe(afterFile.urlUploads + 1);
    expect(afterUrl.uploads).toBe(afterFile.uploads + 1);
    expect((await state(backend.url, a, second))['data'].state.video_infos).toHaveLength(1);

    const stale = await byUrl(second, [`${backend.url}/media/u000000000000000000.jpg`]);
    expect(stale['code']).not.toBe(0);
    expect(backend.stats().urlUploads).toBe(afterUrl.urlUploads);
  });

  it('unknown session is 1002', async () => {
    const a = await anonymousToken(backend.url);
    expect((await json(await upload(backend.url, a, '42', [{ file: media.portrait }])))['code']).toBe(1002);
  });
});

describe('render routes', () => {
  it('402 without attribution headers, 400 on an empty draft, 409 on a duplicate id, 404 unknown, cancel', async () => {
    const { account, sessionId } = await preparedSession(backend.url, media);
    await readSse(await sendTurn(backend.url, account, sessionId, 'make this photo talk'));
    const draft = (await state(backend.url, account, sessionId))['data'].state.draft;
    const submit = (headers: Record<string, string>, body: unknown): ReturnType<typeof fetch> =>
      fetch(`${backend.url}/api/render/proxy/lambda`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const noHeaders = await submit({ authorization: account.headers['authorization']! }, { id: 'r402', sessionId, draft });
    expect(noHeaders.status).toBe(402);
    expect((await json(noHeaders))['success']).toBe(false);
    const empty = await submit(account.headers, { id: 'r-empty', sessionId, draft: {} });
    expect(empty.status).toBe(400);
    const ok = await json(await submit(account.headers, { id: 'r-dup', sessionId, draft, output: { format: 'mp4', resolution: '720p' } }));
    expect(ok).toEqual({ success: true, data: { id: 'r-dup', status: 'pending', progress: 5 } });
    const dup = await submit(account.headers, { id: 'r-dup', sessionId, draft });
    expect(dup.status).toBe(409);
    const cancel = await json(await fetch(`${backend.url}/api/render/proxy/lambda/r-dup/cancel`, { method: 'POST', headers: account.headers }));
    expect(cancel['data'].status).toBe('cancelled');
    const status = await json(await fetch(`${backend.url}/api/render/proxy/lambda/r-dup`, { headers: account.headers }));
    expect(status['data'].status).toBe('cancelled');
    const unknown = await fetch(`${backend.url}/api/render/proxy/lambda/nope`, { headers: account.headers });
    expect(unknown.status).toBe(404);
    expect(await json(unknown)).toEqual({ success: false, error: 'render not found' });
    const download = await fetch(`${backend.url}/api/render/proxy/nope/download`, { headers: account.headers });
    expect(download.status).toBe(404);
    await download.arrayBuffer();
  });

  it('a draft it cannot render ends as failed with the reason, and rendersCompleted does not move', async () => {
    const { account, sessionId } = await preparedSession(backend.url, media);
    const before = backend.stats().rendersCompleted;
    // Export-ready (a track with a segment) but with no duration: nothing to render.
    const draft = { t: [{ tt: 0, sg: [{ id: 'v1', st: 0, d: 0 }] }], d: 0 };
    const submitted = await fetch(`${backend.url}/api/render/proxy/lambda`, {
      method: 'POST',
      headers: { ...account.headers, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'r-fail', sessionId, draft }),
    });
    expect((await json(submitted))['success']).toBe(true);
    await expect
      .poll(async (): Promise<unknown> => (await json(await fetch(`${backend.url}/api/render/proxy/lambda/r-fail`, { headers: account.headers })))['data'] as unknown, { timeout: 10_000 })
      .toMatchObject({ status: 'failed', error: expect.stringMatching(/no duration/) as unknown });
    expect(backend.stats().rendersCompleted).toBe(before);
  });
});

describe('robustness', () => {
  it('answers malformed JSON, unknown routes, wrong methods and garbage request lines in the contract shape', async () => {
    const a = await anonymousToken(backend.url);
    const bad = await fetch(`${backend.url}/api/tasks/me/with-session/nemo_agent`, { method: 'POST', headers: { ...a.headers, 'content-type': 'application/json' }, body: '{nope' });
    expect(bad.status).toBe(400);
    expect((await json(bad))['code']).toBe(400);
    const unknown = await fetch(`${backend.url}/api/nothing`);
    expect(unknown.status).toBe(404);
    expect((await json(unknown))['code']).toBe(404);
    const method = await fetch(`${backend.url}/api/credits/balance/simple`, { method: 'DELETE' });
    expect(method.status).toBe(405);
    await method.arrayBuffer();
    const reply = await new Promise<string>((resolve) => {
      const socket = connect(backend.port, '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
      let text = '';
      socket.on('data', (d) => (text += d.toString()));
      socket.on('close', () => resolve(text));
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    // Still serving.
    expect((await credits(backend.url, a)).available).toBe(100);
  });

  it('binds 127.0.0.1 by default', () => {
    expect(backend.url).toBe(`http://127.0.0.1:${backend.port}`);
    expect(SKILL_HEADERS['x-skill-source']).toBe('infinite-talk-ai');
  });
});
