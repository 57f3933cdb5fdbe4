// The shared file hasher: one read per file identity, each caller's signal its own, and a bound
// for a process that outlives one command's inputs.
import { createHash } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignalOptions } from '../../../src/core/abort.js';
import { hashFile, sharedFileHasher } from '../../../src/core/hash-file.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'talk-hasher-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');

/** The real hasher, counting its reads and holding each one until `release()`. */
function gatedHasher(): { inner: (file: string, options?: SignalOptions) => Promise<string>; reads: string[]; signals: AbortSignal[]; started: Promise<void>; release: () => void } {
  let open!: () => void;
  let start!: () => void;
  const started = new Promise<void>((resolve) => (start = resolve));
  let gate = new Promise<void>((resolve) => (open = resolve));
  const reads: string[] = [];
  const signals: AbortSignal[] = [];
  return {
    reads,
    signals,
    started,
    release: () => {
      open();
      gate = Promise.resolve();
    },
    inner: async (file, options = {}) => {
      reads.push(path.basename(file));
      if (options.signal) signals.push(options.signal);
      start();
      const waited = gate;
      await new Promise<void>((resolve, reject) => {
        options.signal?.addEventListener('abort', () => reject(options.signal?.reason as Error), { once: true });
        void waited.then(resolve);
      });
      return hashFile(file, options);
    },
  };
}

describe('sharedFileHasher', () => {
  it('a caller that is stopped stops waiting; the others still get the hash from the one read', async () => {
    const file = path.join(dir, 'shared.txt');
    await writeFile(file, 'portrait');
    const gated = gatedHasher();
    const hasher = sharedFileHasher(gated.inner);
    const stopped = new AbortController();
    // With the stats given, both callers join the read at once (no stat to wait for).
    const stats = await stat(file);
    const first = hasher(file, { signal: stopped.signal, stats }).catch((error: unknown) => error);
    const second = hasher(file, { signal: new AbortController().signal, stats });
    await gated.started;
    stopped.abort(new Error('job 1 lost its lock'));
    expect(await first).toMatchObject({ message: 'job 1 lost its lock' });
    expect(gated.signals[0]?.aborted).toBe(false);
    gated.release();
    await expect(second).resolves.toBe(sha('portrait'));
    expect(gated.reads).toEqual(['shared.txt']);
  });

  it('the read is abandoned when every caller waiting for it has been stopped, and the next caller reads again', async () => {
    const file = path.join(dir, 'abandoned.txt');
    await writeFile(file, 'voice');
    const gated = gatedHasher();
    const hasher = sharedFileHasher(gated.inner);
    const a = new AbortController();
    const b = new AbortController();
    const stats = await stat(file);
    const first = hasher(file, { signal: a.signal, stats }).catch((error: unknown) => error);
    const second = hasher(file, { signal: b.signal, stats }).catch((error: unknown) => error);
    await gated.started;
    a.abort(new Error('stop a'));
    expect(gated.signals[0]?.aborted).toBe(false);
    b.abort(new Error('stop b'));
    expect(await first).toMatchObject({ message: 'stop a' });
    expect(await second).toMatchObject({ message: 'stop b' });
    expect(gated.signals[0]?.aborted).toBe(true);
    gated.release();
    await expect(hasher(file)).resolves.toBe(sha('voice'));
    expect(gated.reads).toEqual(['abandoned.txt', 'abandoned.txt']);
  });

  it('remembers at most maxEntries files, forgetting the one asked for least recently', async () => {
    const names = ['a.txt', 'b.txt', 'c.txt'];
    for (const name of names) await writeFile(path.join(dir, name), name);
    const gated = gatedHasher();
    gated.release();
    const hasher = sharedFileHasher(gated.inner, { maxEntries: 2 });
    const hashOf = (name: string): Promise<string> => hasher(path.join(dir, name));
    await hashOf('a.txt');
    await hashOf('b.txt');
    await hashOf('a.txt'); // a is now the most recent: b is forgotten first
    await hashOf('c.txt');
    expect(gated.reads).toEqual(['a.txt', 'b.txt', 'c.txt']);
    await expect(hashOf('a.txt')).resolves.toBe(sha('a.txt'));
    expect(gated.reads).toHaveLength(3);
    await expect(hashOf('b.txt')).resolves.toBe(sha('b.txt'));
    expect(gated.reads).toEqual(['a.txt', 'b.txt', 'c.txt', 'b.txt']);
  });
});
