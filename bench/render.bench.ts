// Local backend render benchmark: a talking-portrait video end to end through the protocol —
// the turn (in which the agent finds the face's landmarks, on a first look at the portrait) and
// the render (voice analysis, mouth shapes, one encode), submit → completed — for each ffmpeg
// found: the one `findFfmpeg` picks (FFMPEG_PATH → PATH → npm build) and the npm static build.
// Also a repeated identical render (cache copy) and the `-loop 1` decode for contrast.
//
//   node --import tsx bench/render.bench.ts [--seconds 10] [--resolution 1080p] [--aspect 9:16] [--quality high] [--portrait sample1|test|FILE]
//
// `--portrait sample1` (default) is a real photograph (a crop of face-api's demo picture);
// `test` is a test pattern with no face (the whole-picture fallback motion).
// Goals: end to end (turn + render) ≤ the clip's length at 1080×1920 on 2 cores; a repeat is a
// copy. Figures and conditions: bench/notes/local-backend.md.
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir, loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { findFfmpeg, runTool } from '../src/local-backend/ffmpeg.js';
import { startLocalBackend } from '../src/local-backend/index.js';
import { makeSamplePortrait, SAMPLE_PORTRAITS } from '../test/helpers/media.js';
import { talkSession } from './lib/talk-render.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    resolution: { type: 'string', default: '1080p' },
    aspect: { type: 'string', default: '9:16' },
    quality: { type: 'string', default: 'high' },
    portrait: { type: 'string', default: 'sample1' },
  },
});
const seconds = Number(values.seconds);
const output = { format: 'mp4', quality: values.quality, resolution: values.resolution, aspect: values.aspect };

const root = await mkdtemp(path.join(tmpdir(), 'talk-render-bench-'));
const system = findFfmpeg(process.env);
let portrait: string;
if (values.portrait === 'test') {
  portrait = path.join(root, 'portrait.jpg');
  await runTool(system.ffmpeg, ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=s=720x1280:d=0.04', '-frames:v', '1', portrait]);
} else if (values.portrait in SAMPLE_PORTRAITS) {
  portrait = await makeSamplePortrait(root, values.portrait as keyof typeof SAMPLE_PORTRAITS, 720, 1280);
} else {
  portrait = path.resolve(values.portrait);
}
const voice = path.join(root, 'voice.mp3');
// A speech-like voice: syllable-rate loudness changes with pauses.
await runTool(system.ffmpeg, ['-v', 'error', '-y', '-f', 'lavfi', '-i', `aevalsrc='0.6*sin(2*PI*170*t)*(0.5+0.5*sin(2*PI*4*t))*gt(sin(2*PI*0.7*t),-0.6)':s=44100:d=${seconds}`, '-c:a', 'libmp3lame', '-b:a', '96k', voice]);

function installerPath(pkg: string): string | undefined {
  try {
    return (createRequire(import.meta.url)(pkg) as { path: string }).path;
  } catch {
    return undefined;
  }
}

async function timeRender(label: string, tools: { ffmpeg: string; ffprobe: string }): Promise<void> {
  // The environment as `talk` passes it: pocketsphinx is used when it is on PATH (TALK_PHONEMES=off to time without).
  const backend = await startLocalBackend({ env: process.env, ffmpegPath: tools.ffmpeg, ffprobePath: tools.ffprobe, turnDelayMs: { generation: 0, edit: 0 } });
  try {
    const session = await talkSession(backend, portrait, voice);
    const first = await session.render('bench_1', output);
    const again = await session.render('bench_2', output);
    const clip = first.clipSec;
    console.log(`${label.padEnd(28)} turn ${session.turnSec.toFixed(2)} s (face found: ${/no face/.test(session.reply) ? 'no' : 'yes'})`);
    console.log(`${label.padEnd(28)} encode  clip ${clip.toFixed(1)} s  wall ${first.wallSec.toFixed(2)} s  realtime ×${(clip / first.wallSec).toFixed(1)}${first.notes.length > 0 ? `  notes: ${first.notes.join('; ')}` : ''}`);
    console.log(`${label.padEnd(28)} cached  clip ${clip.toFixed(1)} s  wall ${again.wallSec.toFixed(2)} s`);
    const total = session.turnSec + first.wallSec;
    console.log(`${label.padEnd(28)} end to end (turn + encode) ${total.toFixed(2)} s for ${clip.toFixed(1)} s of video: ×${(clip / total).toFixed(1)}`);
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

console.log(`render ${output.resolution} ${output.aspect} quality ${output.quality}, ${seconds} s voice, portrait ${values.portrait}, load average ${loadavg()[0]!.toFixed(1)}`);
// The first backend of the process also loads the face finder (model weights, wasm): cold.
const npmFfmpeg = installerPath('@ffmpeg-installer/ffmpeg');
const npmFfprobe = installerPath('@ffprobe-installer/ffprobe');
const picked = system.ffmpeg === npmFfmpeg ? 'findFfmpeg → npm 2018' : 'findFfmpeg → system';
await timeRender(picked, system);
await timeLoop1(picked, system.ffmpeg);
if (npmFfmpeg && npmFfprobe) {
  await timeRender('npm static ffmpeg (2018)', { ffmpeg: npmFfmpeg, ffprobe: npmFfprobe });
  await timeLoop1('npm static ffmpeg (2018)', npmFfmpeg);
}
await rm(root, { recursive: true, force: true });
