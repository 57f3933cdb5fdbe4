/**
 * What the voice-over says about the mouth, per video frame: how loud it is and which mouth
 * class it calls for. Decoded once to mono PCM with ffmpeg; no other tool is needed.
 *
 * Mouth classes, by the sounds they stand for:
 * - `closed` (m/b/p): lips pressed, whatever the loudness;
 * - `open` (a): the jaw drops, the lips part evenly;
 * - `rounded` (o/u): the lips draw in and forward, the opening narrow and tall;
 * - `wide` (e/i): the corners draw out, the opening wide and low.
 *
 * Without a phoneme source (see `phonemes.ts`), classes come from the spectrum: a vowel's first
 * formant (F1) is high for an open "a" (≈ 700–900 Hz) and low for i/u (≈ 300 Hz); its second
 * formant (F2) is high for e/i (≈ 2000–2500 Hz) and low for o/u (≈ 800 Hz). Three band energies
 * per frame — low (200–500 Hz), mid (550–1100 Hz) and high (1700–3400 Hz) — place a voiced frame
 * on those two axes. Closed (m/b/p) cannot be told from the spectrum alone; there the noise gate
 * on loudness closes the mouth in the stops and pauses around words.
 */
import { runTool } from './ffmpeg.js';

/** A mouth class (see the module comment). */
export type MouthClass = 'closed' | 'open' | 'rounded' | 'wide';

/** Per-frame features of a voice. */
export interface VoiceFeatures {
  /** Loudness envelope, 0..1 (normalised to the 95th percentile, fast attack, slower release). */
  level: number[];
  /** Spectral class of each frame (`open` where the frame is unvoiced or too quiet to tell). */
  spectral: MouthClass[];
}

/** Sample rate the voice is analysed at: bands up to 3.4 kHz fit under its Nyquist limit. */
const RATE = 8000;
const FFT_SIZE = 256;

/** Band edges in FFT bins (31.25 Hz each at 8 kHz). */
const BANDS = { low: [6, 17], mid: [21, 38], high: [54, 109] } as const;

/** In-place radix-2 FFT of `re`/`im` (length a power of two). */
function fft(re: Float64Array, im: Float64Array): void {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j]!, re[i]!];
      [im[i], im[j]] = [im[j]!, im[i]!];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = (-2 * Math.PI) / len;
    for (let i = 0; i < n; i += len) {
      for (let k = 0; k < len / 2; k++) {
        const wr = Math.cos(ang * k);
        const wi = Math.sin(ang * k);
        const a = i + k;
        const b = a + len / 2;
        const xr = re[b]! * wr - im[b]! * wi;
        const xi = re[b]! * wi + im[b]! * wr;
        re[b] = re[a]! - xr;
        im[b] = im[a]! - xi;
        re[a] = re[a]! + xr;
        im[a] = im[a]! + xi;
      }
    }
  }
}

/** Energies of the three bands in `FFT_SIZE` samples around `centre` (Hann window). */
export function bandEnergies(samples: Float32Array, centre: number): { low: number; mid: number; high: number } {
  const re = new Float64Array(FFT_SIZE);
  const im = new Float64Array(FFT_SIZE);
  const start = Math.round(centre - FFT_SIZE / 2);
  for (let i = 0; i < FFT_SIZE; i++) {
    const s = samples[start + i] ?? 0;
    re[i] = s * (0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (FFT_SIZE - 1)));
  }
  fft(re, im);
  const band = ([from, to]: readonly [number, number]): number => {
    let e = 0;
    for (let k = from; k <= to; k++) e += re[k]! * re[k]! + im[k]! * im[k]!;
    return e;
  };
  return { low: band(BANDS.low), mid: band(BANDS.mid), high: band(BANDS.high) };
}

/**
 * The class of one voiced frame from its band energies: `high` share of all three bands above
 * 0.2 → wide (F2 high); else the mid band's share of low + mid above 0.45 → open (F1 high);
 * else rounded (both formants low). Thresholds were set on espeak-ng's a/e/i/o/u and on
 * formant-shaped test tones (see `mouth-classes.test.ts`).
 */
export function classOfBands(b: { low: number; mid: number; high: number }): MouthClass {
  const total = b.low + b.mid + b.high;
  if (!(total > 0)) return 'open';
  if (b.high / total > 0.2) return 'wide';
  if (b.mid / (b.low + b.mid) > 0.45) return 'open';
  return 'rounded';
}

/** Mono PCM of a file at `RATE`, as floats in −1..1. */
export async function decodeVoice(ffmpeg: string, file: string, signal?: AbortSignal): Promise<Float32Array> {
  const { stdout } = await runTool(ffmpeg, ['-v', 'error', '-i', file, '-vn', '-ac', '1', '-ar', String(RATE), '-f', 's16le', '-'], { signal });
  const ints = new Int16Array(stdout.buffer, stdout.byteOffset, Math.floor(stdout.length / 2));
  const out = new Float32Array(ints.length);
  for (let i = 0; i < ints.length; i++) out[i] = ints[i]! / 32768;
  return out;
}

/** Frame features of PCM at `RATE` for video at `fps` frames a second. */
export function featuresOf(samples: Float32Array, fps: number): VoiceFeatures {
  const perFrame = RATE / fps;
  const frames = Math.ceil(samples.length / perFrame);
  const rms: number[] = [];
  for (let f = 0; f < frames; f++) {
    let sum = 0;
    const start = Math.floor(f * perFrame);
    const end = Math.min(samples.length, Math.floor((f + 1) * perFrame));
    for (let i = start; i < end; i++) sum += samples[i]! * samples[i]!;
    rms.push(end > start ? Math.sqrt(sum / (end - start)) : 0);
  }
  // Normalise against a high percentile, not the peak, so one plosive does not flatten the rest.
  const sorted = [...rms].sort((a, b) => a - b);
  const ref = sorted[Math.floor(sorted.length * 0.95)] ?? 0;
  const level: number[] = [];
  const spectral: MouthClass[] = [];
  let current = 0;
  for (let f = 0; f < frames; f++) {
    const target = ref > 0 ? Math.min(1, rms[f]! / ref) : 0;
    // Fast attack, slower release: a mouth opens quickly and closes a little later.
    current += (target - current) * (target > current ? 0.7 : 0.3);
    level.push(current);
    // Only frames loud enough to be voiced are classed; the rest stay `open` (the gate on
    // loudness closes the mouth there anyway).
    spectral.push(target > 0.3 ? classOfBands(bandEnergies(samples, (f + 0.5) * perFrame)) : 'open');
  }
  return { level, spectral };
}

/** Decode `file` and measure it per video frame. */
export async function voiceFeatures(ffmpeg: string, file: string, fps: number, signal?: AbortSignal): Promise<VoiceFeatures> {
  return featuresOf(await decodeVoice(ffmpeg, file, signal), fps);
}
