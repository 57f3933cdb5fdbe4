import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BackendError, exitCodeFor } from '../../../src/core/errors.js';
import { createTokenProvider, createBackendClient } from '../../../src/backend/index.js';
import type { RequestInfo, RetryInfo } from '../../../src/backend/types.js';
import { parseFaultRule } from '../../../src/local-backend/index.js';
import { asSessionId } from '../../../src/core/ids.js';
import { FAST, makeMedia, renderOnce, startRig, type Rig } from './rig.js';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

const faults = (r: Rig, ...specs: string[]) => r.backend.addFaults(specs.map(parseFaultRule));
const caught = async (p: Promise<unknown>): Promise<BackendError> => {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BackendError);
  return error as BackendError;
};

describe.each(['envelope', 'status', 'legacy'] as const)('error codes in "%s" mode', (errors) => {
  it('1002: says the session is gone and that a new one is started', async () => {
    rig = await startRig({ local: { compat: { errors } } });
    const error = await caught(rig.client.getState(asSessionId('1234567890123456789')));
    expect(error.envelopeCode).toBe(1002);
    expect(error.hint).toMatch(/new session/);
    expect(rig.backend.stats().requests.state).toBe(1);
  });

  it('2001: refused before the stream, exit 3, with the register?bind link', async () => {
    rig = await startRig({ local: { compat: { errors } } });
    const { sessionId } = await rig.client.createSession({ taskName: 'p', language: 'en' });
    faults(rig, 'sse:code=2001:x1');
    const error = await caught(rig.client.sendInstruction(sessionId, 'add a title "Hi"'));
    expect(error.envelopeCode).toBe(2001);
    expect(exitCodeFor(error)).toBe(3);
    expect(error.hint).toMatch(/^register at https:\/\/web\.example\/register\?bind=anon_[0-9a-f]+/);
    expect(rig.backend.stats().requests.sse).toBe(1);
  });

  it('4001 and 4002 from the server are not retried', async () => {
    rig = await startRig({ local: { compat: { errors } } });
    const { sessionId } = await rig.client.createSession({ taskName: 'p', language: 'en' });
    const file = path.join(rig.dir, 'a.png');
    await writeFile(file, Buffer.alloc(1000));
    faults(rig, 'upload:code=4001:x1', 'upload:code=4002:x1');
    expect((await caught(rig.client.uploadFile(sessionId, file))).envelopeCode).toBe(4001);
    expect((await caught(rig.client.uploadFile(sessionId, file))).envelopeCode).toBe(4002);
    expect(rig.backend.stats().requests.upload).toBe(2);
  });

  it('1001 mid-run: renews with the same client id and retries the request once', async () => {
    rig = await startRig({ local: { compat: { errors } } });
    await rig.client.getCredits();
    const before = await rig.tokens.token();
    faults(rig, 'credits:code=1001:x1');
    const retries: RetryInfo[] = [];
    await expect(rig.client.getCredits({ onRetry: (r) => retries.push(r) })).resolves.toMatchObject({ available: 100 });
    expect(retries.map((r) => r.reason)).toEqual(['token expired; renewed it with the same client id']);
    // The local backend hands the same live token back to the same client id.
    expect(await rig.tokens.token()).toBe(before);
    expect(rig.backend.stats().requests.credits).toBe(3);
  });
});

describe('the rest of the error table', () => {
  it('checks type and size locally: 4001/4002 before any byte is sent', async () => {
    rig = await startRig({ maxUploadBytes: 1000 });
    const { sessionId } = await rig.client.createSession({ taskName: 'p', language: 'en' });
    const txt = path.join(rig.dir, 'notes.txt');
    const big = path.join(rig.dir, 'big.mp4');
    await writeFile(txt, 'hello');
    await writeFile(big, Buffer.alloc(1001));
    const type = await caught(rig.client.uploadFile(sessionId, txt));
    expect(type.envelopeCode).toBe(4001);
    expect(type.hint).toMatch(/mp4, mov/);
    const size = await caught(rig.client.uploadFile(sessionId, big));
    expect(size.envelopeCode).toBe(4002);
    expect(size.hint).toMatch(/compress or trim/);
    expect(rig.backend.stats().requests.upload).toBeUndefined();
  });

  it('a user token that fails says to replace it, and never shows the token', async () => {
    rig = await startRig();
    const tokens = createTokenProvider({ env: { NEMO_TOKEN: 'nmv_usr_revokedtoken42' }, baseUrl: rig.backend.url, dispatcher: rig.agent });
    const client = createBackendClient({ baseUrl: rig.backend.url, dispatcher: rig.agent, auth: tokens, timing: FAST });
    const error = await caught(client.getCredits());
    expect(error.envelopeCode).toBe(1001);
    expect(error.message).toMatch(/NEMO_TOKEN/);
    expect(error.hint).toMatch(/replace NEMO_TOKEN/);
    expect(`${error.message} ${error.hint} ${error.stack}`).not.toContain('revokedtoken42');
    expect(rig.backend.stats().requests.credits).toBe(1);
  });

  it('429 once: waits Retry-After and succeeds; twice: a clear failure', async () => {
    rig = await startRig();
    await rig.client.getCredits();
    faults(rig, 'credits:status=429:x1');
    const waits: RetryInfo[] = [];
    await rig.client.getCredits({ onRetry: (r) => waits.push(r) });
    // The local backend's injected 429 says Retry-After: 1.
    expect(waits).toEqual([{ attempt: 1, reason: 'rate-limited (HTTP 429)', delayMs: 1000 }]);
    faults(rig, 'credits:status=429:x2');
    const error = await caught(rig.client.getCredits());
    expect(error.message).toMatch(/still rate-limiting after waiting once/);
    expect(error.hint).toMatch(/wait a few minutes/);
  });

  it('5xx and resets on reads: bounded backoff, then success', async () => {
    rig = await startRig();
    await rig.client.getCredits();
    faults(rig, 'credits:status=503:x2', 'credits:reset:x1');
    const retries: RetryInfo[] = [];
    await expect(rig.client.getCredits({ onRetry: (r) => retries.push(r) })).resolves.toMatchObject({ available: 100 });
    expect(retries.map((r) => r.reason)).toEqual(['HTTP 503', 'HTTP 503', 'network error']);
    expect(rig.backend.stats().faultsFired).toMatchObject({ 'credits:status=503:x2': 2, 'credits:reset:x1': 1 });
  });

  it('gives up on a read after maxAttempts', async () => {
    rig = await startRig({ timing: { maxAttempts: 2 } });
    await rig.client.getCredits();
    faults(rig, 'credits:status=502:x5');
    const error = await caught(rig.client.getCredits());
    expect(error.status).toBe(502);
    expect(error.retryable).toBe(true);
    expect(rig.backend.stats().faultsFired['credits:status=502:x5']).toBe(2);
  });

  it('a stalled read times out and is retried', async () => {
    rig = await startRig({ timing: { requestTimeoutMs: 150 } });
    await rig.client.getCredits();
    faults(rig, 'credits:stall:x1');
    const retries: RetryInfo[] = [];
    await expect(rig.client.getCredits({ onRetry: (r) => retries.push(r) })).resolves.toMatchObject({ available: 100 });
    expect(retries).toHaveLength(1);
  });

  it('a reset mid-upload sends the file again and stores it once', async () => {
    rig = await startRig();
    const { portrait } = makeMedia(rig.dir);
    const { sessionId } = await rig.client.createSession({ taskName: 'p', language: 'en' });
    faults(rig, 'upload:reset:x1');
    const result = await rig.client.uploadFile(sessionId, portrait);
    expect(result.file.file_type).toBe('image');
    const stats = rig.backend.stats();
    expect(stats.requests.upload).toBe(2);
    expect(stats.uploads).toBe(1);
  });

  it('never re-sends /run_sse on a 5xx', async () => {
    rig = await startRig();
    const { sessionId } = await rig.client.createSession({ taskName: 'p', language: 'en' });
    faults(rig, 'sse:status=503:x1');
    const error = await caught(rig.client.sendInstruction(sessionId, 'hello'));
    expect(error.status).toBe(503);
    expect(rig.backend.stats().requests.sse).toBe(1);
  });

  it('402 on export is a plan limit (exit 3), not credits', async () => {
    rig = await startRig();
    const { sessionId } = await rig.client.createSession({ taskName: 'p', language: 'en' });
    faults(rig, 'render:status=402:x2');
    const error = await caught(
      renderOnce(rig.client, { sessionId, draft: { t: [{ tt: 0, sg: [{ id: 'v', st: 0, d: 1000 }] }], d: 1000 }, output: { format: 'mp4' } }),
    );
    expect(error.status).toBe(402);
    expect(exitCodeFor(error)).toBe(3);
    // A plan limit is not re-sent.
    expect(rig.backend.stats().requests.render).toBe(1);
  });

  it('says plainly when the backend cannot be reached', async () => {
    rig = await startRig();
    const url = rig.backend.url;
    await rig.backend.close();
    const error = await caught(rig.client.getCredits());
    expect(error.message).toContain(`the backend at ${url} could not be reached`);
    expect(error.retryable).toBe(true);
    rig.backend = { ...rig.backend, close: async () => undefined };
  });
});

describe('request log for --verbose', () => {
  it('reports each request with method, route and status, and retried requests each time', async () => {
    const seen: RequestInfo[] = [];
    rig = await startRig({ onRequest: (info) => seen.push(info) });
    faults(rig, 'credits:status=503:x1');
    await rig.client.getCredits();
    expect(seen.map(({ method, route, status }) => ({ method, route, status }))).toEqual([
      { method: 'GET', route: 'credits', status: 503 },
      { method: 'GET', route: 'credits', status: 200 },
    ]);
    expect(JSON.stringify(seen)).not.toMatch(/nmv_usr_|Bearer/);
  });
});
