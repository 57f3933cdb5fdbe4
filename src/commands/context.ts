import type { OutputSink } from '../core/redact.js';

/**
 * What a command may use of the outside world. `main.ts` builds it from the process; tests
 * build it from buffers. Commands never touch `process` themselves.
 */
export interface CommandContext {
  stdout: OutputSink;
  stderr: OutputSink;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  /** Aborts on the first SIGINT/SIGTERM. */
  signal: AbortSignal;
  version: string;
  /** The Node.js version (`v20.18.1`), for provenance records. */
  nodeVersion?: string;
  /** How the user types talk where they are, for commands in hints (cli/invocation.ts); default `talk`. */
  program?: string;
}

/** Reporter choice (SPEC §1). `auto` = tty on a terminal, plain otherwise. */
export type ReporterName = 'auto' | 'tty' | 'plain' | 'json';

/** `talk status` lists every job of a run this size or smaller; a bigger run, those not done (`--all`: every one). */
export const STATUS_LISTED_JOBS = 20;

/** Flags shared by every command, normalised (SPEC §1). */
export interface SharedOptions {
  /** `cloud`, `local` or a URL; undefined = as the workflow says (default cloud). */
  backend: string | undefined;
  stateDir: string | undefined;
  reporter: ReporterName;
  quiet: boolean;
  verbose: boolean;
  color: boolean;
  /** `--var key=value`, repeatable; overrides the workflow's `vars`. */
  vars: Record<string, string>;
  /** `--strict`: warnings (e.g. an undeclared `--var`) are errors (exit 2). */
  strict?: boolean;
  concurrency: number | undefined;
  fresh: boolean;
  dryRun: boolean;
  failFast: boolean;
}

/** What every reporter a command makes takes from the shared flags and the context. */
export function reporterOutput(options: Pick<SharedOptions, 'quiet' | 'verbose' | 'color'>, ctx: Pick<CommandContext, 'stdout' | 'stderr' | 'env'>) {
  return { stdout: ctx.stdout, stderr: ctx.stderr, quiet: options.quiet, verbose: options.verbose, color: options.color, env: ctx.env };
}
