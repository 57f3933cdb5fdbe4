/**
 * `AccountTurns`: every instruction turn of the run's account as the run's own records know it,
 * so disconnect recovery can tell whether a credit movement may be another job's (SPEC §3).
 *
 * A turn is a span: it opens just before its baseline is read and closes when its outcome is
 * known, with the credits it was charged. A span whose outcome is unknown (an interrupt, a
 * crash, an ambiguous recovery) stays open. Spans of earlier processes come from the state: a
 * turn recorded as sent but not settled is open; a settled one keeps its time and charge.
 */
import type { AccountActivity } from '../backend/types.js';
import type { RunState } from '../state/types.js';

/** One turn's span (exported for books shared with other processes). */
export interface TurnSpan {
  start: number;
  /** When the outcome became known; undefined while it is not. */
  end: number | undefined;
  /** Open, and nobody is concluding it any more (its step failed with the outcome unknown). */
  abandoned: boolean;
  /** What the turn was charged, once settled. */
  charged: number;
}

/** The key of a turn: one per instruction step of a job. */
export function turnKey(jobId: string, stepId: string): string {
  return `${jobId}\u0000${stepId}`;
}

/** The turns of one account, in flight and settled. */
export class AccountTurns {
  protected readonly spans = new Map<string, TurnSpan>();

  constructor(protected readonly now: () => number = Date.now) {}

  /** A span was set (opened, settled, abandoned or seeded); books shared with others publish it. */
  protected changed(_key: string): void {
    // Nothing to tell in a book of one process.
  }

  /** Seed from the turns a state recorded (earlier processes of this run). */
  static fromState(state: Readonly<RunState>, now: () => number = Date.now): AccountTurns {
    const turns = new AccountTurns(now);
    turns.seed(state);
    return turns;
  }

  /** Add the turns a state recorded; a turn already known here keeps what is known of it. */
  seed(state: Readonly<RunState>): void {
    for (const [jobId, job] of Object.entries(state.jobs)) {
      for (const [stepId, step] of Object.entries(job.steps)) {
        const turn = step.turn;
        if (step.kind !== 'instruction' || !turn || this.spans.has(turnKey(jobId, stepId))) continue;
        const sent = Date.parse(turn.sentAt);
        if (step.status !== 'done') {
          const at = (turn.baseline as { at?: unknown } | undefined)?.at;
          this.spans.set(turnKey(jobId, stepId), { start: typeof at === 'number' ? at : sent, end: undefined, charged: 0, abandoned: false });
          this.changed(turnKey(jobId, stepId));
        } else if (turn.settledAt !== undefined) {
          this.spans.set(turnKey(jobId, stepId), { start: sent, end: Date.parse(turn.settledAt), charged: turn.creditsUsed ?? 0, abandoned: false });
          this.changed(turnKey(jobId, stepId));
        }
      }
    }
  }

  /** A turn is about to be sent (or re-checked): open its span now. */
  open(key: string): void {
    this.spans.set(key, { start: this.now(), end: undefined, charged: 0, abandoned: false });
    this.changed(key);
  }

  /** The turn's step ended without knowing its outcome: others stop waiting for it. */
  abandon(key: string): void {
    const span = this.spans.get(key);
    if (span && span.end === undefined) {
      span.abandoned = true;
      this.changed(key);
    }
  }

  /** The turn's outcome is known: close its span with its charge. */
  settle(key: string, charged: number): void {
    const span = this.spans.get(key);
    this.spans.set(key, { start: span?.start ?? this.now(), end: this.now(), charged, abandoned: false });
    this.changed(key);
  }

  /**
   * Turns of the account open now in other jobs, and in other processes sharing the books: a
   * charge one of them made may not be booked yet.
   */
  openElsewhere(): number {
    return this.activity(NO_TURN, this.now()).othersOpen;
  }

  /** The other turns overlapping the window from `since` to now. */
  activity(key: string, since: number): AccountActivity {
    let alone = true;
    let othersOpen = 0;
    let othersUnsettled = 0;
    let othersCharged = 0;
    for (const [other, span] of this.spans) {
      if (other === key || (span.end !== undefined && span.end < since)) continue;
      alone = false;
      if (span.end !== undefined) othersCharged += span.charged;
      else if (span.abandoned) othersUnsettled += 1;
      else othersOpen += 1;
    }
    return { alone, othersOpen, othersUnsettled, othersCharged };
  }
}

/** A key no turn has: another book's activity against it counts every turn of that book. */
const NO_TURN = '\u0001none';

/**
 * The turns of one account kept in several books, one per job (a queue worker runs jobs of many
 * workflows, whose job and step ids may be the same): each book's `activity` also counts every
 * turn of the others, as turns of other jobs.
 */
/**
 * The turns of the same account in other processes (a queue's other workers), as a recent read
 * of a shared store shows them. `key` names a turn across processes (its job's queue id and its
 * own key); the turn asking is left out of `activity`, whoever recorded it.
 */
export interface RemoteTurns {
  publish(key: string, span: TurnSpan): void;
  activity(key: string, since: number): AccountActivity;
}

export class TurnsGroup {
  private readonly books = new Set<AccountTurns>();
  /** When each book's job ended: its settled turns still explain charges in others' windows for a while. */
  private readonly left = new Map<AccountTurns, number>();

  constructor(
    private readonly now: () => number = Date.now,
    /** How long an ended job's turns still count (longer than any turn's recovery window). */
    private readonly keepMs = 30 * 60_000,
    /** The account's turns in other processes. */
    private readonly remote?: RemoteTurns,
  ) {}

  /** A new book in the group (`scope` names its job across processes); `leave()` when its job ends. */
  join(scope = ''): AccountTurns & { leave(): void } {
    const remote = this.remote;
    const books = this.books;
    const left = this.left;
    const now = this.now;
    for (const [book, at] of left) {
      if (now() - at < this.keepMs) continue;
      books.delete(book);
      left.delete(book);
    }
    const book = new (class extends AccountTurns {
      override activity(key: string, since: number): AccountActivity {
        const mine = super.activity(key, since);
        for (const other of books) {
          if (other === this) continue;
          const theirs = AccountTurns.prototype.activity.call(other, NO_TURN, since);
          mine.alone &&= theirs.alone;
          mine.othersOpen += theirs.othersOpen;
          mine.othersUnsettled += theirs.othersUnsettled;
          mine.othersCharged += theirs.othersCharged;
        }
        if (remote) {
          const theirs = remote.activity(`${scope}\u0000${key}`, since);
          mine.alone &&= theirs.alone;
          mine.othersOpen += theirs.othersOpen;
          mine.othersUnsettled += theirs.othersUnsettled;
          mine.othersCharged += theirs.othersCharged;
        }
        return mine;
      }

      protected override changed(key: string): void {
        const span = this.spans.get(key);
        if (remote && span) remote.publish(`${scope}\u0000${key}`, { ...span });
      }

      leave(): void {
        left.set(this, now());
      }
    })(this.now);
    books.add(book);
    return book;
  }
}
