/**
 * The credit guard: `budget.credits` against the price list, and the live balance, checked
 * before every paid step. Reservations are taken synchronously, so two jobs cannot both slip
 * under the limit at the same moment.
 */
import { CreditsError } from '../core/errors.js';
import { budgetExceeded } from './failure.js';

/** What admission found for a job that does not fit. */
export interface AdmissionRefusal {
  /** Credits the job still needs (its remaining estimate). */
  needs: number;
  /** What was left for it: the smaller of budget and balance, less what other jobs hold. */
  available: number;
  /** Which limit was the smaller: the workflow's budget or the account's balance. */
  limitedBy: 'budget' | 'balance';
}

/**
 * Credit reservations shared with other processes that spend from the same account (the
 * workers of one queue). The local books (`CreditBudget`) keep their holds for steps; admission
 * must also win here, where every process's holds are counted together, so N workers never
 * promise the same credits twice.
 */
export interface SharedCredits {
  /**
   * Hold the job's remaining estimate against the account's live total and the workflow's
   * budget, less what every process holds. `readAccountTotal` reads the live balance
   * (available + frozen): call it only once whatever tells a stale read apart has been noted
   * (a balance read earlier could miss a charge made elsewhere in between), and again when a
   * charge elsewhere made the read stale. The runner reads the balance only through it.
   */
  admit(cost: number, readAccountTotal: () => Promise<number>): Promise<AdmissionRefusal | undefined>;
  /** A paid step of the job was charged `credits` (negative: booked credits given back). */
  charged(credits: number): void;
  /** The job ended: its hold goes back. */
  release(): Promise<void>;
}

/**
 * Tracks credits used and reserved against an optional limit and the account's balance.
 *
 * Admission (`admit`) holds a job's whole remaining estimate before the job starts, so jobs that
 * run side by side can never promise the same credits twice; each paid step then draws its cost
 * from its job's hold (`reserve`), and settles it to the real charge (`commit`). Every check and
 * change is synchronous: whatever was awaited before it, two jobs cannot slip past one limit.
 */
export class CreditBudget {
  /** Everything held or reserved and not yet spent: job holds plus step reservations. */
  private reserved = 0;
  private usedThisRun = 0;
  private readonly holds = new Map<string, number>();
  private waiters: (() => void)[] = [];
  /** Paid steps reserved and not yet committed or released: their charge may be on the balance already. */
  private stepsInFlight = 0;
  private settleWaiters: (() => void)[] = [];

  /**
   * @param limit `budget.credits`, when the workflow sets one
   * @param usedBefore credits earlier runs of this state already spent (they count against the budget)
   */
  constructor(
    readonly limit: number | undefined,
    private usedBefore: number,
    /** Told of every charge by job (the shared books of a queue's workers). */
    private readonly onCharge?: (jobId: string, credits: number) => void,
  ) {}

  /** Credits spent by this run. */
  get spentThisRun(): number {
    return this.usedThisRun;
  }

  /** Credits spent over every run of this state. */
  get spentTotal(): number {
    return this.usedBefore + this.usedThisRun;
  }

  /**
   * Hold `cost` (the job's whole remaining estimate) before the job starts, against the budget left and against `accountTotal`
   * (the live balance's available + frozen: what this run's own turns have frozen is already in
   * `reserved`), each less what other jobs hold. Undefined when it fits (the hold is taken).
   */
  admit(jobId: string, cost: number, accountTotal: number | undefined): AdmissionRefusal | undefined {
    // A job taking another pass may still hold part of it.
    const extra = cost - (this.holds.get(jobId) ?? 0);
    if (extra <= 0) return undefined;
    const byBudget = this.limit === undefined ? Infinity : this.limit - this.spentTotal - this.reserved;
    const byBalance = accountTotal === undefined ? Infinity : accountTotal - this.reserved;
    const available = Math.min(byBudget, byBalance);
    if (extra > available) return { needs: cost, available: Math.max(0, available), limitedBy: byBudget <= byBalance ? 'budget' : 'balance' };
    this.holds.set(jobId, cost);
    this.reserved += extra;
    return undefined;
  }

  /** The job ended: whatever its hold still has goes back, and jobs waiting to be admitted look again. */
  endJob(jobId: string): void {
    this.reserved -= this.holds.get(jobId) ?? 0;
    this.holds.delete(jobId);
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves when the next job ends (and its hold is released). */
  nextRelease(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * Paid steps of this run in flight. While one is, a balance read can already show its charge
   * (the backend charges as the turn ends, before the runner hears of it) while its reservation
   * still counts here: a refusal by balance then is not final (see `nextSettle`).
   */
  get inFlight(): number {
    return this.stepsInFlight;
  }

  /** Resolves when the next paid step in flight is committed or released. */
  nextSettle(): Promise<void> {
    return new Promise((resolve) => this.settleWaiters.push(resolve));
  }

  private settledOne(): void {
    this.stepsInFlight -= 1;
    const waiters = this.settleWaiters;
    this.settleWaiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * Reserve `cost` for a step of `jobId`: from the job's hold first, and only for the rest
   * against the budget; throws a `CreditsError` when that would cross it.
   */
  reserve(cost: number, stepLabel: string, jobId: string): void {
    if (cost <= 0) return;
    const held = this.holds.get(jobId) ?? 0;
    const extra = cost - Math.min(held, cost);
    if (extra > 0 && this.limit !== undefined && this.spentTotal + this.reserved + extra > this.limit) {
      throw budgetExceeded(stepLabel, cost, this.spentTotal + this.reserved - held, this.limit);
    }
    this.holds.set(jobId, held - (cost - extra));
    this.reserved += extra;
    this.stepsInFlight += 1;
  }

  /** The reserved step ran: its reservation is spent as `actualCost`, the real charge. */
  commit(reservedCost: number, actualCost = reservedCost, jobId?: string): void {
    this.usedThisRun += actualCost;
    if (jobId !== undefined && actualCost !== 0) this.onCharge?.(jobId, actualCost);
    if (reservedCost > 0) {
      this.reserved -= reservedCost;
      this.settledOne();
    }
  }

  /** Credits booked for a step that is checked again (it may not have run after all). */
  refund(credits: number, jobId?: string): void {
    this.usedThisRun -= credits;
    if (jobId !== undefined && credits !== 0) this.onCharge?.(jobId, -credits);
  }

  /** The reserved step did not run: its cost goes back to its job's hold (a retry may need it). */
  release(cost: number, jobId: string): void {
    if (cost > 0) {
      this.holds.set(jobId, (this.holds.get(jobId) ?? 0) + cost);
      this.settledOne();
    }
  }
}

/** The error for a balance too small for the next paid step (the same next action as a 2001). */
export function notEnoughCredits(stepLabel: string, cost: number, available: number, outOfCreditsHint: string): CreditsError {
  return new CreditsError(`stopped before ${stepLabel}: it costs about ${cost} credits and only ${available} are available`, {
    hint: `${outOfCreditsHint}, then run again`,
  });
}
