/**
 * The talking mouth of the local preview, in three parts:
 *
 * 1. `mouthTrack`: per video frame, how open the mouth is (the voice's loudness envelope, with a
 *    noise gate so silence closes it) and which shape family it takes, from the frame's mouth
 *    class (`voice.ts`: phonemes when a recogniser is installed, else the spectrum): open (a),
 *    rounded (o/u), wide (e/i); closed (m/b/p) presses the lips together whatever the loudness.
 * 2. `buildMouthShapes`: a handful of warped versions of the lower face, made once per render
 *    from the landmarks: the jaw and lower lip drop, the upper lip lifts a little, the lips part
 *    over a dark interior, the corners draw in (rounded: a narrower, taller opening) or out
 *    (wide: a wider, lower one). Nothing above the nose base moves, so the eyes stay put.
 * 3. `mouthFrames`: one RGBA patch per frame, a crossfade of at most two neighbouring shapes,
 *    overlaid by ffmpeg on the still (decoded once).
 */
import type { Point } from './face.js';
import type { MouthClass } from './voice.js';

/** Shape families: the mouth classes that have an opening. */
export type MouthFamily = Exclude<MouthClass, 'closed'>;

/** Openness levels of each family (0 = the portrait as it is, shared by all families). */
const LEVELS = [0.25, 0.5, 0.75, 1] as const;
/** `sx`: the opening's width against the mouth's; `open`: its height against an open "a". */
const FAMILIES: readonly { family: MouthFamily; sx: number; open: number }[] = [
  { family: 'open', sx: 1, open: 1 },
  { family: 'rounded', sx: 0.62, open: 0.95 },
  { family: 'wide', sx: 1.25, open: 0.6 },
];

/** Per frame: openness 0..1 and family. */
export interface MouthTrack {
  open: number[];
  family: MouthFamily[];
}

/** What the track is made from, per frame of the voice. */
export interface MouthSource {
  /** Loudness envelope, 0..1. */
  level: readonly number[];
  /** Mouth class of each voice frame. */
  classes: readonly MouthClass[];
}

/** Below this envelope level the mouth is closed (breath, room noise, the tail of a word). */
const GATE = 0.12;
/** How open a loud closed-class frame (m/b/p) leaves the mouth: lips pressed, barely apart. */
const CLOSED_OPENNESS = 0.08;

/**
 * The mouth track for `frames` video frames. `voiceFrame(f)` maps a video frame to a frame of
 * the voice (or -1 where no voice plays); `loop` closes the mouth at the clip's end so its last
 * frame flows into the first.
 */
export function mouthTrack(source: MouthSource, frames: number, voiceFrame: (f: number) => number, loop: boolean): MouthTrack {
  const open: number[] = [];
  const raw: (MouthFamily | undefined)[] = [];
  for (let f = 0; f < frames; f++) {
    const v = voiceFrame(f);
    const level = v >= 0 ? (source.level[v] ?? 0) : 0;
    const cls = v >= 0 ? (source.classes[v] ?? 'open') : 'closed';
    const o = Math.min(1, Math.max(0, (level - GATE) / (1 - GATE)) ** 0.8);
    open.push(cls === 'closed' ? Math.min(o, CLOSED_OPENNESS) : o);
    raw.push(cls === 'closed' ? undefined : cls);
  }
  // A closed frame keeps the family around it (the lips close from the shape they are in).
  for (let f = 0; f < frames; f++) raw[f] ??= raw[f - 1];
  for (let f = frames - 1; f >= 0; f--) raw[f] ??= raw[f + 1];
  // A class must hold for a few frames (the most common of five) or the mouth would flicker.
  const family = raw.map((_, f) => {
    const counts = new Map<MouthFamily, number>();
    for (let k = Math.max(0, f - 2); k <= Math.min(frames - 1, f + 2); k++) {
      const fam = raw[k] ?? 'open';
      counts.set(fam, (counts.get(fam) ?? 0) + 1);
    }
    const own = raw[f] ?? 'open';
    // Ties keep the frame's own class.
    return [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] === own ? -1 : b[0] === own ? 1 : 0))[0]![0];
  });
  if (loop && frames > 0) {
    // Close over the last 4 frames; the first frame is then the same closed mouth.
    for (let k = 0; k < Math.min(4, frames); k++) open[frames - 1 - k] = open[frames - 1 - k]! * (k / 4);
    open[0] = 0;
  }
  return { open, family };
}

/** The lower-face shapes of one portrait, as RGBA patches placed on the composed canvas. */
export interface MouthShapes {
  /** Top-left corner on the canvas (even) and size (even). */
  x: number;
  y: number;
  width: number;
  height: number;
  /** shapes[0] is the portrait as it is; then each family's levels in order. */
  shapes: Uint8Array[];
}

const smooth = (t: number): number => (t <= 0 ? 0 : t >= 1 ? 1 : t * t * (3 - 2 * t));

/** Piecewise-linear y(x) through points sorted by x, flat beyond the ends. */
export function curve(points: readonly Point[]): (x: number) => number {
  const pts = [...points].sort((a, b) => a[0] - b[0]);
  return (x) => {
    if (x <= pts[0]![0]) return pts[0]![1];
    for (let i = 1; i < pts.length; i++) {
      const [x1, y1] = pts[i]!;
      const [x0, y0] = pts[i - 1]!;
      if (x <= x1) return x1 === x0 ? y1 : y0 + ((y1 - y0) * (x - x0)) / (x1 - x0);
    }
    return pts[pts.length - 1]![1];
  };
}

const mean = (pts: readonly Point[], idx: readonly number[]): Point => {
  let x = 0;
  let y = 0;
  for (const i of idx) {
    x += pts[i]![0];
    y += pts[i]![1];
  }
  return [x / idx.length, y / idx.length];
};

const even = (n: number): number => Math.round(n / 2) * 2;

/**
 * Warp the lower face of `rgb` (the portrait as fitted on the canvas: `fw`×`fh` RGB pixels whose
 * top-left sits at `fx`,`fy` on the canvas) into the shapes, given the 68 landmarks in the same
 * fitted-portrait pixels.
 */
export function buildMouthShapes(rgb: Uint8Array, fw: number, fh: number, fx: number, fy: number, pts: readonly Point[]): MouthShapes {
  const eyeL = mean(pts, [36, 37, 38, 39, 40, 41]);
  const eyeR = mean(pts, [42, 43, 44, 45, 46, 47]);
  const iod = Math.hypot(eyeR[0] - eyeL[0], eyeR[1] - eyeL[1]);
  const cornerL = pts[48]!;
  const cornerR = pts[54]!;
  const cx = (cornerL[0] + cornerR[0]) / 2;
  const hw = Math.max(2, (cornerR[0] - cornerL[0]) / 2);
  const noseY = pts[33]![1];
  // The line the lips part along: the upper inner lip, reaching the outer corners.
  const upperInner = curve([cornerL, pts[61]!, pts[62]!, pts[63]!, cornerR]);
  const chin = curve([4, 5, 6, 7, 8, 9, 10, 11, 12].map((i) => pts[i]!));
  const jawL = Math.min(...[3, 4, 5].map((i) => pts[i]![0]));
  const jawR = Math.max(...[11, 12, 13].map((i) => pts[i]![0]));
  const mouthY = (upperInner(cx) + pts[57]![1]) / 2;
  const chinY = pts[8]![1];
  // Widest opening: about a quarter of the distance between the eyes (a wide "ah"). A third
  // looked overdone and pulled the landmark net's eye estimates along with the jaw.
  const maxDrop = 0.27 * iod;
  const neck = Math.max(2 * maxDrop + 4, 0.35 * (chinY - mouthY));

  const left = Math.max(0, Math.floor(Math.min(jawL, cornerL[0] - hw) - 0.1 * iod));
  const right = Math.min(fw, Math.ceil(Math.max(jawR, cornerR[0] + hw) + 0.1 * iod));
  const top = Math.max(0, Math.floor(noseY - 2));
  const bottom = Math.min(fh, Math.ceil(chinY + neck + maxDrop + 0.1 * iod));
  // Even position and size on the canvas (yuv420p overlay), inside the fitted portrait.
  const x0 = even(fx + left) - fx;
  const y0 = even(fy + top) - fy;
  const width = Math.max(2, Math.floor((Math.min(fw, right) - Math.max(0, x0)) / 2) * 2);
  const height = Math.max(2, Math.floor((Math.min(fh, bottom) - Math.max(0, y0)) / 2) * 2);
  const px = Math.max(0, x0);
  const py = Math.max(0, y0);

  // Alpha: opaque inside, a soft border (the warp is the identity near the border anyway).
  const feather = Math.max(2, Math.round(Math.min(width, height) * 0.08));
  const edge = (d: number): number => Math.min(1, d / feather);

  const sample = (out: Uint8Array, o: number, sx: number, sy: number): void => sampleInto(out, o, rgb, fw, fh, sx, sy);


  const alphaOf = (col: number, row: number): number => 255 * edge(col + 0.5) * edge(width - col - 0.5) * edge(row + 0.5) * edge(height - row - 0.5);

  const identity = new Uint8Array(width * height * 4);
  for (let row = 0; row < height; row++) {
    for (let col = 0; col < width; col++) {
      const o = (row * width + col) * 4;
      sample(identity, o, px + col, py + row);
      identity[o + 3] = alphaOf(col, row);
    }
  }
  const shapes: Uint8Array[] = [identity];
  const interior = [34, 14, 18];
  const ys = new Float64Array(height);
  for (const fam of FAMILIES) {
    for (const level of LEVELS) {
      const drop = maxDrop * level * fam.open;
      const out = new Uint8Array(width * height * 4);
      const mouthHalf = hw * fam.sx;
      for (let col = 0; col < width; col++) {
        const x = px + col;
        const dx = x - cx;
        const t = dx / mouthHalf;
        const lens = t * t < 1 ? (1 - t * t) ** 0.6 : 0;
        const jawSpan = dx < 0 ? cx - jawL : jawR - cx;
        const jaw = Math.abs(dx) <= hw ? 1 : 0.5 + 0.5 * Math.cos(Math.PI * Math.min(1, (Math.abs(dx) - hw) / Math.max(1, jawSpan - hw)));
        // The upper lip lifts a little; the rest of the opening is the lower lip and the jaw.
        const lift = drop * 0.1 * lens;
        const fall = drop * (0.45 * jaw + 0.55 * lens);
        const gap = lift + fall;
        // Inside the mouth the lips part at once (the fold is hidden by the interior); towards
        // the corners the skin stretches over a band three times the drop, so it never folds.
        const band = Math.max(1, (3 * fall + 2) * (1 - Math.min(1, lens / 0.35)) + Math.min(1, lens / 0.35));
        const split = upperInner(x);
        const splitOut = split - lift;
        const chinX = chin(x);
        // Corners draw in (rounded) or out (wide) near the mouth, nowhere else.
        const hx = (1 - Math.min(1, (dx / (2.2 * hw)) ** 2)) ** 2;
        let maxSource = -Infinity;
        for (let row = 0; row < height; row++) {
          const y = py + row;
          let sy: number;
          if (y < splitOut) {
            const a = 1 - smooth((splitOut - y) / Math.max(1, splitOut - noseY));
            sy = y + lift * a;
          } else {
            const s = smooth((y - splitOut) / band);
            const c = 1 - smooth((y - chinX) / neck);
            sy = y + (lift - gap * s) * c;
          }
          ys[row] = sy;
          const o = (row * width + col) * 4;
          const vy = (y - mouthY) / Math.max(1, 0.55 * (chinY - noseY));
          const hy = vy * vy < 1 ? (1 - vy * vy) ** 2 : 0;
          const sx = x + (1 - fam.sx) * dx * hx * hy;
          sample(out, o, sx, sy);
          // Where the mapping goes back over rows already shown, or stretches them thin, the
          // lips have parted: paint the mouth's dark interior there.
          const back = maxSource - sy;
          const stretch = row > 0 ? sy - ys[row - 1]! : 1;
          const dark = lens > 0 && y >= splitOut - 0.5 ? Math.max(Math.min(1, back / 1.5), stretch < 0.5 ? Math.min(1, (0.5 - stretch) / 0.3) : 0) * Math.min(1, lens * 3) : 0;
          if (dark > 0) {
            // A shade lighter towards the bottom, as light falls into an open mouth.
            const depth = Math.min(1, Math.max(0, (y - splitOut) / Math.max(1, gap)));
            for (let c = 0; c < 3; c++) out[o + c] = out[o + c]! * (1 - dark) + (interior[c]! + 18 * depth) * dark;
          }
          maxSource = Math.max(maxSource, sy);
          out[o + 3] = alphaOf(col, row);
        }
      }
      shapes.push(out);
    }
  }
  return { x: fx + px, y: fy + py, width, height, shapes };
}

/** Index in `MouthShapes.shapes` of a family's level (1-based level index; 0 = closed). */
function shapeIndex(family: MouthFamily, level: number): number {
  if (level <= 0) return 0;
  const f = FAMILIES.findIndex((x) => x.family === family);
  return 1 + f * LEVELS.length + (level - 1);
}

/** One frame's blend: shape `a` at weight 1 − `w`, shape `b` at weight `w`. */
export interface FrameBlend {
  a: number;
  b: number;
  w: number;
}

/**
 * The per-frame blend of shapes for a track: openness picks two neighbouring levels of the
 * frame's family; the weights are smoothed over time (so a change of family or a jump in
 * loudness crossfades over a few frames) and the two heaviest shapes are kept.
 */
export function blendsFor(track: MouthTrack, shapeCount = 1 + FAMILIES.length * LEVELS.length): FrameBlend[] {
  const smoothed = new Float64Array(shapeCount);
  return track.open.map((o, f) => {
    const pos = o * LEVELS.length;
    const lo = Math.floor(pos);
    const family = track.family[f] ?? 'open';
    const target = new Float64Array(shapeCount);
    target[shapeIndex(family, Math.min(LEVELS.length, lo))]! += 1 - (pos - lo);
    target[shapeIndex(family, Math.min(LEVELS.length, lo + 1))]! += pos - lo;
    for (let i = 0; i < shapeCount; i++) smoothed[i] = f === 0 ? target[i]! : smoothed[i]! + (target[i]! - smoothed[i]!) * 0.65;
    let a = 0;
    let b = 0;
    for (let i = 0; i < shapeCount; i++) if (smoothed[i]! > smoothed[a]!) a = i;
    b = a === 0 ? 1 : 0;
    for (let i = 0; i < shapeCount; i++) if (i !== a && smoothed[i]! > smoothed[b]!) b = i;
    const total = smoothed[a]! + smoothed[b]!;
    return { a, b, w: total > 0 ? smoothed[b]! / total : 0 };
  });
}

/** The RGBA patch of every frame, in order: a shape as it is, or two crossfaded. */
export function* mouthFrames(shapes: MouthShapes, blends: readonly FrameBlend[]): Generator<Uint8Array> {
  const size = shapes.width * shapes.height * 4;
  for (const { a, b, w } of blends) {
    const A = shapes.shapes[a]!;
    const B = shapes.shapes[b]!;
    if (w < 0.02) yield A;
    else if (w > 0.98) yield B;
    else {
      // A fresh buffer per blended frame: the consumer may still hold the previous one.
      const out = new Uint8Array(size);
      for (let i = 0; i < size; i++) out[i] = A[i]! + (B[i]! - A[i]!) * w;
      yield out;
    }
  }
}

/** Bilinear sample of RGB `rgb` (`fw`×`fh`) at (sx, sy) into `out` at `o` (shared with the eyes' blink patches). */
export function sampleInto(out: Uint8Array, o: number, rgb: Uint8Array, fw: number, fh: number, sx: number, sy: number): void {
  const xf = Math.min(fw - 1.001, Math.max(0, sx));
  const yf = Math.min(fh - 1.001, Math.max(0, sy));
  const xi = Math.floor(xf);
  const yi = Math.floor(yf);
  const ax = xf - xi;
  const ay = yf - yi;
  const i00 = (yi * fw + xi) * 3;
  const i10 = i00 + 3;
  const i01 = i00 + fw * 3;
  const i11 = i01 + 3;
  for (let c = 0; c < 3; c++) {
    const top = rgb[i00 + c]! + (rgb[i10 + c]! - rgb[i00 + c]!) * ax;
    const bot = rgb[i01 + c]! + (rgb[i11 + c]! - rgb[i01 + c]!) * ax;
    out[o + c] = top + (bot - top) * ay;
  }
}
