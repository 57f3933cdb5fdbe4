/**
 * Leases: two watchers on one folder never take the same bundle. A lease is a file
 * `<id>.lease` created with O_EXCL (only one creator wins, also on most network file systems),
 * kept alive by touching its mtime (the heartbeat). A lease whose heartbeat is older than the
 * TTL, or whose owner process on this host is gone, is stale and may be taken over. Taking
 * over renames the stale file away first: a rename succeeds for exactly one contender.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { mkdir, open, readFile, rename, stat, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { isProcessAlive } from '../core/pid-lock.js';
import { systemClock, type Clock } from '../core/clock.js';

/** Who holds a lease: written into the lease file. */
export interface LeaseOwner {
  /** Unique per watcher process. */
  id: string;
  host: string;
  pid: number;
}

/** A held lease. `release` is safe to call twice. */
export interface Lease {
  readonly id: string;
  /** Touch the heartbeat now. Returns false when the lease was lost (taken over). */
  heartbeat(): Promise<boolean>;
  release(): Promise<void>;
}

/** The owner identity of this process. */
export function currentLeaseOwner(): LeaseOwner {
  // Why process.pid here (not via main.ts): the pid is only an identity for liveness checks
  // of a crashed watcher on the same host; nothing about the process is changed.
  // eslint-disable-next-line no-restricted-globals -- our own pid, an identity
  return { id: randomBytes(8).toString('hex'), host: hostname(), pid: process.pid };
}

/** Leases for one watched folder, in `dir`. */
export class LeaseStore {
  readonly #dir: string;
  readonly #owner: LeaseOwner;
  readonly #ttlMs: number;
  readonly #clock: Clock;

  /**
   * `clock` stamps heartbeats and judges their age. It is compared with the lease files' mtimes,
   * so it must keep to the file system's time (a test clock starts at the real time).
   */
  constructor(options: { dir: string; owner: LeaseOwner; ttlMs: number; clock?: Clock }) {
    this.#dir = options.dir;
    this.#owner = options.owner;
    this.#ttlMs = options.ttlMs;
    this.#clock = options.clock ?? systemClock;
  }

  #file(id: string): string {
    return path.join(this.#dir, `${id}.lease`);
  }

  /** Take the lease for `id`, or undefined when another live watcher holds it. */
  async acquire(id: string): Promise<Lease | undefined> {
    await mkdir(this.#dir, { recursive: true });
    const file = this.#file(id);
    for (let attempt = 0; attempt < 2; attempt += 1) {
      try {
        const handle = await open(file, 'wx');
        try {
          await handle.writeFile(JSON.stringify(this.#owner));
        } finally {
          await handle.close();
        }
        return this.#held(id, file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      if (!(await this.#isStale(file))) return undefined;
      const graveyard = `${file}.${this.#owner.id}.stale`;
      try {
        await rename(file, graveyard);
      } catch (error) {
        // Someone else took it over (or released it) first; try creating once more.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        continue;
      }
      await unlink(graveyard).catch(() => undefined);
    }
    return undefined;
  }

  async #isStale(file: string): Promise<boolean> {
    try {
      const [info, text] = await Promise.all([stat(file), readFile(file, 'utf8')]);
      if (this.#clock.now() - info.mtimeMs > this.#ttlMs) return true;
      const owner = parseOwner(text);
      // A lease being written right now has no content yet: treat it as live.
      if (!owner) return false;
      if (owner.id === this.#owner.id) return false;
      return owner.host === this.#owner.host && owner.pid !== this.#owner.pid && !isProcessAlive(owner.pid);
    } catch (error) {
      // Released between our create attempt and now: not stale, simply free.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true;
      throw error;
    }
  }

  #held(id: string, file: string): Lease {
    let released = false;
    const ownerId = this.#owner.id;
    const clock = this.#clock;
    const stillOurs = async (): Promise<boolean> => {
      try {
        return parseOwner(await readFile(file, 'utf8'))?.id === ownerId;
      } catch {
        return false;
      }
    };
    return {
      id,
      heartbeat: async () => {
        if (released) return false;
        if (!(await stillOurs())) return false;
        const now = new Date(clock.now());
        await utimes(file, now, now).catch(() => undefined);
        return true;
      },
      release: async () => {
        if (released) return;
        released = true;
        if (await stillOurs()) await unlink(file).catch(() => undefined);
      },
    };
  }
}

function parseOwner(text: string): LeaseOwner | undefined {
  try {
    const value = JSON.parse(text) as Partial<LeaseOwner>;
    if (typeof value.id === 'string' && typeof value.host === 'string' && typeof value.pid === 'number') {
      return { id: value.id, host: value.host, pid: value.pid };
    }
  } catch {
    // Half-written or foreign content: not a lease we can reason about.
  }
  return undefined;
}
