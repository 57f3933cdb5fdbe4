/* eslint-disable @typescript-eslint/no-unsafe-member-access -- wire JSON is read loosely here; the assertions check its shape */
import { describe, expect, it } from 'vitest';
import { fetch } from 'undici';
import { UsageError } from '../../../src/core/errors.js';
import { parseCompat, parseFaultRule, parseLatency } from '../../../src/local-backend/index.js';
import { backendFixture, anonymousToken, callsOf, credits, json, nextEvent, preparedSession, readSse, sendTurn, state, textsOf } from './client.js';

const fx = backendFixture('faults');
const start = fx.start;

describe('spec parsers', () => {
  it('parse fault rules exactly as SPEC §5 writes them', () => {
    expect(parseFaultRule('sse:drop:x1')).toEqual({ spec: 'sse:drop:x1', route: 'sse', fault: { kind: 'drop' }, times: 1 });
    expect(parseFaultRule('any:status=503:25%')).toEqual({ spec: 'any:status=503:25%', route: 'any', fault: { kind: 'status', status: 503 }, percent: 25 });
    expect(parseFaultRule('state:code=1002')).toMatchObject({ fault: { kind: 'code', code: 1002 } });
    expect(parseFaultRule('render-cancel:reset')).toMatchObject({ route: 'render-cancel', fault: { kind: 'reset' } });
    expect(parseFaultRule('render:fail:x2')).toEqual({ spec: 'render:fail:x2', route: 'render', fault: { kind: 'fail' }, times: 2 });
    for (const bad of ['sse', 'nope:drop', 'sse:explode', 'sse:status=99', 'sse:drop:x', 'sse:drop:150%', 'a:b:c:d']) {
      expect(() => parseFaultRule(bad), bad).toThrow(UsageError);
    }
  });

  it('parse latency and compat specs, refusing unknown names', () => {
    expect(parseLatency('render=2000')).toEqual({ render: 2000 });
    expect(parseLatency('sse=10,state=5')).toEqual({ sse: 10, state: 5 });
    expect(() => parseLatency('x=1')).toThrow(UsageError);
    expect(() => parseLatency('sse=fast')).toThrow(UsageError);
    expect(parseCompat('errors=status,heartbeat=comment')).toEqual({ errors: 'status', heartbeat: 'comment' });
    expect(() => parseCompat('errors=loud')).toThrow(/errors takes envelope, status, legacy/);
    expect(() => parseCompat('colour=red')).toThrow(UsageError);
  });
});

describe('fault kinds', () => {
  it('status=NNN answers that HTTP status on the next N requests only', async () => {
    const b = await start({ faults: [parseFaultRule('credits:status=503:x2')] });
    const a = await anonymousToken(b.url);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${b.url}/api/credits/balance/simple`, { headers: a.headers });
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    expect(statuses).toEqual([503, 503, 200]);
    expect(b.stats().faultsFired).toEqual({ 'credits:status=503:x2': 2 });
    expect(b.stats().requests.credits).toBe(3);
  });

  it('code=NNNN answers an envelope error code; any matches every protocol route but not /__local', async () => {
    const b = await start();
    const a = await anonymousToken(b.url);
    const posted = await fetch(`${b.url}/__local/faults`, { method: 'POST', body: JSON.stringify({ rules: ['any:code=1002:x1'] }) });
    expect(posted.status).toBe(200);
    const stats = await fetch(`${b.url}/__local/stats`);
    expect(stats.status).toBe(200);
    await stats.arrayBuffer();
    expect((await json(await fetch(`${b.url}/api/credits/balance/simple`, { headers: a.headers })))['code']).toBe(1002);
    expect((await json(await fetch(`${b.url}/api/credits/balance/simple`, { headers: a.headers })))['code']).toBe(0);
    const bad = await fetch(`${b.url}/__local/faults`, { method: 'POST', body: JSON.stringify({ rules: ['sse:boom'] }) });
    expect(bad.status).toBe(400);
    await bad.arrayBuffer();
  });

  it('reset destroys the socket mid-response', async () => {
    const b = await start({ faults: [parseFaultRule('state:reset:x1')] });
    const { account, sessionId } = await preparedSession(b.url, fx.media);
    await expect(fetch(`${b.url}/api/state/nemo_agent/me/${sessionId}/latest`, { headers: account.headers }).then((r) => r.text())).rejects.toThrow();
    expect((await state(b.url, account, sessionId))['code']).toBe(0);
  });

  it('stall accepts and never answers; for sse the turn does not start and freezes nothing', async () => {
    const b = await start({ faults: [parseFaultRule('sse:stall:x1')] });
    const { account, sessionId } = await preparedSession(b.url, fx.media);
    const controller = new AbortController();
    const pending = sendTurn(b.url, account, sessionId, 'make this photo talk', { signal: controller.signal });
    // The request is in flight at the server (observed, not slept on).
    const deadline = Date.now() + 5000;
    while ((b.stats().inFlight.sse ?? 0) < 1 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    expect(b.stats().inFlight.sse).toBe(1);
    expect(await credits(b.url, account)).toEqual({ available: 100, frozen: 0, total: 100 });
    controller.abort();
    await expect(pending).rejects.toThrow();
    expect(b.stats().messages).toBe(0);
  });

  it('drop closes the stream before its final event, but the turn finishes server-side', async () => {
    const b = await start({ faults: [parseFaultRule('sse:drop:x1')] });
    const { account, sessionId } = await preparedSession(b.url, fx.media);
    const done = nextEvent(b, (e) => e.type === 'turn:done');
    const messages = await readSse(await sendTurn(b.url, account, sessionId, 'make this photo talk'));
    expect(callsOf(messages)).toEqual(['generate_video_talking_avatar']);
    expect(textsOf(messages)).toEqual([]);
    await done;
    expect((await state(b.url, account, sessionId))['data'].state.draft.t).toHaveLength(2);
    expect(await credits(b.url, account)).toEqual({ available: 0, frozen: 0, total: 0 });
  });

  it('notext sends the tool events but no text', async () => {
    const b = await start({ faults: [parseFaultRule('sse:notext')] });
    const { account, sessionId } = await preparedSession(b.url, fx.media);
    const messages = await readSse(await sendTurn(b.url, account, sessionId, 'make this photo talk'));
    expect(callsOf(messages)).toEqual(['generate_video_talking_avatar']);
    expect(messages.some((m) => m.json?.['content']?.parts?.[0]?.functionResponse)).toBe(true);
    expect(textsOf(messages)).toEqual([]);
    expect(b.stats().faultsFired['sse:notext']).toBe(1);
  });

  it('P% fires at random, the same way for the same seed; clear removes every rule', async () => {
    const pattern = async (seed: number): Promise<number[]> => {
      const b = await start({ seed, faults: [parseFaultRule('credits:status=500:50%')] });
      const a = await anonymousToken(b.url);
      const out: number[] = [];
      for (let i = 0; i < 12; i++) {
        const res = await fetch(`${b.url}/api/credits/balance/simple`, { headers: a.headers });
        out.push(res.status);
        await res.arrayBuffer();
      }
      const cleared = await fetch(`${b.url}/__local/faults`, { method: 'POST', body: JSON.stringify({ clear: true }) });
      await cleared.arrayBuffer();
      for (let i = 0; i < 5; i++) expect((await credits(b.url, a)).available).toBe(100);
      return out;
    };
    const first = await pattern(42);
    expect(first).toEqual(await pattern(42));
    expect(first).toContain(500);
    expect(first).toContain(200);
  });
});

describe('latency and events', () => {
  it('delays a route before its response starts', async () => {
    const b = await start({ latency: { credits: 150 } });
    const a = await anonymousToken(b.url);
    const t0 = performance.now();
    await credits(b.url, a);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
  });

  it('streams server events as NDJSON on /__local/events', async () => {
    const b = await start();
    const res = await fetch(`${b.url}/__local/events`);
    expect(res.headers.get('content-type')).toMatch(/ndjson/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    await anonymousToken(b.url);
    let text = '';
    while (!text.includes('\n')) text += (await reader.read()).value ?? '';
    expect(JSON.parse(text.split('\n')[0]!)).toMatchObject({ type: 'token:issued' });
    await reader.cancel();
  });
});
