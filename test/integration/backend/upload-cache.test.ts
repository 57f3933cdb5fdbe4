// The upload cache against the real local backend: bytes sent once per content and account,
// later sessions (and later processes, through the cache file) upload by URL, a URL the backend
// refuses falls back to sending the bytes once, an expired entry is not offered. Asserted on
// the backend's own counters (`uploadBytes`, `urlUploads`).
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { uploadAccount, withUploadCache, type UploadCacheOptions } from '../../../src/backend/index.js';
import type { BackendClient } from '../../../src/backend/types.js';
import { makeMedia, startRig, type Rig } from './rig.js';

let rig: Rig;
let cacheFile: string;

beforeEach(async () => {
  rig = await startRig();
  cacheFile = path.join(rig.configDir, 'uploads.json');
});

afterEach(async () => {
  await rig.close();
});

function cached(extra: Partial<UploadCacheOptions> = {}) {
  return withUploadCache<BackendClient>(rig.client, { file: cacheFile, backendId: rig.backend.url, account: () => uploadAccount(rig.tokens), ...extra });
}

async function session(client: BackendClient) {
  return (await client.createSession({ taskName: 'project', language: 'en' })).sessionId;
}

describe('upload cache', () => {
  it('sends a file once for six sessions at once, and not at all for a later process', async () => {
    const { portrait } = makeMedia();
    const size = (await stat(portrait)).size;
    const client = cached();
    const sessions = await Promise.all([1, 2, 3, 4, 5, 6].map(() => session(client)));
    const results = await Promise.all(sessions.map((s) => client.uploadFile(s, portrait)));
    expect(rig.backend.stats().uploadBytes).toBe(size);
    expect(rig.backend.stats().urlUploads).toBe(5);
    expect(rig.backend.stats().uploads).toBe(6);
    expect(client.uploadCounters).toEqual({ sent: 1, byUrl: 5, refused: 0 });
    // Every session got the same content, each as its own file object.
    for (const r of results) expect(r).toMatchObject({ bytes: size, sha256: results[0]?.sha256, file: { hash: results[0]?.sha256, width: 270 } });
    expect(new Set(results.map((r) => r.file.cdn_url)).size).toBe(6);

    // A new process: only the cache file carries over.
    const later = cached();
    await later.uploadFile(await session(later), portrait);
    expect(rig.backend.stats().uploadBytes).toBe(size);
    expect(later.uploadCounters).toEqual({ sent: 0, byUrl: 1, refused: 0 });
    // No token in the cache file.
    expect(await readFile(cacheFile, 'utf8')).not.toMatch(/nmv_usr_/);
  });

  it('distinct files sent at once are all in the file when their uploads resolve, and a later process sends none of them', async () => {
    const { portrait } = makeMedia();
    const bytes = await readFile(portrait);
    const files: string[] = [];
    for (let i = 0; i < 8; i += 1) {
      const file = path.join(rig.dir, `distinct-${i}.jpg`);
      // Same picture, other bytes: a comment segment after the JPEG's start marker.
      await writeFile(file, Buffer.concat([bytes.subarray(0, 2), Buffer.from([0xff, 0xfe, 0x00, 0x04, i, i]), bytes.subarray(2)]));
      files.push(file);
    }
    const client = cached();
    await Promise.all(files.map(async (f) => client.uploadFile(await session(client), f)));
    expect(client.uploadCounters).toEqual({ sent: 8, byUrl: 0, refused: 0 });
    const onDisk = JSON.parse(await readFile(cacheFile, 'utf8')) as { backends: Record<string, Record<string, Record<string, unknown>>> };
    expect(Object.values(Object.values(onDisk.backends)[0] ?? {}).reduce((n, entries) => n + Object.keys(entries).length, 0)).toBe(8);

    const later = cached();
    await Promise.all(files.map(async (f) => later.uploadFile(await session(later), f)));
    expect(later.uploadCounters).toEqual({ sent: 0, byUrl: 8, refused: 0 });
  });

  it('a URL the backend refuses: the bytes are sent once, and the entry replaced', async () => {
    const { portrait } = makeMedia();
    const size = (await stat(portrait)).size;
    const first = cached();
    await first.uploadFile(await session(first), portrait);
    // The backend lost the file (a wiped data dir, an expired CDN link): a stale link of its own.
    const text = await readFile(cacheFile, 'utf8');
    await writeFile(cacheFile, text.replace(/\/media\/u[0-9a-f]+\./g, '/media/u000000000000000000.'));

    const second = cached();
    const s = await session(second);
    await Promise.all([second.uploadFile(s, portrait), second.uploadFile(await session(second), portrait)]);
    expect(second.uploadCounters.sent).toBe(1);
    expect(second.uploadCounters.byUrl).toBe(1);
    expect(rig.backend.stats().uploadBytes).toBe(2 * size);

    const third = cached();
    await third.uploadFile(await session(third), portrait);
    expect(third.uploadCounters).toEqual({ sent: 0, byUrl: 1, refused: 0 });
  });

  it('an expired entry is not offered; another account does not see it', async () => {
    const { portrait } = makeMedia();
    const size = (await stat(portrait)).size;
    let clock = Date.now();
    const first = cached({ now: () => clock, ttlMs: 60_000 });
    await first.uploadFile(await session(first), portrait);
    clock += 61_000;
    const second = cached({ now: () => clock, ttlMs: 60_000 });
    await second.uploadFile(await session(second), portrait);
    expect(second.uploadCounters).toEqual({ sent: 1, byUrl: 0, refused: 0 });

    const stranger = cached({ account: () => 'someone-else' });
    await stranger.uploadFile(await session(stranger), portrait);
    expect(stranger.uploadCounters).toEqual({ sent: 1, byUrl: 0, refused: 0 });
    expect(rig.backend.stats().uploadBytes).toBe(3 * size);
    expect(rig.backend.stats().urlUploads).toBe(0);
  });
});
