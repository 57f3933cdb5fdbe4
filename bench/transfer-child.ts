// The client side of transfer.bench.ts, in its own process: one upload or one download with
// the backend client, then its time and memory as JSON on stdout.
//
//   transfer-child upload URL SESSION FILE | transfer-child download URL SESSION OUTPUT_URL DEST
import { setFlagsFromString } from 'node:v8';
import { Agent } from 'undici';
import { createBackendClient, createTokenProvider } from '../src/backend/index.js';
import { asRenderId, asSessionId } from '../src/core/ids.js';
import { ownPeakRss } from '../test/helpers/peak-rss.js';

// The V8 flags `talk run` sets (src/main.ts, v8FlagsFor): the client as it ships.
setFlagsFromString('--heap-growing-percent=50 --liftoff-only');
const MB = 1024 * 1024;
const [mode, url, sessionId, file, dest] = process.argv.slice(2);
if (!url || !sessionId || !file || (mode !== 'upload' && (mode !== 'download' || !dest))) {
  throw new Error('usage: transfer-child upload URL SESSION FILE | download URL SESSION OUTPUT_URL DEST');
}
const baselineRss = process.memoryUsage().rss;
const agent = new Agent();
const client = createBackendClient({ baseUrl: url, dispatcher: agent, auth: createTokenProvider({ env: process.env, baseUrl: url, dispatcher: agent }) });
const started = performance.now();
let extra: Record<string, unknown> = {};
if (mode === 'upload') {
  const r = await client.uploadFile(asSessionId(sessionId), file);
  extra = { cdnUrl: r.file.cdn_url, bytes: r.bytes };
} else {
  const r = await client.downloadRender(asRenderId('render_bench'), file, dest!);
  extra = { bytes: r.bytes };
}
const ms = performance.now() - started;
await agent.close();
process.stdout.write(JSON.stringify({ ms, maxRssMB: ownPeakRss() / MB, baselineRssMB: baselineRss / MB, ...extra }));
