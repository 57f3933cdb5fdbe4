/**
 * Streamed transfers (SPEC §4: memory does not grow with file size).
 * - Upload: a file-backed Blob (`fs.openAsBlob`) inside undici's FormData, part name `files`;
 *   its stream is tapped for SHA-256 and progress as undici pulls it.
 * - Download: the undici body piped through a hashing tap into a temp file beside the target,
 *   fsync'd as it closes, size checked, renamed into place.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createWriteStream, openAsBlob } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BackendError } from '../core/errors.js';
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

/**
 * A File whose stream passes through a tap. undici's FormData keeps File instances as they are
 * and pulls `stream()` while sending, so hashing and progress follow the bytes on the wire.
 * A new one is built for every attempt (a stream can be read once).
 */
class TappedFile extends File {
  constructor(
    private readonly source: Blob,
    name: string,
    type: string,
    private readonly tap: ByteTap,
  ) {
    // The File holds a reference to the file-backed blob; no bytes are read here.
    super([source], name, { type });
  }

  override stream(): ReadableStream<Uint8Array<ArrayBuffer>> {
    const tap = this.tap;
    return this.source.stream().pipeThrough(
      new TransformStream<Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>>({
        transform(chunk, controller) {
          tap.take(chunk);
          controller.enqueue(chunk);
        },
      }),
    );
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

/** A fresh tapped File for one upload attempt. */
export async function openTappedFile(filePath: string, source: UploadSource, tap: ByteTap): Promise<File> {
  const blob = await openAsBlob(filePath, { type: source.mime });
  return new TappedFile(blob, source.name, source.mime, tap);
}

/** Where a download goes while it is written: beside the target, so the rename is atomic. */
export function tempPathFor(dest: string): string {
  return path.join(path.dirname(dest), `.${path.basename(dest)}.${randomBytes(4).toString('hex')}.part`);
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
  const temp = tempPathFor(dest);
  const tap = new ByteTap(expected, onProgress);
  let renamed = false;
  try {
    // `flush: true` fsyncs the file before the stream closes, so the rename publishes complete bytes.
    await pipeline(body, tap.transform(), createWriteStream(temp, { flush: true, mode: 0o644 }), { signal });
    if (expected !== undefined && tap.bytes !== expected) {
      throw new BackendError({
        message: `the download ended after ${tap.bytes} of ${expected} bytes`,
        route: 'download',
        retryable: true,
        hint: 'run again; the export is re-downloaded without rendering again',
      });
    }
    await rename(temp, dest);
    renamed = true;
    return { bytes: tap.bytes, sha256: tap.digest() };
  } finally {
    if (!renamed) await rm(temp, { force: true });
  }
}
