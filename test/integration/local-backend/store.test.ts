// The local backend's journal after a crash: a torn last line is dropped, a damaged line before
// it stops the start with its file and line instead of silently losing every later change.
import { afterEach, describe, expect, it } from 'vitest';
import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startLocalBackend, type LocalBackend } from '../../../src/local-backend/index.js';
import { anonymousToken, createSession, json } from './client.js';
import { spawnCli } from '../../helpers/cli.js';
import { fetch } from 'undici';

let dir: string | undefined;
let backend: LocalBackend | undefined;
afterEach(async () => {
  await backend?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  backend = undefined;
  dir = undefined;
});

/** A data dir whose journal holds a user, a token and two sessions, left by a killed `talk serve`. */
async function journalled(): Promise<{ dataDir: string; journal: string; sessions: string[]; userId: string }> {
  dir = await mkdtemp(path.join(tmpdir(), 'talk-store-'));
  const dataDir = path.join(dir, 'data');
  const server = spawnCli(['serve', '--port', '0', '--data-dir', dataDir], { cwd: dir });
  const url = (await server.waitForOutput(/listening on (http:\/\/\S+)/))[1] ?? '';
  const account = await anonymousToken(url, 'store-client');
  const sessions = [await createSession(url, account), await createSession(url, account)];
  // A crash, not a stop: no closing snapshot, the journal is what remains.
  server.child.kill('SIGKILL');
  await server.done;
  const name = (await readdir(dataDir)).find((f) => f.endsWith('.journal'));
  if (!name) throw new Error('the killed server left no journal');
  return { dataDir, journal: path.join(dataDir, name), sessions, userId: account.userId };
}

describe('local backend store', () => {
  it('drops a torn last journal line and keeps everything before it', async () => {
    const { dataDir, journal, sessions, userId } = await journalled();
    await appendFile(journal, '{"t":"sessions","k":"torn","v":{"id":');
    backend = await startLocalBackend({ dataDir });
    // The same client id is the same user, and both sessions the killed server acknowledged are known.
    const account = await anonymousToken(backend.url, 'store-client');
    expect(account.userId).toBe(userId);
    for (const id of sessions) {
      const body = await json(await fetch(`${backend.url}/api/state/nemo_agent/me/${id}/latest`, { headers: account.headers }));
      expect(body).toMatchObject({ code: 0, data: { session_id: id } });
    }
  });

  it('refuses a journal damaged before its end, naming the file and line', async () => {
    const { dataDir, journal } = await journalled();
    const lines = (await readFile(journal, 'utf8')).split('\n').filter((l) => l !== '');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    lines[0] = `${lines[0]?.slice(0, 10) ?? ''}#`;
    await writeFile(journal, `${lines.join('\n')}\n`);
    await expect(startLocalBackend({ dataDir })).rejects.toThrow(new RegExp(`${path.basename(journal)}:1: damaged journal line`));
  });
});
