import type { SharedOptions } from './context.js';

/** An argument as a POSIX shell reads it back. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command that picks up where this one stopped: the same words, plus the options that
 * decide which state and which backend a resume finds and what the steps become (`--backend`,
 * `--state-dir`, `--var`). Without them a resume could miss its state, or fingerprint every
 * step anew and pay again.
 */
export function resumeCommand(words: string[], options: Pick<SharedOptions, 'backend' | 'stateDir' | 'vars'>): string {
  const args = [...words];
  if (options.backend !== undefined) args.push('--backend', options.backend);
  if (options.stateDir !== undefined) args.push('--state-dir', options.stateDir);
  for (const [name, value] of Object.entries(options.vars)) args.push('--var', `${name}=${value}`);
  return ['talk', ...args].map(shellQuote).join(' ');
}
