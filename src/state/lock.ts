/**
 * The run lock: keeps two runners off one state (a pid lock, src/core/pid-lock.ts).
 */
import { UsageError } from '../core/errors.js';
import { acquirePidLock, currentLockEnvironment, type HeldLock, type LockEnvironment, type LockOwner } from '../core/pid-lock.js';

export { currentLockEnvironment, type HeldLock, type LockEnvironment, type LockOwner };

/** Another runner holds the state. */
export class StateLockedError extends UsageError {
  readonly owner: LockOwner;
  constructor(file: string, owner: LockOwner, sameHost: boolean) {
    super(
      `another talk run (pid ${owner.pid} on ${owner.host}, started ${owner.startedAt}) is using this run state`,
      {
        hint: sameHost
          ? 'wait for it to finish, or stop it; then run again and it resumes where it stopped'
          : `if that runner is really gone, delete ${file} and run again`,
      },
    );
    this.name = 'StateLockedError';
    this.owner = owner;
  }
}

/**
 * Take the run lock at `file`. A lock left by a runner that no longer exists on this host is
 * taken over (the caller tells the user); a live owner, or one on another host, is an error.
 */
export function acquireLock(file: string, env: LockEnvironment = currentLockEnvironment()): Promise<HeldLock> {
  return acquirePidLock(
    file,
    {
      name: 'the run lock',
      held: (owner, sameHost) => new StateLockedError(file, owner, sameHost),
      hint: 'check that the state dir is writable (or choose another with --state-dir); only one `talk run` may use a state dir at a time',
    },
    env,
  );
}
