import type { CommandContext, SharedOptions } from './context.js';
import { notImplemented } from './not-implemented.js';

export interface StatusOptions extends SharedOptions {
  json: boolean;
}

/** `talk status`. Returns the exit code. */
export async function statusCommand(_args: string[], _options: StatusOptions, _ctx: CommandContext): Promise<number> {
  return notImplemented('status');
}
