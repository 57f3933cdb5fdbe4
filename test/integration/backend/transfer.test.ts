import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, truncateSync } from 'node:fs';
import { open, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendError } from '../../../src/core/errors.js';
import { startRig, type Rig } from './rig.js';

const MB = 1024 * 1024;
const run = promisify(execFile);

async function sha(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/** A file of `size` bytes: a header of varied bytes, then a hole (cheap to make, real to read). */
async function sparseFile(file: string, size: number): Promise<void> {
  const handle = await open(file, 'w');
  try {
    await handle.write(Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 31) % 256)));
    await handle.truncate(size);
  } finally {
    await handle.close();
  }
}

/** Temp files the server is still holding in its uploads folder. */
async function incoming(rig: Rig): Promise<string[]> {
  return (await readdir(path.join(rig.backend.dataDir, 'uploads'))).filter((f) => f.endsWith('.tmp'));
}

describe('streamed transfers', () => {
  let rig: Rig;
  beforeAll(async () => {
    rig = await startRig({ local: { maxUploadBytes: 80 * MB } });
  });
  afterAll(async () => rig.close());

  it('uploads and downloads 64 MB without holding the file in memory (child process peak RSS)', async () => {
    const file = path.join(rig.dir, 'big.jpg');
    const size = 64 * MB;
    await sparseFile(file, size);
    const { sessionId } = await rig.client.createSession({ taskName: 'memory', language: 'en' });
    const token = await rig.tokens.token();
    const child = fileURLToPath(new URL('./transfer-child.ts', import.meta.url));
    const dest = path.join(rig.dir, 'back.bin');
    const { stdout } = await run(process.execPath, ['--import', 'tsx', child, rig.backend.url, sessionId, file, dest], {
      env: { ...process.env, NEMO_TOKEN: token },
      encoding: 'utf8',
    });
    const figures = JSON.parse(stdout) as Record<string, number | string>;
    const expected = await sha(file);
    expect(figures['uploaded']).toBe(size);
    expect(figures['uploadSha']).toBe(expected);
    expect(figures['downloaded']).toBe(size);
    expect(figures['downloadSha']).toBe(expected);
    expect(await sha(dest)).toBe(expected);
    // Generous bounds (RSS, not timing). The upload reads the file in 256 KiB chunks pulled by
    // the socket: a client that buffered the file would add at least its 64 MB. A download's
    // socket reads leave ~40-70 MB of short-lived buffers before GC whatever the size (plain
    // node:http does the same); buffering the file as well would add its 64 MB twice over.
    const start = Math.max(Number(figures['startRss']), Number(figures['startPeak']));
    const seen = JSON.stringify({ start: start / MB, upload: Number(figures['uploadPeak']) / MB, download: Number(figures['downloadPeak']) / MB });
    expect(Number(figures['uploadPeak']) - start, seen).toBeLessThan(48 * MB);
    expect(Number(figures['downloadPeak']) - start, seen).toBeLessThan(100 * MB);
    expect(Number(figures['downloadPeak']), seen).toBeLessThan(220 * MB);
    // The server streamed it to disk and kept no temp file.
    expect(await incoming(rig)).toEqual([]);
  });

  it('sends non-ASCII and quoted file names intact', async () => {
    const name = 'portrait "é 名前".jpg';
    const file = path.join(rig.dir, name);
    await writeFile(file, Buffer.alloc(1000, 1));
    const { sessionId } = await rig.client.createSession({ taskName: 'names', language: 'en' });
    const up = await rig.client.uploadFile(sessionId, file);
    // The client escapes quotes as browsers do (%22); the rest arrives as UTF-8.
    expect(up.file.filename).toContain('é 名前');
    expect(up.bytes).toBe(1000);
  });

  it('stops with a clear error when the file shrinks while it is being sent', async () => {
    const file = path.join(rig.dir, 'shrinking.wav');
    await writeFile(file, Buffer.alloc(2 * MB, 2));
    const { sessionId } = await rig.client.createSession({ taskName: 'shrink', language: 'en' });
    let cut = false;
    const failure = await rig.client
      .uploadFile(sessionId, file, {
        // The first progress report comes after the first chunk is read; cutting the file then
        // (synchronously) leaves reads ahead of it at most a chunk or two, never the 2 MB.
        onProgress: () => {
          if (cut) return;
          cut = true;
          truncateSync(file, 300 * 1024);
        },
      })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(failure).toBeInstanceOf(BackendError);
    expect((failure as BackendError).message).toMatch(/changed size while it was uploading/);
    const s = await rig.client.getState(sessionId);
    expect(s.state.video_infos).toEqual([]);
    // The server sees the reset after the client gave up; wait for its cleanup, not for time.
    await expect.poll(() => incoming(rig), { timeout: 5_000 }).toEqual([]);
  });

  it('leaves no temp file behind after a refused type or an overrun', async () => {
    const { sessionId } = await rig.client.createSession({ taskName: 'refused', language: 'en' });
    const token = await rig.tokens.token();
    const headers = { authorization: `Bearer ${token}`, 'x-skill-source': 'test', 'x-skill-version': '0', 'x-skill-platform': 'unknown' };
    const url = `${rig.backend.url}/api/upload-video/nemo_agent/me/${sessionId}`;
    const form = new FormData();
    form.append('files', new Blob([Buffer.alloc(1000, 3)]), 'ok.jpg');
    form.append('files', new Blob([Buffer.alloc(1000, 4)]), 'notes.txt');
    const refused = (await (await fetch(url, { method: 'POST', headers, body: form })).json()) as { code: number };
    expect(refused.code).toBe(4001);
    const big = new FormData();
    big.append('files', new Blob([Buffer.alloc(81 * MB, 5)]), 'big.mp4');
    // No Content-Length from a chunked stream: the server must cut it off as it counts.
    const body = new Request('http://x.invalid/', { method: 'POST', body: big });
    const res = await fetch(url, { method: 'POST', headers: { ...headers, 'content-type': body.headers.get('content-type') ?? '' }, body: body.body, duplex: 'half' });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { code: number }).code).toBe(4002);
    expect(await incoming(rig)).toEqual([]);
    expect((await stat(path.join(rig.backend.dataDir, 'uploads'))).isDirectory()).toBe(true);
  });
});
