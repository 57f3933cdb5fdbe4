/**
 * Request bodies as the handlers see them: the contract's types (`contract/bodies.ts`) read
 * from whatever JSON arrived. The server is lenient the way the sources are (CONTRACT §1.4):
 * `/run_sse` and the render body take both spellings of their ids; a field of the wrong type
 * counts as absent, and a body that is no object as an empty one, so each route answers with
 * its own error ("session not found", "render id must be…") rather than a generic one.
 */
import type { IncomingMessage } from 'node:http';
import type { ClaimTokenBody, CreateSessionBody, RenderOutput, RenderSubmitBody, RunSseBody, UploadUrlBody } from '../contract/bodies.js';
import { isRecord } from '../core/guards.js';
import { readJson } from './http.js';

/** Read a JSON body (see `readJson`: malformed or oversized ones are problems) through `reader`. */
export async function readBody<T>(req: IncomingMessage, reader: (body: Record<string, unknown>) => T): Promise<T> {
  const raw = await readJson(req);
  return reader(isRecord(raw) ? raw : {});
}

function stringOr(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** §2.2 */
export function readCreateSessionBody(body: Record<string, unknown>): CreateSessionBody {
  const task_name = stringOr(body['task_name']);
  const language = stringOr(body['language']);
  return { ...(task_name === undefined ? {} : { task_name }), ...(language === undefined ? {} : { language }) };
}

/** §2.3 */
export function readClaimTokenBody(body: Record<string, unknown>): Partial<ClaimTokenBody> {
  return { task_id: stringOr(body['task_id']), session_id: stringOr(body['session_id']) };
}

/** §2.4: `/run_sse` as received. The first spelling present wins (snake before camel), of whatever type. */
export interface RunSseRequest extends Partial<Omit<RunSseBody, 'new_message'>> {
  /** The message's text parts; a part without text counts as empty text. */
  new_message: { parts: { text: string }[] };
  streaming: boolean;
}

export function readRunSseBody(body: Record<string, unknown>): RunSseRequest {
  const message = body['new_message'] ?? body['newMessage'];
  const parts: unknown[] = isRecord(message) && Array.isArray(message['parts']) ? message['parts'] : [];
  return {
    session_id: stringOr(body['session_id'] ?? body['sessionId']),
    user_id: stringOr(body['user_id'] ?? body['userId']),
    new_message: { parts: parts.map((p) => ({ text: isRecord(p) ? (stringOr(p['text']) ?? '') : '' })) },
    streaming: body['streaming'] === true,
  };
}

/** The text of a turn: its parts, one per line, trimmed. */
export function turnText(body: RunSseRequest): string {
  return body.new_message.parts
    .map((p) => p.text)
    .join('\n')
    .trim();
}

/** §2.5 URL form; `urls` only when it is a list of strings. */
export function readUploadUrlBody(body: Record<string, unknown>): Partial<UploadUrlBody> {
  const urls = body['urls'];
  return Array.isArray(urls) && urls.every((u) => typeof u === 'string') ? { urls } : {};
}

/** The export options the local backend renders (SPEC §5), each with the values it accepts. */
export const OUTPUT_OPTIONS = {
  format: ['mp4'],
  quality: ['high', 'medium', 'low'],
  resolution: ['720p', '1080p'],
  aspect: ['16:9', '9:16', '1:1'],
} as const satisfies { readonly [K in keyof RenderOutput]-?: readonly NonNullable<RenderOutput[K]>[] };

/** §2.8 as received: `output` is undefined when an option holds a value `OUTPUT_OPTIONS` lacks. */
export interface RenderSubmitRequest extends Partial<Omit<RenderSubmitBody, 'output'>> {
  output: Partial<RenderOutput> | undefined;
}

/** One export option as sent: its value, undefined when absent, `null` when not one it takes. */
function outputOption<K extends keyof typeof OUTPUT_OPTIONS>(given: Record<string, unknown>, key: K): (typeof OUTPUT_OPTIONS)[K][number] | undefined | null {
  const value = given[key];
  if (value === undefined) return undefined;
  const allowed: readonly string[] = OUTPUT_OPTIONS[key];
  return typeof value === 'string' && allowed.includes(value) ? (value as (typeof OUTPUT_OPTIONS)[K][number]) : null;
}

export function readRenderSubmitBody(body: Record<string, unknown>): RenderSubmitRequest {
  const given = isRecord(body['output']) ? body['output'] : {};
  const format = outputOption(given, 'format');
  const quality = outputOption(given, 'quality');
  const resolution = outputOption(given, 'resolution');
  const aspect = outputOption(given, 'aspect');
  const supported = format !== null && quality !== null && resolution !== null && aspect !== null;
  return {
    id: stringOr(body['id']),
    sessionId: stringOr(body['sessionId'] ?? body['session_id']),
    draft: body['draft'],
    output: supported
      ? { ...(format === undefined ? {} : { format }), ...(quality === undefined ? {} : { quality }), ...(resolution === undefined ? {} : { resolution }), ...(aspect === undefined ? {} : { aspect }) }
      : undefined,
  };
}
