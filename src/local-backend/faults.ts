/**
 * Fault injection (SPEC §5): decides, per request, which rules fire. Terminal faults
 * (status, code, reset, stall) answer instead of the route; shaping faults change what the
 * route itself does: drop and notext an SSE turn, fail a render it accepts. A rule counts as fired only when it applies to the route it matched.
 */
import type { RouteName } from '../contract/routes.js';
import type { FaultKind, FaultRule } from './options.js';
import type { Random } from './random.js';

/** What the faults decided for one request. */
export interface FaultDecision {
  /** The answer that replaces the route's own, if any. */
  terminal?: FaultKind;
  /** SSE only: close before the final event. */
  drop: boolean;
  /** SSE only: send no text. */
  notext: boolean;
  /** Render submit only: accept the render, then fail it. */
  fail: boolean;
}

interface ActiveRule {
  rule: FaultRule;
  remaining: number | undefined;
}

/** The route a shaping fault belongs to; terminal faults fit every route. */
function shapedRoute(fault: FaultKind): RouteName | undefined {
  return fault.kind === 'drop' || fault.kind === 'notext' ? 'sse' : fault.kind === 'fail' ? 'render' : undefined;
}

/** The live rule set of one server; rules can be added and cleared while it runs. */
export class FaultEngine {
  private rules: ActiveRule[] = [];
  /** Keyed by the rule as written (SPEC §5 `faultsFired`). */
  readonly fired: Record<string, number> = {};

  constructor(private readonly random: Random) {}

  add(rules: readonly FaultRule[]): void {
    for (const rule of rules) this.rules.push({ rule, remaining: rule.times });
  }

  clear(): void {
    this.rules = [];
  }

  /** Evaluate the rules in order for a request on `route`; stops at the first terminal fault. */
  decide(route: RouteName): FaultDecision {
    const decision: FaultDecision = { drop: false, notext: false, fail: false };
    for (const active of this.rules) {
      const { rule } = active;
      if (rule.route !== 'any' && rule.route !== route) continue;
      // A shaping fault means nothing on another route; it neither fires nor uses up a count there.
      const shaped = shapedRoute(rule.fault);
      if (shaped !== undefined && shaped !== route) continue;
      if (active.remaining !== undefined) {
        if (active.remaining <= 0) continue;
        active.remaining -= 1;
      } else if (rule.percent !== undefined && this.random() * 100 >= rule.percent) {
        continue;
      }
      this.fired[rule.spec] = (this.fired[rule.spec] ?? 0) + 1;
      if (rule.fault.kind === 'drop') decision.drop = true;
      else if (rule.fault.kind === 'notext') decision.notext = true;
      else if (rule.fault.kind === 'fail') decision.fail = true;
      else {
        decision.terminal = rule.fault;
        break;
      }
    }
    return decision;
  }
}
