import type { FileHandle } from 'node:fs/promises';

/**
 * The bytes of an open file, read from its current position in chunks of at most `maxChunk`.
 * While the file is no bigger than `expectedSize`, each read asks for at most one byte more than
 * is left, so a file of the expected size ends without a read of its own: a short read of a
 * regular file is its end. (A read stream instead allocates its whole high-water mark for every
 * read, the one that finds the end included: 0.5 MB of garbage for a 7 KB portrait.)
 *
 * `reuse`: one buffer serves every read; only for a consumer that is done with a chunk before it
 * asks for the next (a hash). Otherwise each chunk is a buffer of its own (a socket may still
 * hold the last one).
 */
export async function* fileChunks(handle: FileHandle, expectedSize: number, maxChunk: number, reuse = false): AsyncGenerator<Buffer> {
  const want = (read: number): number => (read <= expectedSize ? Math.min(maxChunk, expectedSize - read + 1) : maxChunk);
  const shared = reuse ? Buffer.allocUnsafe(want(0)) : undefined;
  let read = 0;
  for (;;) {
    const buffer = shared ?? Buffer.allocUnsafe(want(read));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
    read += bytesRead;
    if (bytesRead > 0) yield buffer.subarray(0, bytesRead);
    if (bytesRead < buffer.length) return;
  }
}
