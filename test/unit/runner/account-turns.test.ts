import { describe, expect, it } from 'vitest';
import { AccountTurns, turnKey } from '../../../src/runner/account-turns.js';
import type { RunState } from '../../../src/state/types.js';

describe('AccountTurns', () => {
  it('weighs only the other turns that overlap the window', () => {
    let now = 1_000;
    const turns = new AccountTurns(() => now);
    const a = turnKey('a', 'i1');
    const b = turnKey('b', 'i1');
    const c = turnKey('c', 'i1');
    turns.open(c);
    now = 1_500;
    turns.settle(c, 100);
    now = 2_000;
    turns.open(a);
    expect(turns.activity(a, 2_000)).toEqual({ alone: true, othersOpen: 0, othersUnsettled: 0, othersCharged: 0 });
    turns.open(b);
    expect(turns.activity(a, 2_000)).toEqual({ alone: false, othersOpen: 1, othersUnsettled: 0, othersCharged: 0 });
    now = 3_000;
    turns.settle(b, 100);
    expect(turns.activity(a, 2_000)).toEqual({ alone: false, othersOpen: 0, othersUnsettled: 0, othersCharged: 100 });
    // A turn that settled before the window does not count; an abandoned one is unsettled.
    turns.open(b);
    turns.abandon(b);
    expect(turns.activity(a, 2_000)).toEqual({ alone: false, othersOpen: 0, othersUnsettled: 1, othersCharged: 0 });
  });

  it('seeds from a state: a sent, unsettled turn is open from its baseline; a settled one keeps its charge and time', () => {
    const state = {
      jobs: {
        a: { status: 'running', steps: { i1: { kind: 'instruction', status: 'running', attempts: 1, turn: { draftRevision: 'x', sentAt: '2026-01-01T00:00:01.000Z', baseline: { at: Date.parse('2026-01-01T00:00:00.900Z') } } } } },
        b: { status: 'done', steps: { i1: { kind: 'instruction', status: 'done', attempts: 1, turn: { draftRevision: 'y', sentAt: '2026-01-01T00:00:00.500Z', settledAt: '2026-01-01T00:00:02.000Z', creditsUsed: 100 } } } },
        c: { status: 'done', steps: { i1: { kind: 'instruction', status: 'done', attempts: 1, turn: { draftRevision: 'z', sentAt: '2026-01-01T00:00:00.000Z', settledAt: '2026-01-01T00:00:00.200Z', creditsUsed: 100 } } } },
      },
    } as unknown as RunState;
    const turns = AccountTurns.fromState(state);
    const since = Date.parse('2026-01-01T00:00:00.900Z');
    expect(turns.activity(turnKey('a', 'i1'), since)).toEqual({ alone: false, othersOpen: 0, othersUnsettled: 0, othersCharged: 100 });
    expect(turns.activity(turnKey('b', 'i1'), Date.parse('2026-01-01T00:00:00.500Z'))).toEqual({ alone: false, othersOpen: 1, othersUnsettled: 0, othersCharged: 0 });
  });
});
