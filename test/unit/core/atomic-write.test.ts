import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createAtomicTarget, writeFileAtomic } from '../../../src/core/atomic-write.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'talk-atomic-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('atomic targets', () => {
  it('leave the old file as it was until commit, then replace it whole', async () => {
    const dest = path.join(dir, 'video.mp4');
    await writeFile(dest, 'old');
    for (const durable of [true, false]) {
      const target = createAtomicTarget(dest, { durable });
      expect(path.dirname(target.tempPath)).toBe(dir);
      await writeFile(target.tempPath, `new ${durable}`);
      expect(await readFile(dest, 'utf8')).not.toBe(`new ${durable}`);
      await target.commit();
      expect(await readFile(dest, 'utf8')).toBe(`new ${durable}`);
      expect(await readdir(dir)).toEqual(['video.mp4']);
    }
  });

  it('abort removes what was written and leaves the file alone, even when nothing was written', async () => {
    const dest = path.join(dir, 'upload.png');
    await writeFile(dest, 'kept');
    const written = createAtomicTarget(dest);
    await writeFile(written.tempPath, 'half');
    await written.abort();
    await createAtomicTarget(dest).abort();
    expect(await readdir(dir)).toEqual(['upload.png']);
    expect(await readFile(dest, 'utf8')).toBe('kept');
  });

  it('a commit with nothing written fails and changes nothing', async () => {
    const dest = path.join(dir, 'cache.mp4');
    await expect(createAtomicTarget(dest, { durable: false }).commit()).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readdir(dir)).toEqual([]);
  });

  it('writeFileAtomic writes through a target: pieces, the mode, no temp file left', async () => {
    const file = path.join(dir, 'nested', 'state.json');
    expect(await writeFileAtomic(file, ['{"a":', '1}'], { mode: 0o600 })).toBe(7);
    expect(await readFile(file, 'utf8')).toBe('{"a":1}');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readdir(path.dirname(file))).toEqual(['state.json']);
  });
});
