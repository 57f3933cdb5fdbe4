/**
 * The watcher's own lifecycle, as one transition function (the item lifecycle is ledger.ts's):
 *
 *     starting ──ready──▶ watching ──idle (--once)──▶ draining
 *         │                  │                           │
 *         └─────stop─────────┴────────────stop───────────┘
 *                                      ▼
 *                                  stopping ──closed──▶ stopped
 *
 * `ready`: chokidar is ready and the first scan ran. `idle`: with `--once`, nothing is
 * unsettled, evaluated, running or scanned any more. `stop`: shutdown begins (the signal
 * aborted, `--once` drained, or starting failed). `closed`: the file watchers are closed and
 * every job and evaluation has ended.
 *
 * `stopping` stops intake (no new job starts), aborts running jobs through their signal (the
 * runner saves its state; a render keeps going at the backend and is re-attached on the next
 * start), waits for them, and leaves their ledger items resumable. `draining` (`--once`) writes
 * the status files of incomplete bundles and ends.
 */
import { InternalError } from '../core/errors.js';
import { unreachable } from '../core/unreachable.js';

/** Where the watcher is in its life; see the module diagram. */
export type WatcherState =
  /** Chokidar is starting and the first scan runs; files found are already taken in. */
  | 'starting'
  /** Taking files in, evaluating groups and running jobs, until stopped (or idle with `--once`). */
  | 'watching'
  /** `--once` found nothing left to do: incomplete bundles get their status files, then it stops. */
  | 'draining'
  /** Shutting down: nothing new is taken in or started; running jobs are aborted or awaited. */
  | 'stopping'
  /** Everything is closed and ended. Final. */
  | 'stopped';

/** What moves the watcher from one state to the next; see the module comment. */
export type WatcherTransition = 'ready' | 'idle' | 'stop' | 'closed';

/** The next state, or an InternalError for a transition the diagram does not have. */
export function nextWatcherState(state: WatcherState, transition: WatcherTransition): WatcherState {
  const impossible = (): never => {
    throw new InternalError(`watcher: no transition from ${state} on ${transition}`);
  };
  switch (state) {
    case 'starting':
      if (transition === 'ready') return 'watching';
      return transition === 'stop' ? 'stopping' : impossible();
    case 'watching':
      if (transition === 'idle') return 'draining';
      return transition === 'stop' ? 'stopping' : impossible();
    case 'draining':
      return transition === 'stop' ? 'stopping' : impossible();
    case 'stopping':
      return transition === 'closed' ? 'stopped' : impossible();
    case 'stopped':
      return impossible();
    default:
      return unreachable(state, 'watcher state');
  }
}

/**
 * True once shutdown began: no file is taken in, no group looked at, no incomplete timer set
 * and no job started. (`draining` still finishes what it has: it only ends `--once`.)
 */
export function isShuttingDown(state: WatcherState): boolean {
  switch (state) {
    case 'starting':
    case 'watching':
    case 'draining':
      return false;
    case 'stopping':
    case 'stopped':
      return true;
    default:
      return unreachable(state, 'watcher state');
  }
}
