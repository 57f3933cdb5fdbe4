import type { CommandContext, SharedOptions } from './context.js';
import { notImplemented } from './not-implemented.js';

export interface InitOptions extends SharedOptions {
  force: boolean;
}

/** `talk init`. Returns the exit code. */
export async function initCommand(_args: string[], _options: InitOptions, _ctx: CommandContext): Promise<number> {
  return notImplemented('init');
}
