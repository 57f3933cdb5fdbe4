// Where a download's time and memory go: a plain node file server (in this process) sends one
// file of random bytes, and each way of receiving it runs in its own fresh process
// (download-paths-child.ts, bundled as the CLI ships), beside curl, in interleaved rounds.
// Prints the median and range of each; asserts nothing. This is the evidence behind the
// download figures in notes/backend.md: how much of the gap to curl is the HTTP client and how
// much is hashing, writing and fsync.
//
//   node --import tsx bench/download-paths.bench.ts [--mb 200] [--rounds 5]
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { bundleChild, curl, run } from './lib/child.js';

const MB = 1024 * 1024;
const { values } = parseArgs({ options: { mb: { type: 'string', default: '200' }, rounds: { type: 'string', default: '5' } } });
const sizeMb = Number(values.mb);
const rounds = Number(values.rounds);
const MODES = ['undici-pipeline', 'undici-dispatch', 'node-pipeline', 'undici-drop', 'node-drop'] as const;

const dir = mkdtempSync(path.join(tmpdir(), 'talk-bench-download-'));
const file = path.join(dir, 'video.mp4');
const fd = openSync(file, 'w');
for (let i = 0; i < sizeMb; i += 1) writeSync(fd, randomBytes(MB));
closeSync(fd);
const expected = createHash('sha256').update(readFileSync(file)).digest('hex');
const child = await bundleChild('download-paths-child', dir);

const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': sizeMb * MB });
  createReadStream(file, { highWaterMark: MB }).pipe(res);
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/video.mp4`;
const dest = path.join(dir, 'out.mp4');

const times = new Map<string, number[]>();
const rss = new Map<string, number[]>();
const note = (name: string, ms: number, maxRssMB?: number): void => {
  times.set(name, [...(times.get(name) ?? []), ms]);
  if (maxRssMB !== undefined) rss.set(name, [...(rss.get(name) ?? []), maxRssMB]);
};
try {
  for (let round = 0; round < rounds; round += 1) {
    const fetched = await curl(['-o', dest, url]);
    note('curl -o', fetched.ms, fetched.maxRssMB);
    const t0 = performance.now();
    await run('sync', ['-d', dest]);
    note('curl -o, then sync -d', fetched.ms + (performance.now() - t0));
    rmSync(dest);
    for (const mode of MODES) {
      const out = JSON.parse((await run(process.execPath, [child, mode, url, dest], { encoding: 'utf8' })).stdout) as { ms: number; maxRssMB: number; bytes: number; sha256: string };
      if (out.bytes !== sizeMb * MB) throw new Error(`${mode}: ${out.bytes} bytes`);
      if (!mode.endsWith('-drop') && (out.sha256 !== expected || createHash('sha256').update(readFileSync(dest)).digest('hex') !== expected)) throw new Error(`${mode}: wrong bytes`);
      note(mode, out.ms, out.maxRssMB);
      rmSync(dest, { force: true });
    }
  }
} finally {
  server.close();
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
};
const span = (xs: number[]): string => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;
const curlMedian = median(times.get('curl -o') ?? []);
console.log(`${sizeMb} MB, ${rounds} rounds, load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
console.log('| receiver | time: median (range) | speed vs curl (medians) | peak RSS |');
console.log('|---|---|---|---|');
for (const [name, ms] of times) {
  const mem = rss.get(name);
  console.log(`| ${name} | ${median(ms).toFixed(0)} ms (${span(ms)}) | ${(curlMedian / median(ms)).toFixed(2)}× | ${mem ? `${span(mem)} MB` : '—'} |`);
}
