import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LeaseStore, currentLeaseOwner } from '../../../src/watch/lease.js';

describe('LeaseStore', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'talk-lease-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('gives a bundle to one watcher at a time', async () => {
    const a = new LeaseStore({ dir, owner: currentLeaseOwner(), ttlMs: 60_000 });
    const b = new LeaseStore({ dir, owner: currentLeaseOwner(), ttlMs: 60_000 });
    const results = await Promise.all([a.acquire('x'), b.acquire('x'), a.acquire('x'), b.acquire('x')]);
    expect(results.filter((l) => l !== undefined)).toHaveLength(1);
    await results.find((l) => l !== undefined)?.release();
    const again = await b.acquire('x');
    expect(again).toBeDefined();
    expect(await again?.heartbeat()).toBe(true);
  });

  it('takes over a lease whose heartbeat is older than the TTL, and the old holder learns it', async () => {
    const a = new LeaseStore({ dir, owner: currentLeaseOwner(), ttlMs: 60_000 });
    const b = new LeaseStore({ dir, owner: currentLeaseOwner(), ttlMs: 60_000 });
    const held = await a.acquire('x');
    expect(held).toBeDefined();
    expect(await b.acquire('x')).toBeUndefined();
    const old = new Date(Date.now() - 120_000);
    await utimes(path.join(dir, 'x.lease'), old, old);
    const taken = await b.acquire('x');
    expect(taken).toBeDefined();
    expect(await held?.heartbeat()).toBe(false);
    // Releasing a lost lease must not delete the new holder's file.
    await held?.release();
    expect(await a.acquire('x')).toBeUndefined();
  });

  it('takes over at once from a dead process on this host', async () => {
    // A pid far above any pid_max in use: no such process.
    await writeFile(path.join(dir, 'x.lease'), JSON.stringify({ id: 'crashed', host: hostname(), pid: 2 ** 30 }));
    const b = new LeaseStore({ dir, owner: currentLeaseOwner(), ttlMs: 60_000 });
    expect(await b.acquire('x')).toBeDefined();
  });
});
