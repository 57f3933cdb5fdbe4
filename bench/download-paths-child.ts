// The client side of download-paths.bench.ts, in its own process: one GET of URL by one way of
// reading and writing the bytes, then its time, peak RSS and the file's SHA-256 as JSON.
//
//   download-paths-child MODE URL DEST
//
// Modes (each writes DEST and fsyncs it, except the two `-drop` floors, which only read):
//   undici-pipeline   undici `request`, body → SHA-256 Transform → 1 MiB write stream with
//                     `flush: true` (the shape `writeAtomically` ships)
//   undici-dispatch   undici `dispatch` with a handler: hash in `onResponseData`, `writev` in
//                     4 MiB batches, the response paused while 8 MiB are unwritten
//   node-pipeline     node's `http.get`, then the same pipeline as undici-pipeline
//   undici-drop       undici `request`, body read and thrown away
//   node-drop         node's `http.get`, body read and thrown away
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import http from 'node:http';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Agent, request, type Dispatcher } from 'undici';
import { ownPeakRss } from '../test/helpers/peak-rss.js';

const [mode = '', url = '', dest = ''] = process.argv.slice(2);
if (!mode || !url || !dest) throw new Error('usage: download-paths-child MODE URL DEST');
const hash = createHash('sha256');
let bytes = 0;

const hashing = (): Transform =>
  new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
const toFile = (body: Readable): Promise<void> => pipeline(body, hashing(), createWriteStream(dest, { flush: true, highWaterMark: 1024 * 1024 }));
const drop = async (body: AsyncIterable<Buffer>): Promise<void> => {
  for await (const chunk of body) bytes += chunk.length;
};
const nodeGet = (): Promise<http.IncomingMessage> => new Promise((resolve, reject) => http.get(url, resolve).once('error', reject));

/** Ordered positional writes in batches, with the number of bytes not yet written. */
function batchWriter(handle: FileHandle, batchBytes: number) {
  let batch: Buffer[] = [];
  let batched = 0;
  let position = 0;
  let unwritten = 0;
  let queue = Promise.resolve();
  const flush = (): void => {
    const buffers = batch;
    const length = batched;
    const at = position;
    batch = [];
    batched = 0;
    position += length;
    queue = queue.then(async () => {
      await handle.writev(buffers, at);
      unwritten -= length;
    });
  };
  return {
    push(chunk: Buffer): number {
      batch.push(chunk);
      batched += chunk.length;
      unwritten += chunk.length;
      if (batched >= batchBytes) flush();
      return unwritten;
    },
    drained: (): Promise<void> => queue,
    async end(): Promise<void> {
      if (batched > 0) flush();
      await queue;
      await handle.datasync();
    },
  };
}

async function viaDispatch(agent: Agent): Promise<void> {
  const handle = await open(dest, 'w');
  const writer = batchWriter(handle, 4 * 1024 * 1024);
  const target = new URL(url);
  try {
    await new Promise<void>((resolve, reject) => {
      const handler: Dispatcher.DispatchHandler = {
        // undici takes a handler for its controller API only when it has this method.
        onRequestStart() {},
        onResponseData(controller, chunk) {
          hash.update(chunk);
          bytes += chunk.length;
          if (writer.push(chunk) > 8 * 1024 * 1024) {
            controller.pause();
            void writer.drained().then(() => controller.resume(), reject);
          }
        },
        onResponseEnd: () => resolve(),
        onResponseError: (_controller, error) => reject(error),
      };
      agent.dispatch({ origin: target.origin, path: target.pathname, method: 'GET' }, handler);
    });
    await writer.end();
  } finally {
    await handle.close();
  }
}

const agent = new Agent();
const started = performance.now();
if (mode === 'undici-pipeline') await toFile((await request(url, { dispatcher: agent })).body);
else if (mode === 'undici-dispatch') await viaDispatch(agent);
else if (mode === 'node-pipeline') await toFile(await nodeGet());
else if (mode === 'undici-drop') await drop((await request(url, { dispatcher: agent })).body);
else if (mode === 'node-drop') await drop(await nodeGet());
else throw new Error(`unknown mode ${mode}`);
const ms = performance.now() - started;
await agent.close();
process.stdout.write(JSON.stringify({ ms, maxRssMB: ownPeakRss() / (1024 * 1024), bytes, sha256: hash.digest('hex') }));
