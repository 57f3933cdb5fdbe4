// The client side of download-paths.bench.ts, in its own process: one GET of URL by one way of
// reading and writing the bytes, then its time, peak RSS and the file's SHA-256 as JSON.
//
//   download-paths-child MODE URL DEST
//
// Modes (each writes DEST and fsyncs it, except the two `-drop` floors, which only read):
//   talk              undici `request`, body → `writeAtomically` as the client ships it
//   talk-worker-hash  the same pipeline, the SHA-256 computed by a worker thread on a copy of
//                     the bytes in shared memory while the main thread receives and writes
//   talk-periodic-sync the same pipeline, the file also fdatasync'd every 32 MiB as it grows
//   undici-pipeline   undici `request`, body → SHA-256 Transform → 1 MiB write stream with
//                     `flush: true` (the shape `writeAtomically` has, written out here)
//   undici-dispatch   undici `dispatch` with a handler: hash in `onResponseData`, `writev` in
//                     4 MiB batches, the response paused while 8 MiB are unwritten
//   node-pipeline     node's `http.get`, then the same pipeline as undici-pipeline
//   undici-drop       undici `request`, body read and thrown away
//   node-drop         node's `http.get`, body read and thrown away
import { createHash } from 'node:crypto';
import { createWriteStream, fdatasync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import http from 'node:http';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { Agent, request, type Dispatcher } from 'undici';
import { writeAtomically } from '../src/backend/transfer.js';
import { ownPeakRss } from '../test/helpers/peak-rss.js';

// The V8 flags `talk run` sets (src/main.ts, v8FlagsFor), unless the bench asks for V8's own.
if (process.env['BENCH_V8_DEFAULTS'] !== '1') setFlagsFromString('--heap-growing-percent=50 --liftoff-only');
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

/** `talk-periodic-sync`: the same pipeline, the file fdatasync'd every 32 MiB while more arrives. */
async function toFileSyncing(body: Readable): Promise<void> {
  const out = createWriteStream(dest, { flush: true, highWaterMark: 1024 * 1024 });
  let fd: number | undefined;
  out.once('open', (opened: number) => (fd = opened));
  let unsynced = 0;
  let syncing: Promise<void> | undefined;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      bytes += chunk.length;
      unsynced += chunk.length;
      if (fd !== undefined && unsynced >= 32 * 1024 * 1024 && syncing === undefined) {
        unsynced = 0;
        const target = fd;
        syncing = new Promise<void>((resolve) => fdatasync(target, () => resolve())).finally(() => (syncing = undefined));
      }
      done(null, chunk);
    },
    flush(done) {
      // The write stream closes its file after this: no sync may still be running then.
      void Promise.resolve(syncing).then(() => done());
    },
  });
  await pipeline(body, tap, out);
}
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

/** The worker of `talk-worker-hash`: hashes the slices of shared memory it is told, in order. */
const HASH_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const hash = require('node:crypto').createHash('sha256');
const memory = Buffer.from(workerData);
parentPort.on('message', (m) => {
  if (m === 'end') parentPort.postMessage(hash.digest('hex'));
  else { hash.update(memory.subarray(m[0], m[0] + m[1])); parentPort.postMessage(m[2]); }
});`;

/**
 * `talk-worker-hash`: the shipped pipeline (chunks written as they come by a 1 MiB write
 * stream), except that the SHA-256 is computed by a worker thread: each chunk is also copied
 * into one of 4 pieces of 1 MiB of shared memory, and a full piece is hashed there while the
 * main thread goes on receiving. The only change against `talk` is where the hash runs.
 */
async function viaHashWorker(body: Readable): Promise<string> {
  const PIECE = 1024 * 1024;
  const PIECES = 4;
  const memory = Buffer.from(new SharedArrayBuffer(PIECE * PIECES));
  const worker = new Worker(HASH_WORKER, { eval: true, workerData: memory.buffer });
  const hashing = new Array<boolean>(PIECES).fill(false);
  let wake: (() => void) | undefined;
  let digest: (hex: string) => void = () => undefined;
  worker.on('message', (m: number | string) => {
    if (typeof m === 'string') return digest(m);
    hashing[m] = false;
    wake?.();
  });
  let piece = 0;
  let filled = 0;
  const post = (): void => {
    hashing[piece] = true;
    worker.postMessage([piece * PIECE, filled, piece]);
    piece = (piece + 1) % PIECES;
    filled = 0;
  };
  const copying = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      void (async () => {
        bytes += chunk.length;
        for (let offset = 0; offset < chunk.length; ) {
          while (filled === 0 && hashing[piece]) await new Promise<void>((resolve) => (wake = resolve));
          const n = Math.min(PIECE - filled, chunk.length - offset);
          chunk.copy(memory, piece * PIECE + filled, offset, offset + n);
          filled += n;
          offset += n;
          if (filled === PIECE) post();
        }
        done(null, chunk);
      })();
    },
  });
  await pipeline(body, copying, createWriteStream(dest, { flush: true, highWaterMark: 1024 * 1024 }));
  if (filled > 0) post();
  const hex = await new Promise<string>((resolve) => {
    digest = resolve;
    worker.postMessage('end');
  });
  await worker.terminate();
  return hex;
}

const agent = new Agent();
const started = performance.now();
let shipped: string | undefined;
if (mode === 'talk') {
  const r = await writeAtomically((await request(url, { dispatcher: agent })).body, dest, undefined, undefined, undefined);
  bytes = r.bytes;
  shipped = r.sha256;
} else if (mode === 'talk-periodic-sync') await toFileSyncing((await request(url, { dispatcher: agent })).body);
else if (mode === 'talk-worker-hash') shipped = await viaHashWorker((await request(url, { dispatcher: agent })).body);
else if (mode === 'undici-pipeline') await toFile((await request(url, { dispatcher: agent })).body);
else if (mode === 'undici-dispatch') await viaDispatch(agent);
else if (mode === 'node-pipeline') await toFile(await nodeGet());
else if (mode === 'undici-drop') await drop((await request(url, { dispatcher: agent })).body);
else if (mode === 'node-drop') await drop(await nodeGet());
else throw new Error(`unknown mode ${mode}`);
const ms = performance.now() - started;
await agent.close();
const cpu = process.cpuUsage();
process.stdout.write(JSON.stringify({ ms, cpuMs: (cpu.user + cpu.system) / 1000, maxRssMB: ownPeakRss() / (1024 * 1024), bytes, sha256: shipped ?? hash.digest('hex') }));
