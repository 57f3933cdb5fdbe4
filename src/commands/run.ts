import type { CommandContext, SharedOptions } from './context.js';
import { notImplemented } from './not-implemented.js';

export type RunOptions = SharedOptions;

/** `talk run`. Returns the exit code. */
export async function runCommand(_args: string[], _options: RunOptions, _ctx: CommandContext): Promise<number> {
  return notImplemented('run');
}
