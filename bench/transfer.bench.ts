// Upload and download throughput and peak RSS of the backend client against `talk serve` in
// its own process, side by side with curl on the same server in the same run. The client runs
// in a child process (transfer-child.ts, bundled with esbuild the way the CLI ships, and run by
// plain node) so its peak RSS is its own; curl's comes from /usr/bin/time. A download is also
// compared with the same work done by tools: `curl -o f`, then `openssl dgst -sha256 f`, then
// `sync -d f` (the client hashes what it receives and fsyncs it before the rename). Prints
// figures; asserts nothing. Sizes: BENCH_SIZES_MB (default "50,200"; decimal megabytes, so 200
// MB passes the contract's 200 MiB upload limit).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, rmSync, statSync, writeSync, closeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { Agent } from 'undici';
import { createBackendClient, createTokenProvider } from '../src/backend/index.js';
import { bundleChild, curl, run } from './lib/child.js';
import { serveProcess } from './lib/serve.js';

const MB = 1_000_000;
const MIB = 1024 * 1024;

let childBundle = '';
async function runChild(args: string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; maxRssMB: number; baselineRssMB: number; cdnUrl?: string }> {
  const out = (await run(process.execPath, [childBundle, ...args], { env, encoding: 'utf8', maxBuffer: 1 << 20 })).stdout;
  return JSON.parse(out) as { ms: number; maxRssMB: number; baselineRssMB: number; cdnUrl?: string };
}

async function main(): Promise<void> {
  const sizes = (process.env.BENCH_SIZES_MB ?? '50,200').split(',').map(Number);
  const dir = mkdtempSync(path.join(tmpdir(), 'talk-bench-transfer-'));
  childBundle = await bundleChild('transfer-child', dir);
  const backend = await serveProcess(path.join(dir, 'backend'), {});
  const agent = new Agent();
  try {
    const tokens = createTokenProvider({ env: {}, configDir: path.join(dir, 'config'), baseUrl: backend.url, dispatcher: agent });
    const client = createBackendClient({ baseUrl: backend.url, dispatcher: agent, auth: tokens });
    const { sessionId } = await client.createSession({ taskName: 'bench', language: 'en' });
    const token = await tokens.token();
    const env = { ...process.env, NEMO_TOKEN: token };
    const headers = ['-H', `Authorization: Bearer ${token}`, '-H', 'X-Skill-Source: bench', '-H', 'X-Skill-Version: 0', '-H', 'X-Skill-Platform: unknown'];
    const uploadUrl = `${backend.url}/api/upload-video/nemo_agent/me/${sessionId}`;
    const rows: string[] = [];
    for (const sizeMb of sizes) {
      // Random bytes named .jpg: the server stores them as they are (probing fails fast).
      const file = path.join(dir, `blob-${sizeMb}.jpg`);
      const fd = openSync(file, 'w');
      const chunk = randomBytes(MIB);
      for (let left = sizeMb * MB; left > 0; left -= MIB) writeSync(fd, chunk, 0, Math.min(MIB, left));
      closeSync(fd);
      const bytes = statSync(file).size;
      // Best of two, run one after another (never concurrently: they share the server).
      const best = async <T extends { ms: number }>(once: () => Promise<T>): Promise<T> => {
        const a = await once();
        const b = await once();
        return b.ms < a.ms ? b : a;
      };
      const curlUp = await best(() => curl([...headers, '-o', '/dev/null', '-F', `files=@${file};type=image/jpeg`, uploadUrl]));
      const clientUp = await best(() => runChild(['upload', backend.url, sessionId, file], env));
      const cdnUrl = clientUp.cdnUrl!;
      const dest = path.join(dir, `down-${sizeMb}.bin`);
      // The client fsyncs what it downloads before it renames it into place; curl does not.
      // `curl + sync -d` is the same durability, for a like-for-like second figure.
      const curlDown = await best(async () => {
        const fetched = await curl(['-o', dest, cdnUrl]);
        const t0 = performance.now();
        await run('sync', ['-d', dest]);
        return { ...fetched, syncedMs: fetched.ms + (performance.now() - t0) };
      });
      const tools = await best(async () => {
        const t0 = performance.now();
        await curl(['-o', dest, cdnUrl]);
        await run('openssl', ['dgst', '-sha256', dest]);
        await run('sync', ['-d', dest]);
        return { ms: performance.now() - t0 };
      });
      const clientDown = await best(() => runChild(['download', backend.url, sessionId, cdnUrl, dest], env));
      const mbps = (ms: number): string => (bytes / MB / (ms / 1000)).toFixed(0);
      rows.push(
        `| upload ${sizeMb} MB | ${curlUp.ms.toFixed(0)} ms (${mbps(curlUp.ms)} MB/s), ${curlUp.maxRssMB.toFixed(0)} MB | ${clientUp.ms.toFixed(0)} ms (${mbps(clientUp.ms)} MB/s), ${clientUp.maxRssMB.toFixed(0)} MB (idle ${clientUp.baselineRssMB.toFixed(0)}) | ${(curlUp.ms / clientUp.ms).toFixed(2)}× |`,
        `| download ${sizeMb} MB | ${curlDown.ms.toFixed(0)} ms (${mbps(curlDown.ms)} MB/s), ${curlDown.maxRssMB.toFixed(0)} MB; with sync -d ${curlDown.syncedMs.toFixed(0)} ms; curl + openssl dgst + sync -d ${tools.ms.toFixed(0)} ms | ${clientDown.ms.toFixed(0)} ms (${mbps(clientDown.ms)} MB/s), ${clientDown.maxRssMB.toFixed(0)} MB (idle ${clientDown.baselineRssMB.toFixed(0)}) | ${(curlDown.ms / clientDown.ms).toFixed(2)}× (${(curlDown.syncedMs / clientDown.ms).toFixed(2)}× with sync; ${(tools.ms / clientDown.ms).toFixed(2)}× the tools) |`,
      );
      rmSync(file);
      rmSync(dest, { force: true });
    }
    console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    console.log('| transfer | curl: time, peak RSS | talk client: time, peak RSS | speed vs curl |');
    console.log('|---|---|---|---|');
    for (const row of rows) console.log(row);
  } finally {
    await agent.close();
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
