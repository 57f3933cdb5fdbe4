import { shellQuote } from '../core/shell-quote.js';
import type { SharedOptions } from './context.js';

/**
 * The command that picks up where this one stopped: the same words, plus the options that
 * decide which state and which backend a resume finds and what the steps become (`--backend`,
 * `--state-dir`, `--var`). Without them a resume could miss its state, or fingerprint every
 * step anew and pay again. `program` is how the user types talk where they are
 * (`CommandContext.program`).
 */
export function resumeCommand(words: string[], options: Pick<SharedOptions, 'backend' | 'stateDir' | 'vars'>, program = 'talk'): string {
  const args = [...words];
  if (options.backend !== undefined) args.push('--backend', options.backend);
  if (options.stateDir !== undefined) args.push('--state-dir', options.stateDir);
  for (const [name, value] of Object.entries(options.vars)) args.push('--var', `${name}=${value}`);
  return commandLine(args, program);
}

/** A talk command as the user types it: `program` is already shell words (`node ./bin/talk.js`); the arguments are quoted. */
export function commandLine(words: readonly string[], program = 'talk'): string {
  return [program, ...words.map(shellQuote)].join(' ');
}

/** The `talk worker` that takes a queue's jobs (with the backend they were enqueued for, when it is a URL). */
export function workerCommandLine(queue: string, backend: string | undefined, program = 'talk'): string {
  return commandLine(['worker', '--queue', queue, ...(backend === undefined ? [] : ['--backend', backend])], program);
}
