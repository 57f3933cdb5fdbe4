import { describe, expect, it } from 'vitest';
import { InternalError } from '../../../src/core/errors.js';
import { isShuttingDown, nextWatcherState } from '../../../src/watch/watcher-state.js';

describe('watcher lifecycle', () => {
  it('walks starting → watching → stopping → stopped, and through draining with --once', () => {
    expect(nextWatcherState('starting', 'ready')).toBe('watching');
    expect(nextWatcherState('watching', 'stop')).toBe('stopping');
    expect(nextWatcherState('stopping', 'closed')).toBe('stopped');
    expect(nextWatcherState('watching', 'idle')).toBe('draining');
    expect(nextWatcherState('draining', 'stop')).toBe('stopping');
    // Starting can fail (a folder that cannot be watched): shutdown still runs.
    expect(nextWatcherState('starting', 'stop')).toBe('stopping');
  });

  it('rejects a transition the diagram does not have', () => {
    expect(() => nextWatcherState('starting', 'idle')).toThrow(InternalError);
    expect(() => nextWatcherState('draining', 'ready')).toThrow(InternalError);
    expect(() => nextWatcherState('stopping', 'stop')).toThrow(InternalError);
    expect(() => nextWatcherState('stopped', 'closed')).toThrow(InternalError);
  });

  it('takes work until shutdown begins', () => {
    expect(['starting', 'watching', 'draining', 'stopping', 'stopped'].map((s) => isShuttingDown(s as never))).toEqual([false, false, false, true, true]);
  });
});
