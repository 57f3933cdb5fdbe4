/**
 * Streamed transfers (SPEC §4: memory does not grow with file size).
 * - Upload: a hand-framed multipart body (one part named `files`) as a Node Readable with an
 *   exact Content-Length; the file is read in chunks through a SHA-256/progress tap, pulled
 *   only as fast as the socket drains.
 * - Download: the undici body piped through a hashing tap into a temp file beside the target,
 *   fsync'd as it closes, size checked, renamed into place.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BackendError } from '../core/errors.js';
import { fileChunks } from '../core/file-chunks.js';
import { createAtomicTarget } from '../core/atomic-write.js';
import { ErrorCodes } from '../contract/codes.js';
import { MAX_UPLOAD_BYTES, MIME_TYPES, isAcceptedExtension, type AcceptedExtension } from '../contract/media.js';
import type { FailureContext } from './errors.js';
import { answerError } from './errors.js';
import type { TransferProgress } from './types.js';

/** Byte counter and SHA-256 of everything that passed. */
export class ByteTap {
  bytes = 0;
  private readonly hash: Hash = createHash('sha256');
  constructor(
    private readonly total: number | undefined,
    private readonly onProgress: TransferProgress | undefined,
  ) {}

  take(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.bytes += chunk.byteLength;
    this.onProgress?.(this.bytes, this.total);
  }

  digest(): string {
    return this.hash.digest('hex');
  }

  /** A node Transform that passes bytes through this tap. */
  transform(): Transform {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the Transform's own `this` is the stream
    const tap = this;
    return new Transform({
      transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
        tap.take(chunk);
        callback(null, chunk);
      },
    });
  }
}

/** What a local upload pre-check found. */
export interface UploadSource {
  name: string;
  ext: AcceptedExtension;
  size: number;
  mime: string;
}

/**
 * Type and size checked locally before any byte is sent, with the same codes the backend
 * would answer (4001, 4002), so a bad input fails fast and costs no bandwidth.
 */
export async function checkUploadSource(filePath: string, ctx: FailureContext, maxBytes = MAX_UPLOAD_BYTES): Promise<UploadSource> {
  const name = path.basename(filePath);
  const ext = path.extname(name).slice(1).toLowerCase();
  if (!isAcceptedExtension(ext)) {
    throw answerError(ctx, { status: 0, code: ErrorCodes.unsupportedType, serverText: `${name} (checked before uploading)` });
  }
  const info = await stat(filePath);
  if (!info.isFile()) {
    throw new BackendError({ message: `${filePath} is not a file`, route: 'upload', hint: 'point the input at a file' });
  }
  if (info.size > maxBytes) {
    throw answerError(ctx, { status: 0, code: ErrorCodes.fileTooLarge, serverText: `${name} is ${Math.ceil(info.size / 1024 / 1024)} MB (checked before uploading)` });
  }
  return { name, ext, size: info.size, mime: MIME_TYPES[ext] };
}

/** A request body ready to send: a fresh stream of exactly `length` bytes. */
export interface StreamBody {
  body: Readable;
  length: number;
  contentType: string;
}

/**
 * Read size for uploaded files. Larger than fs's 64 KiB default so fewer, bigger socket
 * writes carry the file; small enough that the one chunk the body buffers stays negligible.
 */
export const UPLOAD_CHUNK_BYTES = 256 * 1024;

/** Escape a part's file name the way browsers' FormData does (HTML form-data encoding). */
function quoteFileName(name: string): string {
  return name.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/**
 * One upload attempt as a multipart body with a single part named `files`: the preamble, the
 * file's bytes through `tap` (SHA-256 and progress follow the bytes as the socket takes them),
 * the epilogue. The length is exact, so the request carries a Content-Length (no chunked
 * encoding) and undici's stream writer pauses the file whenever the socket is full, which keeps
 * memory flat however large the file. A new body is built for every attempt.
 */
export function multipartUpload(filePath: string, source: UploadSource, tap: ByteTap): StreamBody {
  const boundary = `----talk${randomBytes(12).toString('hex')}`;
  const preamble = Buffer.from(
    `--${boundary}\r\n` +
      `Content-Disposition: form-data; name="files"; filename="${quoteFileName(source.name)}"\r\n` +
      `Content-Type: ${source.mime}\r\n\r\n`,
    'utf8',
  );
  const epilogue = Buffer.from(`\r\n--${boundary}--\r\n`, 'utf8');
  const changed = (): BackendError =>
    new BackendError({
      message: `${source.name} changed size while it was uploading (expected ${source.size} bytes)`,
      route: 'upload',
      hint: 'wait until the file is completely written, then run again',
    });
  async function* parts(): AsyncGenerator<Buffer> {
    yield preamble;
    const handle = await open(filePath, 'r');
    try {
      let sent = 0;
      for await (const chunk of fileChunks(handle, source.size, UPLOAD_CHUNK_BYTES)) {
        sent += chunk.length;
        // The Content-Length is already promised; a growing file must not overrun it.
        if (sent > source.size) throw changed();
        tap.take(chunk);
        yield chunk;
      }
      if (sent !== source.size) throw changed();
    } finally {
      await handle.close();
    }
    yield epilogue;
  }
  return {
    // Byte mode, one chunk of buffer: the generator is pulled only as undici drains it.
    body: Readable.from(parts(), { objectMode: false, highWaterMark: UPLOAD_CHUNK_BYTES }),
    length: preamble.length + source.size + epilogue.length,
    contentType: `multipart/form-data; boundary=${boundary}`,
  };
}

/** Write buffer of a download's file stream (fs's default is 16 KiB). */
export const DOWNLOAD_BUFFER_BYTES = 1024 * 1024;

/** The name a download has while it is written: hidden, beside the target, marked partial. */
function partialName(dest: string): string {
  return `.${path.basename(dest)}.${randomBytes(4).toString('hex')}.part`;
}

/**
 * Stream `body` into `dest` atomically: temp file, size check against `expected` (when
 * known), fsync, rename. The temp file is removed on any failure.
 */
export async function writeAtomically(
  body: AsyncIterable<Uint8Array>,
  dest: string,
  expected: number | undefined,
  onProgress: TransferProgress | undefined,
  signal: AbortSignal | undefined,
): Promise<{ bytes: number; sha256: string }> {
  // The stream's `flush` fsyncs the bytes, so the commit only renames.
  const target = createAtomicTarget(dest, { durable: false, tempName: partialName(dest) });
  const tap = new ByteTap(expected, onProgress);
  // `flush: true` fsyncs the file before the stream closes, so the rename publishes complete
  // bytes. A 1 MiB buffer gathers the socket's 64 KiB reads into fewer, larger writes.
  const file = createWriteStream(target.tempPath, { flush: true, mode: 0o644, highWaterMark: DOWNLOAD_BUFFER_BYTES });
  let committed = false;
  try {
    await pipeline(body, tap.transform(), file, { signal });
    if (expected !== undefined && tap.bytes !== expected) {
      throw new BackendError({
        message: `the download ended after ${tap.bytes} of ${expected} bytes`,
        route: 'download',
        retryable: true,
        hint: 'run again; the export is re-downloaded without rendering again',
      });
    }
    await target.commit();
    committed = true;
    return { bytes: tap.bytes, sha256: tap.digest() };
  } finally {
    if (!committed) {
      // A failed pipeline rejects before the file stream has closed, and a stream destroyed
      // before its file opened still opens (creates) it: removed only after the close.
      if (!file.closed) await new Promise<void>((resolve) => file.once('close', () => resolve()));
      await target.abort();
    }
  }
}
