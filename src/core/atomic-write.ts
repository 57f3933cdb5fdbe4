/**
 * The one atomic file writer: a reader sees the old or the new file, never half of one (temp
 * file beside the target, then rename). Used for the watch ledger and sidecars, provenance
 * records and run reports.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

/**
 * Write `data` atomically. `durable` adds an fsync before the rename, so the new content also
 * survives a power loss; it costs a disk flush (milliseconds, serialised across writers), so
 * only writes that decide exactly-once pay it.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, options: { durable?: boolean } = {}): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile(data);
    if (options.durable !== false) await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}

/** Write JSON (two-space indented, newline at the end) atomically; see `writeFileAtomic`. */
export async function writeJsonAtomic(file: string, value: unknown, options: { durable?: boolean } = {}): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`, options);
}
