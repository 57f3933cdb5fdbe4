// Does the local preview's mouth follow the voice? Renders talking videos through the local
// backend's protocol for real photographs (crops of the demo pictures face-api ships) and the
// project's example portraits, then measures every output frame with the test helper
// (test/helpers/mouth-metrics.ts): Spearman rho of inner-lip opening ÷ inter-ocular distance
// against per-frame loudness (best lag within ±3 frames), the opening's p95 − p5 range, eye
// movement against the face (eye-corner patches tracked in the pixels), and frames
// whose face was found. Two wrong outputs of each are measured too, and must score badly: a
// still image of the portrait with the same voice, and the render with its eyes wandering.
//
//   node --import tsx bench/mouth.bench.ts [--seconds 8] [--resolution 720p] [--width 360] [--only NAME] [--keep DIR] [--file VIDEO.mp4]...
//
// `--keep DIR` keeps the rendered videos there (named after the case), e.g. for a contact sheet;
// `--file` measures existing videos instead (e.g. one rendered by another version of talk).
// Goals: rho ≥ 0.5, range ≥ 0.08, eye movement ≤ 0.05, every frame's face found.
// Figures: bench/notes/local-backend.md.
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { findFfmpeg, runTool } from '../src/local-backend/ffmpeg.js';
import { startLocalBackend } from '../src/local-backend/index.js';
import { makeSamplePortrait, SAMPLE_PORTRAITS } from '../test/helpers/media.js';
import { measureMouth, withEyesShifted, type MouthMetrics } from '../test/helpers/mouth-metrics.js';
import { talkSession } from './lib/talk-render.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    resolution: { type: 'string', default: '720p' },
    width: { type: 'string', default: '360' },
    only: { type: 'string', multiple: true },
    file: { type: 'string', multiple: true },
    keep: { type: 'string' },
  },
});
const tools = findFfmpeg(process.env);
const width = Number(values.width);
const goals = (m: MouthMetrics): string =>
  [m.rho >= 0.5 ? 'rho ok' : 'rho LOW', m.range >= 0.08 ? 'range ok' : 'range LOW', m.eyeMovement <= 0.05 ? 'eyes ok' : 'eyes HIGH', m.facesFound === m.frames ? 'all faces' : 'faces MISSED'].join(', ');
const row = (label: string, m: MouthMetrics): string =>
  `${label.padEnd(34)} frames ${String(m.frames).padStart(4)}  faces ${String(m.facesFound).padStart(4)}  rho ${m.rho.toFixed(3)} (lag ${m.lag})  range ${m.range.toFixed(3)}  eyes ${m.eyeMovement.toFixed(3)}  [${goals(m)}]`;

console.log(`mouth metrics, decode width ${width}, load average ${loadavg()[0]!.toFixed(1)}`);
if (values.file && values.file.length > 0) {
  for (const file of values.file) console.log(row(path.basename(file), await measureMouth(tools, path.resolve(file), { width })));
} else {
  const seconds = Number(values.seconds);
  const root = await mkdtemp(path.join(tmpdir(), 'talk-mouth-bench-'));
  const assets = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'assets');
  // Speech-like: syllables at about 3.3 a second, a pause every 2.7 s, the pitch gliding.
  const voice = path.join(root, 'speech.mp3');
  await runTool(tools.ffmpeg, ['-v', 'error', '-y', '-f', 'lavfi', '-i', `aevalsrc='0.6*sin(2*PI*(150+60*sin(2*PI*0.5*t))*t)*(0.5+0.5*sin(2*PI*3.3*t))*gt(sin(2*PI*0.37*t),-0.5)':s=22050:d=${seconds}`, '-c:a', 'libmp3lame', '-b:a', '64k', voice]);
  const cases: { name: string; portrait: string; voice: string }[] = [];
  for (const name of Object.keys(SAMPLE_PORTRAITS) as (keyof typeof SAMPLE_PORTRAITS)[]) {
    cases.push({ name: `face-api ${name}`, portrait: await makeSamplePortrait(root, name, 720, 1280), voice });
  }
  cases.push(
    { name: 'assets portrait.jpg', portrait: path.join(assets, 'portrait.jpg'), voice },
    { name: 'assets portrait.jpg + voice.mp3', portrait: path.join(assets, 'portrait.jpg'), voice: path.join(assets, 'voice.mp3') },
    { name: 'assets faces/ada.jpg + ada.mp3', portrait: path.join(assets, 'faces', 'ada.jpg'), voice: path.join(assets, 'voices', 'ada.mp3') },
    { name: 'assets faces/grace.jpg + grace.mp3', portrait: path.join(assets, 'faces', 'grace.jpg'), voice: path.join(assets, 'voices', 'grace.mp3') },
  );
  const backend = await startLocalBackend({ env: process.env, turnDelayMs: { generation: 0, edit: 0 }, anonymousCredits: 10_000 });
  try {
    let n = 0;
    for (const c of cases) {
      if (values.only && !values.only.some((o) => c.name.includes(o))) continue;
      const session = await talkSession(backend, c.portrait, c.voice);
      const file = path.join(root, `out-${++n}.mp4`);
      const r = await session.render(`mouth_${n}`, { format: 'mp4', quality: 'high', resolution: values.resolution, aspect: '9:16' }, file);
      console.log(row(c.name, await measureMouth(tools, file, { width })) + (r.notes.length > 0 ? `  notes: ${r.notes.join('; ')}` : ''));
      if (values.keep) {
        await mkdir(values.keep, { recursive: true });
        await copyFile(file, path.join(values.keep, `${c.name.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '')}.mp4`));
      }
      // The wrong output: the portrait as a still, with the same voice, at the same size.
      const still = path.join(root, `still-${n}.mp4`);
      const size = values.resolution === '1080p' ? '1080:1920' : '720:1280';
      await runTool(tools.ffmpeg, ['-v', 'error', '-y', '-loop', '1', '-i', c.portrait, '-i', c.voice, '-t', r.clipSec.toFixed(3), '-r', '25', '-vf', `scale=${size}:force_original_aspect_ratio=decrease,pad=${size}:(ow-iw)/2:(oh-ih)/2,format=yuv420p`, '-c:v', 'libx264', '-preset', 'veryfast', '-c:a', 'aac', still]);
      console.log(row(`  still of it (wrong output)`, await measureMouth(tools, still, { width })));
      // The other wrong output: the render with its eyes wandering 6 % of the eye distance.
      const shifted = path.join(root, `eyes-${n}.mp4`);
      await withEyesShifted(tools, file, shifted, 0.06);
      console.log(row(`  eyes shifted (wrong output)`, await measureMouth(tools, shifted, { width })));
    }
  } finally {
    await backend.close();
    await rm(root, { recursive: true, force: true });
  }
}
