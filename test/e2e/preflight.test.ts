// Never pay for nothing, end to end with the built CLI against a local backend in this process
// (so its counters are read directly): preflight stops a run whose output folder is a file, or
// whose voice or portrait is noise, with exit 2 before any request (and `talk validate` says
// where); a batch of 6 items sharing a portrait sends its bytes once, and a later run sends no
// bytes at all.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startLocalBackend, type LocalBackend, type LocalStats } from '../../src/local-backend/index.js';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { makeTestMedia, noiseBytes } from '../helpers/media.js';

const mediaDir = path.join(tmpdir(), 'talk-test-media-e2e-preflight');
let backend: LocalBackend;
let backendDir: string;
let dir: string | undefined;

beforeAll(async () => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'talk.js'))) execFileSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'build.mjs')], { stdio: 'ignore' });
  backendDir = await mkdtemp(path.join(tmpdir(), 'talk-e2e-preflight-backend-'));
  backend = await startLocalBackend({ dataDir: path.join(backendDir, 'data'), anonymousCredits: 5000, silentEditRatio: 0 });
}, 120_000);

afterAll(async () => {
  await backend.close();
  await rm(backendDir, { recursive: true, force: true });
});

afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

const HELLO = `name: hello
inputs:
  portrait: portrait.jpg
  voice: voice.mp3
instructions:
  - Make this photo talk using my voiceover
export:
  quality: low
  resolution: 720p
  output: out/hello.mp4
`;

async function workspace(yaml: string): Promise<string> {
  const media = await makeTestMedia(mediaDir);
  dir = await mkdtemp(path.join(tmpdir(), 'talk-e2e-preflight-'));
  await copyFile(media.portrait, path.join(dir, 'portrait.jpg'));
  await copyFile(media.voice, path.join(dir, 'voice.mp3'));
  await writeFile(path.join(dir, 'hello.yaml'), yaml);
  return dir;
}

/** Every request the backend answered, whatever the route. */
function requestCount(stats: LocalStats): number {
  return Object.values(stats.requests).reduce((a, b) => a + (b ?? 0), 0);
}

describe('preflight: nothing is sent for a run that cannot succeed', () => {
  const cases: [string, (cwd: string) => Promise<void>, RegExp][] = [
    ['an output folder that is a file', (cwd) => writeFile(path.join(cwd, 'out'), 'a file'), /^hello\.yaml:10:11 error output out\/hello\.mp4: the output folder out cannot be created: out is a file$/m],
    ['a voice of random bytes', (cwd) => writeFile(path.join(cwd, 'voice.mp3'), noiseBytes(48_000, 3)), /^hello\.yaml:4:10 error input `voice`: voice\.mp3 (does not decode as audio|holds no audio)/m],
    ['a portrait of random bytes', (cwd) => writeFile(path.join(cwd, 'portrait.jpg'), noiseBytes(48_000, 5)), /^hello\.yaml:3:13 error input `portrait`: portrait\.jpg (does not decode as an image or a video|holds no picture)/m],
  ];
  for (const [name, spoil, located] of cases) {
    it(`${name}: talk run exits 2 with 0 requests, talk validate says where`, async () => {
      const cwd = await workspace(HELLO);
      await spoil(cwd);
      const before = backend.stats();
      const run = await runCli(['run', 'hello.yaml', '--backend', backend.url, '--json'], { cwd });
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(located);
      const after = backend.stats();
      expect(requestCount(after)).toBe(requestCount(before));
      expect(after.messages).toBe(before.messages);
      expect(after.tokensIssued).toBe(before.tokensIssued);

      const validate = await runCli(['validate', 'hello.yaml'], { cwd });
      expect(validate.code).toBe(2);
      expect(validate.stdout).toMatch(located);
    }, 60_000);
  }
});

/** An MP3 with an ID3v1 tag naming `title`: the same sound as distinct content. */
function taggedMp3(mp3: Buffer, title: string): Buffer {
  const tag = Buffer.alloc(128);
  tag.write('TAG', 0, 'latin1');
  tag.write(title.slice(0, 30), 3, 'latin1');
  return Buffer.concat([mp3, tag]);
}

describe('one upload per file per account', () => {
  it('6 items sharing a portrait send its bytes once; a later run sends no bytes', async () => {
    const cwd = await workspace(`name: shared
foreach:
  voice: voices/*.mp3
inputs:
  portrait: portrait.jpg
  voice: \${{ item.voice.path }}
instructions:
  - Make this photo talk using my voiceover
export:
  quality: low
  resolution: 720p
  output: out/\${{ item.voice.stem }}.mp4
`);
    await mkdir(path.join(cwd, 'voices'));
    const mp3 = await readFile(path.join(cwd, 'voice.mp3'));
    let voiceBytes = 0;
    for (let i = 1; i <= 6; i += 1) {
      const voice = taggedMp3(mp3, `voice ${i}`);
      voiceBytes += voice.length;
      await writeFile(path.join(cwd, 'voices', `v${i}.mp3`), voice);
    }
    const portraitBytes = (await stat(path.join(cwd, 'portrait.jpg'))).size;

    const before = backend.stats();
    const first = await runCli(['run', 'hello.yaml', '--backend', backend.url, '--json', '--concurrency', '3'], { cwd, timeoutMs: 120_000 });
    expect(first.stderr).not.toMatch(/internal error/);
    expect(first.code).toBe(0);
    const afterFirst = backend.stats();
    expect(afterFirst.uploads - before.uploads).toBe(12);
    // The portrait once, each voice once.
    expect(afterFirst.uploadBytes - before.uploadBytes).toBe(portraitBytes + voiceBytes);
    expect(afterFirst.urlUploads - before.urlUploads).toBe(5);

    // New sessions for the same files: every upload by URL, no bytes.
    const again = await runCli(['run', 'hello.yaml', '--backend', backend.url, '--json', '--fresh', '--concurrency', '3'], { cwd, timeoutMs: 120_000 });
    expect(again.code).toBe(0);
    const afterAgain = backend.stats();
    expect(afterAgain.sessionsCreated - afterFirst.sessionsCreated).toBe(6);
    expect(afterAgain.uploadBytes).toBe(afterFirst.uploadBytes);
    expect(afterAgain.urlUploads - afterFirst.urlUploads).toBe(12);
  }, 240_000);
});
