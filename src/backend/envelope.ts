/**
 * Decoding the three response envelopes (CONTRACT §1.5) into data or a `BackendError`,
 * following the rule of §5: a numeric non-zero `code` wins over the HTTP status; `success:
 * false` is an error; the text comes from `message ?? msg ?? detail ?? error`.
 */
import type { BackendError } from '../core/errors.js';
import { answerError, effectiveCode, type FailureContext } from './errors.js';
import { isRecord } from '../core/guards.js';

/** A response body as read: its HTTP status, `Content-Type`, text, and `Retry-After` if any. */
export interface RawAnswer {
  status: number;
  contentType: string;
  text: string;
  retryAfter?: string | undefined;
}

/** Outcome of decoding: the payload, or the error to raise. */
export type Decoded = { ok: true; data: unknown; body: unknown } | { ok: false; error: BackendError };

/** The human text of an error body, whatever the field is called. */
export function messageOf(body: unknown): string | undefined {
  if (!isRecord(body)) return undefined;
  for (const key of ['message', 'msg', 'detail', 'error'] as const) {
    const value = body[key];
    if (typeof value === 'string' && value.trim() !== '') return value.trim();
    if (isRecord(value) && typeof value.message === 'string') return value.message;
  }
  return undefined;
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date; undefined when absent or odd. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Decode one answer. Non-JSON 2xx bodies are returned as text (the caller decides). */
export function decodeAnswer(ctx: FailureContext, answer: RawAnswer): Decoded {
  let body: unknown = answer.text;
  try {
    body = answer.text.trim() === '' ? undefined : JSON.parse(answer.text);
  } catch {
    // Not JSON: proxies answer 502s with HTML; keep the text out of the message (it can be long).
    body = undefined;
  }
  const bodyCode = isRecord(body) && typeof body.code === 'number' ? body.code : undefined;
  const failedEnvelope = isRecord(body) && body.success === false;
  const httpOk = answer.status >= 200 && answer.status < 300;
  if ((bodyCode !== undefined && bodyCode !== 0) || failedEnvelope || !httpOk) {
    const code = effectiveCode(ctx.route, answer.status, bodyCode);
    const serverText = messageOf(body) ?? (failedEnvelope ? 'the request was refused' : undefined);
    return {
      ok: false,
      error: answerError(ctx, {
        status: answer.status,
        code,
        serverText: serverText === undefined ? undefined : serverText.slice(0, 300),
        retryAfterMs: parseRetryAfter(answer.retryAfter),
      }),
    };
  }
  if (isRecord(body) && ('code' in body || 'success' in body) && 'data' in body) return { ok: true, data: body.data, body };
  return { ok: true, data: body, body };
}
