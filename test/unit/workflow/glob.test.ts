import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { globFiles, hasGlobMagic, segmentToRegex } from '../../../src/workflow/glob.js';
import { nodeWorkflowFs } from '../../../src/workflow/index.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'talk-glob-'));
  for (const f of ['a/x.jpg', 'a/y.png', 'a/.z.jpg', 'a/b/c/deep.jpg', 'a/b/w.jpg', 'top.jpg', 'a/[x].jpg']) {
    await mkdir(path.dirname(path.join(dir, f)), { recursive: true });
    await writeFile(path.join(dir, f), 'x');
  }
  await mkdir(path.join(dir, 'a', 'folder.jpg'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const rel = (files: string[]): string[] => files.map((f) => path.relative(dir, f).split(path.sep).join('/'));

describe('glob', () => {
  it('knows glob syntax from plain paths', () => {
    expect(hasGlobMagic('faces/*.jpg')).toBe(true);
    expect(hasGlobMagic('faces/bob.jpg')).toBe(false);
  });

  it('matches one segment with *, ?, classes and braces; dot files only explicitly', () => {
    expect(segmentToRegex('*.jpg').test('x.jpg')).toBe(true);
    expect(segmentToRegex('*.jpg').test('.z.jpg')).toBe(false);
    expect(segmentToRegex('.*.jpg').test('.z.jpg')).toBe(true);
    expect(segmentToRegex('?.{jpg,png}').test('y.png')).toBe(true);
    expect(segmentToRegex('[xy].jpg').test('y.jpg')).toBe(true);
    expect(segmentToRegex('[!xy].jpg').test('y.jpg')).toBe(false);
    expect(segmentToRegex('a+b(1).jpg').test('a+b(1).jpg')).toBe(true);
  });

  it('finds files only, sorted, across ** and braces', async () => {
    expect(rel(await globFiles('a/*.jpg', dir, nodeWorkflowFs))).toEqual(['a/[x].jpg', 'a/x.jpg']);
    expect(rel(await globFiles('a/?.jpg', dir, nodeWorkflowFs))).toEqual(['a/x.jpg']);
    expect(rel(await globFiles('a/*.{jpg,png}', dir, nodeWorkflowFs))).toEqual(['a/[x].jpg', 'a/x.jpg', 'a/y.png']);
    expect(rel(await globFiles('**/*.jpg', dir, nodeWorkflowFs))).toEqual(['a/[x].jpg', 'a/b/c/deep.jpg', 'a/b/w.jpg', 'a/x.jpg', 'top.jpg']);
    expect(rel(await globFiles('./a/../top.jpg', dir, nodeWorkflowFs))).toEqual(['top.jpg']);
    expect(rel(await globFiles(path.join(dir, 'a', 'b', '*.jpg'), '/', nodeWorkflowFs))).toEqual(['a/b/w.jpg']);
    expect(await globFiles('missing/*.jpg', dir, nodeWorkflowFs)).toEqual([]);
  });

  it('takes parentheses literally, as file managers name copies', async () => {
    const own = await mkdtemp(path.join(tmpdir(), 'talk-glob-paren-'));
    try {
      for (const f of ['photo (1).jpg', 'photo 1.jpg', 'photo (2).jpg']) await writeFile(path.join(own, f), 'x');
      expect(hasGlobMagic('faces/photo (1).jpg')).toBe(false);
      expect(segmentToRegex('photo (1).jpg').test('photo 1.jpg')).toBe(false);
      expect((await globFiles('* (1).jpg', own, nodeWorkflowFs)).map((f) => path.basename(f))).toEqual(['photo (1).jpg']);
      expect((await globFiles('photo ([12]).jpg', own, nodeWorkflowFs)).map((f) => path.basename(f))).toEqual(['photo (1).jpg', 'photo (2).jpg']);
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });

  it('stops when aborted', async () => {
    await expect(globFiles('**/*.jpg', dir, nodeWorkflowFs, AbortSignal.abort())).rejects.toThrow();
  });
});
