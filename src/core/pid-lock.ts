/**
 * A lock file naming its holder (pid, host, start time), for one process at a time on a folder:
 * the run state (src/state/lock.ts) and a local backend's data dir. It is created complete or
 * not at all (written to a temp file, then hard-linked into place, which fails atomically when a
 * lock exists), so a reader never sees half a lock. A lock whose process is gone is taken over.
 */
import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { TalkError } from './errors.js';

/** Who holds a lock. */
export interface LockOwner {
  pid: number;
  host: string;
  startedAt: string;
}

/** A held lock; `release` removes it when it is still ours. */
export interface HeldLock {
  readonly file: string;
  readonly owner: LockOwner;
  /** Set when the lock was taken over from a process that is gone. */
  readonly tookOverFrom: LockOwner | undefined;
  release(): Promise<void>;
}

/** The outside world the lock needs; injectable so tests can stage a stale or foreign lock. */
export interface LockEnvironment {
  pid: number;
  host: string;
  /** True when a process with this pid exists on this host. */
  isAlive(pid: number): boolean;
  now(): Date;
}

/** True when a process with this pid exists on this machine (signal 0 only asks). */
export function isProcessAlive(pid: number): boolean {
  try {
    // eslint-disable-next-line no-restricted-globals -- signal 0 asks the OS whether a pid lives; it signals nothing
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else — still alive.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** This process on this machine. */
export function currentLockEnvironment(): LockEnvironment {
  return {
    // The lock must name the process that holds it; reading our own pid is not process control.
    // eslint-disable-next-line no-restricted-globals -- our own pid, an identity
    pid: process.pid,
    host: os.hostname(),
    isAlive: isProcessAlive,
    now: () => new Date(),
  };
}

/** What a lock is for, in the words its errors use. */
export interface LockPurpose {
  /** e.g. "the run lock". */
  name: string;
  /** The error for a lock held by a live process (or one on another host). */
  held(owner: LockOwner, sameHost: boolean): Error;
  /** Hint when the lock cannot be taken at all. */
  hint: string;
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (typeof value.pid === 'number' && typeof value.host === 'string' && typeof value.startedAt === 'string') {
      return { pid: value.pid, host: value.host, startedAt: value.startedAt };
    }
  } catch {
    // fall through: an unreadable lock is handled by the caller
  }
  return undefined;
}

/**
 * Take the lock at `file`. A lock left by a process that no longer exists on this host is taken
 * over (`tookOverFrom` tells the caller); a live owner, or one on another host, is an error.
 */
export async function acquirePidLock(file: string, purpose: LockPurpose, env: LockEnvironment = currentLockEnvironment()): Promise<HeldLock> {
  const owner: LockOwner = { pid: env.pid, host: env.host, startedAt: env.now().toISOString() };
  let tookOverFrom: LockOwner | undefined;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const temp = path.join(path.dirname(file), `.lock-${randomUUID()}.tmp`);
    await writeFile(temp, `${JSON.stringify(owner)}\n`, { mode: 0o644 });
    try {
      await link(temp, file);
      return makeHeld(file, owner, tookOverFrom);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new TalkError('step-failed', `could not create ${purpose.name} ${file}: ${(error as Error).message}`, { cause: error, hint: purpose.hint });
      }
    } finally {
      await unlink(temp).catch(() => undefined);
    }
    const existing = parseOwner(await readFile(file, 'utf8').catch(() => ''));
    if (existing && (existing.host !== env.host || env.isAlive(existing.pid))) {
      throw purpose.held(existing, existing.host === env.host);
    }
    // The owner is gone (or the file is unreadable, which a complete-or-nothing lock only is
    // when someone damaged it): take it over.
    tookOverFrom = existing ?? { pid: -1, host: env.host, startedAt: 'unknown' };
    await unlink(file).catch(() => undefined);
  }
  throw new TalkError('step-failed', `could not take ${purpose.name} ${file}: other processes keep grabbing it`, { hint: purpose.hint });
}

function makeHeld(file: string, owner: LockOwner, tookOverFrom: LockOwner | undefined): HeldLock {
  let released = false;
  return {
    file,
    owner,
    tookOverFrom,
    async release() {
      if (released) return;
      released = true;
      const current = parseOwner(await readFile(file, 'utf8').catch(() => ''));
      // Only remove our own lock: a takeover by someone else must not be undone.
      if (current && current.pid === owner.pid && current.host === owner.host && current.startedAt === owner.startedAt) {
        await unlink(file).catch(() => undefined);
      }
    },
  };
}
