import type { CommandContext, SharedOptions } from './context.js';
import { notImplemented } from './not-implemented.js';

export interface ValidateOptions extends SharedOptions {
  /** Print diagnostics as JSON. */
  json: boolean;
}

/** `talk validate`. Returns the exit code. */
export async function validateCommand(_args: string[], _options: ValidateOptions, _ctx: CommandContext): Promise<number> {
  return notImplemented('validate');
}
