/** SHA-256 of a file's content: the one file hasher (fingerprints, preflight, the upload cache). */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { SignalOptions } from './abort.js';
import { fileChunks } from './file-chunks.js';

/** Largest read while hashing a file: big outputs hash in half the time of 64 KiB reads (bench/notes/runner.md). */
const HASH_CHUNK_BYTES = 1024 * 1024;

/**
 * SHA-256 of a file, read through one buffer at most a byte bigger than the file (memory does
 * not grow with the file; a 10,000-item batch once spent a quarter of its time collecting the
 * read stream's buffers).
 */
export async function hashFile(file: string, options: SignalOptions = {}): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    options.signal?.throwIfAborted();
    for await (const chunk of fileChunks(handle, size, HASH_CHUNK_BYTES, true)) {
      hash.update(chunk);
      options.signal?.throwIfAborted();
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}
