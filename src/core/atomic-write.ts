/**
 * The one atomic file writer: a reader sees the old or the new file, never half of one (temp
 * file beside the target, then rename), and the one place such a rename happens: the run
 * state's and the local backend's snapshots, the watch ledger and sidecars, provenance records,
 * run reports, the client id and the upload cache all write through it. (Files that arrive as
 * a stream, downloads, uploads and renders, are renamed into place by their own writers.)
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

/**
 * Write `data` atomically: a string, bytes, or text in pieces (a large snapshot need not be
 * one string). `durable` adds an fsync before the rename, so the new content also survives a
 * power loss; it costs a disk flush (milliseconds, serialised across writers), so only writes
 * that decide exactly-once pay it. `mode` sets the file's permissions (0o600 for secrets),
 * whatever the umask. Returns the bytes written.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array | Iterable<string>, options: { durable?: boolean; mode?: number } = {}): Promise<number> {
  await mkdir(path.dirname(file), { recursive: true, ...(options.mode === undefined ? {} : { mode: 0o700 }) });
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  let bytes = 0;
  try {
    const handle = await open(temp, 'w', options.mode);
    try {
      if (options.mode !== undefined) await handle.chmod(options.mode);
      const pieces = typeof data === 'string' || data instanceof Uint8Array ? [data] : data;
      for (const piece of pieces) {
        // writeFile on a handle writes all of it at the current position: pieces follow on.
        await handle.writeFile(piece);
        bytes += typeof piece === 'string' ? Buffer.byteLength(piece) : piece.byteLength;
      }
      if (options.durable !== false) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  return bytes;
}

/** Write JSON (two-space indented, newline at the end) atomically; see `writeFileAtomic`. */
export async function writeJsonAtomic(file: string, value: unknown, options: { durable?: boolean; mode?: number } = {}): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`, options);
}
