/* eslint-disable @typescript-eslint/no-unsafe-member-access -- wire JSON is read loosely here; the assertions check its shape */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fetch } from 'undici';
import { startLocalBackend, type LocalBackend } from '../../../src/local-backend/index.js';
import { Store } from '../../../src/local-backend/store.js';
import { makeTestMedia, type TestMedia } from '../../helpers/media.js';
import { json, preparedSession, readSse, sendTurn, state, waitForRender, type Account } from './client.js';

let dir: string;
let media: TestMedia;
const started: LocalBackend[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'talk-lb-batch-'));
  media = await makeTestMedia(path.join(dir, 'media'));
});
afterAll(async () => {
  await Promise.all(started.map((b) => b.close()));
  await rm(dir, { recursive: true, force: true });
});

const OUTPUT = { format: 'mp4', quality: 'low', resolution: '720p', aspect: '9:16' };

/** A new account and session holding the same media, with a generated talking draft. */
async function talkingSession(b: LocalBackend): Promise<{ account: Account; sessionId: string; draft: unknown }> {
  const { account, sessionId } = await preparedSession(b.url, media);
  await readSse(await sendTurn(b.url, account, sessionId, 'make this photo talk'));
  return { account, sessionId, draft: (await state(b.url, account, sessionId))['data'].state.draft };
}

function submit(b: LocalBackend, s: { account: Account; sessionId: string; draft: unknown }, id: string, output: object = OUTPUT): Promise<Record<string, unknown>> {
  return fetch(`${b.url}/api/render/proxy/lambda`, {
    method: 'POST',
    headers: { ...s.account.headers, 'content-type': 'application/json' },
    body: JSON.stringify({ id, sessionId: s.sessionId, draft: s.draft, output }),
  }).then(json);
}

describe('batches of identical work', () => {
  it('identical media in another session is a cache copy; identical renders in flight share one encode; render=MS holds no slot', async () => {
    // Every render takes at least 1 s, so a floor slept inside an encoder slot would queue them.
    const b = await startLocalBackend({ env: process.env, turnDelayMs: { generation: 5, edit: 5 }, silentEditRatio: 0, latency: { render: 1000 } });
    started.push(b);
    const [first, second, third, fourth] = await Promise.all([talkingSession(b), talkingSession(b), talkingSession(b), talkingSession(b)]);
    // Same bytes uploaded four times: each session has its own server-chosen file names.
    expect((first.draft as { t: { sg: { src: string }[] }[] }).t[0]!.sg[0]!.src).not.toBe((second.draft as { t: { sg: { src: string }[] }[] }).t[0]!.sg[0]!.src);

    await submit(b, first, 'batch_1');
    expect((await waitForRender(b, first.account, 'batch_1'))['data'].status).toBe('completed');
    await submit(b, second, 'batch_2');
    expect((await waitForRender(b, second.account, 'batch_2'))['data'].status).toBe('completed');
    expect(b.stats()).toMatchObject({ rendersCompleted: 2, renderCacheHits: 1 });

    // New options (a cold cache key), submitted together: both are processing before either
    // ends, and only one of them encodes.
    const order: string[] = [];
    b.onEvent((e) => {
      if ((e.type === 'render:started' || e.type === 'render:completed') && typeof e.renderId === 'string') order.push(`${e.type} ${e.renderId}`);
    });
    const medium = { ...OUTPUT, quality: 'medium' };
    await Promise.all([submit(b, third, 'batch_3', medium), submit(b, fourth, 'batch_4', medium)]);
    const [r3, r4] = await Promise.all([waitForRender(b, third.account, 'batch_3'), waitForRender(b, fourth.account, 'batch_4')]);
    expect([r3['data'].status, r4['data'].status]).toEqual(['completed', 'completed']);
    const firstDone = order.findIndex((e) => e.startsWith('render:completed'));
    expect(order.slice(0, firstDone).sort()).toEqual(['render:started batch_3', 'render:started batch_4']);
    // batch_2 copied; of batch_3 and batch_4 one encoded and the other joined it.
    expect(b.stats()).toMatchObject({ rendersCompleted: 4, renderCacheHits: 2 });
  });
});

describe('state persistence', () => {
  it('acknowledged changes survive without a clean close; a torn journal tail and an older journal are ignored', async () => {
    const dataDir = path.join(dir, 'store');
    const a = new Store(dataDir);
    await a.open();
    a.data.sessions['s1'] = { id: 's1', taskId: 't1', userId: 'u1', taskName: 'one', language: 'en', uploads: [], draft: undefined, canvas: undefined, generatedMedia: [], createdAt: 1 };
    await a.save({ sessions: 's1' });
    a.data.sessions['s1'].taskName = 'renamed';
    a.data.users['u1'] = { id: 'u1', clientId: 'c1', available: 100, frozen: 0, spent: 0 };
    await Promise.all([a.save({ sessions: 's1' }), a.save({ users: 'u1' })]);
    // No flush or close: as if the process died right after answering.
    const files = await readdir(dataDir);
    const journal = files.find((f) => f.endsWith('.journal'));
    expect(journal).toBeDefined();
    await appendFile(path.join(dataDir, journal!), '{"t":"users","k":"u1","v":{"id":"u1","availab');

    const b = new Store(dataDir);
    await b.open();
    expect(b.data.sessions['s1']?.taskName).toBe('renamed');
    expect(b.data.users['u1']?.available).toBe(100);
    // Opening folded the journal into a new snapshot; the old journal is gone, and a stale one
    // put back by hand (as after a crash between rename and delete) is not replayed.
    const after = await readdir(dataDir);
    expect(after).not.toContain(journal);
    await appendFile(path.join(dataDir, journal!), '{"t":"users","k":"u1","v":{"id":"u1","clientId":"c1","available":1,"frozen":0,"spent":0}}\n');
    const c = new Store(dataDir);
    await c.open();
    expect(c.data.users['u1']?.available).toBe(100);
    await Promise.all([a.flush(), b.flush(), c.flush()]);
  });
});
