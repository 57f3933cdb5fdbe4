// Where a download's time and memory go: `talk serve`, in its own process, sends one upload of
// random bytes back, and each way of receiving it runs in its own fresh process
// (download-paths-child.ts, bundled as the CLI ships), beside the same work done by tools —
// `curl -o f`, then `openssl dgst -sha256 f`, then `sync -d f` (fdatasync of that file, the
// durability the client gives) — and curl alone, in interleaved rounds. Prints the median and
// range of each, its CPU time and peak RSS; asserts nothing. This is the evidence behind the
// download figures in notes/backend.md.
//
//   node --import tsx bench/download-paths.bench.ts [--mb 200] [--rounds 5] [--modes talk,talk@plain,…]
//
// Each receiver runs under the V8 flags `talk run` sets (src/main.ts); a mode ending in
// `@v8-defaults` runs under V8's own, e.g. `talk@v8-defaults` is the client before
// `--liftoff-only` kept undici's llhttp from tiering up.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createBackendClient, createTokenProvider } from '../src/backend/index.js';
import { bundleChild, curl, run } from './lib/child.js';
import { serveProcess } from './lib/serve.js';

// Decimal megabytes: 200 MB is under the contract's upload limit of 200 MiB, which the file
// must pass through to be served.
const MB = 1_000_000;
const MIB = 1024 * 1024;
const { values } = parseArgs({
  options: {
    mb: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '5' },
    modes: { type: 'string', default: 'talk,talk@v8-defaults,talk-worker-hash,undici-dispatch,node-pipeline,undici-drop,undici-drop@v8-defaults,node-drop' },
  },
});
const sizeMb = Number(values.mb);
const rounds = Number(values.rounds);
const MODES = values.modes.split(',');

const dir = mkdtempSync(path.join(tmpdir(), 'talk-bench-download-'));
const file = path.join(dir, 'video.mp4');
const fd = openSync(file, 'w');
for (let left = sizeMb * MB; left > 0; left -= MIB) writeSync(fd, randomBytes(Math.min(MIB, left)));
closeSync(fd);
const expected = createHash('sha256').update(readFileSync(file)).digest('hex');
const child = await bundleChild('download-paths-child', dir);

// The file goes up once; every receiver then fetches its cdn_url from the same `talk serve`.
const server = await serveProcess(path.join(dir, 'backend'), {});
const tokens = createTokenProvider({ env: {}, configDir: path.join(dir, 'config'), baseUrl: server.url, persistToken: false });
const client = createBackendClient({ baseUrl: server.url, auth: tokens, env: {} });
const { sessionId } = await client.createSession({ taskName: 'download-paths', language: 'en' });
const url = (await client.uploadFile(sessionId, file)).file.cdn_url;
await client.close();
const dest = path.join(dir, 'out.mp4');

const times = new Map<string, number[]>();
const cpu = new Map<string, number[]>();
const rss = new Map<string, number[]>();
const note = (name: string, ms: number, maxRssMB?: number, cpuMs?: number): void => {
  times.set(name, [...(times.get(name) ?? []), ms]);
  if (maxRssMB !== undefined) rss.set(name, [...(rss.get(name) ?? []), maxRssMB]);
  if (cpuMs !== undefined) cpu.set(name, [...(cpu.get(name) ?? []), cpuMs]);
};
const TOOLS = 'curl -o f, openssl dgst -sha256 f, sync -d f';
try {
  for (let round = 0; round < rounds; round += 1) {
    const t0 = performance.now();
    const fetched = await curl(['-o', dest, url]);
    const digest = (await run('openssl', ['dgst', '-sha256', '-r', dest], { encoding: 'utf8' })).stdout.split(' ')[0];
    await run('sync', ['-d', dest]);
    note(TOOLS, performance.now() - t0);
    if (digest !== expected) throw new Error(`openssl: ${digest}`);
    note('curl -o alone', fetched.ms, fetched.maxRssMB);
    rmSync(dest);
    for (const mode of MODES) {
      const [how = '', flags] = mode.split('@');
      const env = { ...process.env, BENCH_V8_DEFAULTS: flags === 'v8-defaults' ? '1' : '0' };
      const out = JSON.parse((await run(process.execPath, [child, how, url, dest], { encoding: 'utf8', env })).stdout) as { ms: number; cpuMs: number; maxRssMB: number; bytes: number; sha256: string };
      if (out.bytes !== sizeMb * MB) throw new Error(`${mode}: ${out.bytes} bytes`);
      if (!how.endsWith('-drop') && (out.sha256 !== expected || createHash('sha256').update(readFileSync(dest)).digest('hex') !== expected)) throw new Error(`${mode}: wrong bytes`);
      note(mode, out.ms, out.maxRssMB, out.cpuMs);
      rmSync(dest, { force: true });
    }
  }
} finally {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
};
const span = (xs: number[]): string => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;
const toolsMedian = median(times.get(TOOLS) ?? []);
console.log(`${sizeMb} MB from talk serve, ${rounds} rounds, load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
console.log('| receiver | time: median (range) | speed vs the tools (medians) | CPU (median) | peak RSS |');
console.log('|---|---|---|---|---|');
for (const [name, ms] of times) {
  const mem = rss.get(name);
  const used = cpu.get(name);
  console.log(`| ${name} | ${median(ms).toFixed(0)} ms (${span(ms)}) | ${(toolsMedian / median(ms)).toFixed(2)}× | ${used ? `${median(used).toFixed(0)} ms` : '—'} | ${mem ? `${span(mem)} MB` : '—'} |`);
}
