import type { CommandContext, SharedOptions } from './context.js';
import { notImplemented } from './not-implemented.js';

export interface CreditsOptions extends SharedOptions {
  json: boolean;
}

/** `talk credits`. Returns the exit code. */
export async function creditsCommand(_args: string[], _options: CreditsOptions, _ctx: CommandContext): Promise<number> {
  return notImplemented('credits');
}
