// Looking at the queue's Redis before a command builds on it: nobody listening, something that
// is not Redis, a Redis that wants a password, and a worker that waits for its Redis to come up.
// Real sockets on loopback, a real redis-server.
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { parseQueueUrl, reachRedis } from '../../../src/queue/connection.js';
import { EnvironmentError, InterruptedError } from '../../../src/core/errors.js';
import { freePort, startRedis, type TestRedis } from '../../helpers/redis.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const clean of cleanups.splice(0).reverse()) await clean();
});

async function redisOn(options: Parameters<typeof startRedis>[0]): Promise<TestRedis> {
  const server = await startRedis(options);
  cleanups.push(() => server.stop());
  return server;
}

async function failure(promise: Promise<unknown>): Promise<EnvironmentError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(EnvironmentError);
  return error as EnvironmentError;
}

describe('reachRedis', () => {
  it('a Redis that answers: resolves', async () => {
    const server = await redisOn({});
    await expect(reachRedis(parseQueueUrl(server.url))).resolves.toBeUndefined();
  });

  it('nobody listening: an environment error naming the address, the refusal and how to start Redis there', async () => {
    const port = await freePort();
    const error = await failure(reachRedis(parseQueueUrl(`redis://127.0.0.1:${port}/2`)));
    expect(error.reason).toBe('redis-unreachable');
    expect(error.message).toBe(`cannot reach the queue's Redis at redis://127.0.0.1:${port}/2: connect ECONNREFUSED 127.0.0.1:${port}`);
    expect(error.hint).toContain(`redis-server --port ${port} --appendonly yes`);
  });

  it('something that is not Redis on the port: says so instead of waiting', async () => {
    const http: Server = createServer((_req, res) => res.end('hello'));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => http.close(() => resolve())));
    const address = http.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const error = await failure(reachRedis(parseQueueUrl(`redis://127.0.0.1:${port}`), { wait: true }));
    expect(error.reason).toBe('redis-protocol');
    expect(error.message).toMatch(new RegExp(`^something answers at redis://127\\.0\\.0\\.1:${port}, but not as Redis does`));
  });

  it('a Redis that wants a password: refused without one or with a wrong one (a worker does not wait for it), accepted with it', async () => {
    const server = await redisOn({ args: ['--requirepass', 's3cret'] });
    const missing = await failure(reachRedis(parseQueueUrl(server.url), { wait: true }));
    expect(missing.reason).toBe('redis-auth');
    expect(missing.message).toMatch(/refused the login: NOAUTH/);
    expect(missing.hint).toContain('redis://user:password@host:port');
    const wrong = await failure(reachRedis(parseQueueUrl(`redis://:nope@127.0.0.1:${server.port}`)));
    expect(wrong.reason).toBe('redis-auth');
    // The password never shows in what talk says.
    expect(wrong.message).not.toContain('nope');
    await expect(reachRedis(parseQueueUrl(`redis://:s3cret@127.0.0.1:${server.port}`))).resolves.toBeUndefined();
  });

  it('wait: says once that Redis is not there, and resolves when it comes up on that port', async () => {
    const port = await freePort();
    const told: EnvironmentError[] = [];
    let resolved = false;
    const waiting = reachRedis(parseQueueUrl(`redis://127.0.0.1:${port}`), { wait: true, onWaiting: (error) => told.push(error) }).then(() => {
      resolved = true;
    });
    await expect.poll(() => told.length).toBe(1);
    expect(told[0]?.reason).toBe('redis-unreachable');
    expect(resolved).toBe(false);
    await redisOn({ port });
    await waiting;
    expect(told).toHaveLength(1);
  });

  it('wait: Ctrl-C while waiting ends it as an interrupt', async () => {
    const port = await freePort();
    const controller = new AbortController();
    const waiting = reachRedis(parseQueueUrl(`redis://127.0.0.1:${port}`), { wait: true, signal: controller.signal, onWaiting: () => controller.abort() });
    await expect(waiting).rejects.toBeInstanceOf(InterruptedError);
  });
});
