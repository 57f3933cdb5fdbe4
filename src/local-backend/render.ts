/**
 * Turns a draft into a real MP4 with ffmpeg (one encode, no intermediate files but small text
 * files). The picture is composed once from the still — the portrait fitted to the canvas over
 * a blurred fill of itself — and decoded once (`loop` filter, about twice as fast as `-loop 1`
 * at 1080×1920). Motion is driven by the voice-over, analysed here from decoded PCM:
 *
 * - With a face found (landmarks from `face.ts`): a handful of lower-face shapes are warped once
 *   from the landmarks (`mouth.ts`) and one RGBA patch per frame — a crossfade of two shapes
 *   picked by the voice's loudness and mouth class (phonemes when a recogniser is installed,
 *   else the spectrum: `voice.ts`, `phonemes.ts`) — is piped to ffmpeg and overlaid on the
 *   still; the lids blink every few seconds (`eyes.ts`: two still patches, each overlaid only
 *   on its frames); a slow breathing bob moves the whole picture (`crop` via `sendcmd`).
 * - Without one: the earlier motion — the bob nods with loudness and a feathered patch cut at
 *   a fixed height drops — and a note saying so.
 *
 * Only filters that work on both Debian's ffmpeg 5.1 and the 2018 static build are used.
 */
import { copyFile, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TrackType, type Draft, type DraftSegment } from '../contract/draft.js';
import type { RenderOutput } from '../contract/bodies.js';
import type { RenderCapabilities } from './ffmpeg.js';
import { runTool } from './ffmpeg.js';
import { decodeRgb, type FaceLandmarks } from './face.js';
import { blinkSchedule, buildBlinkShapes, seedOf } from './eyes.js';
import { blendsFor, buildMouthShapes, mouthFrames, mouthTrack } from './mouth.js';
import { classesFromPhones, type Phone } from './phonemes.js';
import { voiceFeatures, type VoiceFeatures } from './voice.js';

/** Frames per second of every render: enough for lip motion, cheap to encode. */
export const RENDER_FPS = 25;

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

/** Where the fitted portrait lands on the composed canvas (scale to fit, centred, even sizes). */
interface Fit {
  cw: number;
  ch: number;
  fw: number;
  fh: number;
  fx: number;
  fy: number;
}

function fitOf(job: RenderJob, margin: number, stillSize: { width: number; height: number }): Fit {
  const cw = job.width + 2 * margin;
  const ch = job.height + 2 * margin;
  const scale = Math.min(cw / stillSize.width, ch / stillSize.height);
  const fw = Math.min(cw, even(stillSize.width * scale));
  const fh = Math.min(ch, even(stillSize.height * scale));
  // Offsets may be 0 (`even` never goes below 2, a size's floor).
  return { cw, ch, fw, fh, fx: Math.round((cw - fw) / 4) * 2, fy: Math.round((ch - fh) / 4) * 2 };
}

/** The voice frame a video frame shows (-1 where no voice plays): the first voice, looped if asked. */
function voiceFrameOf(job: RenderJob, envelopeLength: number): (f: number) => number {
  return (f) => {
    const t = f / RENDER_FPS;
    const voice = job.voices.find((v) => t >= v.startSec && (job.loopMotion || t < v.startSec + v.durationSec));
    if (!voice || envelopeLength === 0) return -1;
    const local = Math.floor((t - voice.startSec) * RENDER_FPS);
    if (job.loopMotion) return local % envelopeLength;
    return local < envelopeLength ? local : -1;
  };
}

/** Geometry of the motion: overscan margin for the bob, mouth patch placement. */
interface Motion {
  margin: number;
  patch: { x: number; y: number; w: number; h: number } | undefined;
  bobPx: number;
  jawPx: number;
  /** How much loudness nods the head (1 without a face; the mouth speaks instead with one). */
  nod: number;
}

function even(n: number): number {
  return Math.max(2, Math.round(n / 2) * 2);
}

function motionFor(job: RenderJob, stillSize: { width: number; height: number } | undefined, hasFace: boolean): Motion {
  const margin = even(job.height * 0.025);
  if (!stillSize) return { margin, patch: undefined, bobPx: 0, jawPx: 0, nod: 0 };
  const { fw: pw, fh: ph, fx: px, fy: py } = fitOf(job, margin, stillSize);
  // With a face, the mouth moves; the head only breathes, a little.
  if (hasFace) return { margin, patch: undefined, bobPx: Math.max(1, Math.round(job.height * 0.006)), jawPx: 0, nod: 0.3 };
  // No face found: the earlier guess, a mouth near the middle about 62 % down the frame.
  const w = even(pw * 0.3);
  const h = even(ph * 0.12);
  const x = even(px + pw * 0.5 - w / 2);
  const y = even(py + ph * 0.62 - h / 2);
  return { margin, patch: { x, y, w, h }, bobPx: Math.max(1, Math.round(job.height * 0.012)), jawPx: Math.max(1, Math.round(ph * 0.025)), nod: 1 };
}

/** `sendcmd` script: one line per frame whose positions changed. */
export function motionCommands(envelope: readonly number[], job: RenderJob, motion: Motion): string {
  const frames = Math.ceil(job.durationSec * RENDER_FPS);
  const lines: string[] = [];
  let last = '';
  const voiceFrame = voiceFrameOf(job, envelope.length);
  // A looping clip breathes a whole number of times, so its last frame flows into its first.
  const period = job.loopMotion ? job.durationSec / Math.max(1, Math.round(job.durationSec / 3.2)) : 3.2;
  for (let f = 0; f < frames; f++) {
    const t = f / RENDER_FPS;
    const v = voiceFrame(f);
    const level = v >= 0 ? (envelope[v] ?? 0) : 0;
    // Idle breathing keeps the head alive in pauses; speech nods it up a little.
    const bob = Math.round(motion.margin + Math.sin((2 * Math.PI * t) / period) * motion.bobPx * 0.5 - level * motion.bobPx * motion.nod);
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
  options: EncodeOptions = {},
): Promise<{ notes: string[] }> {
  await rm(workDir, { recursive: true, force: true });
  await mkdir(workDir, { recursive: true });
  try {
    return await encodeIn(tools, caps, job, stillSize, workDir, outFile, options);
  } finally {
    // Also when the encode failed or was stopped: its ffmpeg has exited by now.
    await rm(workDir, { recursive: true, force: true });
  }
}

/** How an encode reports and what it knows of the portrait and the voice. */
export interface EncodeOptions {
  signal?: AbortSignal | undefined;
  onProgress?: EncodeProgress;
  /** The portrait's face, in its own pixels; undefined when none was found (or no still). */
  face?: FaceLandmarks | undefined;
  /** The first voice's phones, when a recogniser found them. */
  phones?: Phone[] | undefined;
  /** Whether a phoneme recogniser is installed (for the note when it failed on this voice). */
  phonemesInstalled?: boolean;
}

/** The encode itself, in a work folder `encodeRender` made and removes. */
async function encodeIn(...[tools, caps, job, stillSize, workDir, outFile, options = {}]: Parameters<typeof encodeRender>): Promise<{ notes: string[] }> {
  const notes: string[] = [];
  const { width: W, height: H } = job;
  const face = job.still && stillSize ? options.face : undefined;
  if (job.still && !face) notes.push('no face found in the portrait: the preview moves the whole picture with the voice instead of animating a mouth');
  const motion = motionFor(job, stillSize, face !== undefined);
  const cw = W + 2 * motion.margin;
  const ch = H + 2 * motion.margin;
  const firstVoice = job.voices[0];
  const features: VoiceFeatures = firstVoice ? await voiceFeatures(tools.ffmpeg, firstVoice.file, RENDER_FPS, options.signal) : { level: [], spectral: [] };
  const envelope = features.level;
  await writeFile(path.join(workDir, 'motion.txt'), motionCommands(envelope, job, motion));
  const frames = Math.ceil(job.durationSec * RENDER_FPS);
  const fit = stillSize ? fitOf(job, motion.margin, stillSize) : undefined;
  let mouth: { x: number; y: number; width: number; height: number; frames: Iterable<Uint8Array> } | undefined;
  let blink: { x: number; y: number; width: number; height: number; half: number[]; closed: number[] } | undefined;
  if (face && fit && job.still && stillSize) {
    const rgb = await decodeRgb(tools.ffmpeg, job.still, { width: fit.fw, height: fit.fh }, options.signal);
    const sx = fit.fw / stillSize.width;
    const sy = fit.fh / stillSize.height;
    const shapes = buildMouthShapes(rgb, fit.fw, fit.fh, fit.fx, fit.fy, face.points.map(([x, y]) => [x * sx, y * sy] as const));
    const classes = options.phones ? classesFromPhones(options.phones, RENDER_FPS, features.spectral) : features.spectral;
    notes.push(
      options.phones
        ? 'mouth shapes from the voice-over\'s phonemes (pocketsphinx)'
        : options.phonemesInstalled
          ? 'mouth shapes from the voice-over\'s spectrum: the phoneme recogniser (pocketsphinx) found nothing in it'
          : 'mouth shapes from the voice-over\'s spectrum (install pocketsphinx and pocketsphinx-en-us for phoneme-driven shapes)',
    );
    const track = mouthTrack({ level: features.level, classes }, frames + 1, voiceFrameOf(job, envelope.length), job.loopMotion);
    mouth = { x: shapes.x, y: shapes.y, width: shapes.width, height: shapes.height, frames: mouthFrames(shapes, blendsFor(track)) };
    // The same inputs blink at the same frames: the seed comes from the voice and the length.
    const closure = blinkSchedule(frames, RENDER_FPS, seedOf([frames, ...envelope]), job.loopMotion);
    if (closure.some((c) => c > 0)) {
      const b = buildBlinkShapes(rgb, fit.fw, fit.fh, fit.fx, fit.fy, face.points.map(([x, y]) => [x * sx, y * sy] as const));
      await writeFile(path.join(workDir, 'blink-half.rgba'), b.half);
      await writeFile(path.join(workDir, 'blink-closed.rgba'), b.closed);
      const framesOf = (c: number): number[] => closure.flatMap((v, f) => (v === c ? [f] : []));
      blink = { x: b.x, y: b.y, width: b.width, height: b.height, half: framesOf(0.5), closed: framesOf(1) };
    }
  }

  const args: string[] = ['-v', 'error', '-y', '-nostats', '-progress', 'pipe:1'];
  const inputs: string[][] = [];
  const addInput = (...spec: string[]): number => inputs.push(spec) - 1;
  const stillIndex = job.still ? addInput('-i', job.still) : addInput('-f', 'lavfi', '-i', `color=c=0x1c1f26:s=${cw}x${ch}:d=0.04`);
  const mouthIndex = mouth ? addInput('-f', 'rawvideo', '-pix_fmt', 'rgba', '-s', `${mouth.width}x${mouth.height}`, '-framerate', String(RENDER_FPS), '-i', 'pipe:0') : -1;
  const blinkInputs = blink
    ? (['half', 'closed'] as const).map((k) => addInput('-f', 'rawvideo', '-pix_fmt', 'rgba', '-s', `${blink.width}x${blink.height}`, '-i', `blink-${k}.rgba`))
    : [];
  const loopFrames = `loop=loop=-1:size=1:start=0,setpts=N/(${RENDER_FPS}*TB)`;
  const graph: string[] = [];
  if (job.still) {
    // The portrait is fitted at an explicit size and place, the same the mouth shapes use.
    const f = fit ?? { fw: cw, fh: ch, fx: 0, fy: 0 };
    const fg = fit ? `scale=${f.fw}:${f.fh}` : `scale=${cw}:${ch}:force_original_aspect_ratio=decrease`;
    graph.push(
      `[${stillIndex}:v]split=2[bgs][fgs]`,
      `[bgs]scale=${cw}:${ch}:force_original_aspect_ratio=increase,crop=${cw}:${ch},boxblur=20:2[bg]`,
      `[fgs]${fg}[fg]`,
      `[bg][fg]overlay=${fit ? `${f.fx}:${f.fy}` : '(W-w)/2:(H-h)/2'},format=yuv420p,split=2[still][patchsrc]`,
    );
  } else {
    graph.push(`[${stillIndex}:v]format=yuv420p,split=2[still][patchsrc]`);
  }
  let video: string;
  if (mouth) {
    // The mouth patches arrive one per frame on stdin; the still under them is decoded once.
    graph.push(
      `[patchsrc]nullsink`,
      `[${mouthIndex}:v]setpts=N/(${RENDER_FPS}*TB)[mouth]`,
      `[still]${loopFrames},sendcmd=f=motion.txt[base]`,
      `[base][mouth]overlay=x=${mouth.x}:y=${mouth.y}:eof_action=repeat[spoken]`,
    );
    let face = 'spoken';
    if (blink) {
      // Each lid patch is decoded once and overlaid only on its own frames (`enable`).
      const b = blink;
      // Runs of frames as between(n,first,last) terms (quoted: the commas stay in the expression).
      const when = (fs: number[]): string => {
        const runs: [number, number][] = [];
        for (const f of fs) {
          const run = runs[runs.length - 1];
          if (run && run[1] === f - 1) run[1] = f;
          else runs.push([f, f]);
        }
        return runs.map(([a, z]) => `between(n,${a},${z})`).join('+');
      };
      (['half', 'closed'] as const).forEach((k, i) => {
        const fs = k === 'half' ? b.half : b.closed;
        if (fs.length === 0) return;
        graph.push(`[${blinkInputs[i]}:v]${loopFrames}[lid${i}]`, `[${face}][lid${i}]overlay=x=${b.x}:y=${b.y}:enable='${when(fs)}'[blink${i}]`);
        face = `blink${i}`;
      });
    }
    graph.push(`[${face}]crop@bob=${W}:${H}:${motion.margin}:${motion.margin}[moved]`);
    video = 'moved';
  } else if (motion.patch) {
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
    ...(mouth ? { stdin: mouth.frames } : {}),
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
  return { notes };
}

/** Text segments of a draft, clipped to the clip's duration. */
export function textsOf(draft: Draft, durationSec: number): RenderJob['texts'] {
  return segmentsOf(draft, TrackType.text)
    .filter((s) => typeof s.text === 'string' && s.text.trim() !== '')
    .map((s) => ({ text: String(s.text), startSec: (Number(s.st) || 0) / 1000, endSec: Math.min(durationSec, ((Number(s.st) || 0) + (Number(s.d) || 0)) / 1000) }))
    .filter((t) => t.endSec > t.startSec);
}
