// A contact sheet of a video, to look at it as a viewer would: rows of frames (every `--every`th,
// cropped to `--crop`), each row over the waveform of the audio it spans, so an open mouth can
// be matched with the sound under it. One ffmpeg run; the picture is a PNG.
//
//   node --import tsx bench/contact-sheet.ts VIDEO.mp4 OUT.png [--crop W:H:X:Y] [--rows 3] [--cols 8] [--every 4] [--tile 200]
import path from 'node:path';
import { parseArgs } from 'node:util';
import { findFfmpeg, probeMedia, runTool } from '../src/local-backend/ffmpeg.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    crop: { type: 'string' },
    rows: { type: 'string', default: '3' },
    cols: { type: 'string', default: '8' },
    every: { type: 'string', default: '4' },
    tile: { type: 'string', default: '200' },
  },
});
const [video, out] = positionals;
if (!video || !out) throw new Error('usage: contact-sheet.ts VIDEO.mp4 OUT.png [--crop W:H:X:Y] [--rows 3] [--cols 8] [--every 4] [--tile 200]');
const tools = findFfmpeg(process.env);
const info = await probeMedia(tools.ffprobe, video);
const fps = info.fps ?? 25;
const rows = Number(values.rows);
const cols = Number(values.cols);
const every = Number(values.every);
const tile = Number(values.tile);
const crop = values.crop ?? `${info.width}:${info.height}:0:0`;
const [cw, ch] = crop.split(':').map(Number) as [number, number];
const th = Math.round((tile * ch) / cw / 2) * 2;
const perRow = cols * every;
const parts = [`[0:v]split=${rows}${[...Array(rows).keys()].map((r) => `[v${r}]`).join('')}`, `[0:a]asplit=${rows}${[...Array(rows).keys()].map((r) => `[a${r}]`).join('')}`];
const stack: string[] = [];
for (let r = 0; r < rows; r++) {
  const first = r * perRow;
  const t0 = first / fps;
  const t1 = (first + perRow) / fps;
  parts.push(
    `[v${r}]select='between(n\\,${first}\\,${first + perRow - 1})*not(mod(n\\,${every}))',crop=${crop},scale=${tile}:${th},tile=${cols}x1,format=rgb24[row${r}]`,
    `[a${r}]atrim=${t0.toFixed(3)}:${t1.toFixed(3)},asetpts=PTS-STARTPTS,showwavespic=s=${cols * tile}x48:colors=0x40a0ff[wave${r}]`,
    `color=c=black:s=${cols * tile}x48[bg${r}]`,
    `[bg${r}][wave${r}]overlay=format=auto,format=rgb24[strip${r}]`,
  );
  stack.push(`[row${r}]`, `[strip${r}]`);
}
parts.push(`${stack.join('')}vstack=${stack.length}`);
await runTool(tools.ffmpeg, ['-v', 'error', '-y', '-i', path.resolve(video), '-filter_complex', parts.join(';'), '-frames:v', '1', path.resolve(out)]);
console.log(`wrote ${out}: ${rows} rows of ${cols} frames (every ${every}th from frame 0) over the audio they span`);
