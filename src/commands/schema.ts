import type { CommandContext, SharedOptions } from './context.js';
import { notImplemented } from './not-implemented.js';

export type SchemaOptions = SharedOptions;

/** `talk schema`. Returns the exit code. */
export async function schemaCommand(_args: string[], _options: SchemaOptions, _ctx: CommandContext): Promise<number> {
  return notImplemented('schema');
}
