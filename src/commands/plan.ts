import type { CommandContext, SharedOptions } from './context.js';
import { notImplemented } from './not-implemented.js';

export interface PlanOptions extends SharedOptions {
  json: boolean;
}

/** `talk plan`. Returns the exit code. */
export async function planCommand(_args: string[], _options: PlanOptions, _ctx: CommandContext): Promise<number> {
  return notImplemented('plan');
}
