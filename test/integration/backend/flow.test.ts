import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenProvider } from '../../../src/backend/index.js';
import type { TurnActivity } from '../../../src/backend/types.js';
import { isExportReady } from '../../../src/contract/draft.js';
import { makeMedia, renderOnce, startRig, type Rig } from './rig.js';

const sha = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex');

describe('backend client end to end against the local backend', () => {
  let rig: Rig;
  let media: { portrait: string; voice: string };
  beforeAll(async () => {
    rig = await startRig();
    media = makeMedia(rig.dir);
  });
  afterAll(async () => rig.close());

  it('gets a token, creates a session, uploads, instructs, renders and downloads', async () => {
    const { client, backend } = rig;
    const session = await client.createSession({ taskName: 'project', language: 'en' });
    expect(session.sessionId).toMatch(/^\d{19}$/);
    expect(rig.tokens.anonymousUserId()).toMatch(/^anon_/);

    const progress: number[] = [];
    const up = await client.uploadFile(session.sessionId, media.portrait, { onProgress: (bytes) => progress.push(bytes) });
    expect(up.sha256).toBe(await sha(media.portrait));
    expect(up.bytes).toBe((await stat(media.portrait)).size);
    expect(progress.at(-1)).toBe(up.bytes);
    expect(up.file.file_type).toBe('image');
    await client.uploadFile(session.sessionId, media.voice);

    const baseline = await client.captureBaseline(session.sessionId);
    expect(baseline.credits.available).toBe(100);
    const activity: TurnActivity[] = [];
    const turn = await client.sendInstruction(session.sessionId, 'Make this photo talk using my voiceover', { baseline, onActivity: (a) => activity.push(a) });
    expect(turn.silent).toBe(false);
    expect(turn.text).toMatch(/talking avatar is ready/);
    // The agent said "Preview it in the timeline, then click Export"; the CLI never relays that.
    expect(turn.text).not.toMatch(/click/i);
    expect(turn.text).toMatch(/export step/);
    expect(turn.tools).toEqual(['generate_video_talking_avatar']);
    expect(activity).toContainEqual({ kind: 'tool-start', name: 'generate_video_talking_avatar', label: 'generating video' });

    const state = await client.getState(session.sessionId);
    expect(isExportReady(state.state.draft)).toBe(true);
    expect(await client.getCredits()).toMatchObject({ available: 0, frozen: 0 });

    const percents: number[] = [];
    const render = await renderOnce(
      client,
      { sessionId: session.sessionId, draft: state.state.draft, output: { format: 'mp4', quality: 'low', resolution: '720p' } },
      { onProgress: (p) => percents.push(p) },
    );
    expect(render.renderId).toMatch(/^render_\d+_[0-9a-f]{8}$/);
    expect(percents.at(-1)).toBe(100);
    expect(render.outputUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/static\/render-result\//);

    const dest = path.join(rig.dir, 'out.mp4');
    const transferred: number[] = [];
    const download = await client.downloadRender(render.renderId, render.outputUrl, dest, { onProgress: (b) => transferred.push(b) });
    expect(download.sha256).toBe(await sha(dest));
    expect(download.bytes).toBe((await stat(dest)).size);
    expect((await readFile(dest)).subarray(4, 8).toString('latin1')).toBe('ftyp');

    const link = await client.claimLink(session.taskId, session.sessionId);
    expect(link).toMatch(/^https:\/\/web\.example\/workspace\/claim\?ct=clm_/);

    const stats = backend.stats();
    expect(stats.tokensIssued).toBe(1);
    expect(stats.rendersStarted).toBe(1);
    expect(stats.messages).toBe(1);
  });

  it('keeps the client id and the cached token in the config dir with mode 0600, keyed by base URL', async () => {
    const clientId = (await readFile(path.join(rig.configDir, 'client_id'), 'utf8')).trim();
    expect(clientId).toMatch(/^[0-9a-f-]{36}$/);
    expect((await stat(path.join(rig.configDir, 'client_id'))).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(rig.configDir, 'tokens.json'))).mode & 0o777).toBe(0o600);
    const cache = JSON.parse(await readFile(path.join(rig.configDir, 'tokens.json'), 'utf8')) as { tokens: Record<string, unknown> };
    expect(Object.keys(cache.tokens)).toEqual([rig.backend.url]);

    // A second run (new provider, same config dir) reuses the cached token: no new one is issued.
    const again = createTokenProvider({ env: {}, configDir: rig.configDir, baseUrl: rig.backend.url, dispatcher: rig.agent });
    expect(await again.token()).toBe(await rig.tokens.token());
    expect(rig.backend.stats().tokensIssued).toBe(1);
  });

  it('uses NEMO_TOKEN as given and NEMO_CLIENT_ID instead of the stored id', async () => {
    const user = createTokenProvider({ env: { NEMO_TOKEN: 'nmv_usr_given' }, configDir: rig.configDir, baseUrl: rig.backend.url });
    expect(await user.token()).toBe('nmv_usr_given');
    expect(user.userSupplied).toBe(true);
    const other = createTokenProvider({ env: { NEMO_CLIENT_ID: 'ci-runner-1' }, configDir: path.join(rig.dir, 'other-config'), baseUrl: rig.backend.url, dispatcher: rig.agent });
    const token = await other.token();
    expect(token).not.toBe(await rig.tokens.token());
    expect(rig.backend.stats().tokensIssued).toBe(2);
  });
});
