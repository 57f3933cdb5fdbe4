/**
 * The one atomic file writer: a reader sees the old or the new file, never half of one (temp
 * file beside the target, then rename), and the one place such a rename happens. Whole files
 * (the run state's and the local backend's snapshots, the watch ledger and sidecars, provenance
 * records, run reports, the client id, the upload cache, the local backend's face and phoneme
 * caches) go through `writeFileAtomic`; files that arrive as a stream (uploads stored by the
 * local backend, its encoded renders) are written to an `AtomicTarget`'s temp path by their
 * producer and committed through it.
 */
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { tempSuffix } from './temp-name.js';

/** A new version of `dest` being written: write it at `tempPath`, then `commit()` or `abort()`. */
export interface AtomicTarget {
  /** The file the commit replaces (or creates). */
  readonly dest: string;
  /** Where the new content goes: beside `dest`, so the rename never crosses file systems. */
  readonly tempPath: string;
  /** Put what was written at `tempPath` in place of `dest`: fsync when durable, then rename. */
  commit(): Promise<void>;
  /** Remove whatever was written at `tempPath`; safe when nothing was, and after a failed commit. */
  abort(): Promise<void>;
}

/**
 * A target for writing `dest` atomically when the bytes come from elsewhere (a stream, a child
 * process writing the temp path itself). `durable` (default true) makes `commit` fsync the new
 * content before the rename, so it also survives a power loss; see `writeFileAtomic`.
 * `tempName` names the temp file (in the folder of `dest`, which must exist), e.g. a hidden
 * `.name.part` for a download a user may see arrive; by default `<dest>.<unique>.tmp`.
 */
export function createAtomicTarget(dest: string, options: { durable?: boolean; tempName?: string } = {}): AtomicTarget {
  const tempPath = options.tempName === undefined ? `${dest}.${tempSuffix()}.tmp` : path.join(path.dirname(dest), path.basename(options.tempName));
  return {
    dest,
    tempPath,
    async commit() {
      if (options.durable !== false) {
        // fsync flushes the file, not the descriptor: a fresh one serves whoever wrote the bytes.
        const handle = await open(tempPath, 'r+');
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      }
      await rename(tempPath, dest);
    },
    async abort() {
      await rm(tempPath, { force: true }).catch(() => undefined);
    },
  };
}

/**
 * Write `data` atomically: a string, bytes, or text in pieces (a large snapshot need not be
 * one string). `durable` adds an fsync before the rename, so the new content also survives a
 * power loss; it costs a disk flush (milliseconds, serialised across writers), so only writes
 * that decide exactly-once pay it. `mode` sets the file's permissions (0o600 for secrets),
 * whatever the umask. Returns the bytes written.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array | Iterable<string>, options: { durable?: boolean; mode?: number } = {}): Promise<number> {
  await mkdir(path.dirname(file), { recursive: true, ...(options.mode === undefined ? {} : { mode: 0o700 }) });
  const target = createAtomicTarget(file, options.durable === undefined ? {} : { durable: options.durable });
  let bytes = 0;
  try {
    const handle = await open(target.tempPath, 'w', options.mode);
    try {
      if (options.mode !== undefined) await handle.chmod(options.mode);
      const pieces = typeof data === 'string' || data instanceof Uint8Array ? [data] : data;
      for (const piece of pieces) {
        // writeFile on a handle writes all of it at the current position: pieces follow on.
        await handle.writeFile(piece);
        bytes += typeof piece === 'string' ? Buffer.byteLength(piece) : piece.byteLength;
      }
    } finally {
      await handle.close();
    }
    await target.commit();
  } catch (error) {
    await target.abort();
    throw error;
  }
  return bytes;
}

/** Write JSON (two-space indented, newline at the end) atomically; see `writeFileAtomic`. */
export async function writeJsonAtomic(file: string, value: unknown, options: { durable?: boolean; mode?: number } = {}): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`, options);
}
