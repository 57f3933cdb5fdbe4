/**
 * Turns a draft into a real MP4 with ffmpeg (one encode, no intermediate files but two small
 * text files). The picture is composed once from the still — the portrait fitted to the
 * canvas over a blurred fill of itself — and decoded once (`loop` filter, about twice as fast
 * as `-loop 1` at 1080×1920). Motion is driven by the voice-over's loudness: a per-frame
 * envelope computed here from decoded PCM becomes `sendcmd` commands that move a `crop`
 * (head bob) and an `overlay` of a feathered mouth patch (jaw drop). Only filters that work on
 * both Debian's ffmpeg 5.1 and the 2018 static build are used (no drawbox via sendcmd).
 */
import { copyFile, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TrackType, type Draft, type DraftSegment } from '../contract/draft.js';
import type { RenderOutput } from '../contract/bodies.js';
import type { RenderCapabilities } from './ffmpeg.js';
import { runTool } from './ffmpeg.js';

/** Frames per second of every render: enough for lip motion, cheap to encode. */
export const RENDER_FPS = 25;
const ENVELOPE_RATE = 8000;

/** Everything a render needs, resolved from the draft to files on disk. */
export interface RenderJob {
  width: number;
  height: number;
  durationSec: number;
  crf: number;
  /** The still to animate; absent = a plain dark canvas. */
  still: string | undefined;
  /** Voice-over segments: they drive the motion and are the main audio. */
  voices: { file: string; startSec: number; durationSec: number; volume: number; loop: boolean }[];
  /** Background music segments, mixed at their volume. */
  music: { file: string; startSec: number; durationSec: number; volume: number }[];
  texts: { text: string; startSec: number; endSec: number }[];
  /** Repeat the voice envelope to fill the clip (the "loop" edit). */
  loopMotion: boolean;
}

/** Output size for an aspect and resolution (1080p = the short side is 1080). */
export function sizeFor(aspect: '16:9' | '9:16' | '1:1', resolution: '720p' | '1080p'): { width: number; height: number } {
  const short = resolution === '720p' ? 720 : 1080;
  const long = resolution === '720p' ? 1280 : 1920;
  if (aspect === '16:9') return { width: long, height: short };
  if (aspect === '9:16') return { width: short, height: long };
  return { width: short, height: short };
}

/** quality → x264 CRF. */
export function crfFor(quality: RenderOutput['quality']): number {
  return quality === 'low' ? 30 : quality === 'medium' ? 25 : 21;
}

/** Media a segment's `src` refers to, by the file id at the end of its URL path. */
export function mediaIdOf(src: unknown): string | undefined {
  if (typeof src !== 'string') return undefined;
  const match = /\/media\/([A-Za-z0-9_-]+)(?:\.[A-Za-z0-9]+)?(?:[?#].*)?$/.exec(src);
  return match?.[1];
}

/** Segments of every track of a type. */
export function segmentsOf(draft: Draft, type: number): DraftSegment[] {
  return (draft.t ?? []).filter((t) => t.tt === type).flatMap((t) => (Array.isArray(t.sg) ? t.sg : []));
}

/** Draft duration in ms: `d`, else the end of its last segment. */
export function draftDurationMs(draft: Draft): number {
  if (typeof draft.d === 'number' && draft.d > 0) return draft.d;
  let end = 0;
  for (const track of draft.t ?? []) for (const s of track.sg ?? []) end = Math.max(end, (Number(s.st) || 0) + (Number(s.d) || 0));
  return end;
}

/** Decode audio to mono PCM and measure loudness per video frame, normalised to 0..1. */
export async function loudnessEnvelope(ffmpeg: string, file: string, signal?: AbortSignal): Promise<number[]> {
  const { stdout } = await runTool(ffmpeg, ['-v', 'error', '-i', file, '-vn', '-ac', '1', '-ar', String(ENVELOPE_RATE), '-f', 's16le', '-'], { signal });
  const samples = new Int16Array(stdout.buffer, stdout.byteOffset, Math.floor(stdout.length / 2));
  const perFrame = ENVELOPE_RATE / RENDER_FPS;
  const frames = Math.ceil(samples.length / perFrame);
  const rms: number[] = [];
  for (let f = 0; f < frames; f++) {
    let sum = 0;
    const start = Math.floor(f * perFrame);
    const end = Math.min(samples.length, Math.floor((f + 1) * perFrame));
    for (let i = start; i < end; i++) {
      const v = (samples[i] ?? 0) / 32768;
      sum += v * v;
    }
    rms.push(end > start ? Math.sqrt(sum / (end - start)) : 0);
  }
  // Normalise against a high percentile, not the peak, so one plosive does not flatten the rest.
  const sorted = [...rms].sort((a, b) => a - b);
  const ref = sorted[Math.floor(sorted.length * 0.95)] ?? 0;
  const out: number[] = [];
  let level = 0;
  for (const value of rms) {
    const target = ref > 0 ? Math.min(1, value / ref) : 0;
    // Fast attack, slower release: a mouth opens quickly and closes a little later.
    level += (target - level) * (target > level ? 0.7 : 0.3);
    out.push(level);
  }
  return out;
}

/** Geometry of the motion: overscan margin for the bob, mouth patch placement. */
interface Motion {
  margin: number;
  patch: { x: number; y: number; w: number; h: number } | undefined;
  bobPx: number;
  jawPx: number;
}

function even(n: number): number {
  return Math.max(2, Math.round(n / 2) * 2);
}

function motionFor(job: RenderJob, stillSize: { width: number; height: number } | undefined): Motion {
  const margin = even(job.height * 0.025);
  if (!stillSize) return { margin, patch: undefined, bobPx: 0, jawPx: 0 };
  const cw = job.width + 2 * margin;
  const ch = job.height + 2 * margin;
  // Where the fitted portrait lands on the composed canvas (scale to fit, centred).
  const scale = Math.min(cw / stillSize.width, ch / stillSize.height);
  const pw = stillSize.width * scale;
  const ph = stillSize.height * scale;
  const px = (cw - pw) / 2;
  const py = (ch - ph) / 2;
  // A front-facing portrait has its mouth near the middle, about 62 % down the frame.
  const w = even(pw * 0.3);
  const h = even(ph * 0.12);
  const x = even(px + pw * 0.5 - w / 2);
  const y = even(py + ph * 0.62 - h / 2);
  return { margin, patch: { x, y, w, h }, bobPx: Math.max(1, Math.round(job.height * 0.012)), jawPx: Math.max(1, Math.round(ph * 0.025)) };
}

/** `sendcmd` script: one line per frame whose positions changed. */
export function motionCommands(envelope: readonly number[], job: RenderJob, motion: Motion): string {
  const frames = Math.ceil(job.durationSec * RENDER_FPS);
  const lines: string[] = [];
  let last = '';
  for (let f = 0; f < frames; f++) {
    const t = f / RENDER_FPS;
    let level = 0;
    const voice = job.voices.find((v) => t >= v.startSec && (job.loopMotion || t < v.startSec + v.durationSec));
    if (voice && envelope.length > 0) {
      const local = Math.floor((t - voice.startSec) * RENDER_FPS);
      level = job.loopMotion ? (envelope[local % envelope.length] ?? 0) : (envelope[local] ?? 0);
    }
    // Idle breathing keeps the head alive in pauses; speech nods it up a little.
    const bob = Math.round(motion.margin + Math.sin((2 * Math.PI * t) / 3.2) * motion.bobPx * 0.5 - level * motion.bobPx);
    const parts = [`crop@bob y ${Math.max(0, Math.min(2 * motion.margin, bob))}`];
    if (motion.patch) parts.push(`overlay@jaw y ${motion.patch.y + Math.round(level * motion.jawPx)}`);
    const line = parts.join(', ');
    if (line !== last) lines.push(`${t.toFixed(3)} ${line};`);
    last = line;
  }
  return lines.join('\n') + '\n';
}

/** Progress callback: fraction 0..1 of the encode. */
export type EncodeProgress = (fraction: number) => void;

/**
 * Encode the job into `outFile`. Runs inside `workDir` so every file the filtergraph names
 * is a plain relative name (no filtergraph escaping of user paths).
 */
export async function encodeRender(
  tools: { ffmpeg: string },
  caps: RenderCapabilities,
  job: RenderJob,
  stillSize: { width: number; height: number } | undefined,
  workDir: string,
  outFile: string,
  options: { signal?: AbortSignal | undefined; onProgress?: EncodeProgress } = {},
): Promise<{ notes: string[] }> {
  const notes: string[] = [];
  await rm(workDir, { recursive: true, force: true });
  await mkdir(workDir, { recursive: true });
  const { width: W, height: H } = job;
  const motion = motionFor(job, stillSize);
  const cw = W + 2 * motion.margin;
  const ch = H + 2 * motion.margin;
  const firstVoice = job.voices[0];
  const envelope = firstVoice ? await loudnessEnvelope(tools.ffmpeg, firstVoice.file, options.signal) : [];
  await writeFile(path.join(workDir, 'motion.txt'), motionCommands(envelope, job, motion));

  const args: string[] = ['-v', 'error', '-y', '-nostats', '-progress', 'pipe:1'];
  const inputs: string[][] = [];
  const addInput = (...spec: string[]): number => inputs.push(spec) - 1;
  const stillIndex = job.still ? addInput('-i', job.still) : addInput('-f', 'lavfi', '-i', `color=c=0x1c1f26:s=${cw}x${ch}:d=0.04`);
  const loopFrames = `loop=loop=-1:size=1:start=0,setpts=N/(${RENDER_FPS}*TB)`;
  const graph: string[] = [];
  if (job.still) {
    graph.push(
      `[${stillIndex}:v]split=2[bgs][fgs]`,
      `[bgs]scale=${cw}:${ch}:force_original_aspect_ratio=increase,crop=${cw}:${ch},boxblur=20:2[bg]`,
      `[fgs]scale=${cw}:${ch}:force_original_aspect_ratio=decrease[fg]`,
      `[bg][fg]overlay=(W-w)/2:(H-h)/2,format=yuv420p,split=2[still][patchsrc]`,
    );
  } else {
    graph.push(`[${stillIndex}:v]format=yuv420p,split=2[still][patchsrc]`);
  }
  let video: string;
  if (motion.patch) {
    const p = motion.patch;
    // The mouth patch: cut once from the composed still, alpha feathered to an ellipse.
    graph.push(
      `[patchsrc]crop=${p.w}:${p.h}:${p.x}:${p.y},format=yuva420p,geq=lum='lum(X,Y)':cb='cb(X,Y)':cr='cr(X,Y)':a='255*clip(1.8*(1-hypot((X-W/2)/(W/2),(Y-H/2)/(H/2))),0,1)',${loopFrames}[patch]`,
      `[still]${loopFrames},sendcmd=f=motion.txt[base]`,
      `[base][patch]overlay@jaw=x=${p.x}:y=${p.y},crop@bob=${W}:${H}:${motion.margin}:${motion.margin}[moved]`,
    );
    video = 'moved';
  } else {
    graph.push(`[patchsrc]nullsink`, `[still]${loopFrames},sendcmd=f=motion.txt,crop@bob=${W}:${H}:${motion.margin}:${motion.margin}[moved]`);
    video = 'moved';
  }
  if (job.texts.length > 0) {
    if (caps.fontFile) {
      await symlink(caps.fontFile, path.join(workDir, 'font.ttf')).catch(() => copyFile(caps.fontFile ?? '', path.join(workDir, 'font.ttf')));
      const size = Math.round(Math.min(W, H) * 0.075);
      const filters = await Promise.all(
        job.texts.map(async (t, i) => {
          await writeFile(path.join(workDir, `text${i}.txt`), t.text);
          return `drawtext=fontfile=font.ttf:textfile=text${i}.txt:fontcolor=white:fontsize=${size}:borderw=${Math.max(1, Math.round(size / 14))}:bordercolor=black:x=(w-tw)/2:y=h*0.08:enable='between(t,${t.startSec.toFixed(3)},${t.endSec.toFixed(3)})'`;
        }),
      );
      graph.push(`[${video}]${filters.join(',')}[titled]`);
      video = 'titled';
    } else {
      notes.push('text tracks skipped: this ffmpeg has no usable font for drawtext');
    }
  }

  const audioLabels: string[] = [];
  job.voices.forEach((v, i) => {
    const index = v.loop ? addInput('-stream_loop', '-1', '-i', v.file) : addInput('-i', v.file);
    const delay = Math.round(v.startSec * 1000);
    graph.push(`[${index}:a]atrim=0:${v.durationSec.toFixed(3)},asetpts=PTS-STARTPTS,volume=${v.volume.toFixed(3)}${delay > 0 ? `,adelay=${delay}|${delay}` : ''},aresample=44100,aformat=channel_layouts=stereo,apad[v${i}]`);
    audioLabels.push(`v${i}`);
  });
  job.music.forEach((m, i) => {
    const index = addInput('-stream_loop', '-1', '-i', m.file);
    const delay = Math.round(m.startSec * 1000);
    graph.push(`[${index}:a]atrim=0:${m.durationSec.toFixed(3)},asetpts=PTS-STARTPTS,volume=${m.volume.toFixed(3)}${delay > 0 ? `,adelay=${delay}|${delay}` : ''},aresample=44100,aformat=channel_layouts=stereo,apad[m${i}]`);
    audioLabels.push(`m${i}`);
  });
  if (audioLabels.length === 0) {
    // A silent track keeps every output H.264 + AAC, as players and the contract expect.
    const index = addInput('-f', 'lavfi', '-i', 'anullsrc=r=44100:cl=stereo');
    graph.push(`[${index}:a]anull[aout]`);
  } else if (audioLabels.length === 1) {
    graph.push(`[${audioLabels[0]}]anull[aout]`);
  } else {
    // amix divides every input by their count; scale back so the voice keeps its level.
    graph.push(`${audioLabels.map((l) => `[${l}]`).join('')}amix=inputs=${audioLabels.length}:duration=longest:dropout_transition=0,volume=${audioLabels.length}[aout]`);
  }

  for (const input of inputs) args.push(...input);
  args.push(
    '-filter_complex', graph.join(';'),
    '-map', `[${video}]`, '-map', '[aout]',
    '-t', job.durationSec.toFixed(3),
    '-r', String(RENDER_FPS),
    '-c:v', 'libx264', '-preset', 'veryfast', '-crf', String(job.crf), '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '128k',
    '-movflags', '+faststart', '-f', 'mp4',
    path.resolve(outFile),
  );

  const totalUs = job.durationSec * 1_000_000;
  let buffered = '';
  await runTool(tools.ffmpeg, args, {
    signal: options.signal,
    cwd: workDir,
    onStdout: (chunk) => {
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        // `out_time_ms` is in microseconds despite its name (in every ffmpeg version).
        const match = /^out_time_ms=(\d+)/.exec(line);
        if (match && options.onProgress) options.onProgress(Math.min(1, Number(match[1]) / totalUs));
      }
    },
  });
  await rm(workDir, { recursive: true, force: true });
  return { notes };
}

/** Text segments of a draft, clipped to the clip's duration. */
export function textsOf(draft: Draft, durationSec: number): RenderJob['texts'] {
  return segmentsOf(draft, TrackType.text)
    .filter((s) => typeof s.text === 'string' && s.text.trim() !== '')
    .map((s) => ({ text: String(s.text), startSec: (Number(s.st) || 0) / 1000, endSec: Math.min(durationSec, ((Number(s.st) || 0) + (Number(s.d) || 0)) / 1000) }))
    .filter((t) => t.endSec > t.startSec);
}
