// Local backend render benchmark: the realtime factor (clip seconds per wall second) of a
// talking-portrait render with motion, end to end through the protocol (submit → completed),
// for each ffmpeg found: the one `findFfmpeg` picks (FFMPEG_PATH → PATH) and the npm static
// build. Also a repeated identical render (cache copy) and the `-loop 1` decode for contrast.
//
//   node --import tsx bench/render.bench.ts [--seconds 10] [--resolution 1080p] [--aspect 9:16] [--quality high]
//
// Goal: ≥ 3× realtime with motion at 1080×1920. Figures and conditions: bench/notes/local-backend.md.
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir, loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fetch, FormData } from 'undici';
import { findFfmpeg, runTool } from '../src/local-backend/ffmpeg.js';
import { startLocalBackend } from '../src/local-backend/index.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    resolution: { type: 'string', default: '1080p' },
    aspect: { type: 'string', default: '9:16' },
    quality: { type: 'string', default: 'high' },
  },
});
const seconds = Number(values.seconds);
const output = { format: 'mp4', quality: values.quality, resolution: values.resolution, aspect: values.aspect };
const H = { 'x-skill-source': 'bench', 'x-skill-version': '1', 'x-skill-platform': 'unknown' };

const root = await mkdtemp(path.join(tmpdir(), 'talk-render-bench-'));
const system = findFfmpeg(process.env);
const portrait = path.join(root, 'portrait.jpg');
const voice = path.join(root, 'voice.mp3');
// A 720×1280 portrait and a speech-like voice (syllable-rate loudness changes).
await runTool(system.ffmpeg, ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=s=720x1280:d=0.04', '-frames:v', '1', portrait]);
await runTool(system.ffmpeg, ['-v', 'error', '-y', '-f', 'lavfi', '-i', `aevalsrc='0.6*sin(2*PI*170*t)*(0.5+0.5*sin(2*PI*4*t))*gt(sin(2*PI*0.7*t),-0.6)':s=44100:d=${seconds}`, '-c:a', 'libmp3lame', '-b:a', '96k', voice]);

function installerPath(pkg: string): string | undefined {
  try {
    return (createRequire(import.meta.url)(pkg) as { path: string }).path;
  } catch {
    return undefined;
  }
}

async function timeRender(label: string, tools: { ffmpeg: string; ffprobe: string }): Promise<void> {
  const backend = await startLocalBackend({ ffmpegPath: tools.ffmpeg, ffprobePath: tools.ffprobe, turnDelayMs: { generation: 0, edit: 0 } });
  try {
    const tok = (await (await fetch(`${backend.url}/api/auth/anonymous-token`, { method: 'POST', headers: { 'x-client-id': 'bench' } })).json()) as { data: { token: string } };
    const auth = { ...H, authorization: `Bearer ${tok.data.token}` };
    const sess = (await (await fetch(`${backend.url}/api/tasks/me/with-session/nemo_agent`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' })).json()) as { data: { session_id: string } };
    const sid = sess.data.session_id;
    const form = new FormData();
    form.append('files', new Blob([await readFile(portrait)]), 'portrait.jpg');
    form.append('files', new Blob([await readFile(voice)]), 'voice.mp3');
    await (await fetch(`${backend.url}/api/upload-video/nemo_agent/me/${sid}`, { method: 'POST', headers: auth, body: form })).arrayBuffer();
    const turn = await fetch(`${backend.url}/run_sse`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ app_name: 'nemo_agent', user_id: 'me', session_id: sid, new_message: { parts: [{ text: 'make this photo talk' }] } }),
    });
    await turn.text();
    const st = (await (await fetch(`${backend.url}/api/state/nemo_agent/me/${sid}/latest`, { headers: auth })).json()) as { data: { state: { draft: { d: number } } } };
    const draft = st.data.state.draft;
    for (const id of ['bench_1', 'bench_2']) {
      const done = new Promise<void>((resolve) => backend.onEvent((e) => e.renderId === id && e.type === 'render:completed' && resolve()));
      const failed = new Promise<never>((_, reject) => backend.onEvent((e) => e.renderId === id && e.type === 'render:failed' && reject(new Error(String(e['error'])))));
      const t0 = performance.now();
      await (await fetch(`${backend.url}/api/render/proxy/lambda`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ id, sessionId: sid, draft, output }) })).arrayBuffer();
      await Promise.race([done, failed]);
      const wall = (performance.now() - t0) / 1000;
      const clip = draft.d / 1000;
      const kind = id === 'bench_1' ? 'encode' : 'cached';
      console.log(`${label.padEnd(28)} ${kind.padEnd(7)} clip ${clip.toFixed(1)} s  wall ${wall.toFixed(2)} s  realtime ×${(clip / wall).toFixed(1)}`);
    }
  } finally {
    await backend.close();
  }
}

/** The same still → video decode with `-loop 1` (the image decoded every frame), for contrast. */
async function timeLoop1(label: string, ffmpeg: string): Promise<void> {
  const size = output.aspect === '16:9' ? (output.resolution === '720p' ? '1280:720' : '1920:1080') : output.aspect === '1:1' ? (output.resolution === '720p' ? '720:720' : '1080:1080') : output.resolution === '720p' ? '720:1280' : '1080:1920';
  const t0 = performance.now();
  await runTool(ffmpeg, ['-v', 'error', '-y', '-loop', '1', '-i', portrait, '-i', voice, '-vf', `scale=${size},format=yuv420p`, '-t', String(seconds), '-r', '25', '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '21', '-c:a', 'aac', '-f', 'mp4', path.join(root, 'loop1.mp4')]);
  const wall = (performance.now() - t0) / 1000;
  console.log(`${label.padEnd(28)} -loop 1 clip ${seconds.toFixed(1)} s  wall ${wall.toFixed(2)} s  realtime ×${(seconds / wall).toFixed(1)} (no motion, no blur fill)`);
}

console.log(`render ${output.resolution} ${output.aspect} quality ${output.quality}, ${seconds} s voice, load average ${loadavg()[0]!.toFixed(1)}`);
await timeRender(`system ffmpeg`, system);
await timeLoop1('system ffmpeg', system.ffmpeg);
const npmFfmpeg = installerPath('@ffmpeg-installer/ffmpeg');
const npmFfprobe = installerPath('@ffprobe-installer/ffprobe');
if (npmFfmpeg && npmFfprobe) {
  await timeRender('npm static ffmpeg (2018)', { ffmpeg: npmFfmpeg, ffprobe: npmFfprobe });
  await timeLoop1('npm static ffmpeg (2018)', npmFfmpeg);
}
await rm(root, { recursive: true, force: true });
