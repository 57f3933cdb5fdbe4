// Preflight (loadWorkflow's last stage when asked): output folders created and proved writable,
// every input decoded by ffprobe as its role needs, one probe per distinct content. Real files,
// real ffprobe; every problem a located diagnostic.
import { copyFile, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatDiagnosticLine } from '../../../src/core/diagnostics.js';
import { TalkError } from '../../../src/core/errors.js';
import { hashFile, sharedFileHasher as sharedFileHasherOf, type FileHasher } from '../../../src/core/hash-file.js';
import { SETTLED_MS } from '../../../src/workflow/probe-cache.js';
import { loadWorkflow, preflightWorkflow, roleOf } from '../../../src/workflow/index.js';
import { makeTestMedia, noiseBytes, testTools } from '../../helpers/media.js';

const mediaDir = path.join(tmpdir(), 'talk-test-media-preflight');
let dir: string;

beforeEach(async () => {
  const media = await makeTestMedia(mediaDir);
  dir = await mkdtemp(path.join(tmpdir(), 'talk-preflight-'));
  await mkdir(path.join(dir, 'assets'));
  await copyFile(media.portrait, path.join(dir, 'assets', 'portrait.jpg'));
  await copyFile(media.voice, path.join(dir, 'assets', 'voice.mp3'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const HELLO = `name: hello
inputs:
  portrait: assets/portrait.jpg
  voice: assets/voice.mp3
instructions:
  - Make this photo talk
export:
  output: out/hello.mp4
`;

async function check(yaml: string) {
  await writeFile(path.join(dir, 'hello.yaml'), yaml);
  return loadWorkflow('hello.yaml', { cwd: dir, env: { PATH: process.env['PATH'] }, preflight: true });
}

describe('preflight', () => {
  it('passes good media and a writable output folder, which it creates and leaves empty', async () => {
    const result = await check(HELLO);
    expect(result.diagnostics).toEqual([]);
    expect(result.workflow).toBeDefined();
    expect(await readdir(path.join(dir, 'out'))).toEqual([]);
  });

  it('does nothing on the machine unless asked', async () => {
    await writeFile(path.join(dir, 'assets', 'voice.mp3'), noiseBytes(20_000));
    await writeFile(path.join(dir, 'hello.yaml'), HELLO);
    const result = await loadWorkflow('hello.yaml', { cwd: dir, env: {} });
    expect(result.diagnostics).toEqual([]);
    await expect(readdir(path.join(dir, 'out'))).rejects.toThrow();
  });

  it('an output folder that is a file: located at the output', async () => {
    await writeFile(path.join(dir, 'out'), 'not a folder');
    const result = await check(HELLO);
    expect(result.workflow).toBeUndefined();
    expect(result.diagnostics.map(formatDiagnosticLine)).toEqual([
      'hello.yaml:8:11 error output out/hello.mp4: the output folder out cannot be created: out is a file',
    ]);
  });

  it('an output that is an existing folder', async () => {
    await mkdir(path.join(dir, 'out', 'hello.mp4'), { recursive: true });
    const result = await check(HELLO);
    expect(result.diagnostics.map(formatDiagnosticLine)).toEqual(['hello.yaml:8:11 error output out/hello.mp4 is a folder, not a file']);
  });

  it('a voice and a portrait of random bytes: each located at its input', async () => {
    await writeFile(path.join(dir, 'assets', 'voice.mp3'), noiseBytes(40_000, 7));
    await writeFile(path.join(dir, 'assets', 'portrait.jpg'), noiseBytes(40_000, 9));
    const result = await check(HELLO);
    expect(result.workflow).toBeUndefined();
    const lines = result.diagnostics.map(formatDiagnosticLine);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^hello\.yaml:3:13 error input `portrait`: assets\/portrait\.jpg (does not decode as an image or a video|holds no picture)/);
    expect(lines[1]).toMatch(/^hello\.yaml:4:10 error input `voice`: assets\/voice\.mp3 (does not decode as audio|holds no audio)/);
    // No machine path in what the user reads.
    expect(lines.join('\n')).not.toContain(dir);
  });

  it('a portrait that is audio, a voice that is a picture', async () => {
    const media = await makeTestMedia(mediaDir);
    await copyFile(media.voice, path.join(dir, 'assets', 'face.mp3'));
    await copyFile(media.portrait, path.join(dir, 'assets', 'speech.png'));
    const result = await check(HELLO.replace('assets/portrait.jpg', 'assets/face.mp3').replace('assets/voice.mp3', 'assets/speech.png'));
    expect(result.diagnostics.map((d) => d.message)).toEqual([
      'input `portrait`: assets/face.mp3 is audio only; it needs to be an image or a video',
      'input `voice`: assets/speech.png is a picture, with no sound',
    ]);
  });

  it('a batch probes each distinct content once, and reports a bad shared file once', async () => {
    await mkdir(path.join(dir, 'scripts'));
    for (let i = 0; i < 12; i += 1) await writeFile(path.join(dir, 'scripts', `s${i}.txt`), `script ${i}`);
    // Two paths, same bytes: hashed twice, probed once.
    await copyFile(path.join(dir, 'assets', 'voice.mp3'), path.join(dir, 'assets', 'voice-copy.mp3'));
    const { ffprobe } = testTools();
    const media = [];
    const outputs = [];
    for (let i = 0; i < 12; i += 1) {
      const at = { file: 'batch.yaml', line: 3, col: 5 };
      media.push({ input: 'portrait', absolute: path.join(dir, 'assets', 'portrait.jpg'), shown: 'assets/portrait.jpg', at });
      const voice = i % 2 === 0 ? 'voice.mp3' : 'voice-copy.mp3';
      media.push({ input: 'voice', absolute: path.join(dir, 'assets', voice), shown: `assets/${voice}`, at: { ...at, line: 4 } });
      outputs.push({ absolute: path.join(dir, 'out', `s${i}.mp4`), shown: `out/s${i}.mp4`, at: { ...at, line: 8 } });
    }
    const good = await preflightWorkflow({ media, outputs }, dir, { env: {}, ffprobe });
    expect(good.diagnostics).toEqual([]);
    expect(good.stats).toMatchObject({ folders: 1, files: 3, probes: 2 });

    await writeFile(path.join(dir, 'assets', 'portrait.jpg'), noiseBytes(10_000));
    const bad = await preflightWorkflow({ media, outputs }, dir, { env: {}, ffprobe });
    expect(bad.diagnostics).toHaveLength(1);
    expect(bad.diagnostics[0]).toMatchObject({ line: 3, col: 5, severity: 'error' });
  });

  it('a probe cache: the same bytes and ffprobe are not probed again; another ffprobe, or a failure, is', async () => {
    const { ffprobe } = testTools();
    const probeCacheDir = path.join(dir, 'cache', 'probes');
    const at = { file: 'hello.yaml', line: 4, col: 10 };
    const targets = {
      media: [
        { input: 'portrait', absolute: path.join(dir, 'assets', 'portrait.jpg'), shown: 'assets/portrait.jpg', at },
        { input: 'voice', absolute: path.join(dir, 'assets', 'voice.mp3'), shown: 'assets/voice.mp3', at: { ...at, line: 5 } },
      ],
      outputs: [],
    };
    const first = await preflightWorkflow(targets, dir, { env: {}, ffprobe, probeCacheDir });
    expect(first.stats).toMatchObject({ probes: 2, cachedProbes: 0 });
    expect((await readdir(probeCacheDir)).filter((f) => f.endsWith('.json'))).toHaveLength(2);
    const again = await preflightWorkflow(targets, dir, { env: {}, ffprobe, probeCacheDir });
    expect(again).toMatchObject({ diagnostics: [], stats: { probes: 0, cachedProbes: 2 } });

    // Changed bytes are other content; a failed probe leaves no entry and is probed next time.
    await writeFile(path.join(dir, 'assets', 'voice.mp3'), noiseBytes(20_000));
    for (let i = 0; i < 2; i += 1) {
      const bad = await preflightWorkflow(targets, dir, { env: {}, ffprobe, probeCacheDir });
      expect(bad.stats).toMatchObject({ probes: 1, cachedProbes: 1 });
      expect(bad.diagnostics).toHaveLength(1);
    }

    // Another ffprobe (here one that hears no sound in anything) is asked, not the cache.
    const deaf = path.join(dir, 'deaf-ffprobe');
    await writeFile(deaf, `#!/bin/sh\necho '{"streams":[{"codec_type":"video","width":270,"height":480}],"format":{"duration":"1"}}'\n`, { mode: 0o755 });
    const other = await preflightWorkflow(targets, dir, { env: {}, ffprobe: deaf, probeCacheDir });
    expect(other.stats).toMatchObject({ probes: 2, cachedProbes: 0 });
    expect(other.diagnostics.map((d) => d.message)).toEqual(['input `voice`: assets/voice.mp3 has no sound track']);
  });

  it('a probe cache remembers what it hashed: settled inputs are not read again until stat changes', async () => {
    const { ffprobe } = testTools();
    const probeCacheDir = path.join(dir, 'cache', 'probes');
    const voice = path.join(dir, 'assets', 'voice.mp3');
    const targets = {
      media: [
        { input: 'portrait', absolute: path.join(dir, 'assets', 'portrait.jpg'), shown: 'assets/portrait.jpg', at: { file: 'hello.yaml', line: 4, col: 10 } },
        { input: 'voice', absolute: voice, shown: 'assets/voice.mp3', at: { file: 'hello.yaml', line: 5, col: 10 } },
      ],
      outputs: [],
    };
    const reads: string[] = [];
    const hasher: FileHasher = (file, o) => {
      reads.push(path.basename(file));
      return hashFile(file, o);
    };
    const lastChange = async (): Promise<number> => Math.max(...(await Promise.all(targets.media.map((m) => stat(m.absolute)))).map((s) => Math.max(s.mtimeMs, s.ctimeMs)));
    // The clock reads the files' own times: just written, then settled.
    let now = await lastChange();
    const clock = { now: () => now };
    const preflight = () => preflightWorkflow(targets, dir, { env: {}, ffprobe, probeCacheDir, hasher: sharedFileHasherOf(hasher), rememberHashes: true, clock });

    // Just written: hashed, and hashed again next time (a write within one tick of the file
    // times could otherwise hide behind the same stat).
    await preflight();
    await preflight();
    expect(reads.sort()).toEqual(['portrait.jpg', 'portrait.jpg', 'voice.mp3', 'voice.mp3']);

    // Settled (the clock past the files' last change by SETTLED_MS; file times carry a fraction
    // of a millisecond Date.now drops): hashed once more and remembered, then not read at all.
    now = (await lastChange()) + SETTLED_MS;
    reads.length = 0;
    await preflight();
    expect(reads.sort()).toEqual(['portrait.jpg', 'voice.mp3']);
    const again = await preflight();
    expect(again).toMatchObject({ diagnostics: [], stats: { probes: 0, cachedProbes: 2 } });
    expect(reads).toHaveLength(2);
    // A run (no rememberHashes: it hashes every input for its fingerprints anyway) reads them.
    await preflightWorkflow(targets, dir, { env: {}, ffprobe, probeCacheDir, hasher: sharedFileHasherOf(hasher), clock });
    expect(reads).toHaveLength(4);

    // Other bytes of the same size, written in place: the change time moved, so it is read,
    // and its verdict is its own.
    await writeFile(voice, noiseBytes((await stat(voice)).size));
    now = (await lastChange()) + SETTLED_MS;
    reads.length = 0;
    const changed = await preflight();
    expect(reads).toEqual(['voice.mp3']);
    expect(changed.diagnostics.map((d) => d.message)).toEqual([expect.stringContaining('does not decode as audio')]);

    // A damaged memo is a miss, not a verdict.
    for (const f of await readdir(path.join(probeCacheDir, 'files'))) await writeFile(path.join(probeCacheDir, 'files', f), '{"version":1,');
    reads.length = 0;
    await preflight();
    expect(reads.sort()).toEqual(['portrait.jpg', 'voice.mp3']);
  });

  it('no ffprobe: an environment error that says how to get one', async () => {
    await writeFile(path.join(dir, 'hello.yaml'), HELLO);
    const attempt = preflightWorkflow(
      { media: [{ input: 'voice', absolute: path.join(dir, 'assets', 'voice.mp3'), shown: 'assets/voice.mp3', at: { file: 'hello.yaml', line: 4, col: 10 } }], outputs: [] },
      dir,
      // Only the npm-shipped build could still be found; a bogus override must win over it.
      { env: { PATH: '', FFPROBE_PATH: path.join(dir, 'no-such-ffprobe') } },
    );
    await expect(attempt).rejects.toSatisfy((e: unknown) => e instanceof TalkError && e.code === 'environment');
  });

  it('roles come from the input name, else the extension', () => {
    expect(roleOf('portrait', 'mp4')).toBe('portrait');
    expect(roleOf('voice', 'mp4')).toBe('voice');
    expect(roleOf('music', 'wav')).toBe('sound');
    expect(roleOf('logo', 'png')).toBe('picture');
    expect(roleOf('broll', 'mov')).toBe('picture');
  });
});
