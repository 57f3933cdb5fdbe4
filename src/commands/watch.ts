import type { CommandContext, SharedOptions } from './context.js';
import { notImplemented } from './not-implemented.js';

export interface WatchOptions extends SharedOptions {
  workflow: string | undefined;
  once: boolean;
  poll: boolean;
  onSuccess: 'keep' | 'move' | 'delete';
}

/** `talk watch`. Returns the exit code. */
export async function watchCommand(_args: string[], _options: WatchOptions, _ctx: CommandContext): Promise<number> {
  return notImplemented('watch');
}
