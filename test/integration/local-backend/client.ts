/* eslint-disable @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-argument -- wire JSON is read loosely here; the assertions check its shape */
/**
 * A deliberately plain protocol client for the local backend's tests: undici `fetch` and
 * eventsource-parser, nothing from src/backend/, so these tests check the server on its own.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { fetch, FormData, type Response } from 'undici';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { makeTestMedia, type TestMedia } from '../../helpers/media.js';
import { startLocalBackend, type LocalBackend, type LocalBackendOptions, type LocalEvent } from '../../../src/local-backend/index.js';

export const SKILL_HEADERS = { 'x-skill-source': 'infinite-talk-ai', 'x-skill-version': '1.0', 'x-skill-platform': 'unknown' };

export type Json = Record<string, any>;

export interface Account {
  token: string;
  userId: string;
  headers: Record<string, string>;
}

let clientCounter = 0;

export async function json(res: Response): Promise<Json> {
  return (await res.json()) as Json;
}

export async function anonymousToken(url: string, clientId = `client-${++clientCounter}-${Date.now()}`): Promise<Account> {
  const body = await json(await fetch(`${url}/api/auth/anonymous-token`, { method: 'POST', headers: { 'x-client-id': clientId } }));
  return { token: body['data'].token, userId: body['data'].user_id, headers: { ...SKILL_HEADERS, authorization: `Bearer ${body['data'].token}` } };
}

export async function createSession(url: string, account: Account): Promise<string> {
  const body = await json(
    await fetch(`${url}/api/tasks/me/with-session/nemo_agent`, {
      method: 'POST',
      headers: { ...account.headers, 'content-type': 'application/json' },
      body: JSON.stringify({ task_name: 'project', language: 'en' }),
    }),
  );
  return body['data'].session_id as string;
}

export async function upload(url: string, account: Account, sessionId: string, files: { file: string; name?: string }[]): Promise<Response> {
  const form = new FormData();
  for (const f of files) form.append('files', new Blob([await readFile(f.file)]), f.name ?? path.basename(f.file));
  return fetch(`${url}/api/upload-video/nemo_agent/me/${sessionId}`, { method: 'POST', headers: account.headers, body: form });
}

/** One SSE message as the parser gives it. */
export interface SseMessage {
  data: string;
  json: Json | undefined;
}

export function sendTurn(url: string, account: Account, sessionId: string, text: string, extra: { headers?: Record<string, string>; body?: Json; signal?: AbortSignal } = {}): Promise<Response> {
  return fetch(`${url}/run_sse`, {
    method: 'POST',
    headers: { ...account.headers, 'content-type': 'application/json', accept: 'text/event-stream', ...(extra.headers ?? {}) },
    body: JSON.stringify({ app_name: 'nemo_agent', user_id: 'me', session_id: sessionId, new_message: { parts: [{ text }] }, ...(extra.body ?? {}) }),
    ...(extra.signal ? { signal: extra.signal } : {}),
  });
}

/** Read a whole SSE response into messages (comments are not messages). */
export async function readSse(res: Response): Promise<SseMessage[]> {
  if (!res.body) return [];
  const out: SseMessage[] = [];
  const stream = (res.body as unknown as ReadableStream<Uint8Array>).pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream());
  for await (const event of stream as unknown as AsyncIterable<{ data: string }>) {
    let parsed: Json | undefined;
    try {
      parsed = event.data === '' ? undefined : (JSON.parse(event.data) as Json);
    } catch {
      parsed = undefined;
    }
    out.push({ data: event.data, json: parsed });
  }
  return out;
}

/** Texts of model text parts (ADK), in order. */
export function textsOf(messages: SseMessage[]): string[] {
  return messages.flatMap((m) => (m.json?.['content']?.parts ?? []).filter((p: Json) => typeof p['text'] === 'string' && m.json?.['partial'] !== true).map((p: Json) => p['text'] as string));
}

export function callsOf(messages: SseMessage[]): string[] {
  return messages.flatMap((m) => (m.json?.['content']?.parts ?? []).filter((p: Json) => p['functionCall']).map((p: Json) => p['functionCall'].name as string));
}

export async function credits(url: string, account: Account): Promise<{ available: number; frozen: number; total: number }> {
  return (await json(await fetch(`${url}/api/credits/balance/simple`, { headers: account.headers })))['data'];
}

export async function state(url: string, account: Account, sessionId: string): Promise<Json> {
  return json(await fetch(`${url}/api/state/nemo_agent/me/${sessionId}/latest`, { headers: account.headers }));
}

/** Resolves with the first server event matching `predicate` (a gate, not a sleep). */
export function nextEvent(backend: LocalBackend, predicate: (e: LocalEvent) => boolean): Promise<LocalEvent> {
  return new Promise((resolve) => {
    const off = backend.onEvent((e) => {
      if (predicate(e)) {
        off();
        resolve(e);
      }
    });
  });
}

/** A session with the tiny portrait and voice uploaded. */
export async function preparedSession(url: string, media: { portrait: string; voice: string }): Promise<{ account: Account; sessionId: string }> {
  const account = await anonymousToken(url);
  const sessionId = await createSession(url, account);
  const res = await upload(url, account, sessionId, [{ file: media.portrait }, { file: media.voice }]);
  if (res.status !== 200) throw new Error(`upload failed: ${res.status}`);
  return { account, sessionId };
}

/** Poll a render until it ends, gated on the server's completion event rather than a timer. */
export async function waitForRender(backend: LocalBackend, account: Account, id: string): Promise<Json> {
  const ended = nextEvent(backend, (e) => e.renderId === id && (e.type === 'render:completed' || e.type === 'render:failed' || e.type === 'render:cancelled'));
  const first = await json(await fetch(`${backend.url}/api/render/proxy/lambda/${id}`, { headers: account.headers }));
  const status = first['data']?.status ?? first['status'];
  if (status === 'completed' || status === 'failed' || status === 'cancelled') return first;
  await ended;
  return json(await fetch(`${backend.url}/api/render/proxy/lambda/${id}`, { headers: account.headers }));
}

/**
 * A test file's backends and media: a temp dir with tiny test media made once, `start()` for
 * quick backends (short turns, no silent edits), everything closed and removed after the file.
 */
export function backendFixture(name: string): { start: (options?: LocalBackendOptions) => Promise<LocalBackend>; readonly media: TestMedia; readonly dir: string } {
  let dir: string | undefined;
  let media: TestMedia | undefined;
  const started: LocalBackend[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), `talk-lb-${name}-`));
    media = await makeTestMedia(path.join(dir, 'media'));
  });
  afterAll(async () => {
    await Promise.all(started.map((b) => b.close()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return {
    start: async (options: LocalBackendOptions = {}) => {
      const b = await startLocalBackend({ env: process.env, turnDelayMs: { generation: 5, edit: 5 }, silentEditRatio: 0, ...options });
      started.push(b);
      return b;
    },
    get media() {
      if (!media) throw new Error('backendFixture: media is made in beforeAll');
      return media;
    },
    get dir() {
      if (!dir) throw new Error('backendFixture: dir is made in beforeAll');
      return dir;
    },
  };
}

/** Upload portrait + voice and ask for a talking video; the reply's text and the draft. */
export async function talk(b: LocalBackend, media: { portrait: string; voice: string }): Promise<{ account: any; sessionId: string; draft: any; reply: string }> {
  const { account, sessionId } = await preparedSession(b.url, media);
  const reply = textsOf(await readSse(await sendTurn(b.url, account, sessionId, 'make this photo talk'))).join(' ');
  return { account, sessionId, reply, draft: (await state(b.url, account, sessionId))['data'].state.draft };
}

/** Upload portrait + voice and send `text`; the draft it left. */
export async function talkWith(b: LocalBackend, media: { portrait: string; voice: string }, text: string): Promise<{ account: any; sessionId: string; draft: any }> {
  const { account, sessionId } = await preparedSession(b.url, media);
  await readSse(await sendTurn(b.url, account, sessionId, text));
  return { account, sessionId, draft: (await state(b.url, account, sessionId))['data'].state.draft };
}

/** Render a draft (720p 9:16, low quality) under `id`, wait for it and save it to `file`; the finished render's data. */
export async function renderTo(b: LocalBackend, account: any, sessionId: string, draft: any, id: string, file: string): Promise<any> {
  await fetch(`${b.url}/api/render/proxy/lambda`, {
    method: 'POST',
    headers: { ...account.headers, 'content-type': 'application/json' },
    body: JSON.stringify({ id, sessionId, draft, output: { format: 'mp4', quality: 'low', resolution: '720p', aspect: '9:16' } }),
  }).then(json);
  const done = await waitForRender(b, account, id);
  if (done['data'].status !== 'completed') throw new Error(`render ${id} ended ${String(done['data'].status)}`);
  const res = await fetch(done['data'].outputUrl);
  await writeFile(file, Buffer.from(await res.arrayBuffer()));
  return done['data'];
}
