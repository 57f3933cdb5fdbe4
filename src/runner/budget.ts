/**
 * The credit guard: `budget.credits` against the price list, and the live balance, checked
 * before every paid step. Reservations are taken synchronously, so two jobs cannot both slip
 * under the limit at the same moment.
 */
import { CreditsError } from '../core/errors.js';
import { budgetExceeded } from './failure.js';

/** Tracks credits used and reserved against an optional limit. */
export class CreditBudget {
  private reserved = 0;
  private usedThisRun = 0;

  /**
   * @param limit `budget.credits`, when the workflow sets one
   * @param usedBefore credits earlier runs of this state already spent (they count against the budget)
   */
  constructor(
    readonly limit: number | undefined,
    private usedBefore: number,
  ) {}

  /** Credits spent by this run. */
  get spentThisRun(): number {
    return this.usedThisRun;
  }

  /** Credits spent over every run of this state. */
  get spentTotal(): number {
    return this.usedBefore + this.usedThisRun;
  }

  /** Reserve `cost` for a step, or throw a `CreditsError` when it would cross the budget. */
  reserve(cost: number, stepLabel: string): void {
    if (cost <= 0) return;
    if (this.limit !== undefined && this.spentTotal + this.reserved + cost > this.limit) {
      throw budgetExceeded(stepLabel, cost, this.spentTotal + this.reserved, this.limit);
    }
    this.reserved += cost;
  }

  /** The reserved step ran: its cost is spent. */
  commit(reservedCost: number, actualCost = reservedCost): void {
    if (reservedCost > 0) this.reserved -= reservedCost;
    this.usedThisRun += actualCost;
  }

  /** Credits booked for a step that is checked again (it may not have run after all). */
  refund(credits: number): void {
    this.usedThisRun -= credits;
  }

  /** The reserved step did not run. */
  release(cost: number): void {
    if (cost > 0) this.reserved -= cost;
  }
}

/** The error for a balance too small for the next paid step (the same next action as a 2001). */
export function notEnoughCredits(stepLabel: string, cost: number, available: number, outOfCreditsHint: string): CreditsError {
  return new CreditsError(`stopped before ${stepLabel}: it costs about ${cost} credits and only ${available} are available`, {
    hint: `${outOfCreditsHint}, then run again`,
  });
}
