import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InternalError } from '../../../src/core/errors.js';
import { Ledger, advanceItem, decide, nextItemState, type LedgerItem } from '../../../src/watch/ledger.js';

function item(overrides: Partial<LedgerItem>): LedgerItem {
  return {
    version: 1,
    id: 'abc',
    name: 'anna',
    state: 'queued',
    attempts: 0,
    members: [],
    published: false,
    createdAt: '2024-01-01T00:00:00.000Z',
    updatedAt: '2024-01-01T00:00:00.000Z',
    ...overrides,
  };
}

describe('item state machine', () => {
  it('walks the happy path', () => {
    let s = nextItemState('seen', 'changed');
    s = nextItemState(s, 'settled');
    s = nextItemState(s, 'enqueue');
    s = nextItemState(s, 'start');
    expect(nextItemState(s, 'succeeded')).toBe('done');
  });

  it('sends an interrupted job back to the queue and a failed one to retry', () => {
    expect(nextItemState('running', 'interrupted')).toBe('queued');
    expect(nextItemState('running', 'failed')).toBe('failed');
    expect(nextItemState('failed', 'retry')).toBe('queued');
  });

  it('rejects a transition out of done', () => {
    expect(() => nextItemState('done', 'start')).toThrow(InternalError);
  });

  it('moves an item by the same table, keeping its other fields', () => {
    const failed = item({ state: 'failed', attempts: 1 });
    expect(advanceItem(failed, 'retry')).toEqual({ ...failed, state: 'queued' });
    expect(failed.state).toBe('failed');
    expect(() => advanceItem(item({ state: 'done' }), 'start')).toThrow(InternalError);
  });
});

describe('decide', () => {
  it('runs what it never saw', () => {
    expect(decide(undefined, 3)).toEqual({ action: 'run', attempts: 0, resumed: false });
  });

  it('skips identical content that is done', () => {
    expect(decide(item({ state: 'done' }), 3).action).toBe('skip-done');
  });

  it('retries a failure until attempts are used up', () => {
    expect(decide(item({ state: 'failed', attempts: 2 }), 3)).toEqual({ action: 'run', attempts: 2, resumed: false });
    expect(decide(item({ state: 'failed', attempts: 3 }), 3).action).toBe('skip-exhausted');
  });

  it('resumes what a stopped watcher was running', () => {
    expect(decide(item({ state: 'running', attempts: 1 }), 3)).toEqual({ action: 'run', attempts: 1, resumed: true });
  });
});

describe('Ledger', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('round-trips an item and leaves no temp files', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'talk-ledger-'));
    const ledger = new Ledger(path.join(dir, 'items'));
    expect(await ledger.read('abc')).toBeUndefined();
    await ledger.write(item({ state: 'running', attempts: 1 }));
    const back = await ledger.read('abc');
    expect(back?.state).toBe('running');
    expect(back?.attempts).toBe(1);
    expect(await readdir(path.join(dir, 'items'))).toEqual(['abc.json']);
  });
});
