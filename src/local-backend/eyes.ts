/**
 * Blinks for the local preview. The eyes never move over the face; only their lids do, a few
 * frames at a time, every few seconds:
 *
 * - `blinkSchedule`: per video frame, how far the lids are closed (0, ½ or 1), deterministic
 *   from a seed the render derives from its own inputs — the same render always blinks at the
 *   same frames, so its cached file is the same file. A looping clip neither starts nor ends
 *   mid-blink.
 * - `buildBlinkShapes`: two RGBA patches over both eyes (lids half and fully closed), warped once
 *   from the landmarks: the lid skin between the upper lid and the brow is stretched down to
 *   the closing line, a lash line drawn along it. Pixels the warp leaves alone are transparent,
 *   and the corners of the eyes stay where they are (the measure of eye movement uses them).
 */
import type { Point } from './face.js';
import { curve, sampleInto } from './mouth.js';
import { createRandom } from './random.js';

/**
 * How far a closed lid comes down, in eye openings: a little past the lower lid's landmarks,
 * which sit above the lashes, so no iris shows through a closed eye.
 */
const CLOSED = 1.2;

/** Lid closure of a blink's frames at 25 fps: closing, closed, closed, opening (160 ms). */
const BLINK = [0.5, 1, 1, 0.5] as const;

/**
 * Per frame, the lids' closure (0 open … 1 closed). The first blink comes 1–2.5 s in, then one
 * every 2.8–5.5 s (people blink about every 3–6 s while talking).
 */
export function blinkSchedule(frames: number, fps: number, seed: number, loop: boolean): number[] {
  const random = createRandom(seed);
  const out = new Array<number>(frames).fill(0);
  let at = Math.round((1 + 1.5 * random()) * fps);
  // A looping clip's last frame must flow into its first, which is open.
  const last = frames - (loop ? 2 : 0);
  while (at + BLINK.length <= last) {
    BLINK.forEach((c, k) => (out[at + k] = c));
    at += Math.round((2.8 + 2.7 * random()) * fps);
  }
  return out;
}

/** A 32-bit seed from numbers (FNV-1a over their values at 1/256 resolution). */
export function seedOf(values: readonly number[]): number {
  let h = 0x811c9dc5;
  for (const v of values) {
    h ^= Math.round(v * 256) & 0xffff;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The blink patches of one portrait, placed on the composed canvas. */
export interface BlinkShapes {
  /** Top-left corner on the canvas (even) and size (even). */
  x: number;
  y: number;
  width: number;
  height: number;
  /** RGBA: lids half closed, fully closed. */
  half: Uint8Array;
  closed: Uint8Array;
}

const even = (n: number): number => Math.round(n / 2) * 2;

/** One eye's outline: corners and lid curves. */
interface Eye {
  x0: number;
  x1: number;
  upper: (x: number) => number;
  lower: (x: number) => number;
  /** How far above the upper lid the lid skin reaches (the part that is stretched down). */
  skin: number;
}

function eyeOf(pts: readonly Point[], [c0, u0, u1, c1, l1, l0]: readonly number[]): Eye {
  const a = pts[c0!]!;
  const b = pts[c1!]!;
  const width = Math.hypot(b[0] - a[0], b[1] - a[1]);
  return {
    x0: Math.min(a[0], b[0]),
    x1: Math.max(a[0], b[0]),
    upper: curve([a, pts[u0!]!, pts[u1!]!, b]),
    lower: curve([a, pts[l0!]!, pts[l1!]!, b]),
    skin: 0.35 * width,
  };
}

/**
 * Warp both eyes' lids of `rgb` (the portrait as fitted on the canvas: `fw`×`fh` RGB pixels
 * whose top-left sits at `fx`,`fy`), given the 68 landmarks in the same fitted-portrait pixels.
 */
export function buildBlinkShapes(rgb: Uint8Array, fw: number, fh: number, fx: number, fy: number, pts: readonly Point[]): BlinkShapes {
  // dlib order: 36 outer corner, 37–38 upper lid, 39 inner corner, 40–41 lower lid (and so on).
  const eyes = [eyeOf(pts, [36, 37, 38, 39, 40, 41]), eyeOf(pts, [42, 43, 44, 45, 46, 47])];
  let left = Infinity;
  let right = -Infinity;
  let top = Infinity;
  let bottom = -Infinity;
  for (const e of eyes) {
    left = Math.min(left, e.x0);
    right = Math.max(right, e.x1);
    for (let x = e.x0; x <= e.x1; x += 1) {
      top = Math.min(top, e.upper(x) - e.skin);
      bottom = Math.max(bottom, e.lower(x) + (CLOSED - 1) * (e.lower(x) - e.upper(x)));
    }
  }
  const x0 = Math.max(0, even(fx + Math.floor(left) - 2) - fx);
  const y0 = Math.max(0, even(fy + Math.floor(top) - 2) - fy);
  const width = Math.max(2, Math.floor((Math.min(fw, Math.ceil(right) + 3) - x0) / 2) * 2);
  const height = Math.max(2, Math.floor((Math.min(fh, Math.ceil(bottom) + 3) - y0) / 2) * 2);

  const shape = (closure: number): Uint8Array => {
    const out = new Uint8Array(width * height * 4);
    for (const e of eyes) {
      const cx = (e.x0 + e.x1) / 2;
      const hw = Math.max(1, (e.x1 - e.x0) / 2);
      for (let col = 0; col < width; col++) {
        const x = x0 + col + 0.5;
        const t = (x - cx) / hw;
        if (t * t >= 1) continue;
        // Full closure in the middle of the eye, none at the corners.
        const lens = Math.sqrt(1 - t * t);
        const up = e.upper(x);
        const low = e.lower(x);
        const line = up + closure * lens * Math.max(0, low - up);
        const skinTop = up - e.skin;
        for (let row = 0; row < height; row++) {
          const y = y0 + row + 0.5;
          if (y < skinTop || y > Math.max(line, up) + 1) continue;
          // Lid skin [skinTop, up] is stretched over [skinTop, line]; below the line, the eye as it is.
          const sy = y <= line ? skinTop + ((y - skinTop) * (up - skinTop)) / Math.max(1e-6, line - skinTop) : y;
          const o = (row * width + col) * 4;
          sampleInto(out, o, rgb, fw, fh, x - 0.5, sy - 0.5);
          // The lashes meet along the closing line: a soft dark line there.
          const d = Math.abs(y - line);
          const lash = closure > 0 ? Math.max(0, 1 - d / 1.5) * 0.45 * lens : 0;
          for (let c = 0; c < 3; c++) out[o + c] = out[o + c]! * (1 - lash) + 30 * lash;
          out[o + 3] = 255;
        }
      }
    }
    return out;
  };
  return { x: fx + x0, y: fy + y0, width, height, half: shape(0.55), closed: shape(CLOSED) };
}

