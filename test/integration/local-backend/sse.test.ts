/* eslint-disable @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return -- wire JSON is read loosely here; the assertions check its shape */
import { describe, expect, it } from 'vitest';
import { fetch } from 'undici';
import { request } from 'node:http';
import { anonymousToken, backendFixture, callsOf, credits, json, nextEvent, preparedSession, readSse, sendTurn, state, textsOf, upload } from './client.js';
import { startLocalBackend } from '../../../src/local-backend/index.js';

const fx = backendFixture('sse');
const start = fx.start;

describe('/run_sse stream', () => {
  it('streams ADK events: functionCall → heartbeats → functionResponse → text, camelCase, then closes', async () => {
    const b = await start({ heartbeatMs: 5, turnDelayMs: { generation: 30, edit: 5 } });
    const { account, sessionId } = await preparedSession(b.url, fx.media);
    const res = await sendTurn(b.url, account, sessionId, 'Make this photo talk using my voiceover and loop the animation infinitely');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const messages = await readSse(res);
    const kinds = messages.map((m) =>
      m.json?.['type'] === 'heartbeat' ? 'hb' : m.json?.['content']?.parts?.[0]?.functionCall ? 'call' : m.json?.['content']?.parts?.[0]?.functionResponse ? 'resp' : m.json?.['content']?.parts?.[0]?.text ? 'text' : 'other',
    );
    expect(kinds[0]).toBe('call');
    expect(kinds).toContain('hb');
    expect(kinds.indexOf('resp')).toBeGreaterThan(kinds.indexOf('hb'));
    expect(kinds[kinds.length - 1]).toBe('text');
    const first = messages[0]!.json!;
    expect(first['invocationId']).toMatch(/^e-/);
    expect(first['author']).toBe('nemo_agent');
    expect(first['content'].role).toBe('model');
    expect(callsOf(messages)).toEqual(['generate_video_talking_avatar', 'edit_multitrack']);
    const call = messages.find((m) => m.json?.['content']?.parts?.[0]?.functionCall)!.json!['content'].parts[0].functionCall;
    const resp = messages.find((m) => m.json?.['content']?.parts?.[0]?.functionResponse)!.json!;
    expect(resp['content'].role).toBe('user');
    expect(resp['content'].parts[0].functionResponse.id).toBe(call.id);
    expect(textsOf(messages).join(' ')).toMatch(/click Export/i);
  });

  it('generation makes a video track from the portrait for the voice length plus the voice as audio; edits add title, music, aspect, trim', async () => {
    const b = await start();
    const { account, sessionId } = await preparedSession(b.url, fx.media);
    await readSse(await sendTurn(b.url, account, sessionId, 'make this photo talk'));
    let draft = (await state(b.url, account, sessionId))['data'].state.draft;
    expect(draft.t.map((t: { tt: number }) => t.tt)).toEqual([0, 1]);
    expect(draft.d).toBeGreaterThan(1900);
    expect(draft.d).toBeLessThan(2200);
    expect(draft.t[0].sg[0].d).toBe(draft.d);
    expect(draft.m.ratio).toBe('9:16');
    expect(draft.t[0].sg[0].src).toMatch(new RegExp(`^${b.url}/media/`));

    // The generation spends the whole anonymous grant: the next edit is refused before streaming.
    const edits = await start();
    const s2 = await preparedSession(edits.url, fx.media);
    await readSse(await sendTurn(edits.url, s2.account, s2.sessionId, 'make it talk'));
    const before = await credits(edits.url, s2.account);
    expect(before).toEqual({ available: 0, frozen: 0, total: 0 });
    const refused = await sendTurn(edits.url, s2.account, s2.sessionId, 'add a title "Hi"');
    expect(refused.headers.get('content-type')).toMatch(/json/);
    expect((await json(refused))['code']).toBe(2001);
    draft = (await state(edits.url, s2.account, s2.sessionId))['data'].state.draft;
    expect(draft.t).toHaveLength(2);
  });

  it('applies each edit intent to the draft (title with its range, music at 35 %, aspect, trim, loop)', async () => {
    const b = await start();
    const { account, sessionId } = await preparedSession(b.url, fx.media);
    await upload(b.url, account, sessionId, [{ file: fx.media.music!, name: 'background-music.wav' }]);
    await readSse(await sendTurn(b.url, account, sessionId, 'Make this photo talk, add a title "Hello there" for 1 second, add background music, make it square, loop it and trim to 1.5 seconds'));
    const s = (await state(b.url, account, sessionId))['data'].state;
    const draft = s.draft;
    expect(draft.d).toBe(1500);
    const text = draft.t.find((t: { tt: number }) => t.tt === 7).sg[0];
    expect(text).toMatchObject({ text: 'Hello there', st: 0, d: 1000 });
    const music = draft.t.find((t: { tt: number; sg: { role?: string }[] }) => t.tt === 1 && t.sg[0]?.role === 'music').sg[0];
    expect(music.vol).toBe(0.35);
    expect(draft.m).toMatchObject({ ratio: '1:1', width: 1080, height: 1080 });
    expect(s.canvas_config).toMatchObject({ ratio: '1:1' });
    expect(draft.t[0].sg[0].loop).toBe(true);
    for (const t of draft.t) for (const g of t.sg) expect(g.st + g.d).toBeLessThanOrEqual(1500);
  });

  it('asks for clarification, free, when nothing maps or the portrait is missing', async () => {
    const b = await start();
    const { account, sessionId } = await preparedSession(b.url, fx.media);
    const messages = await readSse(await sendTurn(b.url, account, sessionId, 'hmm, what now?'));
    expect(callsOf(messages)).toEqual([]);
    expect(textsOf(messages)[0]).toMatch(/What would you like/);
    const empty = await start();
    const e = await preparedSession(empty.url, { portrait: fx.media.voice, voice: fx.media.voice });
    const noPortrait = await readSse(await sendTurn(empty.url, e.account, e.sessionId, 'make the photo talk'));
    expect(textsOf(noPortrait)[0]).toMatch(/portrait/);
    expect(await credits(b.url, account)).toEqual({ available: 100, frozen: 0, total: 100 });
    expect(b.stats().creditsSpent).toBe(0);
  });

  it('freezes credits while a turn runs (counted as a message when accepted)', async () => {
    const b = await start({ turnDelayMs: { generation: 60_000, edit: 5 }, heartbeatMs: 60_000 });
    const { account, sessionId } = await preparedSession(b.url, fx.media);
    const accepted = nextEvent(b, (e) => e.type === 'turn:accepted');
    const controller = new AbortController();
    const res = await sendTurn(b.url, account, sessionId, 'make this photo talk', { signal: controller.signal });
    await accepted;
    expect(await credits(b.url, account)).toEqual({ available: 0, frozen: 100, total: 100 });
    controller.abort();
    await res.body?.cancel().catch(() => undefined);
    expect(b.stats().messages).toBe(1);
  });

  it('keeps a turn running after the client disconnects: charged once, draft changed', async () => {
    const b = await start({ turnDelayMs: { generation: 200, edit: 5 } });
    const { account, sessionId } = await preparedSession(b.url, fx.media);
    const done = nextEvent(b, (e) => e.type === 'turn:done');
    const controller = new AbortController();
    const res = await sendTurn(b.url, account, sessionId, 'make this photo talk', { signal: controller.signal });
    // Read the first event, then hang up.
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    await reader.cancel().catch(() => undefined);
    const event = await done;
    expect(event['connected']).toBe(false);
    expect(await credits(b.url, account)).toEqual({ available: 0, frozen: 0, total: 0 });
    expect(b.stats().creditsSpent).toBe(100);
    expect((await state(b.url, account, sessionId))['data'].state.draft.t).toHaveLength(2);
  });

  it('releases frozen credits when the run fails mid-stream with {"error": …}', async () => {
    const b = await start();
    const { account, sessionId } = await preparedSession(b.url, fx.media);
    const messages = await readSse(await sendTurn(b.url, account, sessionId, 'make this photo talk', { headers: { 'x-emulator-scenario': 'error-midstream' } }));
    expect(messages.at(-1)!.json).toEqual({ error: expect.any(String) });
    expect(await credits(b.url, account)).toEqual({ available: 100, frozen: 0, total: 100 });
    expect('draft' in (await state(b.url, account, sessionId))['data'].state).toBe(false);
  });

  it('ends a share of edits without text (silentEditRatio), deterministically with a seed', async () => {
    // Two aspect edits (50 each) fit the anonymous grant and need no generated video.
    const run = async (seed: number, ratio: number): Promise<boolean[]> => {
      const b = await start({ silentEditRatio: ratio, seed });
      const { account, sessionId } = await preparedSession(b.url, fx.media);
      const silent: boolean[] = [];
      for (const text of ['make it square', 'make it vertical']) {
        const messages = await readSse(await sendTurn(b.url, account, sessionId, text));
        expect(callsOf(messages)).toEqual(['edit_multitrack']);
        silent.push(textsOf(messages).length === 0);
      }
      expect(b.stats().creditsSpent).toBe(100);
      return silent;
    };
    expect(await run(7, 0.5)).toEqual(await run(7, 0.5));
    expect(await run(1, 1)).toEqual([true, true]);
    expect(await run(1, 0)).toEqual([false, false]);
  });

  it('honours streaming:true with partial events before the final text', async () => {
    const b = await start();
    const { account, sessionId } = await preparedSession(b.url, fx.media);
    const messages = await readSse(await sendTurn(b.url, account, sessionId, 'make this photo talk', { body: { streaming: true } }));
    const partials = messages.filter((m) => m.json?.['partial'] === true);
    expect(partials.length).toBe(2);
    const final = textsOf(messages);
    expect(final).toHaveLength(1);
    expect(partials.map((p) => p.json!['content'].parts[0].text).join('')).toBe(final[0]);
  });

  it('ask scenario ends the turn with an ask_question call; noise adds the "temporary issue" text', async () => {
    const b = await start({ noiseRatio: 1 });
    const { account, sessionId } = await preparedSession(b.url, fx.media);
    const ask = await readSse(await sendTurn(b.url, account, sessionId, 'which format? #scenario:ask'));
    expect(callsOf(ask)).toEqual(['ask_question']);
    const call = ask[0]!.json!['content'].parts[0].functionCall;
    expect(call.args.questions[0]).toMatchObject({ id: 'q1', allow_multiple: false });
    const noisy = await readSse(await sendTurn(b.url, account, sessionId, 'make it talk'));
    expect(textsOf(noisy).at(-1)).toMatch(/temporary issue/);
  });

  it.each([
    ['json', (raw: string) => raw.includes('data: {"type":"heartbeat"}')],
    ['empty', (raw: string) => /(^|\n)data:\n\n/.test(raw)],
    ['comment', (raw: string) => raw.includes(': ping\n\n')],
  ] as const)('heartbeat style %s', async (heartbeat, check) => {
    const b = await start({ compat: { heartbeat }, heartbeatMs: 5, turnDelayMs: { generation: 25, edit: 5 } });
    const { account, sessionId } = await preparedSession(b.url, fx.media);
    const raw = await (await sendTurn(b.url, account, sessionId, 'make this photo talk')).text();
    expect(check(raw)).toBe(true);
  });

  it('legacy sse mode sends {type:"tool_call"|"tool_result"|"text"} pseudo events', async () => {
    const b = await start({ compat: { sse: 'legacy' } });
    const { account, sessionId } = await preparedSession(b.url, fx.media);
    const messages = await readSse(await sendTurn(b.url, account, sessionId, 'make this photo talk'));
    expect(messages.map((m) => m.json?.['type'])).toEqual(['tool_call', 'tool_result', 'text']);
  });

  it('pre-stream errors are JSON: 1002 as HTTP 404 with detail, 1001 as 401; 2001 is not counted', async () => {
    const b = await start();
    const { account, sessionId } = await preparedSession(b.url, fx.media);
    const missing = await sendTurn(b.url, account, '123', 'hello');
    expect(missing.status).toBe(404);
    expect(await json(missing)).toMatchObject({ code: 1002, detail: expect.stringMatching(/Session not found/) });
    const unauth = await fetch(`${b.url}/run_sse`, { method: 'POST', body: '{}' });
    expect(unauth.status).toBe(401);
    expect((await json(unauth))['code']).toBe(1001);
    await readSse(await sendTurn(b.url, account, sessionId, 'make this photo talk'));
    const poor = await sendTurn(b.url, account, sessionId, 'make this photo talk again');
    expect((await json(poor))['code']).toBe(2001);
    expect(b.stats().messages).toBe(1);
  });

  it('concurrentTurn=409 refuses a second turn while one runs', async () => {
    const b = await start({ compat: { concurrentTurn: '409' }, turnDelayMs: { generation: 60_000, edit: 5 }, heartbeatMs: 60_000 });
    const { account, sessionId } = await preparedSession(b.url, fx.media);
    const accepted = nextEvent(b, (e) => e.type === 'turn:accepted');
    const controller = new AbortController();
    const gen = await sendTurn(b.url, account, sessionId, 'make this photo talk', { signal: controller.signal });
    await accepted;
    const second = await sendTurn(b.url, account, sessionId, 'and loop it');
    expect(second.status).toBe(409);
    await second.arrayBuffer();
    controller.abort();
    await gen.body?.cancel().catch(() => undefined);
  });
});

describe('a client that goes away', () => {
  it('is logged as info, not as an internal error', async () => {
    const lines: string[] = [];
    const b = await startLocalBackend({ env: process.env, logger: (line) => lines.push(line) });
    try {
      const account = await anonymousToken(b.url);
      const target = new URL(`${b.url}/run_sse`);
      // The request promises a body it never finishes; once the server is reading it, the client hangs up.
      const req = request({ host: target.hostname, port: target.port, path: target.pathname, method: 'POST', headers: { ...account.headers, 'content-type': 'application/json', 'content-length': '1000' } });
      req.on('error', () => undefined);
      req.write('{"session_id":');
      const until = async (condition: () => boolean): Promise<void> => {
        const deadline = Date.now() + 10_000;
        while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      };
      await until(() => (b.stats().requests['sse'] ?? 0) >= 1);
      req.destroy();
      await until(() => lines.some((l) => /\/run_sse/.test(l)));
      expect(lines.filter((l) => /internal error/.test(l))).toEqual([]);
      expect(lines.some((l) => /^info: client disconnected from POST \/run_sse/.test(l))).toBe(true);
    } finally {
      await b.close();
    }
  });
});
