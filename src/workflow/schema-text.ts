/**
 * The schema as text, for `talk schema`. Bundled into the CLI from schemas/workflow.schema.json,
 * the single source the validator is generated from too.
 */
import schema from '../../schemas/workflow.schema.json' with { type: 'json' };

/** The workflow JSON Schema, pretty-printed, ending in a newline. */
export function workflowSchemaText(): string {
  return `${JSON.stringify(schema, null, 2)}\n`;
}
