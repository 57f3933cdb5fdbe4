import { ExitCode } from '../core/errors.js';
import { workflowSchemaText } from '../workflow/index.js';
import type { CommandContext, SharedOptions } from './context.js';

export type SchemaOptions = SharedOptions;

/** `talk schema`: print the workflow JSON Schema (the file editors and ajv use). */
export async function schemaCommand(_args: string[], _options: SchemaOptions, ctx: CommandContext): Promise<number> {
  ctx.stdout.write(workflowSchemaText());
  return ExitCode.ok;
}
