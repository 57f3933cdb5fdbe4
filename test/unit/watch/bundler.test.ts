import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { assembleGroup, groupKeyFor } from '../../../src/watch/bundler.js';
import { resolveWatchConfig } from '../../../src/watch/config.js';

const root = path.resolve('/inbox');
const at = (...parts: string[]): string => path.join(root, ...parts);
const settled = (...paths: string[]) => paths.map((absPath) => ({ absPath, settled: true }));

describe('stem pairing', () => {
  const config = resolveWatchConfig({});

  it('groups files by stem at the top of the folder only', () => {
    expect(groupKeyFor(root, at('anna.jpg'), config)).toBe('anna');
    expect(groupKeyFor(root, at('anna.MP3'), config)).toBe('anna');
    expect(groupKeyFor(root, at('anna.txt'), config)).toBe('anna');
    expect(groupKeyFor(root, at('anna.pdf'), config)).toBeUndefined();
    expect(groupKeyFor(root, at('sub', 'anna.jpg'), config)).toBeUndefined();
  });

  it('is ready with a portrait and a voice, and picks up the instructions file', () => {
    const status = assembleGroup(root, 'anna', settled(at('anna.mp3'), at('anna.jpg'), at('anna.txt')), config);
    expect(status.kind).toBe('ready');
    if (status.kind !== 'ready') return;
    expect(status.bundle.files).toEqual({ portrait: at('anna.jpg'), voice: at('anna.mp3') });
    expect(status.bundle.instructionsFile).toBe(at('anna.txt'));
    expect(status.bundle.members).toHaveLength(3);
  });

  it('waits while any member is still settling', () => {
    const files = [
      { absPath: at('anna.jpg'), settled: true },
      { absPath: at('anna.mp3'), settled: false },
    ];
    expect(assembleGroup(root, 'anna', files, config)).toEqual({ kind: 'settling' });
  });

  it('says which partner is missing', () => {
    const status = assembleGroup(root, 'anna', settled(at('anna.jpg')), config);
    expect(status.kind).toBe('incomplete');
    if (status.kind !== 'incomplete') return;
    expect(status.missing).toEqual(['voice']);
    expect(status.problems[0]).toMatch(/no voice file \(expected anna with one of \.mp3/);
  });

  it('refuses two files for one role rather than guessing', () => {
    const status = assembleGroup(root, 'anna', settled(at('anna.jpg'), at('anna.png'), at('anna.mp3')), config);
    expect(status.kind).toBe('incomplete');
    if (status.kind !== 'incomplete') return;
    expect(status.problems.join()).toMatch(/more than one portrait file \(anna\.jpg, anna\.png\)/);
  });
});

describe('folder and manifest pairing', () => {
  it('groups by subfolder and matches roles by extension', () => {
    const config = resolveWatchConfig({ pairing: 'folder' });
    expect(groupKeyFor(root, at('job1', 'face.png'), config)).toBe('job1');
    expect(groupKeyFor(root, at('face.png'), config)).toBeUndefined();
    const status = assembleGroup(root, 'job1', settled(at('job1', 'face.png'), at('job1', 'talk.wav')), config);
    expect(status.kind).toBe('ready');
    if (status.kind === 'ready') expect(status.bundle.folder).toBe(at('job1'));
  });

  it('is complete only once the manifest is there', () => {
    const config = resolveWatchConfig({ pairing: 'manifest' });
    expect(groupKeyFor(root, at('job1', 'job.yaml'), config)).toBe('job1');
    const without = assembleGroup(root, 'job1', settled(at('job1', 'face.png'), at('job1', 'talk.wav')), config);
    expect(without.kind).toBe('incomplete');
    if (without.kind === 'incomplete') expect(without.missing).toEqual(['job.yaml']);
    const withManifest = assembleGroup(root, 'job1', settled(at('job1', 'face.png'), at('job1', 'talk.wav'), at('job1', 'job.yaml')), config);
    expect(withManifest.kind).toBe('ready');
    if (withManifest.kind === 'ready') expect(withManifest.bundle.manifestFile).toBe(at('job1', 'job.yaml'));
  });
});
