/** The workflow format: load, validate, normalise; expressions; the schema. */
export { loadWorkflow, type LoadOptions } from './load.js';
export type * from './types.js';
export {
  parseTemplate,
  parseExpression,
  resolveExpression,
  resolveTemplate,
  referencesOf,
  literalTemplate,
  filePartsOf,
  type Expr,
  type Template,
  type TemplatePart,
  type ExpressionScope,
  type ExpressionError,
  type FileParts,
  type Resolution,
} from './expressions.js';
export { parseBackend, languageFromEnv } from './normalise.js';
export { jobIdFromStem, uniqueIds } from './rules.js';
export { preflightWorkflow, roleOf, type MediaRole, type PreflightOptions, type PreflightTargets, type PreflightStats } from './preflight.js';
export { defaultProbeCacheDir, openProbeCache } from './probe-cache.js';
export { validateAgainstSchema } from './schema-check.js';
export { workflowSchemaText } from './schema-text.js';
export { nodeWorkflowFs, type WorkflowFs } from './fs.js';
export { MAX_WORKFLOW_BYTES, MAX_ALIAS_COUNT } from './source.js';
export { DEFAULT_CONCURRENCY, DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS, DEFAULT_LANGUAGE, DEFAULT_WATCH } from './defaults.js';
