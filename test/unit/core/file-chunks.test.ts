import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileChunks } from '../../../src/core/file-chunks.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'talk-chunks-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every chunk (copied), and how many reads the file handle served. */
async function readAll(bytes: Buffer, expectedSize: number, maxChunk: number, reuse = false): Promise<{ chunks: Buffer[]; reads: number }> {
  const file = path.join(dir, `f${bytes.length}-${expectedSize}-${maxChunk}`);
  await writeFile(file, bytes);
  const handle = await open(file, 'r');
  let reads = 0;
  const read = handle.read.bind(handle);
  handle.read = ((...args: Parameters<typeof read>) => {
    reads += 1;
    return read(...args);
  });
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of fileChunks(handle, expectedSize, maxChunk, reuse)) chunks.push(Buffer.from(chunk));
    return { chunks, reads };
  } finally {
    await handle.close();
  }
}

describe('fileChunks', () => {
  it('reads a file of the expected size without a read for its end', async () => {
    const bytes = randomBytes(7_521);
    const small = await readAll(bytes, bytes.length, 256 * 1024);
    expect(small.reads).toBe(1);
    expect(Buffer.concat(small.chunks).equals(bytes)).toBe(true);
    const big = await readAll(randomBytes(10_000), 10_000, 4096);
    expect(big.chunks.map((c) => c.length)).toEqual([4096, 4096, 1808]);
    expect(big.reads).toBe(3);
    expect((await readAll(Buffer.alloc(0), 0, 4096)).chunks).toEqual([]);
  });

  it('hands over every byte of a file that grew or shrank since its size was taken', async () => {
    const bytes = randomBytes(9_000);
    expect(Buffer.concat((await readAll(bytes, 5_000, 4096)).chunks).equals(bytes)).toBe(true);
    expect(Buffer.concat((await readAll(bytes, 20_000, 4096)).chunks).equals(bytes)).toBe(true);
  });

  it('with reuse, serves every chunk from one buffer', async () => {
    const bytes = randomBytes(10_000);
    const file = path.join(dir, 'reuse');
    await writeFile(file, bytes);
    const handle = await open(file, 'r');
    try {
      const backing = new Set<ArrayBufferLike>();
      const seen: Buffer[] = [];
      for await (const chunk of fileChunks(handle, bytes.length, 4096, true)) {
        backing.add(chunk.buffer);
        seen.push(Buffer.from(chunk));
      }
      expect(backing.size).toBe(1);
      expect(Buffer.concat(seen).equals(bytes)).toBe(true);
    } finally {
      await handle.close();
    }
  });
});
