import type { CommandContext, SharedOptions } from './context.js';
import { notImplemented } from './not-implemented.js';

export interface ServeOptions extends SharedOptions {
  host: string;
  port: number;
  dataDir: string | undefined;
  /** `ROUTE=MS`, repeatable. */
  latency: string[];
  /** `ROUTE:FAULT[:xN|:P%]`, repeatable. */
  fault: string[];
  seed: number | undefined;
  /** Contract variants, `NAME=VALUE`, repeatable (see `talk serve --help`). */
  compat: string[];
}

/** `talk serve`. Returns the exit code. */
export async function serveCommand(_args: string[], _options: ServeOptions, _ctx: CommandContext): Promise<number> {
  return notImplemented('serve');
}
