/**
 * Measuring a talking-portrait video the way a viewer would judge it: face landmarks found
 * anew in every output frame (the same detector the local backend uses, run on the decoded
 * MP4, knowing nothing of how it was made), compared with the loudness of the video's own
 * audio track. Test and bench helper, not product code.
 *
 * - `rho`: Spearman's rank correlation between the inner-lip opening ÷ inter-ocular distance
 *   and the per-frame loudness, at the best lag within ±3 frames (a mouth may lead or trail).
 * - `range`: the opening's 95th − 5th percentile (÷ inter-ocular distance).
 * - `eyeMovement`: the 95th percentile of how far the eyes' midpoint moves from its median,
 *   measured relative to the nose tip (÷ inter-ocular distance): head motion does not count,
 *   eyes sliding over the face does.
 * A still image scores rho 0 and range 0 (see the tests); so must any output whose mouth does
 * not follow the voice. Openings are compared in steps of `OPENING_STEP`: below that, frames
 * differ only by the detector's response to encoder noise, and ranking such differences gave
 * a still of a 1.7 s clip a "rho" of 0.57.
 */
import { spawn } from 'node:child_process';
import { detectFaces } from '../../src/local-backend/face.js';
import { probeMedia, runTool } from '../../src/local-backend/ffmpeg.js';

/** What `measureMouth` found. */
export interface MouthMetrics {
  frames: number;
  /** Frames in which a face was found. */
  facesFound: number;
  rho: number;
  /** The lag (frames, opening after loudness when positive) at which `rho` was found. */
  lag: number;
  range: number;
  eyeMovement: number;
  /** Per frame: opening ÷ inter-ocular distance (NaN where no face was found). */
  openings: number[];
  /** Per frame: RMS loudness of the audio track. */
  loudness: number[];
}

const AUDIO_RATE = 8000;

/** Openings closer than this (÷ inter-ocular distance) count as equal. */
export const OPENING_STEP = 0.01;

/** Ranks (1-based), ties sharing their mean rank. */
function ranks(values: readonly number[]): number[] {
  const order = values.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const out = new Array<number>(values.length).fill(0);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) out[order[k]![1]] = rank;
    i = j + 1;
  }
  return out;
}

/** Spearman's rho of paired samples; 0 when either side does not vary. */
export function spearman(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  if (n < 3) return 0;
  const ra = ranks(a.slice(0, n));
  const rb = ranks(b.slice(0, n));
  const mean = (n + 1) / 2;
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < n; i++) {
    const x = ra[i]! - mean;
    const y = rb[i]! - mean;
    num += x * y;
    da += x * x;
    db += y * y;
  }
  return da === 0 || db === 0 ? 0 : num / Math.sqrt(da * db);
}

/** The q-quantile (0..1) of finite values, linearly interpolated; 0 for none. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = values.filter(Number.isFinite).sort((x, y) => x - y);
  if (sorted.length === 0) return 0;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Best Spearman rho over lags −maxLag..maxLag, pairing opening[f] with loudness[f − lag]. */
export function bestLagRho(openings: readonly number[], loudness: readonly number[], maxLag = 3): { rho: number; lag: number } {
  let best = { rho: -Infinity, lag: 0 };
  for (let lag = -maxLag; lag <= maxLag; lag++) {
    const a: number[] = [];
    const b: number[] = [];
    for (let f = 0; f < openings.length; f++) {
      const g = f - lag;
      const o = openings[f]!;
      if (g < 0 || g >= loudness.length || !Number.isFinite(o)) continue;
      a.push(o);
      b.push(loudness[g]!);
    }
    const rho = spearman(a, b);
    if (rho > best.rho) best = { rho, lag };
  }
  return best.rho === -Infinity ? { rho: 0, lag: 0 } : best;
}

/** RMS of the file's audio per video frame. */
async function frameLoudness(ffmpeg: string, file: string, fps: number, frames: number): Promise<number[]> {
  const { stdout } = await runTool(ffmpeg, ['-v', 'error', '-i', file, '-vn', '-ac', '1', '-ar', String(AUDIO_RATE), '-f', 's16le', '-']);
  const samples = new Int16Array(stdout.buffer, stdout.byteOffset, Math.floor(stdout.length / 2));
  const per = AUDIO_RATE / fps;
  const out: number[] = [];
  for (let f = 0; f < frames; f++) {
    const start = Math.floor(f * per);
    const end = Math.min(samples.length, Math.floor((f + 1) * per));
    let sum = 0;
    for (let i = start; i < end; i++) sum += (samples[i]! / 32768) ** 2;
    out.push(end > start ? Math.sqrt(sum / (end - start)) : 0);
  }
  return out;
}

/** Every frame of a video as RGB at `width` × `height`, one at a time (memory stays flat). */
async function* frames(ffmpeg: string, file: string, width: number, height: number): AsyncGenerator<Uint8Array> {
  const child = spawn(ffmpeg, ['-v', 'error', '-i', file, '-an', '-vf', `scale=${width}:${height}`, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const size = width * height * 3;
  let pending: Buffer = Buffer.alloc(0);
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= size) {
        yield new Uint8Array(pending.subarray(0, size));
        pending = pending.subarray(size);
      }
    }
  } finally {
    child.kill();
  }
}

const mid = (pts: readonly (readonly [number, number])[], idx: readonly number[]): [number, number] => {
  let x = 0;
  let y = 0;
  for (const i of idx) {
    x += pts[i]![0];
    y += pts[i]![1];
  }
  return [x / idx.length, y / idx.length];
};

/**
 * Measure a video. `width` is the size frames are decoded at for the detector (the height
 * follows the aspect); larger finds smaller faces but takes longer.
 */
export async function measureMouth(tools: { ffmpeg: string; ffprobe: string }, file: string, options: { width?: number } = {}): Promise<MouthMetrics> {
  const info = await probeMedia(tools.ffprobe, file);
  if (!info.width || !info.height) throw new Error(`${file} has no video stream`);
  const width = Math.round((options.width ?? Math.min(540, info.width)) / 2) * 2;
  const height = Math.round((width * info.height) / info.width / 2) * 2;
  const openings: number[] = [];
  const eyes: ([number, number] | undefined)[] = [];
  for await (const rgb of frames(tools.ffmpeg, file, width, height)) {
    const [face] = await detectFaces(rgb, width, height, 0.3);
    if (!face) {
      openings.push(Number.NaN);
      eyes.push(undefined);
      continue;
    }
    const p = face.points;
    const left = mid(p, [36, 37, 38, 39, 40, 41]);
    const right = mid(p, [42, 43, 44, 45, 46, 47]);
    const iod = Math.hypot(right[0] - left[0], right[1] - left[1]);
    const upper = mid(p, [61, 62, 63]);
    const lower = mid(p, [65, 66, 67]);
    openings.push(Math.round(Math.max(0, lower[1] - upper[1]) / iod / OPENING_STEP) * OPENING_STEP);
    const nose = p[30]!;
    eyes.push([((left[0] + right[0]) / 2 - nose[0]) / iod, ((left[1] + right[1]) / 2 - nose[1]) / iod]);
  }
  const loudness = await frameLoudness(tools.ffmpeg, file, info.fps ?? 25, openings.length);
  const { rho, lag } = bestLagRho(openings, loudness);
  const found = eyes.filter((e): e is [number, number] => e !== undefined);
  const mx = quantile(found.map((e) => e[0]), 0.5);
  const my = quantile(found.map((e) => e[1]), 0.5);
  return {
    frames: openings.length,
    facesFound: found.length,
    rho,
    lag,
    range: quantile(openings, 0.95) - quantile(openings, 0.05),
    eyeMovement: quantile(found.map((e) => Math.hypot(e[0] - mx, e[1] - my)), 0.95),
    openings,
    loudness,
  };
}
