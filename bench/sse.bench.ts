// SSE events per second through the client's turn reader: eventsource-parser over a chunked
// body, each message classified (CONTRACT §3.7) and folded into the turn. The stream mixes
// the forms a real turn has: heartbeats (all three), function calls/responses, partial and
// final text. Prints figures; asserts nothing. Events: BENCH_SSE_EVENTS (default 200000).
import { readTurnStream, TurnWatch } from '../src/backend/turn.js';

const total = Number(process.env.BENCH_SSE_EVENTS ?? 200_000);
const adk = (parts: unknown[], extra: Record<string, unknown> = {}): string =>
  `data: ${JSON.stringify({ content: { parts, role: 'model' }, invocationId: 'e-1', author: 'nemo_agent', actions: { stateDelta: {}, artifactDelta: {}, requestedAuthConfigs: {} }, id: 'ev', timestamp: 1773423600.1, ...extra })}\n\n`;
const forms = [
  'data: {"type":"heartbeat"}\n\n',
  'data:\n\n',
  ': ping\n\n',
  adk([{ functionCall: { id: 'fc-1', name: 'generate_video_with_seedance', args: { prompt: 'sunset', duration: 10 } } }]),
  adk([{ functionResponse: { id: 'fc-1', name: 'generate_video_with_seedance', response: { status: 'success' } } }]),
  adk([{ text: 'Your 10-second sunset clip is ' }], { partial: true }),
  adk([{ text: 'Your 10-second sunset clip is ready. Click Export to save it.' }]),
];
const text = Array.from({ length: total }, (_, i) => forms[i % forms.length]).join('');
const bytes = Buffer.from(text);
const CHUNK = 16 * 1024;

async function* body(): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < bytes.length; off += CHUNK) yield bytes.subarray(off, off + CHUNK);
}

async function once(): Promise<number> {
  const watch = new TurnWatch({ hardLimitMs: 600_000, heartbeatOnlyMs: 600_000, stillWorkingMs: 0 }, undefined, undefined);
  const started = performance.now();
  const reading = await readTurnStream(body(), watch, () => undefined);
  const ms = performance.now() - started;
  watch.stop();
  if (reading.tools.length === 0 || reading.texts.length === 0) throw new Error('the benchmark stream was not read');
  return ms;
}

await once(); // warm-up
const runs = [await once(), await once(), await once()];
const best = Math.min(...runs);
console.log(`SSE: ${total} events (${(bytes.length / 1024 / 1024).toFixed(1)} MB) in ${best.toFixed(0)} ms → ${Math.round(total / (best / 1000)).toLocaleString('en-US')} events/s (best of 3; goal ≥ 100,000/s)`);
