// One talking-portrait video through the local backend's protocol, for benchmarks: token,
// session, upload of portrait + voice, "make this photo talk", then renders of the resulting
// draft, each timed from submit to the server's own `render:completed` event (no polling).
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fetch, FormData } from 'undici';
import type { LocalBackend } from '../../src/local-backend/index.js';

const H = { 'x-skill-source': 'bench', 'x-skill-version': '1', 'x-skill-platform': 'unknown' };

/** What one prepared session did. */
export interface TalkSession {
  /** Seconds the turn took (the agent finds the face in it, on a first look at the portrait). */
  turnSec: number;
  reply: string;
  /** Render the draft again under `id`; resolves with the wall time and the render's notes. */
  render(id: string, output: Record<string, unknown>, saveTo?: string): Promise<{ wallSec: number; clipSec: number; notes: string[] }>;
}

/** Upload `portrait` and `voice` to `backend` and ask for a talking video. */
export async function talkSession(backend: LocalBackend, portrait: string, voice: string): Promise<TalkSession> {
  const tok = (await (await fetch(`${backend.url}/api/auth/anonymous-token`, { method: 'POST', headers: { 'x-client-id': `bench-${Date.now()}-${Math.random()}` } })).json()) as { data: { token: string } };
  const auth = { ...H, authorization: `Bearer ${tok.data.token}` };
  const sess = (await (await fetch(`${backend.url}/api/tasks/me/with-session/nemo_agent`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' })).json()) as { data: { session_id: string } };
  const sid = sess.data.session_id;
  const form = new FormData();
  form.append('files', new Blob([await readFile(portrait)]), path.basename(portrait));
  form.append('files', new Blob([await readFile(voice)]), path.basename(voice));
  await (await fetch(`${backend.url}/api/upload-video/nemo_agent/me/${sid}`, { method: 'POST', headers: auth, body: form })).arrayBuffer();
  const t0 = performance.now();
  const turn = await fetch(`${backend.url}/run_sse`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ app_name: 'nemo_agent', user_id: 'me', session_id: sid, new_message: { parts: [{ text: 'make this photo talk' }] } }),
  });
  const sse = await turn.text();
  const turnSec = (performance.now() - t0) / 1000;
  const reply = [...sse.matchAll(/"text":"((?:[^"\\]|\\.)*)"/g)].map((m) => JSON.parse(`"${m[1]}"`) as string).pop() ?? '';
  const st = (await (await fetch(`${backend.url}/api/state/nemo_agent/me/${sid}/latest`, { headers: auth })).json()) as { data: { state: { draft: { d: number } } } };
  const draft = st.data.state.draft;
  return {
    turnSec,
    reply,
    async render(id, output, saveTo) {
      const done = new Promise<void>((resolve) => backend.onEvent((e) => e.renderId === id && e.type === 'render:completed' && resolve()));
      const failed = new Promise<never>((_, reject) => backend.onEvent((e) => e.renderId === id && e.type === 'render:failed' && reject(new Error(String(e['error'])))));
      const t1 = performance.now();
      await (await fetch(`${backend.url}/api/render/proxy/lambda`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ id, sessionId: sid, draft, output }) })).arrayBuffer();
      await Promise.race([done, failed]);
      const wallSec = (performance.now() - t1) / 1000;
      const status = (await (await fetch(`${backend.url}/api/render/proxy/lambda/${id}`, { headers: auth })).json()) as { data: { outputUrl: string; notes?: string[] } };
      if (saveTo) await writeFile(saveTo, Buffer.from(await (await fetch(status.data.outputUrl)).arrayBuffer()));
      return { wallSec, clipSec: draft.d / 1000, notes: status.data.notes ?? [] };
    },
  };
}
