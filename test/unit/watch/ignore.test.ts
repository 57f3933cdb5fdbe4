import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createIgnoreMatcher, isIgnoredName } from '../../../src/watch/ignore.js';

describe('isIgnoredName', () => {
  it.each([
    '.DS_Store',
    '._anna.jpg',
    '.hidden',
    '.syncthing.anna.mp3.tmp',
    '.anna.mp3.Xy12Ab',
    'anna.mp3.tmp',
    'anna.mp3.part',
    'anna.mp3.PARTIAL',
    'anna.jpg.crdownload',
    'anna.jpg.download',
    'anna.txt~',
    'anna.txt.swp',
    '~$anna.docx',
    'Thumbs.db',
  ])('ignores %s', (name) => {
    expect(isIgnoredName(name)).toBe(true);
  });

  it.each(['anna.jpg', 'anna.mp3', 'anna.txt', 'job.yaml', 'my~file.wav', 'part.mp3'])('takes %s', (name) => {
    expect(isIgnoredName(name)).toBe(false);
  });
});

describe('createIgnoreMatcher', () => {
  const root = path.resolve('/inbox');
  const ignored = createIgnoreMatcher(root, [path.join(root, 'out'), path.join(root, 'processed')]);

  it('never ignores the watched folder itself, even when it is a dot folder', () => {
    expect(createIgnoreMatcher('/x/.inbox', [])('/x/.inbox')).toBe(false);
    expect(createIgnoreMatcher('/x/.inbox', [])('/x/.inbox/anna.jpg')).toBe(false);
  });

  it('ignores the output and processed folders and everything in them', () => {
    expect(ignored(path.join(root, 'out'))).toBe(true);
    expect(ignored(path.join(root, 'out', 'anna.mp4'))).toBe(true);
    expect(ignored(path.join(root, 'processed', 'anna.jpg'))).toBe(true);
  });

  it('ignores files under a hidden folder and files outside the root', () => {
    expect(ignored(path.join(root, '.talk', 'state.json'))).toBe(true);
    expect(ignored('/elsewhere/anna.jpg')).toBe(true);
    expect(ignored(path.join(root, 'anna', 'anna.jpg'))).toBe(false);
  });

  it('judges a path by where it resolves to, whatever its spelling', () => {
    expect(ignored(`${root}/out/../anna.jpg`)).toBe(false);
    expect(ignored(`${root}/./out/anna.mp4`)).toBe(true);
    expect(ignored(`${root}//processed/anna.jpg`)).toBe(true);
    expect(ignored(`${root}/`)).toBe(false);
    expect(ignored(`${root}/../inbox2/anna.jpg`)).toBe(true);
    expect(ignored(`${root}-other/anna.jpg`)).toBe(true);
    expect(ignored(`${root}/outside.jpg`)).toBe(false);
    expect(ignored(`${root}/output/anna.jpg`)).toBe(false);
  });
});
