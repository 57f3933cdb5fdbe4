/**
 * A real `redis-server` for the queue tests: on a free loopback port, its data in a temp dir,
 * AOF on with an fsync per write (so a restart loses nothing the tests wrote). A machine
 * without redis-server fails the test with how to install it; it is never skipped.
 *
 * - `startRedis()` → `{ url, port, dir, restart(), stop() }`; `restart()` stops it (SIGTERM:
 *   Redis writes its AOF and exits) and starts it again on the same port and data.
 * - `freePort()`: a loopback port nobody listens on (a Redis that is not there).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A running redis-server. */
export interface TestRedis {
  url: string;
  port: number;
  dir: string;
  /** Stop (SIGTERM, AOF written) and start again on the same port and data. */
  restart(): Promise<void>;
  /** Stop it and remove its data. */
  stop(): Promise<void>;
}

const INSTALL = 'the queue tests need redis-server (Redis 7): install it with `apt-get install redis-server` (Debian/Ubuntu), or put a redis-server on the PATH';

/** A port nobody listens on now (the OS picks it; Redis binds it right after). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function launch(command: string, port: number, dir: string, extra: readonly string[]): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--daemonize', 'no', '--loglevel', 'notice', ...extra];
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (/Ready to accept connections/.test(output)) {
        child.stdout?.off('data', onData);
        // Keep draining so a chatty server never blocks on a full pipe.
        child.stdout?.resume();
        resolve(child);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', (error: NodeJS.ErrnoException) => reject(error.code === 'ENOENT' ? new Error(`${command} was not found. ${INSTALL}`) : error));
    child.once('exit', (code) => reject(new Error(`${command} exited (code ${String(code)}) before it was ready:\n${output}`)));
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/**
 * Start a redis-server; `command` names another binary (tests of the missing-binary error),
 * `port` a port to bind (else a free one), `args` more of its options (e.g. `--requirepass`).
 */
export async function startRedis(options: { command?: string; port?: number; args?: readonly string[] } = {}): Promise<TestRedis> {
  const command = options.command ?? 'redis-server';
  const extra = options.args ?? [];
  const dir = await mkdtemp(path.join(tmpdir(), 'talk-redis-'));
  const port = options.port ?? (await freePort());
  let child: ChildProcess;
  try {
    child = await launch(command, port, dir, extra);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    async restart() {
      await stopChild(child);
      child = await launch(command, port, dir, extra);
    },
    async stop() {
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
