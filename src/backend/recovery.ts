/**
 * Disconnect recovery's judgement of one read (SPEC §3, CONTRACT §2.4 as amended): what a
 * session's state and the account's credits say about a turn whose answer was lost.
 *
 * The session's own evidence decides first: a draft (or media list) that changed since the
 * baseline means the turn applied. Credits belong to the account, not the session, so their
 * movements are evidence for this turn only when the caller's records show no other turn of the
 * account in flight during the window (`activity.alone`). Otherwise they are accounted for: once
 * nothing is frozen on the account, the credits spent in the window minus what the other turns
 * were charged is what this turn (and any other still unconcluded) was charged. Anything that
 * arithmetic cannot settle only extends the wait; it never proves "applied".
 */
import type { CreditsData } from '../contract/bodies.js';
import { stateChanged } from './state-diff.js';
import type { AccountActivity, StateSnapshot, TurnBaseline } from './types.js';

/**
 * What one read says:
 * - `applied`: the turn ran; `credits` is its charge when it can be attributed to it, else undefined.
 * - `running`: this turn is the only one on the account and credits are frozen: it still runs.
 * - `busy`: something may still change the picture (credits are frozen on the account, or other
 *   turns of the run are still being concluded): wait and read again, within the window.
 * - `unexplained`: everything is settled, and the charges still cannot be told apart (other
 *   turns whose charge is unknown, or less spent than booked): reading again will not help much.
 * - `unchanged`: nothing ran for this turn as far as this read can tell.
 */
export type ReadVerdict =
  | { kind: 'applied'; credits: number | undefined }
  | { kind: 'running' }
  | { kind: 'busy'; why: string }
  | { kind: 'unexplained'; why: string }
  | { kind: 'unchanged' };

/** Nobody else in flight: what a caller without records of other turns passes. */
export const ALONE: AccountActivity = { alone: true, othersOpen: 0, othersUnsettled: 0, othersCharged: 0 };

const total = (c: CreditsData): number => c.available + c.frozen;

/** Judge one read of state and credits against the baseline recorded before the turn was sent. */
export function judgeRead(baseline: TurnBaseline, now: { snapshot: StateSnapshot; credits: CreditsData }, activity: AccountActivity): ReadVerdict {
  const before = baseline.credits;
  const after = now.credits;
  if (stateChanged(baseline.snapshot, now.snapshot)) {
    // What left `available` since the baseline is this turn's freeze or charge, when it is alone.
    return { kind: 'applied', credits: activity.alone ? Math.max(0, before.available - after.available) : undefined };
  }
  const spent = total(before) - total(after);
  if (activity.alone) {
    if (after.frozen > before.frozen) return { kind: 'running' };
    // Charged without a visible change (an edit that left the draft as it was): it ran.
    if (spent > 0) return { kind: 'applied', credits: spent };
    return { kind: 'unchanged' };
  }
  if (after.frozen > 0) return { kind: 'busy', why: `${after.frozen} credits are frozen on the account while other turns of this run are in flight` };
  // Nothing runs on the account now, so every turn of the window is settled at the backend; and
  // charges are never negative. Nothing spent, or exactly what the other turns were booked,
  // therefore means that no unconcluded turn (this one included) was charged.
  if (spent === 0) return { kind: 'unchanged' };
  const excess = spent - activity.othersCharged;
  if (excess === 0) return { kind: 'unchanged' };
  if (activity.othersOpen > 0) return { kind: 'busy', why: `${spent} credits were charged while ${activity.othersOpen} other turn(s) of this run are still being concluded` };
  if (excess > 0 && activity.othersUnsettled === 0) return { kind: 'applied', credits: excess };
  return excess > 0
    ? { kind: 'unexplained', why: `${excess} credits were charged that ${activity.othersUnsettled} other turn(s) of unknown outcome may account for` }
    : { kind: 'unexplained', why: `the account was charged ${spent} credits in the window, less than the ${activity.othersCharged} booked for the other turns` };
}
