import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from 'node:net';
import { once } from 'node:events';
import { fetch } from 'undici';
import { serveCommand, type ServeOptions } from '../../../src/commands/serve.js';
import type { CommandContext } from '../../../src/commands/context.js';
import { UsageError } from '../../../src/core/errors.js';
import { createRedactor } from '../../../src/core/redact.js';
import { startLocalBackend } from '../../../src/local-backend/index.js';
import { anonymousToken, createSession } from './client.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'talk-lb-serve-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A command context over buffers; `firstLine` resolves with the first stdout line. */
function context(controller: AbortController): { ctx: CommandContext; out: string[]; err: string[]; firstLine: Promise<string> } {
  const out: string[] = [];
  const err: string[] = [];
  const redact = createRedactor();
  let resolveLine: (line: string) => void = () => undefined;
  const firstLine = new Promise<string>((resolve) => (resolveLine = resolve));
  const ctx: CommandContext = {
    stdout: {
      write: (t) => {
        out.push(redact(t));
        resolveLine(out.join('').split('\n')[0]!);
      },
      isTTY: false,
      columns: undefined,
    },
    stderr: { write: (t) => void err.push(redact(t)), isTTY: false, columns: undefined },
    env: process.env,
    cwd: dir,
    signal: controller.signal,
    version: 'test',
  };
  return { ctx, out, err, firstLine };
}

function options(extra: Partial<ServeOptions> = {}): ServeOptions {
  return {
    backend: undefined, stateDir: undefined, reporter: 'plain', quiet: false, verbose: false, color: false, vars: {},
    concurrency: undefined, fresh: false, dryRun: false, failFast: false,
    host: '127.0.0.1', port: 0, dataDir: undefined, latency: [], fault: [], seed: undefined, compat: [],
    ...extra,
  };
}

describe('talk serve', () => {
  it('prints "listening on URL" first, logs requests without tokens, stops within a second of the signal after persisting', async () => {
    const controller = new AbortController();
    const { ctx, err, firstLine } = context(controller);
    const running = serveCommand([], options({ dataDir: 'data', fault: ['credits:status=503:x1'], compat: ['errors=status'], latency: ['state=1'] }), ctx);
    const line = await firstLine;
    expect(line).toMatch(/^listening on http:\/\/127\.0\.0\.1:\d+$/);
    const url = line.slice('listening on '.length);
    const account = await anonymousToken(url);
    await createSession(url, account);
    const faulted = await fetch(`${url}/api/credits/balance/simple`, { headers: account.headers });
    expect(faulted.status).toBe(503);
    await faulted.arrayBuffer();
    const unauth = await fetch(`${url}/api/credits/balance/simple`);
    expect(unauth.status).toBe(401);
    await unauth.arrayBuffer();

    // What would hold shutdown past its second is a connection that stays open: keep one (a
    // client that connected and sent nothing) and require the server to close it rather than
    // wait for it. Ordered by events, not by the wall clock of a loaded machine.
    const { port, hostname: host } = new URL(url);
    const idle = connect(Number(port), host);
    await once(idle, 'connect');
    const idleClosed = once(idle, 'close');
    controller.abort();
    expect(await running).toBe(0);
    await idleClosed;
    expect(idle.destroyed).toBe(true);
    const logged = err.join('');
    expect(logged).toMatch(/POST \/api\/auth\/anonymous-token 200/);
    expect(logged).not.toContain(account.token);
    const saved = await readFile(path.join(dir, 'data', 'state.json'), 'utf8');
    expect(Object.keys((JSON.parse(saved) as { sessions: object }).sessions)).toHaveLength(1);
    expect(saved).not.toContain(account.token);
  });

  it('refuses bad flags with a usage error before starting', async () => {
    const controller = new AbortController();
    const { ctx, out } = context(controller);
    await expect(serveCommand([], options({ fault: ['sse:explode'] }), ctx)).rejects.toThrow(UsageError);
    await expect(serveCommand([], options({ latency: ['nowhere=5'] }), ctx)).rejects.toThrow(UsageError);
    await expect(serveCommand([], options({ compat: ['errors=loud'] }), ctx)).rejects.toThrow(UsageError);
    expect(out).toEqual([]);
  });

  it('keeps one process on a data dir: a second backend is refused with how to share one; a lock whose process is gone is taken over', async () => {
    const dataDir = path.join(dir, 'shared');
    const first = await startLocalBackend({ dataDir });
    const refused = await startLocalBackend({ dataDir }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UsageError);
    expect((refused as UsageError).message).toMatch(new RegExp(`in use by another talk process \\(pid ${process.pid} `));
    expect((refused as UsageError).hint).toMatch(/talk serve --data-dir .*--backend/);
    await first.close();

    // A crashed owner: a pid that has exited.
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    await writeFile(path.join(dataDir, 'lock'), JSON.stringify({ pid: gone, host: hostname(), startedAt: new Date().toISOString() }));
    const logged: string[] = [];
    const second = await startLocalBackend({ dataDir, logger: (line) => logged.push(line) });
    expect(logged.join('\n')).toContain(`from pid ${gone}, which is gone`);
    await second.close();
    await expect(readFile(path.join(dataDir, 'lock'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
