/** SHA-256 of a file's content: the one file hasher (fingerprints, preflight, the upload cache). */
import type { Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
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
  // Loaded on first use: a warm `talk validate` knows its inputs' hashes and never needs it.
  const { createHash } = await import('node:crypto');
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

/** Hashes a file's content (SHA-256, hex); `stats`, when the caller already has them, saves a stat. */
export type FileHasher = (file: string, options?: SignalOptions & { stats?: Stats | undefined }) => Promise<string>;

/**
 * A hasher that reads each file once for as long as it stays the same, for one command: keyed
 * by what stat says of it (device, inode, size, modification and change times), so every reader
 * of a run — preflight, fingerprints, the upload cache — and every name of one file (hard links,
 * the same file named twice) share one read, while a file written again (its times change) is
 * read again. A run once read each input three times, ≈ 0.4 ms of CPU per job in open, fstat,
 * read and close (bench/notes/runner.md). A failed read is not remembered.
 */
export function sharedFileHasher(inner: (file: string, options?: SignalOptions) => Promise<string> = hashFile): FileHasher {
  const byIdentity = new Map<string, Promise<string>>();
  return async (file, options = {}) => {
    const info = options.stats ?? (await stat(file));
    // Synchronous from here to the set: concurrent calls for one file share the first read.
    const key = `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`;
    let hit = byIdentity.get(key);
    if (!hit) {
      hit = inner(file, { signal: options.signal });
      byIdentity.set(key, hit);
      hit.catch(() => byIdentity.delete(key));
    }
    return hit;
  };
}
