// A big `talk plan`: the built CLI plans a `foreach` of N portraits and voice-overs (hard links
// to the test media; goal for 100,000 items: ≤ 10 s, ≤ 600 MB peak RSS). Wall time and peak RSS
// from /usr/bin/time, median of the runs; asserts nothing (figures in bench/notes/runner.md).
//
//   node --import tsx bench/plan.bench.ts [--items 100000] [--runs 3]
//   BENCH_BASELINE=<another checkout, built> …   runs that checkout's CLI in the same rounds
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile, copyFile } from 'node:fs/promises';
import { linkSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { makeTestMedia } from '../test/helpers/media.js';
import { bigForeachYaml } from './lib/big-foreach.js';

const run = promisify(execFile);
const { values } = parseArgs({ options: { items: { type: 'string', default: '100000' }, runs: { type: 'string', default: '3' } } });
const items = Number(values.items);
const runs = Number(values.runs);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const clis: [string, string][] = [['this checkout', path.join(repoRoot, 'bin', 'talk.js')]];
if (process.env['BENCH_BASELINE']) clis.push(['baseline', path.join(path.resolve(process.env['BENCH_BASELINE']), 'bin', 'talk.js')]);

const root = await mkdtemp(path.join(tmpdir(), 'talk-plan-bench-'));
try {
  const media = await makeTestMedia(path.join(root, 'media'));
  await mkdir(path.join(root, 'faces'));
  await mkdir(path.join(root, 'voices'));
  // A file system allows some tens of thousands of links to one file: a fresh copy every 50,000.
  let portrait = '';
  let voice = '';
  for (let i = 0; i < items; i += 1) {
    if (i % 50_000 === 0) {
      portrait = path.join(root, 'media', `p${i}.jpg`);
      voice = path.join(root, 'media', `v${i}.mp3`);
      await copyFile(media.portrait, portrait);
      await copyFile(media.voice, voice);
    }
    linkSync(portrait, path.join(root, 'faces', `p${i}.jpg`));
    linkSync(voice, path.join(root, 'voices', `p${i}.mp3`));
  }
  await writeFile(
    path.join(root, 'big.yaml'),
    bigForeachYaml(),
  );
  const samples = new Map<string, { s: number; mb: number }[]>();
  for (let r = 0; r < runs; r += 1) {
    for (const [label, cli] of clis) {
      // Output to /dev/null through the shell: the text (37 MB at 100,000 items) is not kept here.
      const { stderr } = await run('/bin/sh', ['-c', `/usr/bin/time -f '%e %M' "${process.execPath}" "${cli}" plan big.yaml > /dev/null`], {
        cwd: root,
        env: { ...process.env, HOME: path.join(root, `home-${label.replace(/\W/g, '')}`) },
        maxBuffer: 1 << 20,
      });
      const [seconds, kb] = stderr.trim().split('\n').at(-1)?.split(' ').map(Number) ?? [];
      samples.set(label, [...(samples.get(label) ?? []), { s: seconds ?? NaN, mb: (kb ?? NaN) / 1024 }]);
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  console.log(`talk plan of a ${items}-item foreach, ${runs} rounds · load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  for (const [label, xs] of samples) {
    console.log(`  ${label}: wall ${median(xs.map((x) => x.s)).toFixed(1)} s (${xs.map((x) => x.s.toFixed(1)).join(' / ')}) · peak RSS ${median(xs.map((x) => x.mb)).toFixed(0)} MB (goal ≤ 10 s, ≤ 600 MB)`);
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
