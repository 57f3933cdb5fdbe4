/**
 * Tiny test media made with ffmpeg, once per directory: a 270×480 portrait JPEG (a face-like
 * disc on a plain background), a 2 s "voice" MP3 whose loudness rises and falls like speech,
 * and a 2 s music WAV. Small on purpose: the whole suite runs on 2 cores.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { findFfmpeg, runTool } from '../../src/local-backend/ffmpeg.js';

export interface TestMedia {
  portrait: string;
  voice: string;
  music?: string;
}

const made = new Map<string, Promise<TestMedia>>();

/** ffmpeg/ffprobe as the local backend finds them (FFMPEG_PATH → PATH → npm build). */
export function testTools(): { ffmpeg: string; ffprobe: string } {
  return findFfmpeg(process.env);
}

async function create(dir: string): Promise<TestMedia> {
  await mkdir(dir, { recursive: true });
  const { ffmpeg } = testTools();
  const portrait = path.join(dir, 'portrait.jpg');
  const voice = path.join(dir, 'voice.mp3');
  const music = path.join(dir, 'music.wav');
  const disc = "lt(hypot(X-135,Y-190),70)";
  const jobs: Promise<unknown>[] = [];
  if (!existsSync(portrait)) {
    jobs.push(
      runTool(ffmpeg, [
        '-v', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=0x5a6e8c:s=270x480:d=0.04,format=rgb24',
        '-vf', `geq=r='90+110*${disc}':g='100+80*${disc}':b='120+20*${disc}'`,
        '-frames:v', '1', portrait,
      ]),
    );
  }
  if (!existsSync(voice)) {
    jobs.push(
      runTool(ffmpeg, [
        '-v', 'error', '-y', '-f', 'lavfi', '-i', "aevalsrc='0.6*sin(2*PI*180*t)*(0.5+0.5*sin(2*PI*4*t))':s=22050:d=2",
        '-c:a', 'libmp3lame', '-b:a', '64k', voice,
      ]),
    );
  }
  if (!existsSync(music)) {
    jobs.push(runTool(ffmpeg, ['-v', 'error', '-y', '-f', 'lavfi', '-i', "aevalsrc='0.2*sin(2*PI*262*t)+0.2*sin(2*PI*330*t)':s=22050:d=2", music]));
  }
  await Promise.all(jobs);
  return { portrait, voice, music };
}

/** Create (or reuse) the test media in `dir`. Safe to call from many tests at once. */
export function makeTestMedia(dir: string): Promise<TestMedia> {
  const key = path.resolve(dir);
  let pending = made.get(key);
  if (!pending) {
    pending = create(key);
    made.set(key, pending);
  }
  return pending;
}

/**
 * The JPEG with a comment segment (FF FE) right after its start marker: the same picture as
 * distinct content, for tests and benches that need many different portraits cheaply.
 */
export function jpegWithComment(jpeg: Buffer, text: string): Buffer {
  const body = Buffer.from(text, 'latin1');
  const segment = Buffer.alloc(4);
  segment.writeUInt16BE(0xfffe, 0);
  segment.writeUInt16BE(body.length + 2, 2);
  return Buffer.concat([jpeg.subarray(0, 2), segment, body, jpeg.subarray(2)]);
}

/**
 * Real photographs: 9:16 crops of the demo pictures `@vladmandic/face-api` ships (group photos,
 * 1920 px wide), each around one face that sits in the upper part of the crop, not centred.
 */
export const SAMPLE_PORTRAITS = {
  'sample1': { sample: 'sample1.jpg', x: 1200, y: 0, width: 720, height: 1280 },
  'sample2': { sample: 'sample2.jpg', x: 1200, y: 0, width: 720, height: 1280 },
  'sample3': { sample: 'sample3.jpg', x: 800, y: 35, width: 720, height: 1280 },
} as const;

/** Write the named sample portrait, scaled to `width` × `height`, as a JPEG in `dir`. */
export async function makeSamplePortrait(dir: string, name: keyof typeof SAMPLE_PORTRAITS, width = 270, height = 480): Promise<string> {
  const crop = SAMPLE_PORTRAITS[name];
  const require = createRequire(import.meta.url);
  const source = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo', crop.sample);
  await mkdir(dir, { recursive: true });
  const out = path.join(dir, `${name}-${width}x${height}.jpg`);
  if (!existsSync(out)) {
    await runTool(testTools().ffmpeg, ['-v', 'error', '-y', '-i', source, '-vf', `crop=${crop.width}:${crop.height}:${crop.x}:${crop.y},scale=${width}:${height}`, '-q:v', '3', out]);
  }
  return out;
}

/**
 * The same bytes every run (xorshift from `seed`): a file of "random" content that no decoder can
 * make sense of, for media that only claims to be media by its name.
 */
export function noiseBytes(size: number, seed = 12): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 1) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
