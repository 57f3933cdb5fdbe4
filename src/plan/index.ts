/** Planning: from a valid `Workflow` to the executable `Plan`, its estimate and its text. */
export { planRun, planJobForItem, orderSteps, backendChoice, type PlanRunOptions, type PlanItem } from './plan-run.js';
export { estimateCredits, type CreditEstimate } from './estimate.js';
export { formatPlan, formatPlanPieces, type FormatPlanOptions } from './format.js';
export type * from './types.js';
export { DEFAULT_CONCURRENCY, DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS, planListing } from './types.js';
export { parseShard, shardName, shardPlan, shardSummary, type Shard } from './shard.js';
