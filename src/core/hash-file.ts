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

/** Options for `sharedFileHasher`. */
export interface SharedHasherOptions {
  /**
   * Files remembered at most (the least recently asked for is forgotten first): for a process
   * that outlives one command's inputs, a worker taking job after job. Unbounded by default.
   */
  maxEntries?: number;
}

/** One read of a file that several callers wait for. */
interface SharedRead {
  hash: Promise<string>;
  /** Callers that can still leave (they passed a signal); the read is abandoned when the last leaves. */
  leavable: number;
  /** Callers that stay to the end (no signal): the read is never abandoned. */
  staying: boolean;
  controller: AbortController;
}

/**
 * A hasher that reads each file once for as long as it stays the same: keyed by what stat says
 * of it (device, inode, size, modification and change times), so every reader of a run —
 * preflight, fingerprints, the upload cache — and every name of one file (hard links, the same
 * file named twice) share one read, while a file written again (its times change) is read
 * again. A run once read each input three times, ≈ 0.4 ms of CPU per job in open, fstat, read
 * and close (bench/notes/runner.md). A failed read is not remembered.
 *
 * A caller's signal is its own: a caller that is stopped stops waiting, while the others still
 * get the hash; the read itself stops only when every caller waiting for it has been stopped.
 */
export function sharedFileHasher(inner: (file: string, options?: SignalOptions) => Promise<string> = hashFile, shared: SharedHasherOptions = {}): FileHasher {
  const reads = new Map<string, SharedRead>();
  return async (file, options = {}) => {
    options.signal?.throwIfAborted();
    const info = options.stats ?? (await stat(file));
    // Synchronous from here to the set: concurrent calls for one file share the first read.
    const key = `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`;
    let read = reads.get(key);
    if (read) {
      // Most recently asked for: last in the map's order, forgotten last.
      reads.delete(key);
    } else {
      const controller = new AbortController();
      const started: SharedRead = { hash: inner(file, { signal: controller.signal }), leavable: 0, staying: false, controller };
      started.hash.catch(() => {
        if (reads.get(key) === started) reads.delete(key);
      });
      read = started;
    }
    reads.set(key, read);
    if (shared.maxEntries !== undefined && reads.size > shared.maxEntries) reads.delete(reads.keys().next().value as string);
    return waitFor(read, options.signal, () => {
      if (reads.get(key) === read) reads.delete(key);
    });
  };
}

/** The read's hash, or the caller's abort; the last caller to leave abandons the read. */
function waitFor(read: SharedRead, signal: AbortSignal | undefined, forget: () => void): Promise<string> {
  if (!signal) {
    read.staying = true;
    return read.hash;
  }
  signal.throwIfAborted();
  read.leavable += 1;
  return new Promise<string>((resolve, reject) => {
    let waiting = true;
    const done = (): boolean => {
      if (!waiting) return false;
      waiting = false;
      read.leavable -= 1;
      signal.removeEventListener('abort', leave);
      return true;
    };
    function leave(): void {
      if (!done()) return;
      if (read.leavable === 0 && !read.staying) {
        forget();
        read.controller.abort(signal?.reason);
      }
      reject(signal?.reason as Error);
    }
    signal.addEventListener('abort', leave, { once: true });
    read.hash.then(
      (hash) => {
        if (done()) resolve(hash);
      },
      (error: Error) => {
        if (done()) reject(error);
      },
    );
  });
}
