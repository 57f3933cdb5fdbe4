import { describe, expect, it } from 'vitest';
import { ALONE, judgeRead } from '../../../src/backend/recovery.js';
import type { AccountActivity, StateSnapshot, TurnBaseline } from '../../../src/backend/types.js';

const snapshot = (draftHash: string): StateSnapshot => ({ tracks: 0, segmentsPerTrack: [], durationMs: 0, videoInfos: 2, generatedMedia: 0, draftHash });
const credits = (available: number, frozen: number) => ({ available, frozen, total: available + frozen });
const baseline = (available: number, frozen: number): TurnBaseline => ({ snapshot: snapshot('d0'), credits: credits(available, frozen), at: 0 });
const read = (available: number, frozen: number, draft = 'd0') => ({ snapshot: snapshot(draft), credits: credits(available, frozen) });
const others = (a: Partial<AccountActivity>): AccountActivity => ({ alone: false, othersOpen: 0, othersUnsettled: 0, othersCharged: 0, ...a });

describe('judgeRead', () => {
  it('a changed draft is applied; its charge is attributed only when the turn was alone', () => {
    expect(judgeRead(baseline(200, 0), read(100, 0, 'd1'), ALONE)).toEqual({ kind: 'applied', credits: 100 });
    expect(judgeRead(baseline(200, 0), read(0, 0, 'd1'), others({ othersCharged: 100 }))).toEqual({ kind: 'applied', credits: undefined });
  });

  it('alone: frozen credits mean still running, a charge without change means applied, nothing means unchanged', () => {
    expect(judgeRead(baseline(200, 0), read(100, 100), ALONE)).toEqual({ kind: 'running' });
    expect(judgeRead(baseline(200, 0), read(150, 0), ALONE)).toEqual({ kind: 'applied', credits: 50 });
    expect(judgeRead(baseline(200, 0), read(200, 0), ALONE)).toEqual({ kind: 'unchanged' });
  });

  it("another job's charge is not this turn's: spent exactly what the other turns were booked → unchanged", () => {
    // B was frozen at A's baseline, then charged; A never ran.
    expect(judgeRead(baseline(100, 100), read(100, 0), others({ othersCharged: 100 }))).toEqual({ kind: 'unchanged' });
    // B started after A's baseline and was charged.
    expect(judgeRead(baseline(200, 0), read(100, 0), others({ othersCharged: 100 }))).toEqual({ kind: 'unchanged' });
  });

  it('with other turns around, frozen credits or unconcluded turns only extend the wait', () => {
    expect(judgeRead(baseline(200, 0), read(100, 100), others({ othersOpen: 1 }))).toMatchObject({ kind: 'busy' });
    expect(judgeRead(baseline(200, 0), read(100, 0), others({ othersOpen: 1 }))).toMatchObject({ kind: 'busy' });
  });

  it('an excess over what the others were booked is this turn’s charge only when every other turn is concluded', () => {
    expect(judgeRead(baseline(200, 0), read(0, 0), others({ othersCharged: 100 }))).toEqual({ kind: 'applied', credits: 100 });
    expect(judgeRead(baseline(200, 0), read(0, 0), others({ othersUnsettled: 1, othersCharged: 100 }))).toMatchObject({ kind: 'unexplained' });
  });

  it('nothing spent at all is unchanged whatever the others were booked; less spent than booked is unexplained', () => {
    expect(judgeRead(baseline(100, 0), read(100, 0), others({ othersCharged: 100 }))).toEqual({ kind: 'unchanged' });
    expect(judgeRead(baseline(300, 0), read(200, 0), others({ othersCharged: 200 }))).toMatchObject({ kind: 'unexplained' });
  });
});
