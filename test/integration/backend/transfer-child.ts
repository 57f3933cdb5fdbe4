// Child process for transfer.test.ts: uploads a file and downloads it back with the backend
// client, then prints its own memory figures as JSON. Run apart from the test so its peak RSS
// is the client's alone (the local backend stays in the parent).
import { Agent } from 'undici';
import { createBackendClient, createTokenProvider } from '../../../src/backend/index.js';
import { asRenderId, asSessionId } from '../../../src/core/ids.js';
import { ownPeakRss } from '../../helpers/peak-rss.js';

const [url, sessionId, file, dest] = process.argv.slice(2);
if (!url || !sessionId || !file || !dest) throw new Error('usage: transfer-child URL SESSION FILE DEST');
const agent = new Agent();
const client = createBackendClient({ baseUrl: url, dispatcher: agent, auth: createTokenProvider({ env: process.env, baseUrl: url, dispatcher: agent }) });
const startRss = process.memoryUsage().rss;
const startPeak = ownPeakRss();
const up = await client.uploadFile(asSessionId(sessionId), file);
const uploadPeak = ownPeakRss();
const down = await client.downloadRender(asRenderId('render_memory'), up.file.cdn_url, dest);
const downloadPeak = ownPeakRss();
await client.close();
await agent.close();
process.stdout.write(JSON.stringify({ startRss, startPeak, uploadPeak, downloadPeak, uploaded: up.bytes, uploadSha: up.sha256, downloaded: down.bytes, downloadSha: down.sha256 }));
