/* eslint-disable @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-member-access -- wire JSON is read loosely here; the assertions check its shape */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { decodeRgb, findFace } from '../../../src/local-backend/face.js';
import { buildMouthShapes } from '../../../src/local-backend/mouth.js';
import { probeMedia, runTool } from '../../../src/local-backend/ffmpeg.js';
import { makeSamplePortrait, testTools } from '../../helpers/media.js';
import { measureMouth, quantile, withEyesShifted } from '../../helpers/mouth-metrics.js';
import { backendFixture, renderTo, talk, talkWith } from './client.js';

const fx = backendFixture('mouth');

/** 2 s of voice: silence, a loud speech-like stretch (0.6–1.4 s, or `from`–`to`), silence. */
async function loudInTheMiddle(file: string, from = 0.6, to = 1.4): Promise<string> {
  if (!existsSync(file)) {
    await runTool(testTools().ffmpeg, [
      '-v', 'error', '-y', '-f', 'lavfi',
      '-i', `aevalsrc='0.7*sin(2*PI*170*t)*(0.6+0.4*sin(2*PI*4*t))*between(t,${from},${to})':s=22050:d=2`,
      ...(file.endsWith('.mp3') ? ['-c:a', 'libmp3lame', '-b:a', '64k'] : []), file,
    ]);
  }
  return file;
}

describe('the local preview finds the face and moves its mouth', () => {
  it('finds the face on a real photo, with the mouth where the face is (upper third here), not at a fixed height', async () => {
    const { ffmpeg, ffprobe } = testTools();
    const portrait = await makeSamplePortrait(path.join(fx.dir, 'media'), 'sample1');
    const info = await probeMedia(ffprobe, portrait);
    const face = await findFace(ffmpeg, portrait, { width: info.width!, height: info.height! });
    expect(face).toBeDefined();
    expect(face!.points).toHaveLength(68);
    const mouth = face!.points.slice(48, 68);
    const xs = mouth.map((p) => p[0]);
    const ys = mouth.map((p) => p[1]);
    const centre = [(Math.min(...xs) + Math.max(...xs)) / 2, (Math.min(...ys) + Math.max(...ys)) / 2] as const;
    // Inside the face the detector found, in its lower half, and in the picture's upper part.
    const box = face!.box;
    expect(centre[0]).toBeGreaterThan(box.x);
    expect(centre[0]).toBeLessThan(box.x + box.width);
    expect(centre[1]).toBeGreaterThan(box.y + box.height / 2);
    expect(centre[1]).toBeLessThan(box.y + box.height * 1.1);
    expect(centre[1] / info.height!).toBeLessThan(0.45);
    // Below the eyes, above the chin.
    expect(centre[1]).toBeGreaterThan(face!.points[36]![1]);
    expect(centre[1]).toBeLessThan(face!.points[8]![1]);

    // The shapes made from it change nothing above the nose base, so the eyes cannot move.
    const rgb = await decodeRgb(ffmpeg, portrait, { width: info.width!, height: info.height! });
    const shapes = buildMouthShapes(rgb, info.width!, info.height!, 0, 0, face!.points);
    expect(shapes.shapes.length).toBeGreaterThan(5);
    const pixelsAround = (shape: Uint8Array, [x, y]: readonly [number, number]): number[] => {
      const out: number[] = [];
      for (let dy = -3; dy <= 3; dy++) {
        for (let dx = -3; dx <= 3; dx++) {
          const col = Math.round(x) + dx - shapes.x;
          const row = Math.round(y) + dy - shapes.y;
          if (col < 0 || row < 0 || col >= shapes.width || row >= shapes.height) continue;
          const o = (row * shapes.width + col) * 4;
          out.push(...shape.subarray(o, o + 4));
        }
      }
      return out;
    };
    for (const eye of face!.points.slice(36, 48)) {
      const still = pixelsAround(shapes.shapes[0]!, eye);
      for (const s of shapes.shapes.slice(1)) expect(pixelsAround(s, eye)).toEqual(still);
    }
    const changedBelow = shapes.shapes.slice(1).map((s) => s.some((v, i) => v !== shapes.shapes[0]![i]));
    // …and every shape but the closed one does change the mouth.
    expect(changedBelow.every(Boolean)).toBe(true);
  });

  it('a tiny render: the mouth opening rises with a loud stretch of the voice and falls back in silence; the face is cached by content', async () => {
    const b = await fx.start();
    const portrait = await makeSamplePortrait(path.join(fx.dir, 'media'), 'sample1');
    const voice = await loudInTheMiddle(path.join(fx.dir, 'media', 'loud-middle.mp3'));
    const { account, sessionId, draft, reply } = await talk(b, { portrait, voice });
    expect(reply).toMatch(/local preview, mouth animated from your voice-over/);
    expect(reply).not.toMatch(/lip-sync|no face/i);
    const faces = (await readdir(path.join(b.dataDir, 'uploads'))).filter((f) => /^face-[0-9a-f]{64}\.json$/.test(f));
    expect(faces).toHaveLength(1);

    const file = path.join(fx.dir, 'mouth.mp4');
    const done = await renderTo(b, account, sessionId, draft, 'render_mouth', file);
    // The one note says where the mouth's shapes came from (phonemes, or the spectrum without a recogniser).
    expect(done.notes).toEqual([expect.stringMatching(/^mouth shapes from the voice-over's (phonemes|spectrum)/)]);
    const m = await measureMouth(testTools(), file, { width: 360 });
    // Every frame's face is still found.
    expect(m.facesFound).toBe(m.frames);
    const during = (from: number, to: number): number[] => m.openings.slice(Math.round(from * 25), Math.round(to * 25));
    const silentBefore = quantile(during(0, 0.5), 0.5);
    const loud = quantile(during(0.7, 1.4), 0.5);
    const silentAfter = quantile(during(1.6, 2), 0.5);
    expect(loud - silentBefore).toBeGreaterThan(0.06);
    expect(loud - silentAfter).toBeGreaterThan(0.06);
    // Back to where it was, within the measure's noise for a closed mouth (a breathing bob of a
    // pixel moves the detector's lip points by about 0.04 here).
    expect(Math.abs(silentAfter - silentBefore)).toBeLessThanOrEqual(0.05);
    expect(m.rho).toBeGreaterThan(0.5);
    // The eyes stay put on the face while the mouth moves…
    expect(m.eyeMovement).toBeLessThanOrEqual(0.05);
    // …and the measure would see it if they did not: the same render with each eye cut out and
    // put back up to 6 % of the eye distance off (about 5 px here), wandering frame by frame.
    const shifted = path.join(fx.dir, 'mouth-eyes-shifted.mp4');
    await withEyesShifted(testTools(), file, shifted, 0.06);
    const wrong = await measureMouth(testTools(), shifted, { width: 360 });
    expect(wrong.eyeMovement).toBeGreaterThan(0.05);

    // Same portrait bytes again, in another session: the face is not looked for again.
    await talk(b, { portrait, voice });
    expect((await readdir(path.join(b.dataDir, 'uploads'))).filter((f) => f.startsWith('face-'))).toHaveLength(1);
  });

  it('a looping clip ends on a frame that flows into its first: the mouth closes by the end even while the voice is loud', async () => {
    const b = await fx.start();
    const portrait = await makeSamplePortrait(path.join(fx.dir, 'media'), 'sample1');
    // A WAV: no encoder padding, so the voice is loud up to the clip's very last frame.
    const voice = await loudInTheMiddle(path.join(fx.dir, 'media', 'loud-end.wav'), 1, 2.1);
    const { account, sessionId, draft } = await talkWith(b, { portrait, voice }, 'make this photo talk and loop the animation infinitely');
    const file = path.join(fx.dir, 'loop.mp4');
    await renderTo(b, account, sessionId, draft, 'render_loop', file);
    const m = await measureMouth(testTools(), file, { width: 360 });
    expect(m.facesFound).toBe(m.frames);
    const first = m.openings[0]!;
    const last = m.openings[m.frames - 1]!;
    const loud = quantile(m.openings.slice(35, 45), 0.5);
    expect(loud - first).toBeGreaterThan(0.06);
    // Measured 0.01 apart; 0.05 when the track is not closed at the end (checked by hand).
    expect(Math.abs(last - first)).toBeLessThanOrEqual(0.03);
  });

  it('a still image scores as a still: rho 0 and no opening range', async () => {
    const { ffmpeg } = testTools();
    const portrait = await makeSamplePortrait(path.join(fx.dir, 'media'), 'sample1');
    const voice = await loudInTheMiddle(path.join(fx.dir, 'media', 'loud-middle.mp3'));
    const still = path.join(fx.dir, 'still.mp4');
    await runTool(ffmpeg, ['-v', 'error', '-y', '-loop', '1', '-i', portrait, '-i', voice, '-t', '2', '-r', '25', '-vf', 'scale=720:1280,format=yuv420p', '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '30', '-c:a', 'aac', still]);
    // Measured as the render above is: the same size and decode width.
    const m = await measureMouth(testTools(), still, { width: 360 });
    expect(m.facesFound).toBe(m.frames);
    expect(m.range).toBeLessThan(0.02);
    expect(Math.abs(m.rho)).toBeLessThan(0.2);
  });

  it('a portrait without a face keeps the whole-picture motion and says so in the reply and the render notes', async () => {
    const b = await fx.start();
    const { account, sessionId, draft, reply } = await talk(b, fx.media);
    expect(reply).toMatch(/found no face in "portrait\.jpg"/);
    const done = await renderTo(b, account, sessionId, draft, 'render_noface', path.join(fx.dir, 'noface.mp4'));
    expect(done.notes).toEqual([expect.stringMatching(/^no face found in the portrait/)]);
    // Still moving: frames differ over time.
    const { stdout } = await runTool(testTools().ffmpeg, ['-v', 'error', '-i', path.join(fx.dir, 'noface.mp4'), '-an', '-f', 'framemd5', '-']);
    const hashes = new Set(stdout.toString().split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(',').pop()));
    expect(hashes.size).toBeGreaterThan(5);
  });
});
