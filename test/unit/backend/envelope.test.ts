import { describe, expect, it } from 'vitest';
import { BackendError } from '../../../src/core/errors.js';
import { createRedactor } from '../../../src/core/redact.js';
import { decodeAnswer, messageOf, parseRetryAfter } from '../../../src/backend/envelope.js';
import type { FailureContext } from '../../../src/backend/errors.js';
import { exitCodeFor } from '../../../src/core/errors.js';

const TOKEN = 'nmv_usr_secretvalue123';
const ctx = (over: Partial<FailureContext> = {}): FailureContext => ({
  route: 'state',
  baseUrl: 'http://127.0.0.1:9',
  redact: createRedactor([TOKEN]),
  userSuppliedToken: false,
  ...over,
});
const json = (status: number, body: unknown, retryAfter?: string) => ({ status, contentType: 'application/json', text: JSON.stringify(body), retryAfter });

function errorOf(result: ReturnType<typeof decodeAnswer>): BackendError {
  if (result.ok) throw new Error('expected an error');
  return result.error;
}

describe('decodeAnswer', () => {
  it('returns data of a code envelope and of a success envelope, and bare bodies as they are', () => {
    expect(decodeAnswer(ctx(), json(200, { code: 0, data: { a: 1 } }))).toMatchObject({ ok: true, data: { a: 1 } });
    expect(decodeAnswer(ctx(), json(200, { success: true, data: { status: 'pending' } }))).toMatchObject({ ok: true, data: { status: 'pending' } });
    expect(decodeAnswer(ctx(), json(200, { status: 'completed', output: { url: 'u' } }))).toMatchObject({ ok: true, data: { status: 'completed' } });
  });

  it('lets a non-zero code win over HTTP 200 and over any HTTP status', () => {
    expect(errorOf(decodeAnswer(ctx(), json(200, { code: 1002, message: 'no such session' })))).toMatchObject({ envelopeCode: 1002, status: 200 });
    expect(errorOf(decodeAnswer(ctx(), json(403, { code: 2001, message: 'no credits' })))).toMatchObject({ envelopeCode: 2001, status: 403, code: 'credits' });
  });

  it('maps HTTP statuses when the body has no code (401, 404 on session routes, 413, 415)', () => {
    expect(errorOf(decodeAnswer(ctx(), json(401, { detail: 'bad token' }))).envelopeCode).toBe(1001);
    expect(errorOf(decodeAnswer(ctx({ route: 'sse' }), json(404, { detail: 'Session not found: 1' }))).envelopeCode).toBe(1002);
    expect(errorOf(decodeAnswer(ctx({ route: 'render-status' }), json(404, { success: false, error: 'render not found' }))).envelopeCode).toBeUndefined();
    expect(errorOf(decodeAnswer(ctx({ route: 'upload' }), json(413, {}))).envelopeCode).toBe(4002);
    expect(errorOf(decodeAnswer(ctx({ route: 'upload' }), json(415, {}))).envelopeCode).toBe(4001);
  });

  it('treats success:false as an error and reads the text from message ?? msg ?? detail ?? error', () => {
    const refused = errorOf(decodeAnswer(ctx({ route: 'render' }), json(409, { success: false, error: 'duplicate render id' })));
    expect(refused.message).toContain('duplicate render id');
    expect(messageOf({ msg: 'from msg', detail: 'x' })).toBe('from msg');
    expect(messageOf({ message: 'm', msg: 'x' })).toBe('m');
    expect(messageOf({ detail: 'd' })).toBe('d');
    expect(messageOf({ error: 'e' })).toBe('e');
  });

  it('marks 5xx retryable, including non-JSON proxy pages, and keeps HTML out of the message', () => {
    const error = errorOf(decodeAnswer(ctx(), { status: 502, contentType: 'text/html', text: '<html>bad gateway</html>' }));
    expect(error.retryable).toBe(true);
    expect(error.message).not.toContain('<html>');
  });

  it('says 402 is a plan limit, not credits, and maps it to exit 3', () => {
    const error = errorOf(decodeAnswer(ctx({ route: 'render' }), json(402, { success: false, error: 'payment required' })));
    expect(error.message).toMatch(/plan/);
    expect(error.message).toMatch(/not a lack of credits/);
    expect(exitCodeFor(error)).toBe(3);
  });

  it('gives anonymous users the register?bind link on 2001 and registered users a top-up hint', () => {
    const anon = errorOf(decodeAnswer(ctx({ anonymousUserId: 'anon_abc', webUrl: 'https://web.example' }), json(200, { code: 2001 })));
    expect(anon.hint).toBe('register at https://web.example/register?bind=anon_abc to keep this work and get more credits');
    const registered = errorOf(decodeAnswer(ctx({ userSuppliedToken: true }), json(200, { code: 2001 })));
    expect(registered.hint).toMatch(/top up/);
  });

  it('tells the owner of a user-supplied token to replace it on 1001', () => {
    const error = errorOf(decodeAnswer(ctx({ userSuppliedToken: true }), json(200, { code: 1001, message: 'token expired' })));
    expect(error.message).toMatch(/NEMO_TOKEN/);
    expect(error.hint).toMatch(/replace NEMO_TOKEN/);
  });

  it('never puts the token or an Authorization value in a message, even when the server echoes them', () => {
    const error = errorOf(
      decodeAnswer(ctx(), json(500, { message: `bad request Authorization: Bearer ${TOKEN} for nmv_usr_othertoken9` })),
    );
    expect(error.message).not.toContain(TOKEN);
    expect(error.message).not.toContain('nmv_usr_othertoken9');
    expect(error.message).toContain('[redacted]');
  });

  it('carries a 429 Retry-After for the retry layer', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', Date.parse('Wed, 21 Oct 2015 07:27:00 GMT'))).toBe(60_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});

describe('undici socket errors are transient wherever they surface', () => {
  it('reads UND_ERR_SOCKET, ECONNRESET and a bare "other side closed" (through causes) as network errors worth retrying', async () => {
    const { networkCode, networkError } = await import('../../../src/backend/errors.js');
    const socket = Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    const bare = new TypeError('terminated', { cause: new Error('other side closed') });
    expect(networkCode(socket)).toBe('UND_ERR_SOCKET');
    expect(networkCode(reset)).toBe('ECONNRESET');
    expect(networkCode(bare)).toBe('UND_ERR_SOCKET');
    const ctx: FailureContext = { route: 'download', baseUrl: 'http://127.0.0.1:1', redact: createRedactor([]) } as FailureContext;
    expect(networkError(ctx, bare).retryable).toBe(true);
  });
});
